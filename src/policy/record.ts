/**
 * What the engine keeps per watched interface and probe group, shared by the health judgment
 * (engine.ts) and the episode runner (episode.ts). Internal: not exported by the library.
 */
import type { StepResult } from './actions';
import type { Backoff } from './backoff';
import type { ActionBudget } from './budget';
import type { TimerHandle } from './clock';
import { BUILTIN_ACTIONS, InterfacePolicy } from './config';
import type { FlapDamper } from './damping';
import type { Fault } from './fault';
import type { GroupEvidence, HealthState, InterfaceEvidence, Problems } from './health';
import type { ActionEvent, AlertReason, LadderPhase, WaitReason } from './engine-events';

/** Waits that park an episode until the evidence changes. */
export const PARKED: readonly WaitReason[] = ['intent', 'held', 'admin-down', 'alert-only'];

export interface IfaceRecord {
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

export interface GroupRecord {
  name: string;
  evidence: GroupEvidence;
  state: HealthState;
  since: number;
  reasons: string[];
}

export type ClimbOutcome = 'verified' | 'exhausted' | 'interrupted' | 'resolved' | 'cancelled' | 'reclassified';

/** Built-in actions that take the link down themselves unless their executor says otherwise. */
export const DISRUPTIVE_BY_DEFAULT: readonly string[] = [BUILTIN_ACTIONS.LINK_BOUNCE, BUILTIN_ACTIONS.MANAGER_REAPPLY];

export function reasonsOf(p: Problems): string[] {
  return [...p.hard, ...p.soft];
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function validResult(r: unknown): r is StepResult {
  return typeof r === 'object' && r !== null
    && ['ok', 'failed', 'skipped'].includes((r as { status?: unknown }).status as string);
}
