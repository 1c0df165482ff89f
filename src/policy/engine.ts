/**
 * The policy engine: health state per watched interface and probe group, and the recovery
 * ladder with its manners (backoff, damping, budget, grace, verification). It decides and
 * calls injected executors; it never touches the kernel, and its only time source is the
 * injected {@link Clock}.
 */
import { EventEmitter } from 'node:events';
import { NethealError } from '../errors';
import type { ActionContext, ActionExecutor, StepResult, Verifier, VerifyContext } from './actions';
import { Backoff } from './backoff';
import { ActionBudget } from './budget';
import { Clock, RandomSource, TimerHandle, systemClock } from './clock';
import {
  BUILTIN_ACTIONS, DEFAULT_GRACE_MS, InterfacePolicy, InterfacePolicyConfig, LadderStep, PolicyConfig, resolveInterfacePolicy,
  validatePolicyConfig,
} from './config';
import { FlapDamper } from './damping';
import { Evidence, evidenceProblem } from './evidence';
import { FAULT_CLASSES, Fault, FaultClass, PATH_FAULTS } from './fault';
import type { Intent } from './intent';
import {
  GroupEvidence, GroupEvidenceSnapshot, HealthState, InterfaceEvidence, InterfaceEvidenceSnapshot, Problems, judge,
} from './health';

/** Why a health state changed. */
export type HealthCause =
  /** New evidence arrived. */
  | 'evidence'
  /** The engine started a ladder step (`down` -> `recovering`). */
  | 'action'
  /** A step was verified (`recovering` -> `healthy`/`suspect`). */
  | 'verified'
  /** The ladder stopped without verification (exhausted, or waiting for budget). */
  | 'not-verified';

/** Emitted as `health` whenever an interface's or group's state changes. */
export interface HealthEvent {
  /** Whether this is about an interface (`iface` set) or a probe group (`group` set). */
  subject: 'interface' | 'group';
  iface?: string;
  group?: string;
  from: HealthState;
  to: HealthState;
  /** The evidence that moved it, or null when the engine moved it (`cause` says how). */
  evidence: Evidence | null;
  /** All bad evidence after the change (empty when healthy). */
  reasons: string[];
  cause: HealthCause;
  /** Clock time (ms). */
  atMs: number;
}

/** Emitted as `action` when a ladder step has run (or, dry, would have run, or was skipped). */
export interface ActionEvent {
  iface: string;
  /** Rung number, 1-based. */
  step: number;
  /** The action name. */
  kind: string;
  /** Climb number since the last backoff reset, 1-based. */
  attempt: number;
  dryRun: boolean;
  result: StepResult;
  /** Clock time (ms) the step started. */
  startedAtMs: number;
  durationMs: number;
}

/** Emitted as `verify` when a step's verification ends. */
export interface VerifyEvent {
  iface: string;
  step: number;
  kind: string;
  attempt: number;
  verified: boolean;
  /** What decided: evidence, the injected verifier, or the window passing. */
  by: 'evidence' | 'verifier' | 'timeout';
  /**
   * True when the step is credited with a recovery: the evidence of the fault class it was
   * run for recovered after it ran. A step that cannot change the evidence is never credited.
   */
  credited: boolean;
  /** The fault class the step was run for. */
  fault: FaultClass;
  detail?: string;
  /** Clock time (ms) verification began, and how long it took. */
  startedAtMs: number;
  durationMs: number;
}

/**
 * Emitted as `recovered` when an episode's fault clears: `by: 'action'` when a step is
 * credited with it (the evidence it can change recovered after it ran), `by:
 * 'without-action'` when it cleared on its own or after the cause outside the host went away.
 */
export interface RecoveredEvent {
  iface: string;
  /** The class of the fault that cleared. */
  fault: FaultClass | null;
  by: 'action' | 'without-action';
  /** The credited step's action, when `by` is `action`. */
  action: string | null;
  /** Clock time (ms) the episode began, and when it recovered. */
  sinceMs: number;
  atMs: number;
}

/** Why the engine alerts. */
export type AlertReason =
  /** Down during the start-up grace period: no action until it ends (`untilMs`). */
  | 'grace-period'
  /** Flap damping suppresses actions until `untilMs`. */
  | 'suppressed'
  /** The action budget is spent until `untilMs` (null: never, maxActions 0). */
  | 'budget-exhausted'
  /** Every rung was tried and none verified; the next climb waits for backoff. */
  | 'ladder-exhausted'
  /** The interface is removed, or administratively down as its owner wants: no action. */
  | 'admin-down'
  /** Admin-down, and the owner's intent is not known yet: no action until it is. */
  | 'intent-pending'
  /** The operator holds the interface for maintenance: watch and report, never act. */
  | 'held'
  /** No step of the ladder can fix this class of fault (beyond the first hop, by default): alert only. */
  | 'cannot-fix'
  /** The interface's ladder is empty. */
  | 'no-ladder'
  /** A step names an action no executor is registered for (treated as failed). */
  | 'unknown-action'
  /** An executor threw or returned something that is not an ActionResult (treated as failed). */
  | 'action-error';

/** Emitted as `alert`: something an operator should know, usually a refusal to act. */
export interface AlertEvent {
  iface: string;
  reason: AlertReason;
  /** One line for logs. */
  detail: string;
  /** When the condition ends, if known (clock ms); null if never or unknown. */
  untilMs: number | null;
  atMs: number;
}

/** Typed events of a {@link PolicyEngine}. */
export interface PolicyEngineEvents {
  health: [HealthEvent];
  action: [ActionEvent];
  verify: [VerifyEvent];
  alert: [AlertEvent];
  recovered: [RecoveredEvent];
  /** An internal bug (never an executor's failure, which is an `action` result). */
  error: [Error];
}

/** Options of {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  /** The `policy` section of the config; its `interfaces` are watched from the start. */
  config?: PolicyConfig;
  /** More interfaces to watch with the default policy (plus `config.defaults`). */
  interfaces?: string[];
  /** Time source (default {@link systemClock}). */
  clock?: Clock;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: RandomSource;
  /** Executors to register (more with {@link PolicyEngine.register}). */
  actions?: ActionExecutor[];
  /** Verifier; without one, steps are verified by evidence. */
  verifier?: Verifier;
  /** Decide and report, run nothing (`--dry-run`). */
  dryRun?: boolean;
  /** How many recent actions per interface `snapshot()` keeps (default 10). */
  keepActions?: number;
}

/** The ladder's activity on an interface. */
export type LadderPhase = 'idle' | 'waiting' | 'running' | 'verifying';

/**
 * What a waiting ladder waits for. The last four park the episode until the evidence
 * changes: the owner's intent, the end of a hold, a fault some step can fix.
 */
export type WaitReason = 'grace-period' | 'suppressed' | 'backoff' | 'budget-exhausted' | 'hold-down' | 'settling'
  | 'intent' | 'held' | 'admin-down' | 'alert-only';

const PARKED: readonly WaitReason[] = ['intent', 'held', 'admin-down', 'alert-only'];

/** One interface in {@link PolicySnapshot}. JSON-safe. */
export interface InterfaceStatus {
  state: HealthState;
  sinceMs: number;
  reasons: string[];
  /** Where the current fault is, null when none. */
  fault: Fault | null;
  /** The operator's maintenance hold: watched and reported, never acted on. */
  hold: boolean;
  /** The owner's intent (who owns the interface, whether it wants it up), null until known. */
  intent: Intent | null;
  evidence: InterfaceEvidenceSnapshot;
  ladder: {
    phase: LadderPhase;
    steps: string[];
    /** Rung being run/verified or waited at (1-based), else null. */
    step: number | null;
    action: string | null;
    waitingFor: WaitReason | null;
    /** When the wait ends (clock ms), null if not waiting or never. */
    waitUntilMs: number | null;
  };
  /** Climbs since the last backoff reset. */
  attempts: number;
  /** Actions run (or dry-run) since watching began; skipped and unknown steps do not count. */
  totalActions: number;
  damping: { penalty: number; flaps: number; suppressed: boolean; suppressedUntilMs: number | null };
  budget: { remaining: number; maxActions: number; windowMs: number; nextFreeAtMs: number | null };
  lastActions: ActionEvent[];
}

/** One probe group in {@link PolicySnapshot}. */
export interface GroupStatus {
  state: HealthState;
  sinceMs: number;
  reasons: string[];
  evidence: GroupEvidenceSnapshot;
}

/** What `snapshot()` returns, for the status socket and metrics. JSON-safe. */
export interface PolicySnapshot {
  atMs: number;
  dryRun: boolean;
  graceEndsAtMs: number;
  inGrace: boolean;
  interfaces: Record<string, InterfaceStatus>;
  groups: Record<string, GroupStatus>;
}

interface IfaceRecord {
  name: string;
  policy: InterfacePolicy;
  evidence: InterfaceEvidence;
  state: HealthState;
  since: number;
  reasons: string[];
  /** The last verdict of the evidence alone (flaps are counted on its entries into down). */
  verdict: Exclude<HealthState, 'recovering'>;
  /** A disruptive action (one that takes the link down itself) is running. */
  disrupting: boolean;
  backoff: Backoff;
  damper: FlapDamper;
  budget: ActionBudget;
  /** Where the hard evidence points now, and since when (clock ms) it has pointed there. */
  fault: Fault | null;
  faultSince: number;
  /** Path faults before this time (clock ms) belong to the link incident that just cleared. */
  settleUntil: number;
  /** The operator's maintenance hold. */
  hold: boolean;
  /** An admin-down entered `down` while its owner's intent was unknown: a flap if unwanted. */
  flapPending: boolean;
  /** What a parked episode last saw; a change wakes it. */
  parkKey: string | null;
  /** Whether the current wait began on an interface not to act on. */
  waitStopped: boolean;
  /** Steps run that can change the evidence (another climb is pointless without them). */
  verifiableRuns: number;
  /** Steps that cannot be verified, already run in this episode (they run once per episode). */
  ranOnce: Set<number>;
  /** Clock time the current episode began, and the fault it last worked on. */
  episodeSince: number;
  episodeFault: Fault | null;
  /** Bumped to cancel whatever episode is running. */
  generation: number;
  episodeActive: boolean;
  phase: LadderPhase;
  step: number | null;
  waitingFor: WaitReason | null;
  waitUntil: number | null;
  waitTimer: TimerHandle | null;
  waitResolve: ((ok: boolean) => void) | null;
  verifyResolve: (() => void) | null;
  abort: AbortController | null;
  stableTimer: TimerHandle | null;
  alerted: Set<AlertReason>;
  totalActions: number;
  lastActions: ActionEvent[];
}

interface GroupRecord {
  name: string;
  evidence: GroupEvidence;
  state: HealthState;
  since: number;
  reasons: string[];
}

type ClimbOutcome = 'verified' | 'exhausted' | 'interrupted' | 'resolved' | 'cancelled' | 'reclassified';

/** Built-in actions that take the link down themselves unless their executor says otherwise. */
const DISRUPTIVE_BY_DEFAULT: readonly string[] = [BUILTIN_ACTIONS.LINK_BOUNCE, BUILTIN_ACTIONS.MANAGER_REAPPLY];

function reasonsOf(p: Problems): string[] {
  return [...p.hard, ...p.soft];
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function validResult(r: unknown): r is StepResult {
  return typeof r === 'object' && r !== null
    && ['ok', 'failed', 'skipped'].includes((r as { status?: unknown }).status as string);
}

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
    this.armStability(rec);
    return this;
  }

  /** Stops watching an interface: cancels its waits, aborts a running action. */
  unwatch(iface: string): boolean {
    const rec = this.ifaces.get(iface);
    if (!rec) return false;
    this.cancel(rec);
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
          touch(evidence.iface)?.evidence.setDefaultRoute(evidence.family, false);
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
      this.cancel(rec);
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
   * Stops deciding: cancels every wait and timer and aborts running actions (their signal
   * fires). Idempotent. observe()/watch() throw NETHEAL_ERR_CLOSED afterwards.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const rec of this.ifaces.values()) {
      this.cancel(rec);
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
    if (judged === 'down' && rec.verdict !== 'down' && !(rec.phase === 'running' && rec.disrupting) && !settling) {
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
      if ((rec.parkKey !== null && this.parkKey(rec) !== rec.parkKey) || (stop && !rec.waitStopped)) this.wake(rec);
    }
    if (judged === rec.state) {
      if (judged === 'down' && !rec.episodeActive) this.startEpisode(rec);
      return;
    }
    if (judged !== 'down' && rec.episodeActive) {
      // The class the episode was working on (a last transient class, such as the gateway
      // answering a moment before the group recovers, says less about what happened).
      const cleared = rec.episodeFault ?? before;
      this.cancel(rec);
      this.setState(rec, judged, 'evidence', evidence);
      this.recovered(rec, cleared ?? rec.episodeFault, null);
      return;
    }
    this.setState(rec, judged, 'evidence', evidence);
    if (judged === 'down' && !rec.episodeActive) this.startEpisode(rec);
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

  private current(rec: IfaceRecord, token: number): boolean {
    return !this.closed && rec.generation === token && this.ifaces.get(rec.name) === rec;
  }

  /** Cancels the episode of an interface: waits end, verification ends, a running action is aborted. */
  private cancel(rec: IfaceRecord): void {
    rec.generation += 1;
    if (rec.waitTimer !== null) {
      this.clock.clearTimeout(rec.waitTimer);
      rec.waitTimer = null;
    }
    const wake = rec.waitResolve;
    rec.waitResolve = null;
    wake?.(false);
    const verify = rec.verifyResolve;
    rec.verifyResolve = null;
    verify?.();
    rec.abort?.abort(new NethealError('NETHEAL_ERR_CLOSED', 'recovery cancelled'));
    rec.abort = null;
    rec.episodeActive = false;
    rec.phase = 'idle';
    rec.step = null;
    rec.waitingFor = null;
    rec.waitUntil = null;
  }

  private startEpisode(rec: IfaceRecord): void {
    if (this.closed) return;
    rec.generation += 1;
    const token = rec.generation;
    rec.episodeActive = true;
    rec.episodeSince = this.clock.now();
    rec.episodeFault = rec.fault;
    rec.ranOnce.clear();
    this.episode(rec, token)
      .catch((err: unknown) => this.emit('error', err instanceof Error ? err : new Error(String(err))));
  }

  /** Marks the episode over, synchronously, so evidence arriving next is judged afresh. */
  private endEpisode(rec: IfaceRecord, token: number): void {
    if (rec.generation !== token) return;
    rec.episodeActive = false;
    rec.phase = 'idle';
    rec.step = null;
    rec.waitingFor = null;
    rec.waitUntil = null;
  }

  /** Resolves true when `untilMs` comes, false when cancelled first. */
  private wait(rec: IfaceRecord, token: number, what: WaitReason, untilMs: number): Promise<boolean> {
    if (!this.current(rec, token)) return Promise.resolve(false);
    rec.phase = 'waiting';
    rec.waitingFor = what;
    rec.waitUntil = untilMs;
    rec.parkKey = PARKED.includes(what) || what === 'hold-down' ? this.parkKey(rec) : null;
    rec.waitStopped = rec.evidence.disabled || rec.hold || rec.evidence.intentPending;
    return new Promise<boolean>((resolve) => {
      rec.waitResolve = resolve;
      if (Number.isFinite(untilMs)) {
        rec.waitTimer = this.clock.setTimeout(() => {
          rec.waitTimer = null;
          rec.waitResolve = null;
          resolve(this.current(rec, token));
        }, untilMs - this.clock.now());
      }
    });
  }

  /** Ends a wait early, as if its time had come (a parked episode whose evidence changed). */
  private wake(rec: IfaceRecord): void {
    if (rec.waitTimer !== null) {
      this.clock.clearTimeout(rec.waitTimer);
      rec.waitTimer = null;
    }
    const resolve = rec.waitResolve;
    rec.waitResolve = null;
    resolve?.(true);
  }

  /** One down episode: waits for grace, damping and backoff, climbs, repeats until resolved. */
  private async episode(rec: IfaceRecord, token: number): Promise<void> {
    try {
      await this.episodeLoop(rec, token);
    } finally {
      this.endEpisode(rec, token);
    }
  }

  private async episodeLoop(rec: IfaceRecord, token: number): Promise<void> {
    let climbAt: number | null = null;
    for (;;) {
      if (!this.current(rec, token)) return;
      const now = this.clock.now();
      const { judged, fault } = this.locate(rec);
      if (judged !== 'down' || fault === null) {
        // Cleared while the loop was between waits (evidence arriving mid-step).
        this.endEpisode(rec, token);
        this.setState(rec, judged, 'not-verified', null);
        this.recovered(rec, rec.episodeFault, null);
        return;
      }
      rec.episodeFault = fault;
      if (rec.evidence.disabled) {
        this.alert(rec, 'admin-down', `${rec.name} is ${rec.evidence.removed ? 'removed' : `down as its owner (${rec.evidence.intent?.owner}: ${rec.evidence.intent?.source}) wants`}; not acting`, null);
        if (!(await this.wait(rec, token, 'admin-down', Infinity))) return;
        continue;
      }
      rec.alerted.delete('admin-down');
      if (rec.hold) {
        this.alert(rec, 'held', `${rec.name} is held for maintenance: watching, never acting`, null);
        if (!(await this.wait(rec, token, 'held', Infinity))) return;
        continue;
      }
      if (rec.evidence.intentPending) {
        this.alert(rec, 'intent-pending', `${rec.name} is administratively down; waiting for its owner's intent before acting`, null);
        if (!(await this.wait(rec, token, 'intent', Infinity))) return;
        continue;
      }
      rec.alerted.delete('intent-pending');
      if (rec.policy.ladder.length === 0) {
        this.alert(rec, 'no-ladder', `${rec.name} is down and its ladder is empty`, null);
        if (!(await this.wait(rec, token, 'alert-only', Infinity))) return;
        continue;
      }
      if (now < this.graceEnd) {
        this.alert(rec, 'grace-period', `${rec.name} is down during the start-up grace period; no action before ${this.graceEnd} ms`, this.graceEnd);
        if (!(await this.wait(rec, token, 'grace-period', this.graceEnd))) return;
        rec.alerted.delete('grace-period');
        continue;
      }
      if (PATH_FAULTS.includes(fault.class) && now < rec.settleUntil) {
        // The probes a link blip cost while the gateway is re-learnt: the same incident.
        if (!(await this.wait(rec, token, 'settling', rec.settleUntil))) return;
        continue;
      }
      const suppressedUntil = rec.damper.suppressedUntil(now);
      if (suppressedUntil !== null) {
        this.alert(rec, 'suppressed',
          `${rec.name} flaps (penalty ${rec.damper.penaltyAt(now).toFixed(0)}, ${rec.damper.flapCount} flaps); no action before ${suppressedUntil} ms`,
          suppressedUntil);
        if (!(await this.wait(rec, token, 'suppressed', suppressedUntil))) return;
        rec.alerted.delete('suppressed');
        continue;
      }
      if (climbAt === null && rec.backoff.attempts > 0) {
        // Always wait on the clock before a repeat climb, even for a zero delay: the loop
        // then yields to the event loop between climbs.
        climbAt = now + rec.backoff.draw();
        if (!(await this.wait(rec, token, 'backoff', climbAt))) return;
        continue;
      }
      climbAt = null;
      const before = rec.verifiableRuns;
      const outcome = await this.climb(rec, token, fault);
      if (!this.current(rec, token) || outcome === 'verified' || outcome === 'cancelled' || outcome === 'resolved') return;
      if (outcome === 'reclassified') {
        // Progress (one class cleared, another remains) or the fault moved: climb again for
        // the new class at once; backoff is for climbs that changed nothing.
        rec.backoff.reset();
        continue;
      }
      // Only a step that can change the evidence makes another climb worth it.
      const acted = rec.verifiableRuns > before;
      const again = this.locate(rec);
      if (outcome === 'interrupted') {
        // Suppressed mid-climb: back to `down`; the loop alerts and waits for reuse.
        this.setState(rec, again.judged, 'not-verified', null);
        continue;
      }
      if (!acted) {
        // No step could (or may yet) act on this class: alert, and wait for the evidence to change.
        this.alert(rec, 'cannot-fix',
          `${rec.name}: ${fault.class} fault (${fault.because.join(', ')}): no step of ${rec.policy.ladder.map((st) => st.action).join(' > ')} can fix it; alerting only`,
          null);
        this.setState(rec, again.judged, 'not-verified', null);
        if (!(await this.wait(rec, token, 'alert-only', Infinity))) return;
        rec.alerted.delete('cannot-fix');
        continue;
      }
      this.alert(rec, 'ladder-exhausted',
        `${rec.name}: no rung of ${rec.policy.ladder.map((st) => st.action).join(' > ')} verified for the ${fault.class} fault (${rec.reasons.join(', ') || 'no bad evidence left'})`,
        null, false);
      this.setState(rec, again.judged, 'not-verified', null);
    }
  }

  private context(rec: IfaceRecord, index: number, step: LadderStep, fault: Fault, signal: AbortSignal): ActionContext {
    return {
      iface: rec.name, step: index + 1, kind: step.action, attempt: rec.backoff.attempts, state: 'down',
      reasons: [...rec.reasons], fault: { class: fault.class, because: [...fault.because] }, faultSinceMs: rec.faultSince,
      episodeSinceMs: rec.episodeSince,
      evidence: rec.evidence.snapshot(),
      options: { ...(step.options ?? {}) }, timeoutMs: step.timeoutMs ?? rec.policy.actionTimeoutMs, signal,
      dryRun: this.dryRun, atMs: this.clock.now(),
    };
  }

  /** Reports a step; `ran` says whether an executor really ran (or would have, dry). */
  private record(rec: IfaceRecord, event: ActionEvent, ran: boolean): void {
    if (ran) rec.totalActions += 1;
    if (this.keepActions > 0) {
      rec.lastActions.push(event);
      if (rec.lastActions.length > this.keepActions) rec.lastActions.shift();
    }
    this.emit('action', event);
  }

  /**
   * Re-reads the evidence in the middle of a climb: null while the climb may go on, else how
   * it ends (`resolved` when the fault cleared without a credited step, `reclassified` when
   * the fault moved to another class).
   */
  private drift(rec: IfaceRecord, token: number, fault: Fault): ClimbOutcome | null {
    const now = this.locate(rec);
    if (now.judged !== 'down' || now.fault === null) {
      this.endEpisode(rec, token);
      this.setState(rec, now.judged, 'not-verified', null);
      this.recovered(rec, fault, null);
      return 'resolved';
    }
    return now.fault.class === fault.class ? null : 'reclassified';
  }

  /** One climb of the ladder for one fault class, bottom rung first. */
  private async climb(rec: IfaceRecord, token: number, fault: Fault): Promise<ClimbOutcome> {
    rec.backoff.record();
    const attempt = rec.backoff.attempts;
    const ladder = rec.policy.ladder;
    const skip = (i: number, step: LadderStep, detail: string): void => {
      const at = this.clock.now();
      this.record(rec, {
        iface: rec.name, step: i + 1, kind: step.action, attempt, dryRun: this.dryRun,
        result: { status: 'skipped', detail }, startedAtMs: at, durationMs: 0,
      }, false);
    };
    for (let i = 0; i < ladder.length; i += 1) {
      const step = ladder[i] as LadderStep;
      rec.step = i + 1;
      // Flaps during this climb may have crossed the suppress threshold: stop climbing.
      if (rec.damper.isSuppressed(this.clock.now())) return 'interrupted';
      const drifted = this.drift(rec, token, fault);
      if (drifted !== null) return drifted;
      const executor = this.executors.get(step.action);
      if (executor === undefined) {
        this.alert(rec, 'unknown-action', `${rec.name}: ladder step ${i + 1} names "${step.action}", which no executor provides`, null, false);
        this.record(rec, {
          iface: rec.name, step: i + 1, kind: step.action, attempt, dryRun: this.dryRun,
          result: { status: 'failed', detail: `no executor registered for "${step.action}"` }, startedAtMs: this.clock.now(), durationMs: 0,
        }, false);
        continue;
      }
      const fixes = step.fixes ?? executor.fixes ?? FAULT_CLASSES;
      if (!fixes.includes(fault.class)) {
        skip(i, step, `cannot fix a ${fault.class} fault`);
        continue;
      }
      const verifiable = executor.verifiable !== false;
      if (!verifiable && rec.ranOnce.has(i)) continue;
      // Hold-down: the fault must have lasted `afterMs` before this step may run.
      const afterMs = step.afterMs ?? executor.afterMs?.[fault.class] ?? 0;
      if (this.clock.now() < rec.faultSince + afterMs) {
        if (!(await this.wait(rec, token, 'hold-down', rec.faultSince + afterMs))) return 'cancelled';
        i -= 1; // look at this step again with the evidence as it is now
        continue;
      }
      let abort = new AbortController();
      let ctx = this.context(rec, i, step, fault, abort.signal);
      if (executor.applies) {
        let applies: boolean;
        try {
          applies = await executor.applies(ctx);
        } catch (err) {
          applies = false;
          this.alert(rec, 'action-error', `${rec.name}: ${step.action}.applies() threw: ${errorText(err)}`, null, false);
        }
        if (!this.current(rec, token)) return 'cancelled';
        if (!applies) {
          skip(i, step, 'does not apply');
          continue;
        }
      }
      // Budget: alert-only until the window frees a slot, then resume at this rung.
      for (;;) {
        const now = this.clock.now();
        const nextFree = rec.budget.nextFreeAtMs(now);
        if (nextFree === null) break;
        const again = this.drift(rec, token, fault);
        if (again !== null) return again;
        this.setState(rec, 'down', 'not-verified', null);
        this.alert(rec, 'budget-exhausted',
          `${rec.name}: ${rec.policy.budget.maxActions} actions in ${rec.policy.budget.windowMs} ms spent; alert only` +
          (Number.isFinite(nextFree) ? ` until ${nextFree} ms` : ''), nextFree);
        if (!(await this.wait(rec, token, 'budget-exhausted', nextFree))) return 'cancelled';
        rec.alerted.delete('budget-exhausted');
      }
      if (!this.current(rec, token)) return 'cancelled';
      const late = this.drift(rec, token, fault);
      if (late !== null) return late;
      rec.phase = 'running';
      rec.waitingFor = null;
      rec.waitUntil = null;
      abort = new AbortController();
      rec.abort = abort;
      ctx = this.context(rec, i, step, fault, abort.signal);
      const startedAtMs = ctx.atMs;
      rec.budget.record(this.clock.now());
      const budgetStamp = this.clock.now();
      this.setState(rec, 'recovering', 'action', null);
      rec.disrupting = !this.dryRun && (executor.disruptive ?? DISRUPTIVE_BY_DEFAULT.includes(executor.kind));
      const result = this.dryRun
        ? { status: 'dry-run' as const, detail: `would run ${step.action} on ${rec.name}` }
        : await this.run(rec, executor, ctx, abort);
      rec.disrupting = false;
      if (rec.abort === abort) rec.abort = null;
      if (result.status === 'skipped') rec.budget.refund(budgetStamp);
      else if (verifiable) rec.verifiableRuns += 1;
      this.record(rec, {
        iface: rec.name, step: i + 1, kind: step.action, attempt, dryRun: this.dryRun, result, startedAtMs,
        durationMs: this.clock.now() - startedAtMs,
      }, result.status !== 'skipped');
      if (!this.current(rec, token)) return 'cancelled';
      if (!verifiable) {
        // It cannot bring the path back: no wait, no credit; the ladder goes on.
        rec.ranOnce.add(i);
        rec.phase = 'idle';
        this.setState(rec, 'down', 'not-verified', null);
        continue;
      }
      if (result.status === 'ok' || result.status === 'dry-run') {
        const verified = await this.verify(rec, token, i, step, attempt, fault);
        if (!this.current(rec, token)) return 'cancelled';
        if (verified) {
          const after = this.locate(rec);
          if (after.judged === 'down' && after.fault !== null && after.fault.class !== fault.class && !this.verifier) {
            // This class cleared, another fault remains (a link brought up still lacks its
            // route): credited for its part; the episode goes on with the new class.
            this.emit('recovered', {
              iface: rec.name, fault: fault.class, by: 'action', action: step.action, sinceMs: rec.episodeSince, atMs: this.clock.now(),
            });
            rec.phase = 'idle';
            this.setState(rec, 'down', 'not-verified', null);
            return 'reclassified';
          }
          // A verifier may vouch while evidence still says down; trust it until evidence changes.
          this.endEpisode(rec, token);
          this.setState(rec, after.judged === 'down' ? 'healthy' : after.judged, 'verified', null);
          this.recovered(rec, fault, step.action);
          if (after.judged === 'down' && !this.verifier) {
            // Verified by evidence, then down again before the climb resumed: a new episode.
            this.setState(rec, 'down', 'evidence', null);
            this.startEpisode(rec);
          }
          return 'verified';
        }
      }
    }
    rec.phase = 'idle';
    rec.step = null;
    return 'exhausted';
  }

  /** Runs an executor with the step's time limit. Never throws. */
  private run(rec: IfaceRecord, executor: ActionExecutor, ctx: ActionContext, abort: AbortController): Promise<StepResult> {
    return new Promise<StepResult>((resolve) => {
      let settled = false;
      const timer = this.clock.setTimeout(() => {
        if (settled) return;
        settled = true;
        abort.abort(new NethealError('NETHEAL_ERR_TIMEOUT', `${ctx.kind} on ${ctx.iface}: no result within ${ctx.timeoutMs} ms`));
        resolve({ status: 'timeout', detail: `no result within ${ctx.timeoutMs} ms` });
      }, ctx.timeoutMs);
      const finish = (result: StepResult): void => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        resolve(result);
      };
      // cancel() (close/unwatch/recovery) aborts: stop waiting for the executor and its timer.
      abort.signal.addEventListener('abort', () => finish({ status: 'failed', detail: 'cancelled' }), { once: true });
      Promise.resolve()
        .then(() => executor.run(ctx))
        .then((r) => {
          if (validResult(r)) {
            finish({ status: r.status, ...(r.detail !== undefined ? { detail: r.detail } : {}), ...(r.data !== undefined ? { data: r.data } : {}) });
          } else {
            if (!settled) this.alert(rec, 'action-error', `${rec.name}: ${ctx.kind} returned ${JSON.stringify(r)}, not an ActionResult`, null, false);
            finish({ status: 'failed', detail: 'executor returned an invalid result' });
          }
        }, (err: unknown) => {
          if (!settled && !abort.signal.aborted) this.alert(rec, 'action-error', `${rec.name}: ${ctx.kind} threw: ${errorText(err)}`, null, false);
          finish({ status: 'failed', detail: errorText(err) });
        });
    });
  }

  /**
   * Verifies a step within its window, by the verifier or by evidence. By evidence, the step
   * is verified (and credited) when the fault class it was run for is gone: the fault
   * cleared, or moved on to another class.
   */
  private verify(rec: IfaceRecord, token: number, index: number, step: LadderStep, attempt: number, fault: Fault): Promise<boolean> {
    const windowMs = step.verifyTimeoutMs ?? rec.policy.verifyTimeoutMs;
    const startedAtMs = this.clock.now();
    rec.phase = 'verifying';
    const report = (verified: boolean, by: VerifyEvent['by'], detail?: string): boolean => {
      if (this.current(rec, token)) {
        this.emit('verify', {
          iface: rec.name, step: index + 1, kind: step.action, attempt, verified, by, credited: verified, fault: fault.class,
          ...(detail !== undefined ? { detail } : {}), startedAtMs, durationMs: this.clock.now() - startedAtMs,
        });
      }
      return verified;
    };
    const cleared = (): boolean => {
      const now = this.locate(rec);
      return now.judged !== 'down' || now.fault === null || now.fault.class !== fault.class;
    };
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const abort = new AbortController();
      const finish = (verified: boolean, by: VerifyEvent['by'], detail?: string): void => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        rec.verifyResolve = null;
        if (!abort.signal.aborted) abort.abort();
        resolve(report(verified, by, detail));
      };
      const timer = this.clock.setTimeout(() => finish(false, 'timeout', `not verified within ${windowMs} ms`), windowMs);
      if (this.verifier) {
        const ctx: VerifyContext = {
          iface: rec.name, step: index + 1, kind: step.action, attempt, windowMs, signal: abort.signal,
          evidence: rec.evidence.snapshot(),
        };
        const verifier = this.verifier;
        // Evidence does not end verification when a verifier decides; cancel() aborts rec.abort.
        rec.verifyResolve = null;
        rec.abort = abort;
        Promise.resolve()
          .then(() => verifier(rec.name, ctx))
          .then((ok) => finish(ok === true, 'verifier'), (err: unknown) => finish(false, 'verifier', `verifier threw: ${errorText(err)}`));
        abort.signal.addEventListener('abort', () => finish(false, 'timeout', 'cancelled'), { once: true });
      } else {
        // Evidence that moves the fault ends verification (reevaluate() calls this); so does cancel().
        rec.verifyResolve = () => {
          if (!this.current(rec, token)) finish(false, 'timeout', 'cancelled');
          else if (cleared()) finish(true, 'evidence');
        };
        if (cleared()) finish(true, 'evidence');
      }
    });
  }
}
