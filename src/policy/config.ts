/**
 * The policy part of the daemon configuration: plain TypeScript types, the defaults, and
 * the merge of defaults / per-interface overrides. (Parsing and schema validation of the
 * config file belong to the daemon's config module; {@link validatePolicyConfig} is the
 * library's own guard at the API edge and names the offending field.)
 */
import { NethealError } from '../errors';
import { FAULT_CLASSES, FaultClass } from './fault';

/**
 * Exponential backoff with full jitter between ladder climbs (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): before climb n (n >= 1 counts earlier climbs since
 * the last reset) the engine waits `random() * min(maxMs, initialMs * multiplier^(n-1))`.
 */
export interface BackoffConfig {
  /** Ceiling of the first backoff delay, in ms. */
  initialMs: number;
  /** Cap of the ceiling, in ms. */
  maxMs: number;
  /** Growth factor of the ceiling per climb (>= 1). */
  multiplier: number;
  /** After this long continuously healthy, the climb count (and so the ceiling) resets. */
  resetAfterMs: number;
}

/**
 * Flap damping as routers dampen flapping routes (RFC 2439). Each flap (the evidence about
 * the interface turns to `down`, except while a disruptive action such as a link bounce
 * runs) adds `penaltyPerFlap`; the penalty decays exponentially
 * with `halfLifeMs`. When a flap brings the penalty to `suppressThreshold` or above, the
 * interface is suppressed: the engine alerts but does not act. It is reused once the
 * penalty has decayed to `reuseThreshold` or below. The penalty is capped at
 * `reuseThreshold * 2^(maxSuppressMs / halfLifeMs)` so that no suppression outlasts
 * `maxSuppressMs` after the last flap (RFC 2439 section 4.2, "ceiling").
 */
export interface DampingConfig {
  /** Penalty added per flap. */
  penaltyPerFlap: number;
  /** Half-life of the penalty's exponential decay, in ms. */
  halfLifeMs: number;
  /** Suppress when a flap brings the penalty to this value or above. */
  suppressThreshold: number;
  /** Reuse when the decaying penalty reaches this value or below (< suppressThreshold). */
  reuseThreshold: number;
  /** Longest suppression after the last flap, in ms. */
  maxSuppressMs: number;
}

/** At most `maxActions` ladder actions in any sliding window of `windowMs`; then alert-only. */
export interface BudgetConfig {
  /** Actions allowed per window (0 = never act, alert only). */
  maxActions: number;
  /** Length of the sliding window, in ms. */
  windowMs: number;
}

/**
 * Kinds of evidence that may take an interface `down` (and so start the recovery ladder).
 * Evidence of any other kind, or of a kind not listed in `downOn`, only makes it `suspect`.
 * A single lost probe (`probe` evidence) can never take an interface down: down on probes
 * needs the prober's group quorum lost (`probe-group`), which already needs `multiplier` x
 * interval without a reply per target (or its early evidence, docs/design.md).
 */
export type DownEvidenceKind = 'carrier' | 'address' | 'default-route' | 'probe-group' | 'sockets';

/** All kinds {@link DownEvidenceKind} admits, for validation. */
export const DOWN_EVIDENCE_KINDS: readonly DownEvidenceKind[] = Object.freeze(
  ['carrier', 'address', 'default-route', 'probe-group', 'sockets'] as DownEvidenceKind[]);

/** One rung of the recovery ladder. */
export interface LadderStep {
  /** Name of a registered action executor (see {@link BUILTIN_ACTIONS}) or an embedder's own. */
  action: string;
  /** Time limit of the action, in ms (default: the interface's `actionTimeoutMs`). */
  timeoutMs?: number;
  /** Verification window after the action, in ms (default: the interface's `verifyTimeoutMs`). */
  verifyTimeoutMs?: number;
  /** Free-form options handed to the executor as `ctx.options`. */
  options?: Readonly<Record<string, unknown>>;
  /** Run only once the fault has lasted this long, in ms (default: the executor's own, else 0). */
  afterMs?: number;
  /** Fault classes this step may run for (default: those its executor declares it can fix). */
  fixes?: FaultClass[];
}

/** A ladder step as written in a config: the bare action name or a {@link LadderStep}. */
export type LadderStepConfig = string | LadderStep;

/**
 * Names of the actions the daemon registers (implemented in src/actions/). The policy only
 * knows them as names; executors are injected.
 */
export const BUILTIN_ACTIONS = Object.freeze({
  /** Set an interface administratively up that its owner wants up (link faults: admin-down). */
  LINK_UP: 'link-up',
  /** Put back exactly the lost addresses and routes by netlink (unmanaged and ifupdown interfaces). */
  REPAIR: 'repair',
  /** Ask the daemon owning the interface (NetworkManager, systemd-networkd) to re-apply it. */
  MANAGER_REAPPLY: 'manager-reapply',
  /** Destroy the sockets stuck on a path that has stayed dead past the hold-down. */
  KILL_SOCKETS: 'kill-sockets',
  /** Link bounce, last, for link faults that did not clear; restores what the kernel flushed. */
  LINK_BOUNCE: 'link-bounce',
  /** The operator's hook, with the event in environment variables and a time limit. */
  HOOK: 'hook',
} as const);

/** Fully resolved policy of one interface (every field present). */
export interface InterfacePolicy {
  /** The recovery ladder, bottom rung first. */
  ladder: LadderStep[];
  /** Backoff between ladder climbs. */
  backoff: BackoffConfig;
  /** Flap damping. */
  damping: DampingConfig;
  /** Action budget (per interface). */
  budget: BudgetConfig;
  /** Default verification window after each step, in ms. */
  verifyTimeoutMs: number;
  /** Default time limit of each action, in ms. */
  actionTimeoutMs: number;
  /** Evidence kinds that may take the interface down; see {@link DownEvidenceKind}. */
  downOn: DownEvidenceKind[];
  /**
   * Addresses that must be present, besides the baseline (the global addresses of the last
   * healthy state, which are always required).
   */
  requiredAddresses: string[];
  /**
   * After a link fault clears, path faults (probes lost while the gateway's neighbour entry
   * is re-learnt) are part of the same incident for this long, in ms: no flap, no action.
   */
  settleMs: number;
}

/**
 * Per-interface overrides as written in a config; anything left out takes the default.
 * Fields mean what they mean in {@link InterfacePolicy}; backoff/damping/budget merge field
 * by field, lists replace.
 */
export interface InterfacePolicyConfig {
  /** Ladder steps, bottom rung first (default {@link DEFAULT_LADDER}). */
  ladder?: LadderStepConfig[];
  /** Default {@link DEFAULT_BACKOFF}. */
  backoff?: Partial<BackoffConfig>;
  /** Default {@link DEFAULT_DAMPING}. */
  damping?: Partial<DampingConfig>;
  /** Default {@link DEFAULT_BUDGET}. */
  budget?: Partial<BudgetConfig>;
  /** Default 5000 ms. */
  verifyTimeoutMs?: number;
  /** Default 30000 ms. */
  actionTimeoutMs?: number;
  /** Default {@link DEFAULT_DOWN_ON}. */
  downOn?: DownEvidenceKind[];
  /** Default none. */
  requiredAddresses?: string[];
  /** Default {@link DEFAULT_SETTLE_MS}. */
  settleMs?: number;
}

/** The `policy` section of the daemon configuration. */
export interface PolicyConfig {
  /** No actions for this long after the engine starts (ms). */
  graceMs?: number;
  /** Overrides applied to every interface. */
  defaults?: InterfacePolicyConfig;
  /** Per-interface overrides (on top of `defaults`), keyed by interface name. */
  interfaces?: Record<string, InterfacePolicyConfig>;
  /** Probe groups bound to an interface, for `probe-group` evidence that names no `iface`. */
  groups?: Record<string, { iface?: string }>;
}

/** Default backoff: 1 s ceiling doubling to 60 s; reset after 5 min healthy. */
export const DEFAULT_BACKOFF: Readonly<BackoffConfig> = Object.freeze({
  initialMs: 1_000,
  maxMs: 60_000,
  multiplier: 2,
  resetAfterMs: 300_000,
});

/**
 * Default damping: 1000 per flap, half-life 5 min, suppress at 2500 (three flaps in quick
 * succession), reuse at 800, never suppressed longer than 30 min after the last flap.
 * (Router defaults are 1000/15 min/2000/750/60 min; a server's interface earns a little
 * more patience per flap and a quicker pardon.)
 */
export const DEFAULT_DAMPING: Readonly<DampingConfig> = Object.freeze({
  penaltyPerFlap: 1_000,
  halfLifeMs: 300_000,
  suppressThreshold: 2_500,
  reuseThreshold: 800,
  maxSuppressMs: 1_800_000,
});

/** Default budget: 10 actions per hour per interface (two and a half full climbs). */
export const DEFAULT_BUDGET: Readonly<BudgetConfig> = Object.freeze({ maxActions: 10, windowMs: 3_600_000 });

/** Default start-up grace period: 30 s without actions. */
export const DEFAULT_GRACE_MS = 30_000;

/**
 * Default ladder, least disruptive first: link up, targeted repair, manager re-apply, kill
 * stuck sockets (path faults past the hold-down), link bounce (link faults that did not
 * clear), operator hook. Each step runs only for the fault classes it can fix.
 */
export const DEFAULT_LADDER: readonly string[] = Object.freeze([
  BUILTIN_ACTIONS.LINK_UP,
  BUILTIN_ACTIONS.REPAIR,
  BUILTIN_ACTIONS.MANAGER_REAPPLY,
  BUILTIN_ACTIONS.KILL_SOCKETS,
  BUILTIN_ACTIONS.LINK_BOUNCE,
  BUILTIN_ACTIONS.HOOK,
]);

/** Default settle time after a link fault clears (see {@link InterfacePolicy.settleMs}). */
export const DEFAULT_SETTLE_MS = 3_000;

/** Default evidence that may take an interface down (everything but `sockets`). */
export const DEFAULT_DOWN_ON: readonly DownEvidenceKind[] = Object.freeze(
  ['carrier', 'address', 'default-route', 'probe-group'] as DownEvidenceKind[]);

/** The fully resolved default policy of an interface. */
export const DEFAULT_INTERFACE_POLICY: Readonly<InterfacePolicy> = Object.freeze({
  ladder: DEFAULT_LADDER.map((action) => ({ action })),
  backoff: { ...DEFAULT_BACKOFF },
  damping: { ...DEFAULT_DAMPING },
  budget: { ...DEFAULT_BUDGET },
  verifyTimeoutMs: 5_000,
  actionTimeoutMs: 30_000,
  downOn: [...DEFAULT_DOWN_ON],
  requiredAddresses: [],
  settleMs: DEFAULT_SETTLE_MS,
});

/** Turns a config's ladder entries into {@link LadderStep}s. */
export function normalizeLadder(ladder: readonly LadderStepConfig[]): LadderStep[] {
  return ladder.map((step) => (typeof step === 'string' ? { action: step } : { ...step }));
}

/**
 * Merges the defaults, `config.defaults` and `config.interfaces[iface]` (later wins, field by
 * field inside backoff/damping/budget; a given `ladder`, `downOn` or `requiredAddresses`
 * replaces the earlier list) into a fully resolved {@link InterfacePolicy}.
 */
export function resolveInterfacePolicy(config: PolicyConfig | undefined, iface: string,
  extra?: InterfacePolicyConfig): InterfacePolicy {
  return resolveAt(config, iface, extra, `policy.interfaces.${iface}`);
}

function resolveAt(config: PolicyConfig | undefined, iface: string | null, extra: InterfacePolicyConfig | undefined,
  path: string): InterfacePolicy {
  const layers = [config?.defaults, iface === null ? undefined : config?.interfaces?.[iface], extra].filter(
    (l): l is InterfacePolicyConfig => l !== undefined);
  const base = DEFAULT_INTERFACE_POLICY;
  const out: InterfacePolicy = {
    ladder: base.ladder.map((s) => ({ ...s })),
    backoff: { ...base.backoff },
    damping: { ...base.damping },
    budget: { ...base.budget },
    verifyTimeoutMs: base.verifyTimeoutMs,
    actionTimeoutMs: base.actionTimeoutMs,
    downOn: [...base.downOn],
    requiredAddresses: [...base.requiredAddresses],
    settleMs: base.settleMs,
  };
  for (const layer of layers) {
    if (layer.ladder !== undefined) out.ladder = normalizeLadder(layer.ladder);
    if (layer.backoff !== undefined) Object.assign(out.backoff, definedOnly(layer.backoff));
    if (layer.damping !== undefined) Object.assign(out.damping, definedOnly(layer.damping));
    if (layer.budget !== undefined) Object.assign(out.budget, definedOnly(layer.budget));
    if (layer.verifyTimeoutMs !== undefined) out.verifyTimeoutMs = layer.verifyTimeoutMs;
    if (layer.actionTimeoutMs !== undefined) out.actionTimeoutMs = layer.actionTimeoutMs;
    if (layer.downOn !== undefined) out.downOn = [...layer.downOn];
    if (layer.requiredAddresses !== undefined) out.requiredAddresses = [...layer.requiredAddresses];
    if (layer.settleMs !== undefined) out.settleMs = layer.settleMs;
  }
  validateInterfacePolicy(out, path);
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function bad(path: string, what: string, value: unknown): never {
  throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${path}: ${what} (got ${JSON.stringify(value)})`);
}

function checkNumber(path: string, value: unknown, min: number, integer = false): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    bad(path, `must be a finite ${integer ? 'integer' : 'number'} >= ${min}`, value);
  }
}

/**
 * Checks a resolved interface policy; throws NETHEAL_ERR_INVALID_OPTION naming the field
 * (e.g. `policy.interfaces.eth0.damping.reuseThreshold`).
 */
export function validateInterfacePolicy(p: InterfacePolicy, path = 'policy'): void {
  if (!Array.isArray(p.ladder)) bad(`${path}.ladder`, 'must be an array', p.ladder);
  p.ladder.forEach((step, i) => {
    const at = `${path}.ladder[${i}]`;
    if (typeof step.action !== 'string' || step.action === '') bad(`${at}.action`, 'must be a non-empty string', step.action);
    if (step.timeoutMs !== undefined) checkNumber(`${at}.timeoutMs`, step.timeoutMs, 1);
    if (step.verifyTimeoutMs !== undefined) checkNumber(`${at}.verifyTimeoutMs`, step.verifyTimeoutMs, 0);
    if (step.afterMs !== undefined) checkNumber(`${at}.afterMs`, step.afterMs, 0);
    if (step.fixes !== undefined) {
      if (!Array.isArray(step.fixes)) bad(`${at}.fixes`, 'must be an array', step.fixes);
      step.fixes.forEach((c, j) => {
        if (!FAULT_CLASSES.includes(c)) bad(`${at}.fixes[${j}]`, `must be one of ${FAULT_CLASSES.join(', ')}`, c);
      });
    }
  });
  checkNumber(`${path}.backoff.initialMs`, p.backoff.initialMs, 0);
  checkNumber(`${path}.backoff.maxMs`, p.backoff.maxMs, 0);
  checkNumber(`${path}.backoff.multiplier`, p.backoff.multiplier, 1);
  checkNumber(`${path}.backoff.resetAfterMs`, p.backoff.resetAfterMs, 0);
  checkNumber(`${path}.damping.penaltyPerFlap`, p.damping.penaltyPerFlap, 0);
  checkNumber(`${path}.damping.halfLifeMs`, p.damping.halfLifeMs, 1);
  checkNumber(`${path}.damping.suppressThreshold`, p.damping.suppressThreshold, 0);
  checkNumber(`${path}.damping.reuseThreshold`, p.damping.reuseThreshold, 0);
  checkNumber(`${path}.damping.maxSuppressMs`, p.damping.maxSuppressMs, 0);
  if (p.damping.reuseThreshold >= p.damping.suppressThreshold) {
    bad(`${path}.damping.reuseThreshold`, `must be below suppressThreshold (${p.damping.suppressThreshold})`,
      p.damping.reuseThreshold);
  }
  checkNumber(`${path}.budget.maxActions`, p.budget.maxActions, 0, true);
  checkNumber(`${path}.budget.windowMs`, p.budget.windowMs, 1);
  checkNumber(`${path}.verifyTimeoutMs`, p.verifyTimeoutMs, 0);
  checkNumber(`${path}.actionTimeoutMs`, p.actionTimeoutMs, 1);
  checkNumber(`${path}.settleMs`, p.settleMs, 0);
  if (!Array.isArray(p.downOn)) bad(`${path}.downOn`, 'must be an array', p.downOn);
  p.downOn.forEach((kind, i) => {
    if (!DOWN_EVIDENCE_KINDS.includes(kind)) {
      bad(`${path}.downOn[${i}]`, `must be one of ${DOWN_EVIDENCE_KINDS.join(', ')}`, kind);
    }
  });
  if (!Array.isArray(p.requiredAddresses) || p.requiredAddresses.some((a) => typeof a !== 'string')) {
    bad(`${path}.requiredAddresses`, 'must be an array of address strings', p.requiredAddresses);
  }
}

/** Checks the engine-wide part of a {@link PolicyConfig} (per-interface parts are checked on resolve). */
export function validatePolicyConfig(config: PolicyConfig | undefined): void {
  if (config === undefined) return;
  if (config.graceMs !== undefined) checkNumber('policy.graceMs', config.graceMs, 0);
  resolveAt(config, null, undefined, 'policy.defaults');
  for (const name of Object.keys(config.interfaces ?? {})) resolveInterfacePolicy(config, name);
  for (const [group, g] of Object.entries(config.groups ?? {})) {
    if (g.iface !== undefined && typeof g.iface !== 'string') bad(`policy.groups.${group}.iface`, 'must be a string', g.iface);
  }
}
