#!/usr/bin/env node
'use strict';
/**
 * The one benchmark runner: `npm run bench [-- --quick] [names...]`.
 *
 * Loads every benchmarks/*.bench.js (or only the named ones: `path-loss` or
 * `path-loss.bench.js`), runs them one after another, writes benchmarks/results/<name>.json
 * (with the machine it ran on) and regenerates benchmarks/RESULTS.md from every results JSON
 * present, including results written by other means. `--report` only regenerates RESULTS.md.
 * Needs root (the benchmarks build network-namespace labs).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const DIR = __dirname;
const RESULTS = path.join(DIR, 'results');
const REPORT = path.join(DIR, 'RESULTS.md');

function machine() {
  let kernel = os.release();
  try { kernel = execFileSync('uname', ['-srvm'], { encoding: 'utf8' }).trim(); } catch { /* os.release() will do */ }
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel,
    node: process.version,
    date: new Date().toISOString(),
  };
}

function parseArgs(argv) {
  const options = { quick: false, report: false, names: [] };
  for (const arg of argv) {
    if (arg === '--quick') options.quick = true;
    else if (arg === '--report') options.report = true;
    else if (arg === '--help' || arg === '-h') options.help = true;
    else if (arg.startsWith('-')) throw usage(`unknown option ${arg}`);
    else options.names.push(arg.replace(/\.bench\.js$/, ''));
  }
  return options;
}

function usage(message) {
  const error = new Error(`${message}\nusage: node benchmarks/run.js [--quick] [--report] [name...]`);
  error.exitCode = 2;
  return error;
}

function benchFiles() {
  return fs.readdirSync(DIR).filter((f) => f.endsWith('.bench.js')).sort();
}

function fmt(value) {
  if (value === null || value === undefined) return 'n/a';
  if (typeof value === 'number') return String(Number(value.toPrecision(6)));
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Flattens nested ratio objects to dotted keys. */
function flatten(obj, prefix = '', out = []) {
  for (const [key, value] of Object.entries(obj ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) flatten(value, name, out);
    else out.push([name, value]);
  }
  return out;
}

const cell = (text) => fmt(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * SVG plots from the results present: latency CDFs (netheal against each peer) and the lab's
 * fault timeline. Returns [{ file, title }] for the markdown; files go to benchmarks/results/.
 */
function renderPlots(results) {
  const { cdfChart, barChart } = require('./lib/svg');
  const byName = Object.fromEntries(results.filter((r) => !r.broken).map((r) => [r.name, r]));
  const plots = [];
  const write = (file, title, svg) => {
    fs.writeFileSync(path.join(RESULTS, file), `${svg}\n`);
    plots.push({ file, title });
  };
  const series = (entries) => entries.filter(([, v]) => v?.cdf?.length).map(([name, v]) => ({ name, points: v.cdf }));
  const veth = byName['detection-latency']?.metrics?.veth?.latencyMs;
  if (veth) {
    const s = series([['netheal (LinkMonitor)', veth.netheal], ['ip -ts monitor link', veth.ip], ['npm netlink', veth.netlink]]);
    if (s.length) write('detection-latency-veth.svg', 'veth carrier loss -> event', cdfChart({ title: 'veth carrier loss: request -> event in the observer', series: s }));
  }
  const tap = byName['detection-latency']?.metrics?.tap?.latencyMs;
  if (tap) {
    const s = series([['netheal, carrier-sync 20 ms', tap.nethealSync20], ['netheal, carrier-sync 100 ms', tap.nethealSync100], ['ip -ts monitor link', tap.ip], ['npm netlink', tap.netlink]]);
    if (s.length) write('detection-latency-tap.svg', 'tap carrier loss (linkwatch delayed)', cdfChart({ title: 'tap carrier loss 0.2 s after another (non-urgent linkwatch)', series: s }));
  }
  const pathLoss = byName['path-loss'];
  if (pathLoss?.metrics?.interval10ms?.cdf) {
    write('path-loss.svg', 'path loss at 10 ms x 3', cdfChart({
      title: 'path loss (blackhole) -> target down, 10 ms x 3',
      series: series([['netheal Prober', pathLoss.metrics.interval10ms], ['FRR bfdd', pathLoss.peers?.bfdd], ['fping -l -p 10 -t 10', pathLoss.peers?.fping]]),
    }));
  }
  const failover = byName.failover;
  if (failover?.metrics?.netheal || failover?.peers?.keepalived) {
    const n = failover.metrics.netheal ?? {};
    const k = failover.peers.keepalived ?? {};
    const s = series([
      ['netheal, carrier loss', n.carrier], ['netheal, first-hop loss', n.firstHop], ['netheal, loss beyond the first hop', n.beyond],
      ['keepalived, carrier loss', k.carrier], ['keepalived, first-hop loss', k.firstHop], ['keepalived (ping far), loss beyond', k.beyond],
    ]);
    if (s.length) write('failover.svg', 'uplink failover: fault -> first new TCP connection through the backup', cdfChart({ title: 'uplink failover: fault -> first new TCP connection through the backup', series: s }));
  }
  const classes = byName.recovery?.metrics?.classes;
  if (classes) {
    const labels = { carrierLoss: 'carrier loss', blackhole: 'path blackhole', addressLoss: 'address loss', defaultRouteLoss: 'default-route loss', nicCarrierLoss: 'NIC (tap) carrier loss', flapStorm: 'flap storm' };
    const keys = Object.keys(labels).filter((k) => classes[k]);
    const pick = (k, who, what) => classes[k]?.[who]?.[what]?.median ?? null;
    write('recovery-timeline.svg', 'lab faults: detect and recover', barChart({
      title: 'lab faults: time to detect and to recover (median, ms, log scale)',
      xLabel: 'milliseconds (log scale)',
      categories: keys.map((k) => labels[k]),
      series: [
        { name: 'netheal detect', values: keys.map((k) => pick(k, 'netheal', 'detectedMs')) },
        { name: 'netheal recover', values: keys.map((k) => pick(k, 'netheal', 'recoveredMs')) },
        {
          name: 'bash loop detect (ping every 30 s; mean)', values: keys.map((k) => classes[k]?.bashLoop?.expected30s?.detectMeanMs ?? null),
          missing: keys.map((k) => (k === 'nicCarrierLoss' ? 'not applicable (nothing to ping on the tap)' : classes[k]?.bashLoop ? 'never detected' : null)),
        },
        { name: 'bash loop recover (ping every 30 s; mean)', values: keys.map((k) => classes[k]?.bashLoop?.expected30s?.healthyMeanMs ?? null) },
      ],
    }));
  }
  return plots;
}

function renderReport() {
  const results = fs.existsSync(RESULTS)
    ? fs.readdirSync(RESULTS).filter((f) => f.endsWith('.json')).sort().map((f) => {
      try {
        return { file: f, ...JSON.parse(fs.readFileSync(path.join(RESULTS, f), 'utf8')) };
      } catch (error) {
        return { file: f, name: f.replace(/\.json$/, ''), broken: error.message };
      }
    })
    : [];
  const lines = ['# Benchmark results', '', 'Generated by `node benchmarks/run.js` from benchmarks/results/*.json. Every benchmark measures netheal and its peers in the same run; read the ratios, not the absolute figures, across machines.', ''];
  const machines = new Map();
  for (const r of results) if (r.machine) machines.set(JSON.stringify({ ...r.machine, date: undefined, note: undefined }), r.machine);
  lines.push('## Machine', '');
  if (machines.size === 0) lines.push('(no machine recorded)', '');
  for (const m of machines.values()) {
    const which = results.filter((r) => r.machine && JSON.stringify({ ...r.machine, date: undefined, note: undefined }) === JSON.stringify({ ...m, date: undefined, note: undefined })).map((r) => r.name);
    lines.push(`- ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node} (${which.join(', ')})`);
  }
  lines.push('');
  for (const r of results) if (r.machine?.date) lines.push(`- ${r.name}: run ${r.machine.date}${r.quick ? ' (quick mode)' : ''}`);
  lines.push('', '## netheal against its peers', '', '| benchmark | comparison or target | measured | target | pass |', '|---|---|---:|---:|:---:|');
  for (const r of results) {
    if (r.broken) { lines.push(`| ${r.name} | unreadable results file: ${cell(r.broken)} | | | |`); continue; }
    for (const [name, value] of flatten(r.ratios)) lines.push(`| ${r.name} | ratio ${cell(name)} | ${cell(value)} | | |`);
    // A target whose contender could not run (say, a peer tool not installed) is skipped: neither met nor failed.
    for (const t of r.targets ?? []) lines.push(`| ${r.name} | ${cell(t.what)}${t.skipped ? ` (${cell(t.skipped)})` : ''} | ${cell(t.measured)} | ${cell(t.target)} | ${t.skipped ? 'skipped' : t.pass ? 'pass' : '**FAIL**'} |`);
  }
  lines.push('');
  const plots = renderPlots(results);
  if (plots.length) {
    lines.push('## Plots', '');
    for (const plot of plots) lines.push(`![${plot.title}](results/${plot.file})`, '');
  }
  for (const r of results) {
    if (r.broken) continue;
    lines.push(`## ${r.name}`, '');
    if (r.description) lines.push(r.description, '');
    lines.push(r.markdown ?? '(no markdown section)', '');
  }
  fs.writeFileSync(REPORT, `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.help) {
    console.log('usage: node benchmarks/run.js [--quick] [--report] [name...]');
    return 0;
  }
  if (options.report) {
    renderReport();
    console.log(`wrote ${path.relative(process.cwd(), REPORT)}`);
    return 0;
  }
  const available = benchFiles();
  const wanted = options.names.length === 0 ? available : options.names.map((n) => {
    const file = `${n}.bench.js`;
    if (!available.includes(file)) throw usage(`no benchmark named ${n} (have: ${available.map((f) => f.replace(/\.bench\.js$/, '')).join(', ')})`);
    return file;
  });
  fs.mkdirSync(RESULTS, { recursive: true });
  const info = machine();
  let failed = 0;
  for (const file of wanted) {
    const bench = require(path.join(DIR, file));
    const name = bench.name ?? file.replace(/\.bench\.js$/, '');
    const started = process.hrtime.bigint();
    process.stderr.write(`bench ${name}${options.quick ? ' (quick)' : ''}...\n`);
    try {
      const result = await bench.run({ quick: options.quick });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const out = { description: bench.description, ...result, name, quick: options.quick, durationS: Number(seconds.toFixed(1)), machine: { ...info, date: new Date().toISOString(), ...(result.machine ?? {}) } };
      fs.writeFileSync(path.join(RESULTS, `${name}.json`), `${JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
      const skipped = (result.targets ?? []).filter((t) => t.skipped);
      const misses = (result.targets ?? []).filter((t) => !t.pass && !t.skipped);
      const counted = (result.targets ?? []).length - skipped.length;
      process.stderr.write(`bench ${name}: done in ${seconds.toFixed(1)} s, ${counted - misses.length}/${counted} targets met${skipped.length ? `, ${skipped.length} skipped` : ''}\n`);
      for (const t of misses) process.stderr.write(`  missed: ${t.what}: ${fmt(t.measured)} (target ${fmt(t.target)})\n`);
      for (const t of skipped) process.stderr.write(`  skipped: ${t.what}: ${t.skipped}\n`);
    } catch (error) {
      failed++;
      process.stderr.write(`bench ${name} failed: ${error.stack ?? error}\n`);
    }
  }
  renderReport();
  process.stderr.write(`wrote ${path.relative(process.cwd(), REPORT)}\n`);
  return failed > 0 ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exitCode = error.exitCode ?? 1;
});
