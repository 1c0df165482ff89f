'use strict';
/**
 * CLOCK_REALTIME <-> CLOCK_MONOTONIC calibration, for tools that print wall-clock stamps
 * (`ip -ts monitor`). process.hrtime.bigint() is CLOCK_MONOTONIC. Date.now() is CLOCK_REALTIME
 * floored to the millisecond, so we spin until it ticks over: at that instant realtime is an
 * exact millisecond N, and the tick lies between two monotonic reads taken around the two
 * Date.now() calls that saw N-1 and N. The narrowest such bracket out of many ticks gives the
 * offset (realtime - monotonic) within a few hundred nanoseconds.
 */
const { execFileSync } = require('node:child_process');

function calibrateOnce(ticks = 40) {
  let best = null;
  for (let i = 0; i < ticks; i++) {
    let before = process.hrtime.bigint();
    let prev = Date.now();
    for (;;) {
      const h = process.hrtime.bigint();
      const d = Date.now();
      const after = process.hrtime.bigint();
      if (d !== prev) {
        // The tick happened after `before` (taken before the call that still saw prev)
        // and before `after`.
        const width = after - before;
        const mid = before + width / 2n;
        if (best === null || width < best.width) best = { width, offset: BigInt(d) * 1000000n - mid };
        break;
      }
      before = h;
      prev = d;
    }
  }
  return { offsetNs: best.offset, uncertaintyNs: Number(best.width / 2n) };
}

/**
 * Cross-check with python3's clock_gettime_ns (min-gap pair of back-to-back reads), when
 * python3 is installed; null otherwise.
 */
function calibratePython() {
  const script = [
    'import time',
    'best=None',
    'for _ in range(20000):',
    '  a=time.clock_gettime_ns(time.CLOCK_MONOTONIC); r=time.clock_gettime_ns(time.CLOCK_REALTIME); b=time.clock_gettime_ns(time.CLOCK_MONOTONIC)',
    '  if best is None or b-a<best[0]: best=(b-a, r-(a+b)//2)',
    'print(best[1], best[0])',
  ].join('\n');
  try {
    const out = execFileSync('python3', ['-c', script], { encoding: 'utf8', timeout: 10000 }).trim().split(/\s+/);
    return { offsetNs: BigInt(out[0]), uncertaintyNs: Number(out[1]) / 2 };
  } catch {
    return null;
  }
}

/** Best of `rounds` calibrations, with a monotonic stamp of when it was taken. */
function calibrate(rounds = 3) {
  let best = null;
  for (let i = 0; i < rounds; i++) {
    const c = calibrateOnce();
    if (best === null || c.uncertaintyNs < best.uncertaintyNs) best = c;
  }
  return { ...best, atNs: process.hrtime.bigint() };
}

/**
 * Converts a realtime stamp (ns, bigint) to monotonic, interpolating the offset linearly
 * between two calibrations taken before and after the measurement (NTP slew).
 */
function realtimeToMonotonic(realNs, before, after) {
  const approx = realNs - before.offsetNs;
  if (after === undefined || after.atNs === before.atNs) return approx;
  const span = Number(after.atNs - before.atNs);
  const frac = Math.min(1, Math.max(0, Number(approx - before.atNs) / span));
  const offset = before.offsetNs + BigInt(Math.round(Number(after.offsetNs - before.offsetNs) * frac));
  return realNs - offset;
}

module.exports = { calibrate, calibrateOnce, calibratePython, realtimeToMonotonic };
