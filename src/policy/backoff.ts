/**
 * Exponential backoff with full jitter, counted in ladder climbs.
 */
import type { RandomSource } from './clock';
import type { BackoffConfig } from './config';

/**
 * Backoff between recovery attempts (ladder climbs). The first attempt after a reset goes
 * at once; before attempt n+1 (n earlier attempts since the reset) the delay is drawn with
 * full jitter: `floor(random() * min(maxMs, initialMs * multiplier^(n-1)))`, an integer in
 * [0, ceiling). {@link Backoff.reset} (called by the engine after `resetAfterMs` of
 * continuous health) starts over.
 */
export class Backoff {
  private readonly config: BackoffConfig;
  private readonly random: RandomSource;
  private count = 0;

  /**
   * @param config ceilings and reset period
   * @param random jitter source in [0, 1); inject a seeded one for deterministic tests
   */
  constructor(config: BackoffConfig, random: RandomSource = Math.random) {
    this.config = { ...config };
    this.random = random;
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.count;
  }

  /**
   * The jitter ceiling before the attempt that follows `previous` earlier attempts:
   * 0 for the first, then `min(maxMs, initialMs * multiplier^(previous-1))`.
   */
  ceilingMs(previous: number): number {
    if (previous <= 0) return 0;
    const { initialMs, maxMs, multiplier } = this.config;
    return Math.min(maxMs, initialMs * multiplier ** (previous - 1));
  }

  /**
   * Draws the delay (ms) to wait before the next attempt, without counting it: 0 for the
   * first attempt after a reset, else an integer in [0, ceiling). Call {@link Backoff.record}
   * when the attempt is actually made.
   */
  draw(): number {
    const ceiling = this.ceilingMs(this.count);
    if (ceiling <= 0) return 0;
    const r = this.random();
    const jitter = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
    return Math.floor(jitter * ceiling);
  }

  /** Counts an attempt as made. */
  record(): void {
    this.count += 1;
  }

  /** {@link Backoff.draw} and {@link Backoff.record} in one: the delay before an attempt counted now. */
  next(): number {
    const delay = this.draw();
    this.record();
    return delay;
  }

  /** Carries attempts over from before a reload or a restart (never fewer than counted now). */
  restore(attempts: number): void {
    if (Number.isInteger(attempts) && attempts > this.count) this.count = attempts;
  }

  /** Forgets earlier attempts: the next one goes at once again. */
  reset(): void {
    this.count = 0;
  }
}
