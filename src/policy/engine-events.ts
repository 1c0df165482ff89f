/**
 * The policy engine's public vocabulary: the events it emits, its options, and the JSON-safe
 * snapshot it gives the status socket and metrics. Types only.
 */
import type { ActionExecutor, StepResult, Verifier } from './actions';
import type { Clock, RandomSource } from './clock';
import type { PolicyConfig } from './config';
import type { Evidence } from './evidence';
import type { Fault, FaultClass } from './fault';
import type { GroupEvidenceSnapshot, HealthState, InterfaceEvidenceSnapshot } from './health';
import type { Intent } from './intent';

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
  /** The class of the fault the step was taken (or skipped) for, fixed when it started. */
  fault: FaultClass;
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
  /**
   * The safety state an earlier engine exported ({@link PolicyEngine.exportSafety}),
   * `elapsedMs` ago: each interface takes over its budget spent, damping and backoff when
   * first watched, so that it holds from the first evidence on. It only ever makes the engine
   * more careful: spent actions still count (against this engine's budget settings), the
   * higher penalty and the later suppression win. Its baselines follow with
   * {@link PolicyEngine.restoreBaselines} once the evidence is seeded.
   */
  carried?: { safety: SafetyState; elapsedMs: number };
}

/**
 * The safety state of one interface that must outlive its engine (a reload builds a new
 * one; a restart a new process). Times are ages: milliseconds before the export.
 */
export interface InterfaceSafetyState {
  /** Ages of the actions that still count against the budget. */
  budgetSpentAgoMs: number[];
  damping: {
    penalty: number;
    /** Age of the penalty's last update (it decays from there). */
    updatedAgoMs: number;
    /** How long the suppression had yet to run, null when not suppressed. */
    suppressedForMs: number | null;
    flaps: number;
  };
  /** Ladder climbs since the backoff last reset. */
  backoffAttempts: number;
  /** Actions run in the interface's lifetime. */
  totalActions: number;
  /** Global addresses of the last healthy state. */
  baselineAddresses: string[];
}

/** What {@link PolicyEngine.exportSafety} returns and {@link PolicyEngine.restoreSafety} takes. JSON-safe. */
export interface SafetyState {
  interfaces: Record<string, InterfaceSafetyState>;
}

/** The ladder's activity on an interface. */
export type LadderPhase = 'idle' | 'waiting' | 'running' | 'verifying';

/**
 * What a waiting ladder waits for. The last four park the episode until the evidence
 * changes: the owner's intent, the end of a hold, a fault some step can fix.
 */
export type WaitReason = 'grace-period' | 'suppressed' | 'backoff' | 'budget-exhausted' | 'hold-down' | 'settling'
  | 'intent' | 'held' | 'admin-down' | 'alert-only';


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

