/**
 * Time and randomness for the policy layer, injected so that tests and embedders can drive
 * every decision deterministically. Nothing under src/policy/ reads `Date`, `performance`,
 * `Math.random` or the global timers directly: it goes through a {@link Clock} and a
 * {@link RandomSource}.
 */
import { performance } from 'node:perf_hooks';

/** An opaque timer handle, only meaningful to the {@link Clock} that made it. */
export type TimerHandle = unknown;

/**
 * A monotonic millisecond clock with one-shot timers.
 *
 * `now()` never goes backwards and has no relation to wall-clock time; the policy engine
 * reports all of its times (`atMs`, `nextAttemptAtMs`, ...) on this clock.
 */
export interface Clock {
  /** Monotonic time in milliseconds (may be fractional). */
  now(): number;
  /** Calls `fn` once, `ms` milliseconds from now (negative values count as 0). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer made by this clock's `setTimeout`; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * A source of uniformly distributed numbers in [0, 1), like `Math.random`. The policy uses
 * it only for backoff jitter; inject {@link seededRandom} (or a constant) for reproducible
 * schedules.
 */
export type RandomSource = () => number;

/**
 * The real clock: `performance.now()` (CLOCK_MONOTONIC based) and Node's timers. Timers are
 * `unref()`ed so a policy engine never keeps a process alive by itself; the daemon's sockets
 * do that.
 */
export const systemClock: Clock = Object.freeze({
  now: (): number => performance.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return timer;
  },
  clearTimeout: (handle: TimerHandle): void => {
    clearTimeout(handle as NodeJS.Timeout);
  },
});

/**
 * A deterministic pseudo-random source (mulberry32) for tests and simulations.
 * The same seed always gives the same sequence.
 */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FakeTimer {
  id: number;
  due: number;
  seq: number;
  fn: () => void;
}

/** Lets every pending promise reaction run (one macrotask turn drains the microtask queue). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A manual clock for tests (exported for embedders' tests too). Time moves only when
 * {@link FakeClock.advance} or {@link FakeClock.advanceTo} is called; due timers then fire
 * in order of due time (ties in the order they were set), each at its exact due time, and
 * pending promise reactions are allowed to run between timers so that async code driven by
 * the timers (actions, verifications) progresses as it would in real time.
 *
 * @example
 * const clock = new FakeClock();
 * clock.setTimeout(() => console.log(clock.now()), 250);
 * await clock.advance(1000); // logs 250; clock.now() === 1000 afterwards
 */
export class FakeClock implements Clock {
  private current: number;
  private timers: FakeTimer[] = [];
  private nextId = 1;
  private seq = 0;

  /** @param startMs the initial value of `now()` (default 0). */
  constructor(startMs = 0) {
    this.current = startMs;
  }

  /** The current fake time in milliseconds. */
  now(): number {
    return this.current;
  }

  /** Schedules `fn` at `now() + max(0, ms)`. */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { id: this.nextId++, due: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return { fakeTimerId: timer.id };
  }

  /** Cancels a pending timer. */
  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { fakeTimerId?: number } | null)?.fakeTimerId;
    if (id === undefined) return;
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  /** Number of timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Due time of the earliest pending timer, or null when none is pending. */
  nextDueMs(): number | null {
    const next = this.earliest();
    return next === undefined ? null : next.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (including
   * timers set by fired timers or by the promise reactions they trigger), each at its exact
   * due time. Resolves once time is `start + ms` and pending reactions have settled.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance: ms must be >= 0 (got ${ms})`);
    await this.advanceTo(this.current + ms);
  }

  /** Like {@link FakeClock.advance}, to an absolute time (not before `now()`). */
  async advanceTo(targetMs: number): Promise<void> {
    if (!(targetMs >= this.current)) {
      throw new RangeError(`FakeClock.advanceTo: ${targetMs} is before now (${this.current})`);
    }
    await settle();
    for (;;) {
      const next = this.earliest();
      if (next === undefined || next.due > targetMs) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.current = next.due;
      next.fn();
      await settle();
    }
    this.current = targetMs;
    await settle();
  }

  /** Lets pending promise reactions run without moving time; fires timers already due. */
  async flush(): Promise<void> {
    await this.advanceTo(this.current);
  }

  private earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers) {
      if (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
