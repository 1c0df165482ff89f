/**
 * Flap damping after RFC 2439 ("BGP Route Flap Damping"), applied to an interface.
 */
import type { DampingConfig } from './config';

/** What a flap did to the damping state. */
export interface FlapOutcome {
  /** Penalty right after the flap (decayed old penalty + penaltyPerFlap, capped at the ceiling). */
  penalty: number;
  /** Whether the interface is suppressed after this flap. */
  suppressed: boolean;
  /** When the suppression ends (clock ms), or null when not suppressed. */
  suppressedUntilMs: number | null;
}

/** A damper's state, to carry over a reload or a restart. */
export interface DampingState {
  penalty: number;
  updatedAtMs: number;
  suppressedUntilMs: number | null;
  flaps: number;
}

/**
 * Keeps the figure of merit of one interface. Each {@link FlapDamper.flap} adds
 * `penaltyPerFlap` to the penalty decayed as `p * 2^(-dt / halfLifeMs)`. A flap that brings
 * the penalty to `suppressThreshold` or above suppresses; a flap while suppressed keeps it
 * suppressed and pushes the end out. The end of a suppression is computed when the flap
 * happens, exactly: the first whole millisecond at which the decayed penalty is at or below
 * `reuseThreshold`, i.e. `ceil(t + halfLifeMs * log2(p / reuseThreshold))`. The penalty is
 * capped at `reuseThreshold * 2^(maxSuppressMs / halfLifeMs)`, so no suppression lasts longer
 * than `maxSuppressMs` after the last flap (note: if that cap is below `suppressThreshold`,
 * suppression can never happen).
 */
export class FlapDamper {
  private readonly config: DampingConfig;
  private penalty = 0;
  private updatedAt = 0;
  private until: number | null = null;
  private flaps = 0;

  /** @param config penalties, thresholds and half-life */
  constructor(config: DampingConfig) {
    this.config = { ...config };
  }

  /** The penalty cap: `reuseThreshold * 2^(maxSuppressMs / halfLifeMs)`. */
  get ceiling(): number {
    const { reuseThreshold, maxSuppressMs, halfLifeMs } = this.config;
    return reuseThreshold * 2 ** (maxSuppressMs / halfLifeMs);
  }

  /** Number of flaps recorded so far. */
  get flapCount(): number {
    return this.flaps;
  }

  /** The decayed penalty at `nowMs`. */
  penaltyAt(nowMs: number): number {
    if (this.penalty === 0) return 0;
    const dt = Math.max(0, nowMs - this.updatedAt);
    return this.penalty * 2 ** (-dt / this.config.halfLifeMs);
  }

  /** Records a flap at `nowMs`. */
  flap(nowMs: number): FlapOutcome {
    const { penaltyPerFlap, suppressThreshold, reuseThreshold, halfLifeMs } = this.config;
    const wasSuppressed = this.isSuppressed(nowMs);
    const penalty = Math.min(this.ceiling, this.penaltyAt(nowMs) + penaltyPerFlap);
    this.penalty = penalty;
    this.updatedAt = nowMs;
    this.flaps += 1;
    if (wasSuppressed || penalty >= suppressThreshold) {
      const until = penalty > reuseThreshold
        ? Math.ceil(nowMs + halfLifeMs * Math.log2(penalty / reuseThreshold))
        : nowMs;
      this.until = until > nowMs ? until : null;
    }
    return { penalty, suppressed: this.until !== null, suppressedUntilMs: this.until };
  }

  /** The state to carry over a reload or a restart (clock ms). */
  exportState(): DampingState {
    return { penalty: this.penalty, updatedAtMs: this.updatedAt, suppressedUntilMs: this.until, flaps: this.flaps };
  }

  /**
   * Takes over a carried state (clock ms, already moved onto this clock): the higher of the
   * two penalties at `nowMs` and the later suppression win, so a carry-over never shortens
   * a suppression. The ceiling of this damper's settings applies.
   */
  restoreState(state: DampingState, nowMs: number): void {
    const carried = new FlapDamper(this.config);
    carried.penalty = Math.max(0, state.penalty);
    carried.updatedAt = state.updatedAtMs;
    const penalty = Math.min(this.ceiling, Math.max(this.penaltyAt(nowMs), carried.penaltyAt(nowMs)));
    this.penalty = penalty;
    this.updatedAt = nowMs;
    this.flaps += Math.max(0, Math.trunc(state.flaps));
    const until = state.suppressedUntilMs;
    if (until !== null && until > nowMs && (this.until === null || until > this.until)) this.until = until;
  }

  /** Whether the interface is suppressed at `nowMs` (a suppression ends at its due time). */
  isSuppressed(nowMs: number): boolean {
    if (this.until !== null && nowMs >= this.until) this.until = null;
    return this.until !== null;
  }

  /** End of the current suppression (clock ms), or null when not suppressed at `nowMs`. */
  suppressedUntil(nowMs: number): number | null {
    return this.isSuppressed(nowMs) ? this.until : null;
  }
}
