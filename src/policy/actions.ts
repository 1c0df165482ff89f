/**
 * The contract between the policy engine and the code that acts: action executors (the
 * daemon's kill-sockets, manager re-apply, link bounce, hook, or an embedder's own, such as
 * draining a connection pool) and the optional verifier. The policy never acts by itself.
 */
import type { Fault, FaultClass } from './fault';
import type { HealthState } from './health';
import type { InterfaceEvidenceSnapshot } from './health';

/** What an executor reports. */
export interface ActionResult {
  /**
   * `ok`: done, now verify. `failed`: it could not; the ladder moves on without verifying.
   * `skipped`: not applicable here (e.g. no manager owns the interface); the ladder moves
   * on and the action does not count against the budget.
   */
  status: 'ok' | 'failed' | 'skipped';
  /** One line for logs. */
  detail?: string;
  /** Anything structured (counts, manager name, exit code...), passed through to events. */
  data?: Readonly<Record<string, unknown>>;
}

/**
 * The outcome of a step as the engine reports it: an executor's {@link ActionResult}, or
 * `timeout` (the time limit passed; the context's signal was aborted), or `dry-run`
 * (nothing was run).
 */
export interface StepResult {
  status: ActionResult['status'] | 'timeout' | 'dry-run';
  detail?: string;
  data?: Readonly<Record<string, unknown>>;
}

/** Everything an executor is told when the engine asks it to act. */
export interface ActionContext {
  /** The interface to act on. */
  iface: string;
  /** Rung number in the interface's ladder, 1-based. */
  step: number;
  /** The action name (the executor's `kind`). */
  kind: string;
  /** Ladder climb number since the last backoff reset, 1-based. */
  attempt: number;
  /** Health state when the step was decided (always `down`). */
  state: HealthState;
  /** Current bad evidence, e.g. `['carrier-down', 'probe-group-down:gw']`. */
  reasons: readonly string[];
  /** Where the fault is: the class this step was chosen for and the evidence that located it. */
  fault: Fault;
  /** Clock time (ms) since which the fault has been of this class. */
  faultSinceMs: number;
  /**
   * Clock time (ms) the episode began. Earlier than `faultSinceMs` when the fault moved to this
   * class during the episode (a link set up again still lacks the route the kernel flushed).
   */
  episodeSinceMs: number;
  /** Evidence of the interface at the time. */
  evidence: InterfaceEvidenceSnapshot;
  /** The step's `options` from the config (empty object if none). */
  options: Readonly<Record<string, unknown>>;
  /** Time limit of this run in ms; `signal` aborts when it passes. */
  timeoutMs: number;
  /** Aborted on time-out and on engine close()/unwatch(). */
  signal: AbortSignal;
  /** True when the engine runs dry: `applies()` is still asked, `run()` never called. */
  dryRun: boolean;
  /** Clock time (ms) the step was decided. */
  atMs: number;
}

/**
 * An action the ladder can run, registered by its `kind`. `run` must honour `ctx.signal`
 * where it can (stop, clean up) and should not throw: a throw is reported as `failed` with
 * an `action-error` alert.
 */
export interface ActionExecutor {
  /** The name ladder steps use, e.g. `kill-sockets` or an embedder's `drain-pool`. */
  readonly kind: string;
  /**
   * True when the action takes the link down itself (a link bounce, a manager's
   * down/up): evidence entering `down` while it runs is then not counted as a flap.
   * Default: true for `link-bounce` and `manager-reapply`, false for everything else.
   */
  readonly disruptive?: boolean;
  /**
   * The fault classes this action can fix (see src/policy/fault.ts). For any other class the
   * engine skips the step and logs why. Default: every class (an embedder's own action).
   */
  readonly fixes?: readonly FaultClass[];
  /**
   * How long a fault of a class must have lasted before this action runs, in ms (default 0):
   * a carrier blip must not bounce a link, a manager's remove-and-re-add must not trigger a
   * re-apply. A ladder step's `afterMs` overrides it.
   */
  readonly afterMs?: Readonly<Partial<Record<FaultClass, number>>>;
  /**
   * False when the action cannot change the evidence (destroying sockets unblocks their
   * owners but brings no path back): the engine then neither waits to verify it nor ever
   * credits it with a recovery, and runs it at most once per episode. Default true.
   */
  readonly verifiable?: boolean;
  /** Does the work. */
  run(ctx: ActionContext): Promise<ActionResult>;
  /**
   * Optional side-effect-free check whether the action makes sense here (asked in dry-run
   * too). False: the step is reported `skipped` and costs no budget.
   */
  applies?(ctx: ActionContext): boolean | Promise<boolean>;
}

/** What a {@link Verifier} is told. */
export interface VerifyContext {
  iface: string;
  step: number;
  kind: string;
  attempt: number;
  /** The verification window in ms; the engine gives up (not verified) when it passes. */
  windowMs: number;
  /** Aborted when the window passes or the engine closes. */
  signal: AbortSignal;
  /** Evidence of the interface when verification began. */
  evidence: InterfaceEvidenceSnapshot;
}

/**
 * Decides whether a step worked (e.g. route back and probes answering, or an embedder's own
 * check). Without a verifier the engine verifies by evidence: the step worked when the
 * interface's evidence stops calling for `down` within the window.
 */
export type Verifier = (iface: string, ctx: VerifyContext) => Promise<boolean>;

/**
 * Environment variables describing a step, for an operator hook (the `hook` executor runs
 * the command with these added): NETHEAL_IFACE, NETHEAL_ACTION, NETHEAL_STEP,
 * NETHEAL_ATTEMPT, NETHEAL_STATE, NETHEAL_FAULT (the fault class), NETHEAL_REASONS (comma-separated), NETHEAL_DRY_RUN
 * (`0`/`1`), NETHEAL_TIMEOUT_MS and NETHEAL_EVIDENCE (JSON of the evidence snapshot).
 */
export function actionEnvironment(ctx: ActionContext): Record<string, string> {
  return {
    NETHEAL_IFACE: ctx.iface,
    NETHEAL_ACTION: ctx.kind,
    NETHEAL_STEP: String(ctx.step),
    NETHEAL_ATTEMPT: String(ctx.attempt),
    NETHEAL_STATE: ctx.state,
    NETHEAL_FAULT: ctx.fault.class,
    NETHEAL_REASONS: ctx.reasons.join(','),
    NETHEAL_DRY_RUN: ctx.dryRun ? '1' : '0',
    NETHEAL_TIMEOUT_MS: String(ctx.timeoutMs),
    NETHEAL_EVIDENCE: JSON.stringify(ctx.evidence),
  };
}
