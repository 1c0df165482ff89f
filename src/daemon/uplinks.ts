/**
 * Failover between uplinks. Each uplink has a probe group of its own (out of its interface,
 * SO_BINDTODEVICE: the gateway, or farther targets that also catch a loss beyond it); the
 * {@link UplinkSelector} picks the one in use; {@link UplinkRoute} points netheal's default
 * route through it. After a switch to another interface, the connections whose source
 * address belongs to the uplink left behind cannot work any more (their packets would leave
 * through the new uplink with an address its network does not route back): they are
 * destroyed, so their owners see ECONNABORTED at once and reconnect through the new path.
 * Connections from addresses that stay usable are left alone.
 */
import { EventEmitter } from 'node:events';
import { BlockList } from 'node:net';
import { UplinkRoute } from '../actions/uplink-route';
import { SocketInfo, Sockets } from '../kernel/sockets';
import { GroupStateEvent, Prober } from '../monitor/prober';
import { NativeBinding } from '../native';
import { Clock, systemClock } from '../policy/clock';
import { DEFAULT_DAMPING } from '../policy/config';
import { TcpVerdict } from '../policy/tcp-evidence';
import { UplinkChange, UplinkSelector } from '../policy/uplinks';
import type { DaemonConfig } from './config';
import { TcpEvidence, TcpEvidenceStatus } from './tcp-evidence';
import type { Logger } from './logger';

/** A switch of uplink, as the library reports it. */
export interface PathChangedEvent extends UplinkChange {
  /** Sockets destroyed because their source address cannot be used on the new path. */
  destroyed: number;
}

/** A source address whose connections lost their path (one event per address). */
export interface PathLostEvent {
  address: string;
  iface: string;
  /** Its connections destroyed (their owners see ECONNABORTED). */
  destroyed: number;
  atMs: number;
}

/** A change of one source of an uplink's health: its probes, or the TCP evidence. */
export interface UplinkHealthEvent {
  uplink: string;
  source: 'probes' | 'tcp';
  healthy: boolean;
  atMs: number;
  /** For `tcp`: what the poll that changed the verdict showed. */
  tcp?: TcpVerdict;
}

/** Events of {@link UplinkFailover}. */
export interface UplinkFailoverEvents {
  'path-changed': [PathChangedEvent];
  'path-lost': [PathLostEvent];
  'uplink-health': [UplinkHealthEvent];
}

/** TCP states of connections that wait on their path. */
const CONNECTION_STATES = ['established', 'syn-sent', 'syn-recv', 'fin-wait-1', 'fin-wait-2', 'close-wait', 'last-ack', 'closing'] as const;

/** Keeps netheal's default route on the best healthy uplink. */
export class UplinkFailover extends EventEmitter<UplinkFailoverEvents> {
  private readonly prober: Prober;
  private readonly route: UplinkRoute;
  private readonly sockets: Sockets;
  private readonly selector: UplinkSelector;
  private readonly names: string[];
  private readonly uplinks: NonNullable<DaemonConfig['uplinks']>;
  /** Passive TCP evidence per uplink, when enabled. */
  private readonly tcp: TcpEvidence | undefined;
  /** Health per uplink from each source: the selector hears "probes answer and TCP is not stalled". */
  private readonly probesUp = new Map<string, boolean>();
  private readonly tcpDead = new Map<string, boolean>();
  /** Route changes in order: a switch never overtakes the one before it. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: {
    config: DaemonConfig;
    netnsPath?: string;
    binding?: NativeBinding;
    logger: Logger;
    clock?: Clock;
    /** IPv4 addresses on an interface now, with their prefix lengths. */
    addressesOf(iface: string): { address: string; prefixlen: number }[];
    /** An interface's index now, null when it is gone. */
    ifindexOf(iface: string): number | null;
    /** The uplink in use before (a reload): begin there, not on a primary that may be dead. */
    initial?: string;
  }) {
    super();
    const { config } = options;
    this.uplinks = config.uplinks ?? [];
    this.names = this.uplinks.map((u) => `${u.iface}/${u.gateway}`);
    this.route = new UplinkRoute({ netnsPath: options.netnsPath, binding: options.binding, metric: config.failover.metric });
    this.sockets = new Sockets({ netns: options.netnsPath, binding: options.binding });
    this.prober = new Prober({ netns: options.netnsPath, binding: options.binding });
    const f = config.failover;
    this.uplinks.forEach((u, i) => {
      const group = this.names[i]!;
      const targets = (u.targets ?? [u.gateway]).map((target) => this.prober.add(target, {
        name: `uplink:${group}:${target}`, device: u.iface, interval: f.intervalMs, timeout: f.timeoutMs ?? f.intervalMs,
        multiplier: f.multiplier, recovery: f.recovery,
      }));
      this.prober.addGroup(`uplink:${group}`, { targets, quorum: 1 });
    });
    this.prober.on('group-down', (e: GroupStateEvent) => this.onGroup(e, false));
    this.prober.on('group-up', (e: GroupStateEvent) => this.onGroup(e, true));
    this.prober.on('error', (error: Error) => options.logger.warning(`uplink probes: ${error.message}`));
    this.selector = new UplinkSelector(this.names, {
      holdUpMs: f.holdUpMs, damping: { ...DEFAULT_DAMPING }, clock: options.clock ?? systemClock,
      onChange: (change) => this.enqueue(change),
    }, options.initial);
    if (f.tcpEvidence.enabled) {
      this.tcp = new TcpEvidence({
        settings: f.tcpEvidence, uplinks: this.uplinks.map((u, i) => ({ name: this.names[i]!, iface: u.iface })),
        netnsPath: options.netnsPath, binding: options.binding, logger: options.logger,
        addressesOf: (iface) => options.addressesOf(iface), inUse: () => this.selector.inUse,
        onVerdict: (name, dead, verdict) => {
          if (this.closed) return;
          options.logger.info(`uplink ${name}: TCP evidence: ${dead
            ? `path dead (nothing received for ${Math.round(verdict.stalledForMs ?? 0)} ms over ${verdict.sockets} connections, retransmissions rising)`
            : 'path delivers again, or nothing left to judge by'}`, { uplink: name, tcpDead: dead });
          this.tcpDead.set(name, dead);
          this.emit('uplink-health', { uplink: name, source: 'tcp', healthy: !dead, atMs: performance.now(), tcp: verdict });
          this.updateHealth(name);
        },
      });
    }
  }

  /** The TCP evidence per uplink (absent when disabled). */
  tcpEvidence(): Record<string, TcpEvidenceStatus> | undefined {
    return this.tcp?.status();
  }

  /** The uplink in use (`iface/gateway`). */
  get inUse(): string {
    return this.selector.inUse;
  }

  /**
   * Puts netheal's route back through the uplink in use (a default route was lost: perhaps
   * ours, removed by a manager that clears foreign routes). Replacing it when it is there
   * changes nothing.
   */
  reassert(): void {
    if (this.closed) return;
    const to = this.uplinkNamed(this.selector.inUse);
    this.queue = this.queue.then(() => (this.closed ? undefined : this.route.set({ iface: to.iface, gateway: to.gateway }))).catch((error: unknown) => {
      this.options.logger.warning(`uplink: could not put the default route back through ${this.selector.inUse}: ${(error as Error).message}`);
    });
  }

  /** Waits until the route changes asked for so far are made. */
  settled(): Promise<void> {
    return this.queue;
  }

  /**
   * Stops probing and removes netheal's route (the managers' default routes take over), or
   * with `keepRoute` leaves it for the next instance (a reload must not drop traffic back
   * onto a primary that may be dead).
   */
  async close(options: { keepRoute?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.selector.close();
    this.prober.close();
    this.tcp?.close();
    await this.queue;
    if (!options.keepRoute) await this.route.remove();
    this.route.close();
    this.sockets.close();
  }

  /** The configured uplink of a selector name (`iface/gateway`). */
  private uplinkNamed(name: string): NonNullable<DaemonConfig['uplinks']>[number] {
    return this.uplinks[this.names.indexOf(name)]!;
  }

  private onGroup(event: GroupStateEvent, up: boolean): void {
    if (this.closed) return;
    const name = event.group.replace(/^uplink:/, '');
    this.options.logger.info(`uplink ${name} ${up ? 'healthy' : 'down'} (${event.up} of ${event.targets.length} targets answer)`, { uplink: name, healthy: up });
    this.probesUp.set(name, up);
    this.emit('uplink-health', { uplink: name, source: 'probes', healthy: up, atMs: performance.now() });
    this.updateHealth(name);
  }

  /** One verdict from both sources: the probes answer and TCP shows no stall. */
  private updateHealth(name: string): void {
    this.selector.setHealth(name, (this.probesUp.get(name) ?? true) && !(this.tcpDead.get(name) ?? false));
  }

  private enqueue(change: UplinkChange): void {
    this.queue = this.queue.then(() => this.apply(change)).catch((error: unknown) => {
      this.options.logger.error(`uplink: could not move the default route to ${change.to}: ${(error as Error).message}`, { uplink: change.to });
    });
  }

  private async apply(change: UplinkChange): Promise<void> {
    if (this.closed) return;
    const to = this.uplinkNamed(change.to);
    await this.route.set({ iface: to.iface, gateway: to.gateway });
    const from = change.from === null ? undefined : this.uplinkNamed(change.from);
    let destroyed = 0;
    if (from !== undefined && from.iface !== to.iface) {
      // The addresses of the uplink left behind cannot be used through the new one; their
      // connections to on-link peers of that uplink never used the default route: spared.
      const old = this.options.addressesOf(from.iface);
      const fromIfindex = this.options.ifindexOf(from.iface);
      const keep = new Set(this.options.addressesOf(to.iface).map((a) => a.address));
      const onLink = new BlockList();
      for (const a of old) onLink.addSubnet(a.address, a.prefixlen, 'ipv4');
      for (const { address } of old.filter((a) => !keep.has(a.address))) {
        const found: SocketInfo[] = await this.sockets.query({ src: address, protocol: 'tcp', state: [...CONNECTION_STATES] });
        // Bound to a device (SO_BINDTODEVICE): it keeps its own way out whatever the default
        // route says, and is stuck only if that is the uplink that failed.
        const stuck = found.filter((socket) => !onLink.check(socket.dst, 'ipv4')
          && (socket.boundIfindex === null || (change.reason === 'failover' && socket.boundIfindex === fromIfindex)));
        const result = stuck.length === 0 ? { destroyed: 0 } : await this.sockets.destroySockets(stuck);
        destroyed += result.destroyed;
        this.emit('path-lost', { address, iface: from.iface, destroyed: result.destroyed, atMs: performance.now() });
      }
    }
    const event: PathChangedEvent = { ...change, destroyed };
    this.options.logger.notice(`uplink: ${change.reason}: default route ${change.from === null ? 'set' : `moved from ${change.from}`} to ${change.to}${destroyed ? `; ${destroyed} connections from the old uplink's addresses destroyed` : ''}`, {
      uplink: change.to, from: change.from ?? undefined, reason: change.reason, destroyed,
    });
    this.emit('path-changed', event);
  }
}
