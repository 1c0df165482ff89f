'use strict';
/** Small statistics helpers for the benchmarks (values in any unit, plain numbers). */

function sorted(values) {
  return [...values].sort((a, b) => a - b);
}

/** Nearest-rank percentile (p in 0..100) of a sorted array. */
function percentileSorted(s, p) {
  if (s.length === 0) return null;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** median, p90, p99, max, min, mean and count of `values`; nulls when empty. */
function summarize(values) {
  const s = sorted(values);
  const n = s.length;
  const mean = n === 0 ? null : s.reduce((a, b) => a + b, 0) / n;
  let median = null;
  if (n > 0) median = n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return {
    count: n,
    min: n ? s[0] : null,
    median,
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    max: n ? s[n - 1] : null,
    mean,
  };
}

/** Rounds every number of a summary to `digits` decimals (for JSON and tables). */
function round(summary, digits = 3) {
  const out = {};
  for (const [k, v] of Object.entries(summary)) out[k] = typeof v === 'number' && k !== 'count' ? Number(v.toFixed(digits)) : v;
  return out;
}

/**
 * The empirical CDF of `values` as `points` + 1 pairs [fraction, value] (nearest rank),
 * small enough to keep in results JSON and plot.
 */
function cdf(values, points = 100, digits = 4) {
  const s = sorted(values);
  if (s.length === 0) return [];
  const out = [];
  for (let i = 0; i <= points; i++) {
    const fraction = i / points;
    const value = i === 0 ? s[0] : percentileSorted(s, fraction * 100);
    out.push([Number(fraction.toFixed(4)), Number(value.toFixed(digits))]);
  }
  return out;
}

/** a / b rounded, or null when either is missing. */
function ratio(a, b, digits = 3) {
  if (a == null || b == null || b === 0) return null;
  return Number((a / b).toFixed(digits));
}

module.exports = {
  cdf, summarize, percentileSorted, round, ratio };
