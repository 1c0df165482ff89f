'use strict';
/**
 * Issue #15: the daemon's resident memory, idle with gateway probes and after a flap storm,
 * beside an empty Node process (`node -e 'setInterval(()=>{},1000)'`) sampled at the same
 * moments.
 *
 * One lab (client and router namespaces, one veth, the client's address and default route
 * configured by ifupdown with the lab's own interfaces file, as in recovery.bench.js). Per
 * round and variant: `node [execArgv] lib/daemon.js --config FILE` watching uplink0 with
 * default probe settings (1 s gateway probe); after "monitoring is live" plus 3 s, VmRSS is
 * sampled every second for the idle window (median reported); then 25 far-end flaps 40 ms
 * apart (the recovery lab's storm), the far end up again, 5 s to settle, and VmRSS sampled
 * again for 5 s (median; the high-water mark VmHWM too). Variants run one at a time, in
 * alternating order per round, so a loaded machine's drift hits them alike.
 *
 * Variants: `before` (with NETHEAL_MEMORY_BEFORE_LIB=DIR: a build of main's lib/ copied inside
 * the checkout, `node DIR/daemon.js`), `noFlags` (this build, `node lib/daemon.js`) and
 * `shipped` (this build with DAEMON_NODE_FLAGS, as the unit and the lab start it), plus any
 * given in NETHEAL_MEMORY_VARIANTS as JSON {"name": {"execArgv": [...], "env": {...}}}.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { createInterface } = require('node:readline');
const { Lab, pacedFlaps } = require('../lib/lab/lab');
const { LinkControl } = require('../lib/kernel/link-control');
const { summarize, round } = require('./lib/stats');
const { DAEMON_NODE_FLAGS } = require('../lib/daemon/node-flags');

const DAEMON = path.join(__dirname, '..', 'lib', 'daemon.js');
const GW = '192.0.2.1';
const IF = 'uplink0';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (kib) => Number((kib / 1024).toFixed(1));

function status(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** Samples VmRSS of every pid once a second for `seconds`; the median per pid. */
async function sampleFor(pids, seconds) {
  const samples = pids.map(() => []);
  for (let i = 0; i < seconds; i++) {
    pids.forEach((pid, k) => samples[k].push(status(pid)));
    await sleep(1000);
  }
  return samples.map((s) => ({
    rssKiB: summarize(s.map((x) => x.rss)).median,
    anonKiB: summarize(s.map((x) => x.anon)).median,
    fileKiB: summarize(s.map((x) => x.file)).median,
    hwmKiB: s[s.length - 1].hwm,
  }));
}

async function buildLab(lab, dir) {
  const client = await lab.addNamespace('client');
  const router = await lab.addNamespace('router');
  await lab.addVeth({ ns: client, name: IF }, { ns: router, name: 'down0' });
  await lab.addAddress(router, 'down0', '192.0.2.1/24');
  const interfaces = path.join(dir, 'interfaces');
  const stateDir = path.join(dir, 'ifstate');
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(interfaces, `iface ${IF} inet static\n    address 192.0.2.2/24\n    gateway ${GW}\n`);
  await lab.exec(client, 'ifup', ['-i', interfaces, `--state-dir=${stateDir}`, '--no-scripts', IF]);
  return { client, router, interfaces, stateDir };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function oneRun({ ns, control, dir, execArgv, env = {}, daemon: daemonPath = DAEMON, idleSeconds, name }) {
  const runDir = fs.mkdtempSync(path.join(dir, `${name}-`));
  const config = {
    netns: Lab.path(ns.client),
    interfaces: { [IF]: { probe: { targets: ['gateway'] } } },
    managers: { ifupdown: { interfaces: ns.interfaces, stateDir: ns.stateDir, options: ['--no-scripts'] }, networkScriptsDir: runDir },
    status: { socket: path.join(runDir, 'status.sock') },
  };
  const configPath = path.join(runDir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  const daemon = spawn(process.execPath, [...execArgv, daemonPath, '--config', configPath, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...env, STATE_DIRECTORY: path.join(runDir, 'state') },
  });
  const empty = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
  try {
    let stderr = '';
    daemon.stderr.on('data', (c) => { stderr += c; });
    const lines = [];
    const live = new Promise((resolve) => {
      createInterface({ input: daemon.stdout }).on('line', (line) => {
        lines.push(line);
        if (/monitoring is live/.test(line)) resolve(true);
      });
      daemon.once('exit', () => resolve(false));
      setTimeout(() => resolve(false), 20000);
    });
    if (!(await live)) throw new Error(`the daemon did not become live: ${stderr}`);
    await sleep(3000);
    const [idle, emptyIdle] = await sampleFor([daemon.pid, empty.pid], idleSeconds);
    const before = lines.length;
    await pacedFlaps(control, 'down0', 25, 40);
    await control.setAdmin('down0', true);
    await sleep(5000);
    const [storm, emptyStorm] = await sampleFor([daemon.pid, empty.pid], 5);
    const healthyAgain = lines.slice(before).some((l) => /healthy/.test(l));
    return { idle, storm, emptyIdle, emptyStorm, stormLogLines: lines.length - before, healthyAgain };
  } finally {
    await stopChild(daemon);
    await stopChild(empty);
  }
}

function variants() {
  const base = {};
  // The build before this change (a copy of main's lib/), when given: the same lab, same run.
  if (process.env.NETHEAL_MEMORY_BEFORE_LIB) base.before = { execArgv: [], daemon: path.resolve(process.env.NETHEAL_MEMORY_BEFORE_LIB, 'daemon.js') };
  base.noFlags = { execArgv: [] };
  base.shipped = { execArgv: [...DAEMON_NODE_FLAGS] };
  if (process.env.NETHEAL_MEMORY_VARIANTS) Object.assign(base, JSON.parse(process.env.NETHEAL_MEMORY_VARIANTS));
  return base;
}

async function run({ quick }) {
  const rounds = quick ? 2 : 3;
  const idleSeconds = quick ? 8 : 20;
  const loadBefore = os.loadavg();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-memory-bench-'));
  const lab = Lab.create();
  const all = variants();
  const names = Object.keys(all);
  const per = Object.fromEntries(names.map((n) => [n, []]));
  let control;
  try {
    const ns = await buildLab(lab, dir);
    control = new LinkControl({ netns: Lab.path(ns.router) });
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        process.stderr.write(`  memory: round ${r + 1}/${rounds} ${name}\n`);
        per[name].push(await oneRun({ ns, control, dir, ...all[name], idleSeconds, name }));
      }
    }
  } finally {
    if (control) control.close();
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const metrics = { rounds, idleSeconds, variants: {} };
  const rows = [];
  const targets = [];
  for (const name of names) {
    const runs = per[name];
    const pick = (f) => round(summarize(runs.map(f)), 1);
    const m = {
      build: all[name].daemon ? 'before' : 'this',
      execArgv: all[name].execArgv,
      env: all[name].env ?? {},
      idleRssMiB: pick((x) => x.idle.rssKiB / 1024),
      idleAnonMiB: pick((x) => x.idle.anonKiB / 1024),
      stormRssMiB: pick((x) => x.storm.rssKiB / 1024),
      stormAnonMiB: pick((x) => x.storm.anonKiB / 1024),
      highWaterMiB: pick((x) => x.storm.hwmKiB / 1024),
      emptyNodeRssMiB: pick((x) => x.emptyIdle.rssKiB / 1024),
      samples: runs.map((x) => ({ idle: mib(x.idle.rssKiB), storm: mib(x.storm.rssKiB), hwm: mib(x.storm.hwmKiB), emptyNode: mib(x.emptyIdle.rssKiB), healthyAgain: x.healthyAgain })),
    };
    metrics.variants[name] = m;
    const how = [...Object.entries(all[name].env ?? {}).map(([k, v]) => `${k}=${v}`), ...all[name].execArgv].join(' ') || '(none)';
    const build = all[name].daemon ? 'before (main)' : 'this build';
    rows.push(`| ${name} | ${build} | ${how} | ${m.idleRssMiB.median} (${m.idleRssMiB.min}-${m.idleRssMiB.max}) | ${m.stormRssMiB.median} (${m.stormRssMiB.min}-${m.stormRssMiB.max}) | ${m.highWaterMiB.max} | ${m.emptyNodeRssMiB.median} |`);
  }
  const shipped = metrics.variants.shipped;
  targets.push({ what: 'daemon RSS idle with gateway probes (median of rounds)', target: '<= 60 MiB', measured: `${shipped.idleRssMiB.median} MiB`, pass: shipped.idleRssMiB.median <= 60 });
  targets.push({ what: 'daemon RSS after a 25-flap storm (median of rounds)', target: '<= 64 MiB', measured: `${shipped.stormRssMiB.median} MiB`, pass: shipped.stormRssMiB.median <= 64 });
  const markdown = [
    `Daemon VmRSS (MiB; median of ${rounds} rounds, range in brackets), each round's variants in alternating order, an empty \`node -e 'setInterval(()=>{},1000)'\` sampled beside each run. Idle: median of ${idleSeconds} 1-s samples after live + 3 s; storm: 25 far-end flaps 40 ms apart, up again, 5 s, then the median of 5 samples.`,
    '',
    '| variant | lib | environment and node flags | idle | after storm | high water (max) | empty node |',
    '|---|---|---|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
  return { name: 'memory', metrics, targets, markdown, machine: { loadAverage: { start: loadBefore.map((v) => Number(v.toFixed(2))), end: os.loadavg().map((v) => Number(v.toFixed(2))) } } };
}

module.exports = {
  name: 'memory',
  description: 'Issue #15: the daemon\'s resident memory idle (1 s gateway probe) and after a flap storm, beside an empty Node process',
  run,
};
