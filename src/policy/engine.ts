/**
 * The policy engine: health state per watched interface and probe group, and the recovery
 * ladder with its manners (backoff, damping, budget, grace, verification). It decides and
 * calls injected executors; it never touches the kernel, and its only time source is the
 * injected {@link Clock}.
 */
import { EventEmitter } from 'node:events';
import { NethealError } from '../errors';
import type { ActionExecutor, Verifier } from './actions';
import { Backoff } from './backoff';
import { ActionBudget } from './budget';
import { Clock, RandomSource, systemClock } from './clock';
import { DEFAULT_GRACE_MS, InterfacePolicyConfig, PolicyConfig, resolveInterfacePolicy, validatePolicyConfig } from './config';
import { FlapDamper } from './damping';
import type {
  AlertReason, GroupStatus, HealthCause, InterfaceSafetyState, InterfaceStatus, PolicyEngineEvents, PolicyEngineOptions,
  PolicySnapshot, SafetyState,
} from './engine-events';
import { EpisodeRunner } from './episode';
import { Evidence, evidenceProblem } from './evidence';
import { Fault, PATH_FAULTS } from './fault';
import type { Intent } from './intent';
import { GroupEvidence, HealthState, InterfaceEvidence, Problems, judge } from './health';
import { GroupRecord, IfaceRecord, reasonsOf } from './record';

export * from './engine-events';

/**
 * Health state machine and recovery ladder for a set of interfaces.
 *
 * Feed it evidence with {@link PolicyEngine.observe}; it emits `health`, `action`, `verify`
 * and `alert` events and calls the registered executors. States per interface:
 * `healthy` -> `suspect` (soft evidence: a lost probe, a target down, stuck sockets) ->
 * `down` (evidence of a kind in `downOn`: carrier, address, default route, group quorum)
 * -> `recovering` (a step runs or is being verified) -> `healthy` when verified.
 *
 * When an interface goes down the engine climbs its ladder: each step runs (within its time
 * limit), then is verified within `verifyTimeoutMs`; a verified step ends the climb, an
 * unverified or failed one hands over to the next rung at once. A climb that reaches the top
 * alerts `ladder-exhausted`, and the next climb waits a backoff delay (full jitter; the
 * first climb after a reset goes at once). Before each climb: no action during the start-up
 * grace period (from construction), none while flap damping suppresses. A flap is every
 * entry of the evidence verdict into `down`, also while the ladder is busy, except while a
 * disruptive action (link bounce, manager re-apply) runs. Before each step: a suppression
 * that began during the climb stops it (back to `down`, wait for reuse, climb afresh); a
 * spent budget makes the engine alert and resume at the same rung when the window frees a
 * slot. Evidence that clears the `down` verdict while the engine waits ends the episode.
 *
 * Administratively down or removed interfaces are `down` but never acted on (alert
 * `admin-down`). In dry-run mode everything is decided, counted and reported the same way
 * (`action` events with `dryRun: true` and status `dry-run`), but no executor's `run()` is
 * called; verification then waits for evidence as usual.
 */
export class PolicyEngine extends EventEmitter<PolicyEngineEvents> {
  /** True when nothing is ever run. */
  readonly dryRun: boolean;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly config: PolicyConfig;
  private readonly verifier: Verifier | undefined;
  private readonly keepActions: number;
  private readonly graceEnd: number;
  private readonly executors = new Map<string, ActionExecutor>();
  private readonly ifaces = new Map<string, IfaceRecord>();
  private readonly groups = new Map<string, GroupRecord>();
  private closed = false;
  /** Safety state of an earlier engine, taken over by each interface when first watched. */
  private readonly carried: PolicyEngineOptions['carried'];
  /** Runs the ladders; acts on this engine only through the host it is given. */
  private readonly episodes: EpisodeRunner;

  /** Starts the grace period now (on the injected clock) and watches the configured interfaces. */
  constructor(options: PolicyEngineOptions = {}) {
    super();
    validatePolicyConfig(options.config);
    this.config = options.config ?? {};
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.verifier = options.verifier;
    this.dryRun = options.dryRun === true;
    this.keepActions = options.keepActions ?? 10;
    if (!Number.isInteger(this.keepActions) || this.keepActions < 0) {
      throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `keepActions: must be an integer >= 0 (got ${options.keepActions})`);
    }
    this.graceEnd = this.clock.now() + (this.config.graceMs ?? DEFAULT_GRACE_MS);
    this.carried = options.carried;
    const engine = this;
    this.episodes = new EpisodeRunner({
      clock: this.clock, dryRun: this.dryRun, verifier: this.verifier, graceEnd: this.graceEnd, keepActions: this.keepActions,
      get closed() { return engine.closed; },
      executor: (kind) => this.executors.get(kind),
      isCurrent: (rec) => !this.closed && this.ifaces.get(rec.name) === rec,
      locate: (rec) => this.locate(rec),
      setState: (rec, to, cause, evidence) => this.setState(rec, to, cause, evidence),
      alert: (rec, reason, detail, untilMs, once) => this.alert(rec, reason, detail, untilMs, once),
      recovered: (rec, fault, action) => this.recovered(rec, fault, action),
      parkKey: (rec) => this.parkKey(rec),
      // (EventEmitter's typed emit cannot be forwarded generically; the runner's calls are typed.)
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
    });
    for (const executor of options.actions ?? []) this.register(executor);
    for (const name of Object.keys(this.config.interfaces ?? {})) this.watch(name);
    for (const name of options.interfaces ?? []) if (!this.ifaces.has(name)) this.watch(name);
  }

  /**
   * Registers an executor under its `kind` (replacing one of the same kind). Ladder steps
   * name executors; an embedder can add its own (e.g. `drain-pool`) and put it in a ladder.
   */
  register(executor: ActionExecutor): this {
    if (typeof executor?.kind !== 'string' || executor.kind === '' || typeof executor.run !== 'function') {
      throw new NethealError('NETHEAL_ERR_INVALID_OPTION', 'actions: an executor needs a non-empty string kind and a run() function');
    }
    this.executors.set(executor.kind, executor);
    return this;
  }

  /** Removes the executor of that kind; steps naming it then fail with `unknown-action`. */
  unregister(kind: string): boolean {
    return this.executors.delete(kind);
  }

  /**
   * Starts watching an interface (state `healthy` until evidence says otherwise), with the
   * config's policy for it plus `overrides`. Watching an already watched interface replaces
   * its policy (e.g. on a config reload) but keeps its evidence, state and history; backoff,
   * damping or budget counters start afresh only if their settings changed. A running
   * climb finishes with the ladder it started with.
   */
  watch(iface: string, overrides?: InterfacePolicyConfig): this {
    this.assertOpen();
    if (typeof iface !== 'string' || iface === '') {
      throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `iface: must be a non-empty string (got ${JSON.stringify(iface)})`);
    }
    const policy = resolveInterfacePolicy(this.config, iface, overrides);
    const existing = this.ifaces.get(iface);
    if (existing) {
      const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
      if (!same(existing.policy.backoff, policy.backoff)) existing.backoff = new Backoff(policy.backoff, this.random);
      if (!same(existing.policy.damping, policy.damping)) existing.damper = new FlapDamper(policy.damping);
      if (!same(existing.policy.budget, policy.budget)) existing.budget = new ActionBudget(policy.budget);
      existing.policy = policy;
      return this;
    }
    const now = this.clock.now();
    const rec: IfaceRecord = {
      name: iface, policy, evidence: new InterfaceEvidence(), state: 'healthy', since: now, reasons: [],
      verdict: 'healthy', disrupting: false, fault: null, faultSince: now, settleUntil: 0, hold: false, flapPending: false, parkKey: null, waitStopped: false,
      ranOnce: new Set(), verifiableRuns: 0, episodeSince: now, episodeFault: null,
      backoff: new Backoff(policy.backoff, this.random), damper: new FlapDamper(policy.damping),
      budget: new ActionBudget(policy.budget), generation: 0, episodeActive: false, phase: 'idle', step: null,
      waitingFor: null, waitUntil: null, waitTimer: null, waitResolve: null, verifyResolve: null, abort: null,
      stableTimer: null, alerted: new Set(), totalActions: 0, lastActions: [],
    };
    this.ifaces.set(iface, rec);
    const carried = this.carried?.safety.interfaces[iface];
    if (carried !== undefined) this.restoreCounters(rec, carried, this.carried!.elapsedMs);
    this.armStability(rec);
    return this;
  }

  /** Stops watching an interface: cancels its waits, aborts a running action. */
  unwatch(iface: string): boolean {
    const rec = this.ifaces.get(iface);
    if (!rec) return false;
    this.episodes.cancel(rec);
    this.clearStability(rec);
    this.ifaces.delete(iface);
    return true;
  }

  /** Names of the watched interfaces. */
  get interfaces(): string[] {
    return [...this.ifaces.keys()];
  }

  /** The current state of a watched interface, or undefined. */
  stateOf(iface: string): HealthState | undefined {
    return this.ifaces.get(iface)?.state;
  }

  /** Where the current fault of a watched interface is (null when none), or undefined. */
  faultOf(iface: string): Fault | null | undefined {
    const rec = this.ifaces.get(iface);
    if (rec === undefined) return undefined;
    return rec.fault === null ? null : { class: rec.fault.class, because: [...rec.fault.because] };
  }

  /** The owner's intent for a watched interface as last reported (null until known), or undefined. */
  intentOf(iface: string): Intent | null | undefined {
    const rec = this.ifaces.get(iface);
    if (rec === undefined) return undefined;
    return rec.evidence.intent === null ? null : { ...rec.evidence.intent };
  }

  /** The current state of a probe group seen in evidence, or undefined. */
  groupStateOf(group: string): HealthState | undefined {
    return this.groups.get(group)?.state;
  }

  /**
   * Feeds one piece of evidence. Evidence about interfaces that are not watched is ignored
   * (probe groups are tracked whenever seen). Throws NETHEAL_ERR_INVALID_OPTION on malformed
   * evidence and NETHEAL_ERR_CLOSED after close().
   */
  observe(evidence: Evidence): void {
    this.assertOpen();
    const problem = evidenceProblem(evidence);
    if (problem !== null) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `observe: ${problem}`);
    const touched: IfaceRecord[] = [];
    const touch = (name: string | undefined | null): IfaceRecord | undefined => {
      if (name === undefined || name === null) return undefined;
      const rec = this.ifaces.get(name);
      if (rec && !touched.includes(rec)) touched.push(rec);
      return rec;
    };
    switch (evidence.kind) {
      case 'carrier':
      case 'address':
      case 'sockets':
      case 'neighbour':
      case 'intent':
        touch(evidence.iface)?.evidence.apply(evidence);
        break;
      case 'default-route':
        if (evidence.present) {
          touch(evidence.iface)?.evidence.setDefaultRoute(evidence.family, true);
          for (const rec of this.ifaces.values()) {
            if (rec.name !== evidence.iface && rec.evidence.getDefaultRoute(evidence.family) === false) {
              touch(rec.name)?.evidence.setDefaultRoute(evidence.family, null);
            }
          }
        } else if (evidence.iface !== null) {
          touch(evidence.iface)?.evidence.setDefaultRoute(evidence.family, false, evidence.linkdown === true);
        } else {
          for (const rec of this.ifaces.values()) {
            if (rec.evidence.getDefaultRoute(evidence.family) === true) {
              touch(rec.name)?.evidence.setDefaultRoute(evidence.family, false);
            }
          }
        }
        break;
      case 'probe-group':
      case 'probe': {
        const groupName = evidence.kind === 'probe-group' ? evidence.group : evidence.group;
        let group: GroupRecord | undefined;
        if (groupName !== undefined) {
          group = this.groups.get(groupName);
          if (!group) {
            group = { name: groupName, evidence: new GroupEvidence(), state: 'healthy', since: this.clock.now(), reasons: [] };
            this.groups.set(groupName, group);
          }
          group.evidence.apply(evidence);
        }
        const ifaceName = evidence.iface ?? group?.evidence.iface ?? (groupName !== undefined ? this.config.groups?.[groupName]?.iface : undefined);
        touch(ifaceName)?.evidence.apply(evidence);
        if (group) this.judgeGroup(group, evidence);
        break;
      }
    }
    for (const rec of touched) this.reevaluate(rec, evidence);
  }

  /**
   * Puts an interface under the operator's maintenance hold (`held: true`) or releases it.
   * Under a hold the engine keeps judging and reporting, but never acts: a running episode
   * is cancelled (a running action is aborted). On release, a fault still present starts a
   * new episode. Returns false for an interface that is not watched.
   */
  hold(iface: string, held: boolean): boolean {
    this.assertOpen();
    const rec = this.ifaces.get(iface);
    if (!rec) return false;
    if (rec.hold === held) return true;
    rec.hold = held;
    if (held && rec.episodeActive) {
      this.episodes.cancel(rec);
      this.setState(rec, rec.verdict, 'not-verified', null);
    }
    if (held) this.alert(rec, 'held', `${rec.name} is held for maintenance: watching, never acting`, null, false);
    else rec.alerted.delete('held');
    this.reevaluate(rec, null);
    return true;
  }

  /** Whether an interface is under a maintenance hold. */
  isHeld(iface: string): boolean {
    return this.ifaces.get(iface)?.hold === true;
  }

  /** A JSON-safe picture of every interface and group, for the status socket and metrics. */
  snapshot(): PolicySnapshot {
    const now = this.clock.now();
    const interfaces: Record<string, InterfaceStatus> = {};
    for (const rec of this.ifaces.values()) {
      const nextFree = rec.budget.nextFreeAtMs(now);
      interfaces[rec.name] = {
        state: rec.state,
        sinceMs: rec.since,
        reasons: [...rec.reasons],
        fault: rec.fault === null ? null : { class: rec.fault.class, because: [...rec.fault.because] },
        hold: rec.hold,
        intent: rec.evidence.intent === null ? null : { ...rec.evidence.intent },
        evidence: rec.evidence.snapshot(),
        ladder: {
          phase: rec.phase,
          steps: rec.policy.ladder.map((s) => s.action),
          step: rec.step,
          action: rec.step === null ? null : rec.policy.ladder[rec.step - 1]?.action ?? null,
          waitingFor: rec.phase === 'waiting' ? rec.waitingFor : null,
          waitUntilMs: rec.phase === 'waiting' && rec.waitUntil !== null && Number.isFinite(rec.waitUntil) ? rec.waitUntil : null,
        },
        attempts: rec.backoff.attempts,
        totalActions: rec.totalActions,
        damping: {
          penalty: rec.damper.penaltyAt(now),
          flaps: rec.damper.flapCount,
          suppressed: rec.damper.isSuppressed(now),
          suppressedUntilMs: rec.damper.suppressedUntil(now),
        },
        budget: {
          remaining: rec.budget.remaining(now),
          maxActions: rec.policy.budget.maxActions,
          windowMs: rec.policy.budget.windowMs,
          nextFreeAtMs: nextFree !== null && Number.isFinite(nextFree) ? nextFree : null,
        },
        lastActions: rec.lastActions.map((a) => ({ ...a, result: { ...a.result } })),
      };
    }
    const groups: Record<string, GroupStatus> = {};
    for (const g of this.groups.values()) {
      groups[g.name] = { state: g.state, sinceMs: g.since, reasons: [...g.reasons], evidence: g.evidence.snapshot() };
    }
    return { atMs: now, dryRun: this.dryRun, graceEndsAtMs: this.graceEnd, inGrace: now < this.graceEnd, interfaces, groups };
  }

  /**
   * The safety state of every watched interface (budget spent, damping, backoff, action
   * count, baseline addresses), to carry over to the next engine (its `carried` option and
   * {@link PolicyEngine.restoreBaselines}): over a reload, or on disk over a restart.
   */
  exportSafety(): SafetyState {
    const now = this.clock.now();
    const interfaces: Record<string, InterfaceSafetyState> = {};
    for (const rec of this.ifaces.values()) {
      const damping = rec.damper.exportState();
      interfaces[rec.name] = {
        budgetSpentAgoMs: rec.budget.spent(now).map((t) => now - t),
        damping: {
          penalty: damping.penalty,
          updatedAgoMs: now - damping.updatedAtMs,
          suppressedForMs: damping.suppressedUntilMs === null || damping.suppressedUntilMs <= now ? null : damping.suppressedUntilMs - now,
          flaps: damping.flaps,
        },
        backoffAttempts: rec.backoff.attempts,
        totalActions: rec.totalActions,
        baselineAddresses: rec.evidence.baselineAddresses(),
      };
    }
    return { interfaces };
  }

  /**
   * Takes over the baseline addresses an earlier engine exported (see
   * {@link PolicyEngineOptions.carried} for the rest of its safety state): call it once the
   * evidence of the present is seeded. Baseline addresses missing now are a fault (unless
   * their family was renumbered meanwhile), the one that was there before: not a new flap.
   */
  restoreBaselines(state: SafetyState): void {
    this.assertOpen();
    for (const [name, carried] of Object.entries(state.interfaces ?? {})) {
      const rec = this.ifaces.get(name);
      if (rec === undefined) continue;
      rec.evidence.restoreBaseline(carried.baselineAddresses);
      if (judge(this.problems(rec)) === 'down') rec.verdict = 'down';
      this.reevaluate(rec, null);
    }
  }

  /** Takes over budget spent, damping, backoff and action count, `elapsedMs` after their export. */
  private restoreCounters(rec: IfaceRecord, carried: InterfaceSafetyState, elapsedMs: number): void {
    const now = this.clock.now();
    const shift = Math.max(0, elapsedMs);
    rec.budget.restore(carried.budgetSpentAgoMs.map((age) => now - age - shift));
    const d = carried.damping;
    rec.damper.restoreState({
      penalty: d.penalty,
      updatedAtMs: now - d.updatedAgoMs - shift,
      suppressedUntilMs: d.suppressedForMs === null ? null : now + d.suppressedForMs - shift,
      flaps: d.flaps,
    }, now);
    rec.backoff.restore(carried.backoffAttempts);
    rec.totalActions = Math.max(rec.totalActions, carried.totalActions);
  }

  /**
   * Stops deciding: cancels every wait and timer and aborts running actions (their signal
   * fires). Idempotent. observe()/watch() throw NETHEAL_ERR_CLOSED afterwards.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const rec of this.ifaces.values()) {
      this.episodes.cancel(rec);
      this.clearStability(rec);
    }
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- state machine ------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', 'PolicyEngine: used after close()');
  }

  private problems(rec: IfaceRecord): Problems {
    return rec.evidence.problems(rec.policy.downOn, rec.policy.requiredAddresses);
  }

  private judgeGroup(group: GroupRecord, evidence: Evidence): void {
    const problems = group.evidence.problems();
    group.reasons = reasonsOf(problems);
    const to = judge(problems);
    if (to === group.state) return;
    const from = group.state;
    group.state = to;
    group.since = this.clock.now();
    this.emit('health', {
      subject: 'group', group: group.name, from, to, evidence, reasons: [...group.reasons], cause: 'evidence',
      atMs: group.since,
    });
  }

  private setState(rec: IfaceRecord, to: HealthState, cause: HealthCause, evidence: Evidence | null): void {
    if (rec.state === to) return;
    const from = rec.state;
    rec.state = to;
    rec.since = this.clock.now();
    if (to === 'healthy') this.armStability(rec);
    else this.clearStability(rec);
    if (to === 'healthy' || to === 'suspect') rec.alerted.clear();
    this.emit('health', {
      subject: 'interface', iface: rec.name, from, to, evidence, reasons: [...rec.reasons], cause, atMs: rec.since,
    });
  }

  /** Judges the evidence and locates the fault; updates the baseline and the settle window. */
  private locate(rec: IfaceRecord): { judged: Exclude<HealthState, 'recovering'>; fault: Fault | null } {
    const problems = this.problems(rec);
    rec.reasons = reasonsOf(problems);
    const judged = judge(problems);
    const fault = rec.evidence.fault(problems);
    const now = this.clock.now();
    if (fault?.class !== rec.fault?.class) {
      // A link fault that clears leaves the gateway's neighbour entry to be re-learnt: the
      // probes it costs belong to the same incident.
      if (rec.fault?.class === 'link' && fault?.class !== 'link') rec.settleUntil = now + rec.policy.settleMs;
      rec.faultSince = now;
    }
    rec.fault = fault;
    // While nothing calls for `down`, every global address present belongs to the baseline.
    if (judged !== 'down') rec.evidence.takeBaseline();
    return { judged, fault };
  }

  private reevaluate(rec: IfaceRecord, evidence: Evidence | null): void {
    const before = rec.fault;
    const { judged, fault } = this.locate(rec);
    // A flap is every entry of the evidence into `down`, also while the ladder is busy (a
    // storm during recovery must be damped), except while a disruptive action runs (a link
    // bounce takes the link down itself) and for path faults inside the settle window of a
    // link incident (one blip, one flap).
    const settling = fault !== null && PATH_FAULTS.includes(fault.class) && this.clock.now() < rec.settleUntil;
    // While down for another fault (a probe group still dead after the last carrier blip), a
    // link fault that begins is a flap too: a carrier storm must be damped however the
    // probes fare.
    const linkAgain = judged === 'down' && rec.verdict === 'down' && fault?.class === 'link' && before !== null && before.class !== 'link';
    if (judged === 'down' && (rec.verdict !== 'down' || linkAgain) && !(rec.phase === 'running' && rec.disrupting) && !settling) {
      // An admin-down is a flap only if its owner did not want it: decided once the intent is known.
      if (rec.evidence.intentPending) rec.flapPending = true;
      else if (!rec.evidence.disabled) rec.damper.flap(this.clock.now());
    } else if (rec.flapPending && !rec.evidence.intentPending) {
      rec.flapPending = false;
      if (judged === 'down' && !rec.evidence.disabled) rec.damper.flap(this.clock.now());
    }
    if (judged !== 'down') rec.flapPending = false;
    rec.verdict = judged;
    if (rec.phase === 'running' || rec.phase === 'verifying') {
      // The ladder owns the state while a step is in flight; evidence may verify it.
      if (rec.phase === 'verifying') rec.verifyResolve?.();
      return;
    }
    if (rec.phase === 'waiting' && judged === 'down') {
      // A parked episode wakes when what it waits on changes; any wait ends early when the
      // interface becomes one not to act on (removed, down as its owner wants, held, intent
      // unknown), so that the episode says so at once instead of after its timer.
      const stop = rec.evidence.disabled || rec.hold || rec.evidence.intentPending;
      if ((rec.parkKey !== null && this.parkKey(rec) !== rec.parkKey) || (stop && !rec.waitStopped)) this.episodes.wake(rec);
    }
    if (judged === rec.state) {
      if (judged === 'down' && !rec.episodeActive) this.episodes.startEpisode(rec);
      return;
    }
    if (judged !== 'down' && rec.episodeActive) {
      // The class the episode was working on (a last transient class, such as the gateway
      // answering a moment before the group recovers, says less about what happened).
      const cleared = rec.episodeFault ?? before;
      this.episodes.cancel(rec);
      this.setState(rec, judged, 'evidence', evidence);
      this.recovered(rec, cleared ?? rec.episodeFault, null);
      return;
    }
    this.setState(rec, judged, 'evidence', evidence);
    if (judged === 'down' && !rec.episodeActive) this.episodes.startEpisode(rec);
  }

  /** What a parked episode waits to change. */
  private parkKey(rec: IfaceRecord): string {
    return `${rec.fault?.class ?? '-'}|${rec.evidence.disabled}|${rec.evidence.intentPending}|${rec.hold}`;
  }

  /** Reports the end of an episode's fault; `action` is the credited step, null if none. */
  private recovered(rec: IfaceRecord, fault: Fault | null, action: string | null): void {
    this.emit('recovered', {
      iface: rec.name, fault: fault?.class ?? null, by: action === null ? 'without-action' : 'action', action,
      sinceMs: rec.episodeSince, atMs: this.clock.now(),
    });
  }

  private armStability(rec: IfaceRecord): void {
    this.clearStability(rec);
    if (this.closed) return;
    rec.stableTimer = this.clock.setTimeout(() => {
      rec.stableTimer = null;
      if (rec.state === 'healthy') rec.backoff.reset();
    }, rec.policy.backoff.resetAfterMs);
  }

  private clearStability(rec: IfaceRecord): void {
    if (rec.stableTimer !== null) {
      this.clock.clearTimeout(rec.stableTimer);
      rec.stableTimer = null;
    }
  }

  // ---- the ladder ---------------------------------------------------------------------

  private alert(rec: IfaceRecord, reason: AlertReason, detail: string, untilMs: number | null, once = true): void {
    if (once && rec.alerted.has(reason)) return;
    rec.alerted.add(reason);
    this.emit('alert', {
      iface: rec.name, reason, detail, untilMs: untilMs !== null && Number.isFinite(untilMs) ? untilMs : null,
      atMs: this.clock.now(),
    });
  }

}
