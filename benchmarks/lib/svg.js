'use strict';
/**
 * Minimal SVG charts for benchmarks/RESULTS.md and docs/benchmarks.md: empirical CDFs on a log-scale
 * x axis, and grouped horizontal bars on a log scale. Plain strings, no dependency.
 */

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const W = 720;
const H = 380;
const M = { left: 70, right: 20, top: 40, bottom: 60 };

function esc(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function logTicks(min, max) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

function fmtTick(v) {
  return v >= 1 ? String(v) : v.toPrecision(1).replace(/^0\./, '.');
}

function frame(title, xLabel, yLabel, body) {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    yLabel ? `<text x="16" y="${(M.top + H - M.bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(M.top + H - M.bottom) / 2})">${esc(yLabel)}</text>` : '',
    ...body,
    '</svg>',
  ].join('\n');
}

/** series: [{ name, points: [[fraction, valueMs], ...] }] -> SVG (x log scale, ms). */
function cdfChart({ title, xLabel = 'latency (ms, log scale)', series }) {
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const ticks = logTicks(min, max);
  const lo = Math.log10(ticks[0]);
  const hi = Math.log10(ticks[ticks.length - 1]);
  const x = (v) => M.left + ((Math.log10(Math.max(v, ticks[0])) - lo) / (hi - lo || 1)) * (W - M.left - M.right);
  const y = (f) => H - M.bottom - f * (H - M.top - M.bottom);
  const body = [];
  for (const t of ticks) body.push(`<line x1="${x(t)}" y1="${y(0)}" x2="${x(t)}" y2="${y(1)}" stroke="#ddd"/><text x="${x(t)}" y="${y(0) + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 1]) body.push(`<line x1="${M.left}" y1="${y(f)}" x2="${W - M.right}" y2="${y(f)}" stroke="#eee"/><text x="${M.left - 6}" y="${y(f) + 4}" text-anchor="end">${f}</text>`);
  series.forEach((s, i) => {
    const d = s.points.filter((p) => p[1] > 0).map((p, j) => `${j ? 'L' : 'M'}${x(p[1]).toFixed(1)},${y(p[0]).toFixed(1)}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`);
    body.push(`<rect x="${M.left + 10}" y="${M.top + 6 + i * 18}" width="12" height="3" fill="${COLORS[i % COLORS.length]}"/><text x="${M.left + 28}" y="${M.top + 11 + i * 18}">${esc(s.name)}</text>`);
  });
  return frame(title, xLabel, 'fraction of events', body);
}

/** categories: [label], series: [{ name, values: [number|null] }] -> grouped horizontal bars, log x. */
function barChart({ title, xLabel, categories, series }) {
  const top = 40 + series.length * 16;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v > 0);
  const ticks = logTicks(Math.min(...values), Math.max(...values));
  const lo = Math.log10(ticks[0]);
  const hi = Math.log10(ticks[ticks.length - 1]);
  const left = 190;
  const x = (v) => left + ((Math.log10(Math.max(v, ticks[0])) - lo) / (hi - lo || 1)) * (W - left - M.right);
  const rowH = (H - top - M.bottom) / categories.length;
  const barH = Math.min(14, (rowH - 6) / series.length);
  const body = [];
  for (const t of ticks) body.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${H - M.bottom}" stroke="#ddd"/><text x="${x(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  categories.forEach((c, ci) => {
    const rowTop = top + ci * rowH + 3;
    body.push(`<text x="${left - 8}" y="${rowTop + (series.length * barH) / 2 + 4}" text-anchor="end">${esc(c)}</text>`);
    series.forEach((s, si) => {
      const v = s.values[ci];
      const y = rowTop + si * barH;
      if (v === null || v === undefined || !(v > 0)) {
        const note = s.missing?.[ci];
        if (note) body.push(`<text x="${left + 4}" y="${y + barH - 3}" font-size="10" fill="${COLORS[si % COLORS.length]}">${esc(note)}</text>`);
        return;
      }
      body.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="${barH - 1}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.name}: ${v}`)}</title></rect>`);
    });
  });
  series.forEach((s, i) => body.push(`<rect x="${left}" y="${34 + i * 16}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${left + 16}" y="${43 + i * 16}">${esc(s.name)}</text>`));
  return frame(title, xLabel, '', body);
}

module.exports = { cdfChart, barChart };
