/**
 * The netheal daemon: LinkMonitor + Prober feed evidence to the PolicyEngine, whose ladder
 * runs the built-in executors. Also the library face: an embedding service can run the same
 * engine in-process, listen to its events and plug in its own actions.
 */
import { EventEmitter } from 'node:events';
import { NethealError } from '../errors';
import { InterfaceConfiguration, readConfiguration } from '../actions/link-bounce';
import { OwnerClaim, queryOwners } from '../actions/manager';
import { Intent } from '../policy/intent';
import { FAULT_CLASSES } from '../policy/fault';
import { LinkMonitor, MonitorEvent } from '../monitor/link-monitor';
import { GroupStateEvent, ProbeResult, Prober, TargetStateEvent } from '../monitor/prober';
import { targetSpecName } from '../monitor/stream-probe';
import { PathCleanup } from '../actions/path-cleanup';
import { Sockets } from '../kernel/sockets';
import { NativeBinding } from '../native';
import { resolveNetns } from '../netns';
import { ActionExecutor } from '../policy/actions';
import { Clock, systemClock } from '../policy/clock';
import { ActionEvent, AlertEvent, HealthEvent, PolicyEngine, PolicySnapshot, RecoveredEvent, VerifyEvent } from '../policy/engine';
import { Evidence, evidenceFromMonitorEvent } from '../policy/evidence';
import { DaemonConfig, policyConfigOf, validateConfig } from './config';
import { builtinExecutors } from './executors';
import { Logger, createLogger } from './logger';
import { SystemdNotifier } from './notify';
import { DaemonMetrics } from './metrics';
import { serveStatus } from './status';
import { controlSocketPath, serveControl } from './control';
import { loadHolds, saveHolds } from './holds';
import { ActionJournal } from './action-journal';
import { loadSafety, saveSafety } from './safety-store';
import { StateScope, currentScope, monotonicMs } from './state-files';
import { undoInterrupted } from '../actions/interruption';
import { decodeRoute } from '../kernel/rtnetlink';
import type { SafetyState } from '../policy/engine-events';
import { PathChangedEvent, PathLostEvent, UplinkFailover, UplinkHealthEvent } from './uplinks';
import type { TcpEvidenceStatus } from './tcp-evidence';
import type { Server } from 'node:net';

/** Options of {@link Daemon}. */
export interface DaemonOptions {
  /** A validated config (validateConfig / loadConfig); default: `{}` (default-route interfaces). */
  config?: DaemonConfig;
  /** Overrides `config.netns`. */
  netns?: string;
  /** Decide and log, change nothing. */
  dryRun?: boolean;
  logger?: Logger;
  notifier?: SystemdNotifier;
  /** Extra ladder actions (an embedder's own, e.g. drain a pool), by `kind`. */
  actions?: ActionExecutor[];
  clock?: Clock;
  binding?: NativeBinding;
  /** How long stop() lets a running action finish (ms, default 10000). */
  stopGraceMs?: number;
  /** Status socket path when the config names none (the daemon entry passes the default). */
  statusSocket?: string;
  /**
   * Where the state that must outlive the process is kept (the daemon entry passes systemd's
   * StateDirectory=, default /var/lib/netheal): the operator's holds, the safety state
   * (budget, damping, backoff, the last healthy configuration) and the journal of disruptive
   * steps under way. Without it all of this lives in memory only (kept across reloads).
   */
  stateDirectory?: string;
  /** Metrics registry to fill (default: a new one; served when `metrics.listen` is set). */
  metrics?: DaemonMetrics;
}

/** One entry of the status document's recent-events list. */
export interface RecentEvent {
  /** CLOCK_MONOTONIC (ns) when it happened. */
  monotonicNs: string;
  /** Wall-clock time, ISO 8601. */
  time: string;
  kind: 'kernel' | 'probe' | 'health' | 'action' | 'alert' | 'cleanup';
  iface?: string;
  text: string;
}

/** A health change with the CLOCK_MONOTONIC receipt time of the evidence behind it. */
export interface DetectionEvent extends HealthEvent {
  /** Receipt of the kernel event (or the prober's decision) that moved the state, ns. */
  evidenceNs: string | null;
  /** Which path revealed it: netlink, carrier-sync, resync or prober. */
  via: string | null;
}

/** Typed events of a {@link Daemon}. */
export interface DaemonEvents {
  health: [DetectionEvent];
  action: [ActionEvent];
  verify: [VerifyEvent];
  alert: [AlertEvent];
  recovered: [RecoveredEvent];
  monitor: [MonitorEvent];
  /** The uplink in use changed (`uplinks` configured). */
  'path-changed': [PathChangedEvent];
  /** A source address lost its path in a failover; its connections were destroyed. */
  'path-lost': [PathLostEvent];
  /** An uplink's probes or its TCP evidence changed their verdict. */
  'uplink-health': [UplinkHealthEvent];
  ready: [];
}

/** Runs one configuration until stop(). */
export class Daemon extends EventEmitter<DaemonEvents> {
  private config: DaemonConfig;
  private readonly options: DaemonOptions;
  private readonly logger: Logger;
  private readonly notifier: SystemdNotifier;
  private netnsPath: string | undefined;
  private monitor: LinkMonitor | undefined;
  private prober: Prober | undefined;
  private sockets: Sockets | undefined;
  private cleanup: PathCleanup | undefined;
  private engine: PolicyEngine | undefined;
  private watched: string[] = [];
  private readonly knownGood = new Map<string, InterfaceConfiguration>();
  /** The last query of each interface's owners (the engine's clock at its start). */
  private readonly ownerQueries = new Map<string, { startedAt: number; claims: Promise<OwnerClaim[]> }>();
  /** The last answered query of each interface's owners. */
  private readonly ownerAnswers = new Map<string, OwnerClaim[]>();
  /** Running actions, by interface: one at a time per interface, across reloads too. */
  private readonly running = new Map<Promise<unknown>, string>();
  /** The journal of disruptive steps under way, for the namespace watched. */
  private journal: ActionJournal | undefined;
  private scope: StateScope | undefined;
  /** The safety state the previous engine left (a reload), with when it was taken. */
  private carried: { safety: SafetyState; atMs: number; graceLeftMs: number } | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  /** Failover between uplinks, when configured; the uplink in use survives a reload. */
  private failover: UplinkFailover | undefined;
  private uplinkInUse: string | undefined;
  /** A reload is tearing down to build again (what must survive it is kept). */
  private reloading = false;
  private saveFailed = false;
  private evidenceNs: string | null = null;
  private evidenceVia: string | null = null;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  /** The start or reload in progress, for stop() to wait on. */
  private transition: Promise<void> | undefined;
  private statusServer: Server | undefined;
  private controlServer: Server | undefined;
  /** Interfaces under the operator's maintenance hold (kept across reloads, and on disk). */
  private holds = new Set<string>();
  private metricsServer: Server | undefined;
  /** The metrics this daemon fills. */
  readonly metrics: DaemonMetrics;
  private readonly recent: RecentEvent[] = [];
  private readonly startedAt = new Date().toISOString();
  private lastReload: { ok: boolean; time: string; error: string | null } | null = null;
  /** Per interface: CLOCK_MONOTONIC (ns) of the first bad evidence of the current episode, and when it went down. */
  private readonly episode = new Map<string, { badSinceNs: bigint; downAtNs: bigint | null }>();

  constructor(options: DaemonOptions = {}) {
    super();
    this.options = options;
    this.config = options.config ?? validateConfig({});
    this.logger = options.logger ?? createLogger();
    this.notifier = options.notifier ?? new SystemdNotifier({});
    this.metrics = options.metrics ?? new DaemonMetrics();
    this.metrics.onCollect(() => {
      const prober = this.prober;
      if (prober === undefined) return;
      for (const name of prober.targetNames()) {
        const loss = prober.stats(name).loss;
        if (loss !== null) this.metrics.probeLoss.set({ target: name }, loss);
      }
    });
  }

  /**
   * Records how the last reload of the configuration file went (the daemon entry reads and
   * checks the file; a refused one never reaches {@link Daemon.reload}): shown by `status`,
   * and in the reload metrics.
   */
  noteReload(ok: boolean, error: string | null = null): void {
    this.lastReload = { ok, time: new Date().toISOString(), error };
    this.metrics.configLoaded(ok);
  }

  /** The status document `netheal status` shows. JSON-safe. */
  status(): Record<string, unknown> {
    const snapshot = this.engine?.snapshot();
    const prober = this.prober;
    const targets = prober === undefined ? {} : Object.fromEntries(prober.targetNames().map((name) => [name, prober.stats(name)]));
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      lastReload: this.lastReload,
      netns: this.netnsPath ?? null,
      dryRun: this.options.dryRun === true,
      state: this.state,
      interfaces: snapshot?.interfaces ?? {},
      groups: snapshot?.groups ?? {},
      inGrace: snapshot?.inGrace ?? false,
      targets,
      ...(this.failover === undefined ? {} : { uplinks: { inUse: this.failover.inUse, tcpEvidence: this.failover.tcpEvidence() ?? null } }),
      recentEvents: [...this.recent],
    };
  }

  /** The TCP evidence per uplink (polls, verdict, last poll), when uplinks and the evidence are on. */
  tcpEvidence(): Record<string, TcpEvidenceStatus> | undefined {
    return this.failover?.tcpEvidence();
  }

  private remember(kind: RecentEvent['kind'], text: string, iface?: string): void {
    this.recent.push({ monotonicNs: process.hrtime.bigint().toString(), time: new Date().toISOString(), kind, text, ...(iface ? { iface } : {}) });
    if (this.recent.length > 100) this.recent.shift();
  }

  /** True once the daemon has stopped (or could not rebuild itself after a failed reload). */
  get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** Interfaces being watched. */
  get interfaces(): string[] {
    return [...this.watched];
  }

  /**
   * Puts a watched interface under the operator's maintenance hold (`held: true`: watched and
   * reported, never acted on) or releases it. Returns false when it is not watched.
   */
  hold(iface: string, held: boolean): boolean {
    const engine = this.engine;
    if (engine === undefined || engine.isClosed) return false;
    const ok = engine.hold(iface, held);
    if (!ok) return false;
    if (held) this.holds.add(iface);
    else this.holds.delete(iface);
    if (this.options.stateDirectory !== undefined) saveHolds(this.options.stateDirectory, this.holds);
    this.logger.notice(`${iface}: ${held ? 'held for maintenance: netheal watches but never acts' : 'hold released'}`, { iface, hold: held });
    return true;
  }

  /** The engine's view (health, evidence, ladder, damping, budget per interface). */
  snapshot(): PolicySnapshot | undefined {
    return this.engine?.snapshot();
  }

  /** Starts monitoring; resolves once monitoring is live (then READY=1 is sent). */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `start() on a ${this.state} daemon`);
    this.state = 'starting';
    this.transition = this.build().then(
      async () => {
        // stop() called meanwhile: it waits for this, then tears down what build() made.
        if (this.state !== 'starting') return;
        this.state = 'running';
        this.notifier.ready(this.statusLine());
        this.notifier.startWatchdog();
        this.emit('ready');
      },
      async (error: unknown) => {
        await this.teardown();
        this.state = 'stopped';
        throw error;
      },
    );
    await this.transition;
  }

  /**
   * Applies a new validated config: RELOADING=1, rebuild, READY=1. If the new config cannot
   * be built (a namespace that vanished, a busy status socket), the previous config is built
   * again and the error is thrown; if even that fails, the daemon is stopped and the error
   * says so (the entry point then exits non-zero, so systemd restarts it).
   */
  async reload(config: DaemonConfig): Promise<void> {
    if (this.state !== 'running') return;
    this.notifier.reloading();
    this.logger.notice('reloading configuration');
    this.state = 'starting';
    const previous = this.config;
    const run = async (): Promise<void> => {
      await this.waitForActions('reload');
      this.carryOver();
      this.reloading = true;
      try {
        await this.teardown();
      } finally {
        this.reloading = false;
      }
      this.config = config;
      try {
        await this.build();
      } catch (error) {
        this.logger.error(`reload failed, going back to the previous configuration: ${(error as Error).message}`);
        this.carryOver();
        await this.teardown();
        this.config = previous;
        try {
          await this.build();
        } catch (again) {
          await this.teardown();
          this.state = 'stopped';
          this.notifier.stopWatchdog();
          throw new NethealError('NETHEAL_ERR_CONFIG', `reload failed and the previous configuration could not be rebuilt either: ${(again as Error).message}`);
        }
        this.state = 'running';
        this.notifier.ready(`reload failed: ${(error as Error).message}; ${this.statusLine()}`);
        throw error;
      }
      this.state = 'running';
      this.notifier.ready(this.statusLine());
    };
    this.transition = run();
    await this.transition;
  }

  /** STOPPING=1, stop probing, let a running action finish within the limit, close everything. */
  async stop(): Promise<void> {
    if (this.state === 'starting') await this.transition?.catch(() => undefined);
    if (this.state !== 'running' && this.state !== 'starting') return;
    this.state = 'stopping';
    this.notifier.stopping('stopping');
    this.notifier.stopWatchdog();
    this.prober?.close();
    this.prober = undefined;
    await this.waitForActions('stop');
    await this.teardown();
    this.state = 'stopped';
  }

  /** Takes the engine's safety state for the next one (a reload), and saves it. */
  private carryOver(): void {
    const engine = this.engine;
    if (engine === undefined || engine.isClosed) return;
    const snapshot = engine.snapshot();
    this.carried = { safety: engine.exportSafety(), atMs: monotonicMs(), graceLeftMs: Math.max(0, snapshot.graceEndsAtMs - snapshot.atMs) };
    this.saveNow();
  }

  /** Writes the safety state soon (at most once a second: a flap storm must not hammer the disk). */
  private scheduleSave(): void {
    if (this.options.stateDirectory === undefined || this.saveTimer !== undefined) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saveNow();
    }, 1000);
    this.saveTimer.unref();
  }

  /** Writes the safety state now (before an action changes anything, at reload and stop). */
  private saveNow(): void {
    if (this.saveTimer !== undefined) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const dir = this.options.stateDirectory;
    const engine = this.engine;
    if (dir === undefined || engine === undefined || engine.isClosed || this.scope === undefined) return;
    try {
      saveSafety(dir, this.scope, engine.exportSafety(), this.knownGood);
      this.saveFailed = false;
    } catch (error) {
      // Said once per failure streak: a full or read-only disk must not flood the log.
      if (!this.saveFailed) this.logger.warning(`cannot save the safety state in ${dir}: ${(error as Error).message}; a restart would forget it`);
      this.saveFailed = true;
    }
  }

  /**
   * Undoes what a dead predecessor's disruptive step left half-done (the journal it wrote
   * before it began): sets the link up, puts back the addresses and routes the kernel
   * flushed, runs the `ifup` it owed. Before anything else watches the interface.
   */
  private async undoLeftovers(journal: ActionJournal): Promise<void> {
    const leftovers = journal.leftovers((m) => this.logger.warning(m)).filter((e) => e.pid !== process.pid);
    for (const entry of leftovers) {
      const result = await undoInterrupted(entry.iface, entry.undo, { netnsPath: this.netnsPath, binding: this.options.binding });
      this.remember('action', `undo interrupted ${entry.action}: ${result.detail}`, entry.iface);
      this.logger.log(result.ok ? 'notice' : 'error', `${entry.iface}: undid the ${entry.action} interrupted by the death of pid ${entry.pid} (${entry.startedAt}): ${result.ok ? '' : 'failed: '}${result.detail}`, {
        iface: entry.iface, action: entry.action, undo: entry.undo.kind, result: result.ok ? 'ok' : 'failed',
      });
    }
    journal.reset();
  }

  /** Lets running actions finish, up to stopGraceMs. */
  private async waitForActions(why: string): Promise<void> {
    if (this.running.size === 0) return;
    const limit = this.options.stopGraceMs ?? 10000;
    this.logger.notice(`${why}: waiting up to ${limit} ms for ${this.running.size} running action(s)`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running.keys()]),
      new Promise((resolve) => { timer = setTimeout(resolve, limit); }),
    ]);
    clearTimeout(timer);
  }

  // ---- building and tearing down ----

  private async build(): Promise<void> {
    const config = this.config;
    const netns = this.options.netns ?? config.netns;
    this.netnsPath = resolveNetns(netns, this.options.netns !== undefined ? '--netns' : 'netns');
    const binding = this.options.binding;
    // What a dead predecessor left half-done is undone first, so that the monitor's first
    // dump already sees the interface as it should be.
    const scope = currentScope(this.netnsPath);
    this.scope = scope;
    const journal = new ActionJournal(this.options.stateDirectory, scope);
    this.journal = journal;
    await this.undoLeftovers(journal);
    const monitor = new LinkMonitor({
      netns: this.netnsPath, binding,
      carrierSync: this.carrierSyncOption(),
    });
    this.monitor = monitor;
    await monitor.start();
    // The safety state: the previous engine's (a reload), else what an earlier daemon of this
    // boot and namespace saved (a restart).
    let carried: { safety: SafetyState; elapsedMs: number; graceMs?: number } | undefined;
    if (this.carried !== undefined) {
      carried = { safety: this.carried.safety, elapsedMs: monotonicMs() - this.carried.atMs, graceMs: this.carried.graceLeftMs };
    } else if (this.options.stateDirectory !== undefined) {
      const saved = loadSafety(this.options.stateDirectory, scope, (m) => this.logger.warning(m));
      if (saved !== undefined) {
        carried = saved;
        for (const [name, configuration] of saved.knownGood) if (!this.knownGood.has(name)) this.knownGood.set(name, configuration);
      }
    }
    this.sockets = new Sockets({ netns: this.netnsPath, binding });
    if (!this.options.dryRun) {
      // Sockets on an address that disappeared can never work again: clear them at once.
      this.cleanup = new PathCleanup({
        monitor, netns: this.netnsPath, includeTimeWait: config.killSockets.includeTimeWait, binding, confirmMs: config.killSockets.addressGoneMs,
      });
      this.cleanup.on('cleanup', (report) => {
        if (report.destroyed > 0) this.metrics.socketsDestroyed.inc({ reason: 'address-removed' }, report.destroyed);
        if (report.matched > 0) this.remember('cleanup', `address ${report.address} removed: destroyed ${report.destroyed} sockets`);
        if (report.matched > 0) this.logger.notice(`address ${report.address} removed: destroyed ${report.destroyed} sockets`, { destroyed: report.destroyed, gone: report.gone });
      });
      this.cleanup.on('error', (error) => this.logger.warning(`socket cleanup failed: ${error.message}`));
    }

    this.watched = Object.keys(config.interfaces);
    const defaults = this.watched.length === 0;
    if (defaults) {
      // No interfaces configured: those of the default routes, probing their gateways.
      const names = new Set<string>();
      for (const family of [4, 6] as const) {
        const route = monitor.activeDefaultRoute(family);
        const name = route?.ifindex == null ? undefined : monitor.getLink(route.ifindex)?.name;
        if (name !== undefined) names.add(name);
      }
      this.watched = [...names];
      if (this.watched.length === 0) this.logger.warning('no interfaces configured and no default route: watching nothing');
    }
    for (const name of this.watched) {
      if (monitor.getLink(name) === undefined) this.logger.warning(`interface ${name} does not exist (yet)`, { iface: name });
    }

    const policyConfig = policyConfigOf(config);
    // A reload does not start the start-up grace period over: it goes on where it was.
    if (carried?.graceMs !== undefined) policyConfig.graceMs = Math.min(policyConfig.graceMs ?? carried.graceMs, carried.graceMs);
    const engine = new PolicyEngine({
      config: policyConfig,
      carried: carried === undefined ? undefined : { safety: carried.safety, elapsedMs: carried.elapsedMs },
      interfaces: this.watched,
      dryRun: this.options.dryRun,
      clock: this.options.clock,
      actions: [...builtinExecutors(this.executorHost()), ...(this.options.actions ?? [])].map((a) => this.tracked(a)),
    });
    this.engine = engine;
    if (this.options.stateDirectory !== undefined) this.holds = loadHolds(this.options.stateDirectory, (m) => this.logger.warning(m));
    for (const name of this.holds) {
      if (engine.hold(name, true)) this.logger.notice(`${name}: held for maintenance (kept from before): netheal watches but never acts`, { iface: name, hold: true });
    }
    engine.on('health', (event) => this.onHealth(event));
    engine.on('action', (event) => this.onAction(event));
    engine.on('verify', (event) => {
      this.emit('verify', event);
      this.logger.info(`${event.iface}: step ${event.step} ${event.kind} ${event.verified ? 'verified' : 'not verified'} by ${event.by} for the ${event.fault} fault`, {
        iface: event.iface, step: event.step, action: event.kind, verified: event.verified, credited: event.credited, fault: event.fault,
      });
    });
    engine.on('recovered', (event) => this.onRecovered(event));
    engine.on('alert', (event) => {
      this.emit('alert', event);
      this.metrics.alerts.inc({ iface: event.iface, reason: event.reason });
      this.remember('alert', `${event.reason}: ${event.detail}`, event.iface);
      this.logger.warning(`${event.iface}: ${event.reason}: ${event.detail}`, { iface: event.iface, alert: event.reason });
    });
    engine.on('error', (error) => this.logger.error(`policy engine: ${error.message}`));
    for (const event of ['health', 'action', 'alert'] as const) engine.on(event, () => this.scheduleSave());

    // Seed the engine with the state as it is now, then follow events. Required addresses
    // go first, then the other addresses and the routes, the carrier last: judged on partial
    // evidence, an interface looks like it lost an address, which would count as a flap and
    // start a pointless climb at start-up.
    for (const name of this.watched) {
      const required = new Set(config.interfaces[name]?.requiredAddresses ?? config.policy.defaults?.requiredAddresses ?? []);
      const addresses = [...(monitor.getLink(name)?.addresses ?? [])].sort((a, b) => Number(required.has(b.address)) - Number(required.has(a.address)));
      for (const address of addresses) {
        this.observe({ kind: 'address', iface: name, present: true, address: address.address, family: address.family, prefixlen: address.prefixlen }, null);
      }
    }
    for (const family of [4, 6] as const) {
      const route = monitor.activeDefaultRoute(family);
      if (route !== null) {
        const iface = route.ifindex === null ? null : monitor.getLink(route.ifindex)?.name ?? null;
        this.observe({ kind: 'default-route', family, present: true, iface, gateway: route.gateway }, null);
      }
    }
    for (const name of this.watched) {
      const link = monitor.getLink(name);
      if (link !== undefined) this.observe({ kind: 'carrier', iface: name, up: link.carrier, adminUp: link.adminUp }, null);
    }
    // A default route the last healthy state had and the kernel lacks now was lost while no
    // engine watched (before a reload or a restart): say so, so that it is repaired.
    for (const name of this.watched) {
      for (const family of [4, 6] as const) {
        const hadDefault = this.knownGood.get(name)?.routes.some((m) => {
          const route = decodeRoute(m);
          return route !== null && route.family === family && route.dstLen === 0;
        });
        if (hadDefault === true && monitor.activeDefaultRoute(family) === null && monitor.getLink(name) !== undefined) {
          this.observe({ kind: 'default-route', family, present: false, iface: name }, null);
        }
      }
    }
    if (carried !== undefined) {
      engine.restoreBaselines(carried.safety);
      const kept = Object.keys(carried.safety.interfaces).filter((name) => this.watched.includes(name));
      if (kept.length > 0) this.logger.info(`safety state kept for ${kept.join(', ')} (budget, damping, backoff, baseline)`);
    }
    monitor.on('event', (event) => this.onMonitorEvent(event));
    monitor.on('error', (error) => this.logger.warning(`link monitor: ${error.message}`));
    // Every gauge has a sample from the start: an alert on them must not wait for a change.
    const snapshot = engine.snapshot();
    for (const name of this.watched) {
      const link = monitor.getLink(name);
      if (link !== undefined) {
        this.metrics.linkCarrier.set({ iface: name }, link.carrier ? 1 : 0);
        this.metrics.linkAdminUp.set({ iface: name }, link.adminUp ? 1 : 0);
      }
      const state = snapshot.interfaces[name]?.state;
      for (const s of ['healthy', 'suspect', 'down', 'recovering']) this.metrics.health.set({ iface: name, state: s }, s === state ? 1 : 0);
      const fault = snapshot.interfaces[name]?.fault?.class ?? null;
      for (const c of FAULT_CLASSES) this.metrics.fault.set({ iface: name, class: c }, c === fault ? 1 : 0);
    }
    const intentAskedAt = this.clock.now();
    for (const name of this.watched) void this.refreshIntent(name, intentAskedAt);

    this.startProber(defaults);
    if (config.uplinks !== undefined) {
      const failover = new UplinkFailover({
        config, netnsPath: this.netnsPath, binding: this.options.binding, logger: this.logger, clock: this.options.clock,
        addressesOf: (iface) => monitor.getLink(iface)?.addresses.filter((a) => a.family === 4).map((a) => ({ address: a.address, prefixlen: a.prefixlen })) ?? [],
        ifindexOf: (iface) => monitor.getLink(iface)?.ifindex ?? null,
        initial: this.uplinkInUse,
      });
      this.failover = failover;
      failover.on('path-changed', (event) => {
        this.uplinkInUse = event.to;
        this.remember('action', `uplink ${event.reason}: default route via ${event.to}${event.destroyed ? `, ${event.destroyed} connections moved` : ''}`);
        this.emit('path-changed', event);
      });
      failover.on('uplink-health', (event) => this.emit('uplink-health', event));
      failover.on('path-lost', (event) => {
        if (event.destroyed > 0) this.metrics.socketsDestroyed.inc({ reason: 'path-lost' }, event.destroyed);
        this.emit('path-lost', event);
      });
      await failover.settled();
    }
    await Promise.all(this.watched.map((name) => this.rememberGood(name)));
    // Asking the managers takes their tools' start-up time: never hold READY back for it.
    for (const name of this.watched) {
      void this.claimsSince(name, intentAskedAt).then((claims) => {
        if (claims.length > 1) this.logger.warning(`${name} is claimed by several managers: ${claims.map((c) => c.owner).join(', ')}; they will fight over it`, { iface: name });
      }, () => undefined);
    }
    const statusPath = config.status?.socket ?? this.options.statusSocket;
    if (statusPath !== undefined) {
      this.statusServer = await serveStatus(statusPath, () => this.status(), {
        onError: (error) => this.logger.warning(`status socket: ${error.message}`),
      });
      this.controlServer = await serveControl(controlSocketPath(statusPath), async (request) => {
        if (!this.watched.includes(request.iface)) return { ok: false, error: `iface: ${request.iface} is not watched (watched: ${this.watched.join(', ') || 'none'})` };
        this.hold(request.iface, request.command === 'hold');
        return { ok: true, iface: request.iface, hold: request.command === 'hold', persisted: this.options.stateDirectory !== undefined };
      });
    }
    if (config.metrics !== undefined) {
      // Loaded only here: node:http is not needed by a daemon without a metrics endpoint.
      const { serveMetrics } = require('./metrics-server') as typeof import('./metrics-server');
      this.metricsServer = await serveMetrics(this.metrics, config.metrics.listen);
    }
    // Taken over: a failed build keeps it for the configuration built again after it.
    this.carried = undefined;
    this.logger.notice(`watching ${this.watched.join(', ') || 'nothing'}${this.netnsPath ? ` in ${this.netnsPath}` : ''}${this.options.dryRun ? ' (dry run)' : ''}`);
  }

  private async teardown(): Promise<void> {
    this.saveNow();
    const servers = [this.statusServer, this.controlServer, this.metricsServer].filter((x): x is Server => x !== undefined);
    this.statusServer = undefined;
    this.controlServer = undefined;
    this.metricsServer = undefined;
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    this.prober?.close();
    await this.failover?.close({ keepRoute: this.reloading });
    this.failover = undefined;
    this.engine?.close();
    this.cleanup?.close();
    this.sockets?.close();
    this.monitor?.close();
    this.prober = undefined;
    this.engine = undefined;
    this.cleanup = undefined;
    this.sockets = undefined;
    this.monitor = undefined;
  }

  private carrierSyncOption(): boolean | { intervalMs: number; devices?: string[] } {
    const explicit = Object.entries(this.config.interfaces).filter(([, c]) => c.carrierSync !== undefined);
    if (explicit.length === 0) return { intervalMs: this.config.carrierSyncIntervalMs };
    // Any explicit choice: exactly the devices that asked for it.
    const devices = explicit.filter(([, c]) => c.carrierSync === true).map(([name]) => name);
    return devices.length === 0 ? false : { intervalMs: this.config.carrierSyncIntervalMs, devices };
  }

  private startProber(defaults: boolean): void {
    const groups = defaults
      ? this.watched.map((name) => ({ name, probe: { targets: ['gateway'], intervalMs: 1000, timeoutMs: 1000, multiplier: 3, recovery: 3, quorum: undefined as number | undefined } }))
      : Object.entries(this.config.interfaces).flatMap(([name, c]) => (c.probe === undefined ? [] : [{ name, probe: c.probe }]));
    if (groups.length === 0) return;
    const prober = new Prober({ netns: this.netnsPath, gatewaySource: this.monitor, binding: this.options.binding });
    this.prober = prober;
    for (const { name, probe } of groups) {
      const targets = probe.targets.map((target) => prober.add(target, {
        name: `${name}:${targetSpecName(target)}`, device: name, interval: probe.intervalMs, timeout: probe.timeoutMs,
        multiplier: probe.multiplier, recovery: probe.recovery,
      }));
      prober.addGroup(name, { targets, quorum: probe.quorum ?? 1 });
    }
    prober.on('probe', (result: ProbeResult) => {
      this.metrics.probes.inc({ target: result.target, status: result.status });
      if (result.rttMs !== null) this.metrics.probeRtt.observe({ target: result.target }, result.rttMs / 1000);
    });
    prober.on('target-down', (e: TargetStateEvent) => this.onTarget(e, false));
    prober.on('target-up', (e: TargetStateEvent) => this.onTarget(e, true));
    prober.on('group-down', (e: GroupStateEvent) => this.onGroup(e, false));
    prober.on('group-up', (e: GroupStateEvent) => this.onGroup(e, true));
    prober.on('error', (error: Error) => this.logger.warning(`prober: ${error.message}`));
  }

  // ---- evidence in ----

  /** Feeds evidence; `evidenceNs`/`via` say when and how the kernel or prober revealed it. */
  private observe(evidence: Evidence, evidenceNs: string | null, via: string | null = null): void {
    this.evidenceNs = evidenceNs;
    this.evidenceVia = via;
    try {
      this.engine?.observe(evidence);
    } finally {
      this.evidenceNs = null;
      this.evidenceVia = null;
    }
  }

  private onMonitorEvent(event: MonitorEvent): void {
    const receivedAt = this.clock.now();
    let askOwner: string | null = null;
    this.emit('monitor', event);
    this.metrics.events.inc({ type: event.type });
    // A default route lost may be netheal's own, removed by a manager that clears foreign routes.
    if (event.type === 'default-route' && event.action === 'lost') this.failover?.reassert();
    if (event.type === 'resync') {
      this.metrics.resyncs.inc();
      this.remember('kernel', `resync: ${event.reason}`);
    } else if (event.type === 'link' && this.watched.includes(event.link.name)) {
      this.metrics.linkCarrier.set({ iface: event.link.name }, event.link.carrier ? 1 : 0);
      this.metrics.linkAdminUp.set({ iface: event.link.name }, event.link.adminUp ? 1 : 0);
      if (event.changed.includes('carrier')) this.metrics.carrierChanges.inc({ iface: event.link.name });
      // Admin-down by whom? The owner's intent decides whether to heal it or respect it.
      if (event.changed.includes('adminUp') || !event.link.adminUp) askOwner = event.link.name;
      this.remember('kernel', `link ${event.link.name}: ${event.changed.join(',')} -> carrier ${event.link.carrier ? 'up' : 'down'}, ${event.link.adminUp ? 'admin up' : 'admin down'} (via ${event.via})`, event.link.name);
    } else if (event.type === 'address' || event.type === 'default-route' || event.type === 'link-removed') {
      const text = event.type === 'address' ? `address ${event.action} ${event.address}/${event.prefixlen}`
        : event.type === 'default-route' ? `default route IPv${event.family} ${event.action} (via ${event.gateway ?? '-'})`
          : `link ${event.name} removed`;
      this.remember('kernel', text);
    }
    this.logger.debug(`kernel: ${event.type}`, { event });
    const monitor = this.monitor;
    if (monitor === undefined) return;
    for (const evidence of evidenceFromMonitorEvent(event, (i) => monitor.getLink(i)?.name)) {
      this.observe(evidence, event.monotonicNs, event.via);
    }
    // After the evidence: starting the owner's tools blocks the loop ~10 ms per process on a
    // VM, and the health change must not wait for that. A query the change itself set off
    // (onHealth) is reused.
    if (askOwner !== null) void this.refreshIntent(askOwner, receivedAt);
  }

  private onTarget(event: TargetStateEvent, up: boolean): void {
    const [group] = event.target.split(':');
    this.remember('probe', `target ${event.target} (${event.address ?? '-'}) ${up ? 'up' : 'down'}${event.reason ? `: ${event.reason.name ?? event.reason.kind}` : ''}`, group);
    const reason = event.reason === null ? '' : ` (${event.reason.name ?? event.reason.kind})`;
    this.logger.info(`probe target ${event.target} ${up ? 'up' : 'down'}${reason}`, { target: event.target, address: event.address });
    const role = event.target.endsWith(':gateway') ? 'gateway' as const : 'far' as const;
    // The host itself could not send (its neighbour entry FAILED, the kernel refused): a first-hop sign.
    const local = !up && (event.reason?.kind === 'neighbour-failed' || event.reason?.kind === 'send-error');
    this.observe({ kind: 'probe', target: event.target, ok: up, group, iface: group, role, ...(local ? { localUnreachable: true } : {}) }, event.monotonicNs.toString(), 'prober');
  }

  private onGroup(event: GroupStateEvent, up: boolean): void {
    this.observe({
      kind: 'probe-group', group: event.group, iface: event.group, up,
      reason: up ? undefined : `${event.up} of ${event.targets.length} targets answer, quorum ${event.quorum}`,
      targetsUp: event.up, targetsTotal: event.targets.length,
    }, event.monotonicNs.toString(), 'prober');
  }

  // ---- engine out ----

  private onHealth(event: HealthEvent): void {
    const detection: DetectionEvent = { ...event, evidenceNs: this.evidenceNs, via: this.evidenceVia };
    this.emit('health', detection);
    if (event.subject === 'interface' && event.iface !== undefined) this.recordHealthMetrics(detection);
    this.remember('health', `${event.iface ?? `group ${event.group}`}: ${event.from} -> ${event.to}${event.reasons.length ? ` (${event.reasons.join(', ')})` : ''}`, event.iface);
    const subject = event.iface ?? `group ${event.group}`;
    const level = event.to === 'down' ? 'warning' : event.to === 'healthy' ? 'notice' : 'info';
    const fault = event.iface === undefined ? undefined : this.engine?.faultOf(event.iface) ?? null;
    this.logger.log(level, `${subject}: ${event.from} -> ${event.to}${fault ? ` [${fault.class}]` : ''}${event.reasons.length ? ` (${event.reasons.join(', ')})` : ''}`, {
      iface: event.iface, group: event.group, from: event.from, to: event.to, cause: event.cause, fault: fault === undefined ? undefined : fault?.class ?? null,
      evidence: event.evidence?.kind, via: detection.via ?? undefined, monotonicNs: detection.evidenceNs ?? process.hrtime.bigint().toString(),
    });
    this.notifier.status(this.statusLine());
    if (event.subject === 'interface' && event.to === 'healthy' && event.iface !== undefined) void this.rememberGood(event.iface);
    // A manager may have meant it (NetworkManager's `device disconnect` keeps the link up):
    // ask the owner again whenever the interface goes down or comes back.
    if (event.subject === 'interface' && event.iface !== undefined && event.cause === 'evidence' && (event.to === 'down' || event.to === 'healthy')) {
      void this.refreshIntent(event.iface);
    }
  }

  private recordHealthMetrics(event: DetectionEvent): void {
    const iface = event.iface!;
    for (const state of ['healthy', 'suspect', 'down', 'recovering']) this.metrics.health.set({ iface, state }, state === event.to ? 1 : 0);
    const fault = this.engine?.faultOf(iface)?.class ?? null;
    for (const c of FAULT_CLASSES) this.metrics.fault.set({ iface, class: c }, c === fault ? 1 : 0);
    const now = event.evidenceNs !== null ? BigInt(event.evidenceNs) : process.hrtime.bigint();
    let episode = this.episode.get(iface);
    if (event.from === 'healthy' && event.to !== 'healthy') {
      episode = { badSinceNs: now, downAtNs: null };
      this.episode.set(iface, episode);
    }
    if (episode !== undefined && event.to === 'down' && episode.downAtNs === null) {
      episode.downAtNs = now;
      this.metrics.detection.observe({ iface, evidence: event.evidence?.kind ?? 'unknown' }, Number(now - episode.badSinceNs) / 1e9);
    }
    if (episode !== undefined && event.to === 'healthy') {
      if (episode.downAtNs !== null) this.metrics.recovery.observe({ iface }, Number(process.hrtime.bigint() - episode.downAtNs) / 1e9);
      this.episode.delete(iface);
    }
  }

  private onAction(event: ActionEvent): void {
    this.emit('action', event);
    this.metrics.actions.inc({ iface: event.iface, action: event.kind, result: event.result.status });
    const destroyed = event.kind === 'kill-sockets' ? Number(event.result.data?.destroyed ?? 0) : 0;
    if (destroyed > 0) this.metrics.socketsDestroyed.inc({ reason: 'kill-sockets' }, destroyed);
    this.remember('action', `${event.kind} (step ${event.step}): ${event.result.status}${event.result.detail ? `: ${event.result.detail}` : ''}`, event.iface);
    const level = event.result.status === 'failed' || event.result.status === 'timeout' ? 'warning' : 'notice';
    const commands = Array.isArray(event.result.data?.commands) ? event.result.data.commands as string[] : undefined;
    this.logger.log(event.result.status === 'skipped' ? 'info' : level, `${event.iface}: step ${event.step} ${event.kind}: ${event.result.status}${event.result.detail ? `: ${event.result.detail}` : ''}`, {
      iface: event.iface, step: event.step, action: event.kind, result: event.result.status, dryRun: event.dryRun,
      fault: event.fault, commands,
      destroyed: destroyed > 0 ? destroyed : undefined,
      durationMs: Math.round(event.durationMs), monotonicNs: process.hrtime.bigint().toString(),
    });
  }

  private onRecovered(event: RecoveredEvent): void {
    this.emit('recovered', event);
    this.metrics.recoveries.inc({ iface: event.iface, fault: event.fault ?? 'none', by: event.by });
    const text = event.by === 'action'
      ? `${event.iface}: ${event.fault ?? ''} fault recovered by ${event.action} after ${Math.round(event.atMs - event.sinceMs)} ms`
      : `${event.iface}: ${event.fault ?? ''} fault recovered without action after ${Math.round(event.atMs - event.sinceMs)} ms`;
    this.remember('health', text, event.iface);
    this.logger.notice(text, {
      iface: event.iface, fault: event.fault, recovery: event.by, action: event.action ?? undefined, durationMs: Math.round(event.atMs - event.sinceMs),
    });
  }

  /** The engine's clock (a test's fake one, else the monotonic clock): owner queries are dated on it. */
  private get clock(): Clock {
    return this.options.clock ?? systemClock;
  }

  /** The managers' claims from a query started at or after `sinceMs` (engine clock), else a new query. */
  private claimsSince(iface: string, sinceMs: number): Promise<OwnerClaim[]> {
    const now = this.clock.now();
    const last = this.ownerQueries.get(iface);
    if (last !== undefined && last.startedAt >= sinceMs) return last.claims;
    const claims = queryOwners(iface, this.managerEnvironment(), this.ownerAnswers.get(iface));
    this.ownerQueries.set(iface, { startedAt: now, claims });
    // Only the newest query speaks: an older one finishing late must not overwrite its answer.
    const newest = (): boolean => this.ownerQueries.get(iface)?.claims === claims;
    claims.then((answer) => { if (newest()) this.ownerAnswers.set(iface, answer); }, () => { if (newest()) this.ownerQueries.delete(iface); });
    return claims;
  }

  /**
   * Asks the interface's owner what it wants (see src/actions/manager.ts) and feeds it as
   * evidence. Where no manager owns the interface, netheal's own configuration speaks: up.
   * A query started at or after `sinceMs` is answer enough.
   */
  private async refreshIntent(iface: string, sinceMs = this.clock.now()): Promise<void> {
    let intent: Intent;
    try {
      const [claim] = await this.claimsSince(iface, sinceMs);
      intent = claim === undefined
        ? { owner: 'netheal', wantUp: true, source: 'no manager owns it: netheal\'s configuration' }
        : { owner: claim.owner, wantUp: claim.wantUp, source: claim.source };
    } catch (error) {
      this.logger.warning(`${iface}: could not learn its owner's intent: ${(error as Error).message}`, { iface });
      return;
    }
    const engine = this.engine;
    if (engine === undefined || engine.isClosed || !engine.interfaces.includes(iface)) return;
    const known = engine.intentOf(iface);
    if (known?.owner === intent.owner && known.wantUp === intent.wantUp) return;
    this.logger.info(`${iface}: owner ${intent.owner} wants it ${intent.wantUp === null ? '(unknown)' : intent.wantUp ? 'up' : 'down'} (${intent.source})`, { iface, owner: intent.owner, wantUp: intent.wantUp });
    this.observe({ kind: 'intent', iface, intent }, null, 'intent');
  }

  private statusLine(): string {
    const snapshot = this.engine?.snapshot();
    if (snapshot === undefined) return 'starting';
    const parts = Object.entries(snapshot.interfaces).map(([name, s]) => `${name} ${s.state}`);
    return parts.length ? parts.join(', ') : 'watching nothing';
  }

  // ---- executor support ----

  /** Wraps an executor so stop() can wait for its run to finish. */
  private tracked(executor: ActionExecutor): ActionExecutor {
    const running = this.running;
    // Everything the engine reads from an executor (fixes, afterMs, verifiable, disruptive)
    // must survive the wrapping: only run() is wrapped.
    return {
      kind: executor.kind,
      ...(executor.fixes !== undefined ? { fixes: executor.fixes } : {}),
      ...(executor.afterMs !== undefined ? { afterMs: executor.afterMs } : {}),
      ...(executor.verifiable !== undefined ? { verifiable: executor.verifiable } : {}),
      ...(executor.disruptive !== undefined ? { disruptive: executor.disruptive } : {}),
      ...(executor.applies ? { applies: (ctx) => executor.applies!(ctx) } : {}),
      run: (ctx) => {
        // The budget spent is on disk before the action changes anything.
        this.saveNow();
        // One action per interface at a time, also across a reload: an action of the engine
        // before it (aborted, or not abortable, like a bounce half-way) finishes first.
        const earlier = [...running].filter(([, iface]) => iface === ctx.iface).map(([p]) => p);
        const promise = earlier.length === 0 ? executor.run(ctx) : Promise.allSettled(earlier).then(() => {
          ctx.signal.throwIfAborted();
          return executor.run(ctx);
        });
        running.set(promise, ctx.iface);
        const done = (): void => { running.delete(promise); };
        promise.then(done, done);
        return promise;
      },
    };
  }

  private managerEnvironment() {
    const m = this.config.managers;
    return {
      netnsPath: this.netnsPath,
      networkScriptsDir: m.networkScriptsDir,
      ifupdownInterfaces: m.ifupdown?.interfaces,
      ifupdownStateDir: m.ifupdown?.stateDir,
      ifupdownOptions: m.ifupdown?.options,
    };
  }

  private executorHost() {
    return {
      netnsPath: this.netnsPath,
      binding: this.options.binding,
      sockets: this.sockets!,
      includeTimeWait: this.config.killSockets.includeTimeWait,
      pathDeadMs: this.config.killSockets.pathDeadMs,
      managers: this.managerEnvironment(),
      journal: this.journal!,
      claimsSince: (iface: string, sinceMs: number) => this.claimsSince(iface, sinceMs),
      now: () => this.clock.now(),
      lastClaims: (iface: string) => this.ownerAnswers.get(iface),
      addressesOf: (iface: string) => this.monitor?.getLink(iface)?.addresses.map((a) => ({ address: a.address, prefixlen: a.prefixlen, family: a.family })) ?? [],
      ifindexOf: (iface: string) => this.monitor?.getLink(iface)?.ifindex ?? null,
      knownGood: (iface: string) => this.knownGood.get(iface),
      hookOf: (iface: string) => this.config.interfaces[iface]?.hook,
    };
  }

  /** Snapshots an interface's routes and addresses while it is healthy, for a later bounce. */
  private async rememberGood(iface: string): Promise<void> {
    if (this.engine?.stateOf(iface) !== 'healthy' || this.monitor?.getLink(iface) === undefined) return;
    try {
      this.knownGood.set(iface, await readConfiguration(iface, { netnsPath: this.netnsPath, binding: this.options.binding }));
      this.scheduleSave();
    } catch (error) {
      this.logger.debug(`could not snapshot ${iface}: ${(error as Error).message}`);
    }
  }
}
