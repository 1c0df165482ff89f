/**
 * The action budget: at most N actions in any sliding window.
 */
import type { BudgetConfig } from './config';

/**
 * Counts actions in a sliding window: an action taken at `t` uses the budget while
 * `now < t + windowMs`. When `maxActions` are in the window the budget is exhausted and
 * the engine only alerts until the oldest action rolls out of the window.
 */
export class ActionBudget {
  private readonly config: BudgetConfig;
  private times: number[] = [];

  /** @param config actions per window and window length */
  constructor(config: BudgetConfig) {
    this.config = { ...config };
  }

  private prune(nowMs: number): void {
    const { windowMs } = this.config;
    while (this.times.length > 0 && (this.times[0] as number) + windowMs <= nowMs) this.times.shift();
  }

  /** Actions inside the window at `nowMs`. */
  used(nowMs: number): number {
    this.prune(nowMs);
    return this.times.length;
  }

  /** Actions still allowed at `nowMs`. */
  remaining(nowMs: number): number {
    return Math.max(0, this.config.maxActions - this.used(nowMs));
  }

  /** Whether one more action is allowed at `nowMs`. */
  available(nowMs: number): boolean {
    return this.remaining(nowMs) > 0;
  }

  /**
   * When the next action becomes allowed: null if one is allowed now, `Infinity` if never
   * (`maxActions` 0), else the time the oldest counted action leaves the window.
   */
  nextFreeAtMs(nowMs: number): number | null {
    if (this.available(nowMs)) return null;
    if (this.config.maxActions === 0) return Infinity;
    const oldestCounted = this.times[this.times.length - this.config.maxActions] as number;
    return oldestCounted + this.config.windowMs;
  }

  /** Counts an action taken at `nowMs`. */
  record(nowMs: number): void {
    this.prune(nowMs);
    this.times.push(nowMs);
  }

  /** Times (clock ms) of the actions that still count at `nowMs`, oldest first. */
  spent(nowMs: number): number[] {
    this.prune(nowMs);
    return [...this.times];
  }

  /** Counts earlier actions (clock ms), e.g. carried over a reload or a restart. */
  restore(times: readonly number[]): void {
    this.times = [...this.times, ...times.filter((t) => Number.isFinite(t))].sort((a, b) => a - b);
  }

  /** Returns an action counted at `atMs` (one that turned out not to apply). */
  refund(atMs: number): void {
    const i = this.times.lastIndexOf(atMs);
    if (i >= 0) this.times.splice(i, 1);
  }
}
