'use strict';
/**
 * Issue #5: time to detect and time to recover, per fault class, for the netheal daemon and
 * for the common bash loop
 *
 *   while true; do ping -c1 -W1 GW >/dev/null || { ifdown IF; ifup IF; }; sleep 30; done
 *
 * run for real, plus the daemon's idle RSS and CPU.
 *
 * - netheal: runLab() from lib/lab/demo.js (the real daemon as a child, client/router lab,
 *   scripted faults), 3 runs (quick: 1), median per fault class. Its stamps: t0 taken just
 *   before the fault request, detection = the daemon's own monotonic stamp on the down/suspect
 *   record, recovery = its "healthy" record, counted from the cause's removal (carrier loss,
 *   blackhole, flap storm) or from detection (faults the daemon must heal itself).
 * - bash loop: benchmarks/lib/bash-loop.sh (the loop above, with echo stamps) inside the client
 *   namespace of a lab of the same shape (ip netns exec), with Debian ifupdown given the lab's
 *   own interfaces file and state dir (`-i FILE --state-dir=DIR --no-scripts`). The lab's
 *   uplink is configured by that ifup. The loop sleeps 3 s instead of 30 s; every figure is
 *   also given scaled to 30 s: the time a measured interval spent inside the loop's sleeps is
 *   multiplied by 10 (a uniform fault phase, so this is the expected effect of the longer
 *   sleep); ping's 1 s timeout and ifdown/ifup are unchanged. Detection scales only the wait
 *   for the first ping after the fault (the flap storm's 2 s do not stretch: at 30 s that first
 *   ping lands after the storm and fails). Its stamps are bash's
 *   $EPOCHREALTIME (no fork), converted to CLOCK_MONOTONIC with the realtime/monotonic offset
 *   calibrated before and after (lib/clock.js); the receipt stamps of the lines in this process
 *   are kept as a cross-check. Each fault is injected at a random phase of the loop's cycle.
 *   Detection = the loop's failing ping returns; recovery = its ping answers again.
 *   Same fault scripts as runLab; the cause is removed 1.5 s (storm 0.8 s) after detection
 *   plus a random part of the loop's failing cycle. 5 rounds (quick: 1). Besides the scaled
 *   samples, the 30 s loop's mean and worst case are built from the measured parts
 *   (answered ping, failing ping, ifdown+ifup) with a uniform fault phase (loopModel30s).
 *   The loop pinging the gateway never sees a lost default route (the gateway is on-link);
 *   a variant pinging 198.51.100.1 beyond the router is measured for that class.
 * - idle: `node FLAGS lib/daemon.js --config FILE` (FLAGS: the unit's, lib/daemon/node-flags.js) watching one veth with default probe settings
 *   (1 s gateway probe), VmRSS and utime+stime over 60 s (quick: 10 s). The bash loop at the
 *   same 1 s probe rate runs beside it in the same lab for comparison (bash's RSS; CPU of bash
 *   and its reaped children, ping).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { createInterface } = require('node:readline');
const { Lab, pacedFlaps } = require('../lib/lab/lab');
const { runLab } = require('../lib/lab/demo');
const { LinkControl } = require('../lib/kernel/link-control');
const { DAEMON_NODE_FLAGS } = require('../lib/daemon/node-flags');
const { summarize, round, ratio } = require('./lib/stats');
const clock = require('./lib/clock');

const LOOP = path.join(__dirname, 'lib', 'bash-loop.sh');
const DAEMON = path.join(__dirname, '..', 'lib', 'daemon.js');
const GW = '192.0.2.1';
const BEYOND = '198.51.100.1';
const IF = 'uplink0';
const LOOP_SLEEP_S = 3;
const REAL_SLEEP_S = 30;
const VERIFY_MS = 1000; // runLab's verifyTimeoutMs for uplink0 and nic0

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => process.hrtime.bigint();
const msOf = (ns) => Number(ns) / 1e6;
const r1 = (v) => (v === null || v === undefined ? null : Number(v.toFixed(1)));
const r3 = (v) => (v === null || v === undefined ? null : Number(v.toFixed(3)));

/** Fault classes, in runLab's order. `netlink`: an event reports it (target < 5 ms). */
const CLASSES = [
  { key: 'carrierLoss', match: /^carrier loss/, label: 'carrier loss (far end down)', netlink: true, causeRemoved: true },
  { key: 'blackhole', match: /^path blackhole/, label: 'path blackhole (router drops replies)', netlink: false, causeRemoved: true },
  { key: 'addressLoss', match: /^address loss/, label: 'address loss (192.0.2.2 removed)', netlink: true, causeRemoved: false },
  { key: 'defaultRouteLoss', match: /^default-route loss/, label: 'default-route loss', netlink: true, causeRemoved: false },
  { key: 'nicCarrierLoss', match: /^NIC carrier loss/, label: 'NIC carrier loss (tap, linkwatch-delayed)', netlink: false, causeRemoved: false },
  { key: 'defaultRouteLossBeyondGw', nethealKey: 'defaultRouteLoss', match: /^$/, label: 'default-route loss, loop variant pinging 198.51.100.1 beyond the gateway', netlink: true, causeRemoved: false, loopOnly: true },
  { key: 'flapStorm', match: /^flap storm/, label: 'flap storm (25 flaps, 80 ms apart)', netlink: true, causeRemoved: true },
  { key: 'adminDown', match: /^admin-down behind/, label: 'admin-down behind netheal\'s back', netlink: true, causeRemoved: false, nethealOnly: 'the loop pings the gateway: it sees the failure but its ifdown/ifup would heal it; not scripted for the loop' },
  { key: 'beyondFirstHop', match: /^loss beyond the first hop/, label: 'loss beyond the first hop (far target gone)', netlink: false, causeRemoved: true, nethealOnly: 'the loop pinging the gateway never sees it' },
];

const median = (values) => (values.length === 0 ? null : summarize(values).median);

// ---- netheal: runLab ----

async function nethealRuns(runs) {
  const perClass = Object.fromEntries(CLASSES.map((c) => [c.key, { detectedMs: [], recoveredMs: [], detectedBy: [], actions: [], invalid: [], notes: [] }]));
  const okRuns = [];
  for (let i = 0; i < runs; i++) {
    const result = await runLab({ quiet: true });
    okRuns.push(result.ok);
    for (const o of result.outcomes) {
      const c = CLASSES.find((k) => k.match.test(o.fault));
      if (c === undefined) continue;
      const slot = perClass[c.key];
      // A negative detection means the lab matched a record from before t0 (the tap
      // scenario's preparatory drop): not a measurement of this fault.
      if (o.detectedMs !== null && o.detectedMs < 0) slot.invalid.push({ run: i, detectedMs: r3(o.detectedMs), detectedBy: o.detectedBy });
      else if (o.detectedMs !== null) slot.detectedMs.push(o.detectedMs);
      // Counted from a wrong detection record, a "from detection" recovery is no measurement either.
      const wrongOrigin = o.recoveredFrom === 'detection' && o.detectedMs !== null && o.detectedMs < 0;
      if (o.recoveredMs !== null && !wrongOrigin) slot.recoveredMs.push(o.recoveredMs);
      if (o.detectedBy) slot.detectedBy.push(o.detectedBy);
      slot.actions.push(o.actions.join(', '));
      if (o.note) slot.notes.push(o.note);
      slot.recoveredFrom = o.recoveredFrom;
    }
    await sleep(500);
  }
  return { runs, okRuns, perClass };
}

// ---- the bash loop ----

/** The lab both the loop and the idle daemon use: runLab's shape, uplink configured by ifup. */
async function buildLab(lab, dir) {
  const client = await lab.addNamespace('client');
  const router = await lab.addNamespace('router');
  await lab.addVeth({ ns: client, name: IF }, { ns: router, name: 'down0' });
  await lab.addAddress(client, IF, '2001:db8:1::2/64');
  await lab.addAddress(router, 'down0', '192.0.2.1/24');
  await lab.addAddress(router, 'down0', '2001:db8:1::1/64');
  await lab.addAddress(router, 'lo', '198.51.100.1/32');
  const tap = await lab.addTap(client, 'nic0');
  await lab.addAddress(client, 'nic0', '203.0.113.2/24');
  // The lab's own ifupdown configuration: nothing of the host's is read or written.
  const interfaces = path.join(dir, 'interfaces');
  const stateDir = path.join(dir, 'ifstate');
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(interfaces, `iface ${IF} inet static\n    address 192.0.2.2/24\n    gateway ${GW}\n`);
  await lab.exec(client, 'ifup', ['-i', interfaces, `--state-dir=${stateDir}`, '--no-scripts', IF]);
  const routes = await lab.ip(client, 'route', 'show', 'default');
  if (!routes.includes(`via ${GW}`)) throw new Error(`ifup did not configure the lab uplink: ${routes}`);
  return { client, router, tap, interfaces, stateDir };
}

/** The loop's process and its stamped event lines. */
class LoopProcess {
  constructor(lab, ns, { interfaces, stateDir, sleepS, target = GW }) {
    this.events = [];
    this.waiters = [];
    this.stderr = '';
    // Its own process group, so cleanup takes its ping/sleep/ifup children too.
    this.child = lab.spawn(ns, 'bash', [LOOP, target, IF, interfaces, stateDir, String(sleepS)], { detached: true, env: { PATH: process.env.PATH, LC_ALL: 'C' } });
    this.pid = this.child.pid;
    this.child.stderr.on('data', (chunk) => { this.stderr += chunk; });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const recv = now();
      const m = /^(\w+) (\d+)\.(\d{6})$/.exec(line);
      if (!m) return;
      const event = { kind: m[1], realNs: BigInt(m[2]) * 1000000000n + BigInt(m[3]) * 1000n, recv };
      this.events.push(event);
      for (const w of [...this.waiters]) {
        if (w.kind === event.kind && event.recv >= w.after) {
          clearTimeout(w.timer);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    });
  }

  /** The first `kind` line received after monotonic `after`, or null after `timeoutMs`. */
  next(kind, after, timeoutMs) {
    const seen = this.events.find((e) => e.kind === kind && e.recv >= after);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const w = { kind, after, resolve, timer: setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); resolve(null); }, timeoutMs) };
      this.waiters.push(w);
    });
  }

  kill() {
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* already gone */ }
    try { this.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

/** Runs the fault scripts against the loop; returns raw stamps (converted later). */
async function loopRounds({ rounds, dir }) {
  const lab = Lab.create();
  let loop;
  try {
    const { client, router, interfaces, stateDir } = await buildLab(lab, dir);
    const control = new LinkControl({ netns: Lab.path(router) });
    const before = clock.calibrate();
    loop = new LoopProcess(lab, client, { interfaces, stateDir, sleepS: LOOP_SLEEP_S });
    const first = await loop.next('ok', 0n, 10000);
    if (first === null) throw new Error(`the bash loop never saw its gateway answer: ${loop.stderr}`);
    const cycleMs = (LOOP_SLEEP_S + 2) * 1000;
    const samples = [];

    /**
     * `removeCause`: the lab removes the cause `holdMs` after detection plus a random part of
     * the loop's failing cycle (recovery counts from there; runLab holds a fixed `holdMs`
     * after its own detection, which for the loop would always land at the same point of its
     * sleep). Without it the loop must heal the fault itself; `restore` puts the lab right
     * when it did not, so the next fault meets a healthy lab.
     */
    const scenario = async (key, inject, removeCause, { holdMs = 1500, restore } = {}) => {
      const sample = { key, t0: null, fail: null, bounced: null, removed: null, ok: null };
      samples.push(sample);
      // Healthy first, then a random phase of the loop's cycle.
      const ok = await loop.next('ok', now(), cycleMs + 5000);
      if (ok === null) { sample.note = 'loop not healthy before the fault'; return; }
      await sleep(Math.random() * LOOP_SLEEP_S * 1000);
      sample.t0 = await inject();
      sample.fail = await loop.next('fail', sample.t0, cycleMs + 8000);
      if (sample.fail === null) {
        sample.note = `not detected within ${(cycleMs + 8000) / 1000} s`;
        if (removeCause) await removeCause();
        if (restore) await restore();
        return;
      }
      sample.bounced = await loop.next('bounced', sample.fail.recv, 10000);
      if (removeCause) {
        await sleep(holdMs + Math.random() * (LOOP_SLEEP_S + 1) * 1000);
        sample.removed = await removeCause();
        sample.ok = await loop.next('ok', sample.removed, cycleMs * 3 + 8000);
      } else {
        sample.ok = await loop.next('ok', sample.fail.recv, cycleMs * 3 + 8000);
      }
      if (sample.ok === null) {
        sample.note = 'not recovered';
        if (restore) await restore();
      }
    };

    const stamped = async (fn) => { const t = now(); await fn(); return t; };
    for (let round = 0; round < rounds; round++) {
      await scenario('carrierLoss', () => control.setAdmin('down0', false), () => control.setAdmin('down0', true));
      await scenario('blackhole',
        () => stamped(() => lab.ip(router, 'route', 'add', 'blackhole', '192.0.2.2/32')),
        () => stamped(() => lab.ip(router, 'route', 'del', 'blackhole', '192.0.2.2/32')));
      await scenario('addressLoss', () => stamped(() => lab.ip(client, 'addr', 'del', '192.0.2.2/24', 'dev', IF)), undefined, {
        restore: () => lab.exec(client, 'ifup', ['-i', interfaces, `--state-dir=${stateDir}`, '--no-scripts', '--force', IF]),
      });
      // The gateway is on-link: the loop's ping to it does not need the default route.
      await scenario('defaultRouteLoss', () => stamped(() => lab.ip(client, 'route', 'del', 'default', 'via', GW)), undefined, {
        restore: () => lab.ip(client, 'route', 'replace', 'default', 'via', GW, 'dev', IF, 'onlink'),
      });
      // runLab's storm: 25 far-end flaps 80 ms apart, ending down; up 0.8 s after detection.
      await scenario('flapStorm', () => pacedFlaps(control, 'down0', 25, 40), () => control.setAdmin('down0', true), { holdMs: 800 });
    }
    // The same loop pinging an address beyond the gateway (as loops that ping a public
    // address do; here the router's 198.51.100.1): it does see a lost default route.
    await loop.next('ok', now(), cycleMs + 5000);
    loop.kill();
    const gwEvents = loop.events;
    loop = new LoopProcess(lab, client, { interfaces, stateDir, sleepS: LOOP_SLEEP_S, target: BEYOND });
    if (await loop.next('ok', 0n, 10000) === null) throw new Error(`the bash loop never saw ${BEYOND} answer: ${loop.stderr}`);
    for (let round = 0; round < rounds; round++) {
      await scenario('defaultRouteLossBeyondGw', () => stamped(() => lab.ip(client, 'route', 'del', 'default', 'via', GW)), undefined, {
        restore: () => lab.ip(client, 'route', 'replace', 'default', 'via', GW, 'dev', IF, 'onlink'),
      });
    }
    await loop.next('ok', now(), cycleMs + 5000);
    const after = clock.calibrate();
    control.close();
    loop.kill();
    return { samples, events: [...gwEvents, ...loop.events], before, after };
  } finally {
    if (loop) loop.kill();
    await lab.destroy();
  }
}

/** Time (ms) of [a, b] (monotonic ns) spent inside the loop's sleeps. */
function sleepOverlapMs(events, a, b) {
  let total = 0n;
  for (let i = 0; i < events.length; i++) {
    if (events[i].kind !== 'sleep') continue;
    const start = events[i].mono;
    const end = events.slice(i + 1).find((e) => e.kind === 'ping')?.mono ?? b;
    const lo = start > a ? start : a;
    const hi = end < b ? end : b;
    if (hi > lo) total += hi - lo;
  }
  return msOf(total);
}

function analyzeLoop({ samples, events, before, after }) {
  for (const e of events) e.mono = clock.realtimeToMonotonic(e.realNs, before, after);
  const scale = REAL_SLEEP_S / LOOP_SLEEP_S - 1;
  const perClass = {};
  for (const s of samples) {
    const slot = perClass[s.key] ?? (perClass[s.key] = { detectedMs: [], detectedScaledMs: [], recoveredMs: [], recoveredScaledMs: [], repairedMs: [], failingPingMs: [], bounces: [], pingsAnsweredBeforeDetection: [], notes: [] });
    if (s.note) slot.notes.push(s.note);
    if (s.fail === null || s.t0 === null) continue;
    const detected = msOf(s.fail.mono - s.t0);
    slot.detectedMs.push(detected);
    // Scaled: the wait for the loop's next ping stretches with the sleep; the failing ping
    // does not. Where an earlier ping still answered (the storm's up moments, 2 s that do
    // not stretch with the sleep), the 30 s loop's first ping would land after the storm
    // and fail: the scaled figure is that first ping's wait plus the failing ping.
    const failingPing = events.filter((e) => e.kind === 'ping' && e.mono <= s.fail.mono).pop();
    const firstPing = events.find((e) => e.kind === 'ping' && e.mono >= s.t0);
    slot.pingsAnsweredBeforeDetection.push(events.filter((e) => e.kind === 'ok' && e.mono >= s.t0 && e.mono <= s.fail.mono).length);
    if (failingPing.mono < s.t0 || firstPing === undefined) slot.detectedScaledMs.push(detected);
    else slot.detectedScaledMs.push(msOf(firstPing.mono - s.t0) + scale * sleepOverlapMs(events, s.t0, firstPing.mono) + msOf(s.fail.mono - failingPing.mono));
    slot.failingPingMs.push(msOf(s.fail.mono - failingPing.mono));
    if (s.bounced) slot.repairedMs.push(msOf(s.bounced.mono - s.fail.mono));
    if (s.ok === null) continue;
    const from = s.removed ?? s.fail.mono;
    const recovered = msOf(s.ok.mono - from);
    slot.recoveredMs.push(recovered);
    slot.recoveredScaledMs.push(recovered + scale * sleepOverlapMs(events, from, s.ok.mono));
    slot.bounces.push(events.filter((e) => e.kind === 'bounced' && e.mono >= s.t0 && e.mono <= s.ok.mono).length);
  }
  // How long an answered ping takes (its "ping" line to its "ok" line).
  const answeredPingMs = [];
  for (let i = 0; i + 1 < events.length; i++) {
    if (events[i].kind === 'ping' && events[i + 1].kind === 'ok') answeredPingMs.push(msOf(events[i + 1].mono - events[i].mono));
  }
  // Cross-check of the clock conversion: a line is received after bash stamped it.
  const lag = events.map((e) => msOf(e.recv - e.mono));
  return {
    perClass,
    answeredPingMs: round(summarize(answeredPingMs), 3),
    clock: {
      method: "bash $EPOCHREALTIME (CLOCK_REALTIME, us) converted with the realtime-monotonic offset calibrated before and after (lib/clock.js)",
      uncertaintyNs: [before.uncertaintyNs, after.uncertaintyNs],
      driftNsOverRun: Number(after.offsetNs - before.offsetNs),
      receiptMinusStampMs: round(summarize(lag), 3),
    },
  };
}

// ---- idle cost ----

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })); } catch { return 100; } })();

function sampleProc(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // Fields 14-17 of stat (utime, stime, cutime, cstime) are at 11-14 after the comm.
  return { rssKiB: kb('VmRSS'), hwmKiB: kb('VmHWM'), ticks: Number(stat[11]) + Number(stat[12]), childTicks: Number(stat[13]) + Number(stat[14]), at: now() };
}

async function idleCost({ seconds, dir }) {
  const lab = Lab.create();
  let daemon;
  let loop;
  try {
    const { client, interfaces, stateDir } = await buildLab(lab, dir);
    const config = {
      netns: Lab.path(client),
      interfaces: { [IF]: { probe: { targets: ['gateway'] } } }, // defaults: 1 s interval, 1 s timeout, x3
      managers: { ifupdown: { interfaces, stateDir, options: ['--no-scripts'] }, networkScriptsDir: dir },
      status: { socket: path.join(dir, 'status.sock') },
    };
    const configPath = path.join(dir, 'idle-config.json');
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    // Started as the unit starts it (the heap flags of lib/daemon/node-flags.js).
    daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON, '--config', configPath, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STATE_DIRECTORY: path.join(dir, 'state') },
    });
    let stderr = '';
    daemon.stderr.on('data', (c) => { stderr += c; });
    const logLines = [];
    const live = new Promise((resolve) => {
      createInterface({ input: daemon.stdout }).on('line', (line) => {
        logLines.push(line);
        if (/monitoring is live/.test(line)) resolve(true);
      });
      daemon.once('exit', () => resolve(false));
      setTimeout(() => resolve(false), 15000);
    });
    if (!(await live)) throw new Error(`the daemon did not become live: ${stderr}`);
    loop = new LoopProcess(lab, client, { interfaces, stateDir, sleepS: 1 });
    await sleep(3000); // first probes answered, the group healthy; the loop running
    const d0 = sampleProc(daemon.pid);
    const l0 = sampleProc(loop.pid);
    const linesBefore = logLines.length;
    await sleep(seconds * 1000);
    const d1 = sampleProc(daemon.pid);
    const l1 = sampleProc(loop.pid);
    const wall = msOf(d1.at - d0.at) / 1000;
    const cpuMs = (a, b, children) => ((b.ticks - a.ticks) + (children ? b.childTicks - a.childTicks : 0)) * 1000 / CLK_TCK;
    const pings = loop.events.filter((e) => e.kind === 'ping' && e.recv >= l0.at && e.recv <= l1.at).length;
    const loopFails = loop.events.filter((e) => e.kind === 'fail').length;
    return {
      seconds: Number(wall.toFixed(1)),
      clockTicksPerS: CLK_TCK,
      daemon: {
        rssStartKiB: d0.rssKiB,
        rssEndKiB: d1.rssKiB,
        rssHighWaterKiB: d1.hwmKiB,
        cpuMs: cpuMs(d0, d1, false),
        cpuPercent: Number((cpuMs(d0, d1, false) / 10 / wall).toFixed(3)),
        logLinesWhileIdle: logLines.length - linesBefore,
      },
      bashLoop1s: {
        rssStartKiB: l0.rssKiB,
        rssEndKiB: l1.rssKiB,
        cpuMsWithChildren: cpuMs(l0, l1, true),
        cpuPercentWithChildren: Number((cpuMs(l0, l1, true) / 10 / wall).toFixed(3)),
        pings,
        fails: loopFails,
      },
    };
  } finally {
    if (loop) loop.kill();
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon.once('exit', resolve));
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    await lab.destroy();
  }
}

// ---- report ----

function fmtMs(v) {
  if (v === null || v === undefined) return 'n/a';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 10) return `${v.toFixed(0)} ms`;
  return `${v.toFixed(2)} ms`;
}

/**
 * The real 30 s loop, from the measured parts: a fault lands at a uniform phase of its
 * healthy cycle (answered ping + 30 s sleep), then the failing ping takes what it took here;
 * a removed cause lands at a uniform phase of its failing cycle (failing ping + ifdown/ifup +
 * 30 s), then one answered ping; a fault it heals itself is healthy one ifdown/ifup, one 30 s
 * sleep and one answered ping after detection.
 */
function loopModel30s(c, l, answeredPingMs) {
  const T = REAL_SLEEP_S * 1000;
  const failing = median(l.failingPingMs);
  const ifupdown = median(l.repairedMs) ?? 0;
  const healthyCycle = T + answeredPingMs;
  const failingCycle = failing + ifupdown + T;
  const out = {
    failingPingMs: r1(failing),
    answeredPingMs: r3(answeredPingMs),
    ifdownIfupMs: r1(ifupdown),
    detectMeanMs: r1(healthyCycle / 2 + failing),
    detectWorstMs: r1(healthyCycle + failing),
  };
  if (c.causeRemoved) {
    out.healthyMeanMs = r1(failingCycle / 2 + answeredPingMs);
    out.healthyWorstMs = r1(failingCycle + answeredPingMs);
  } else {
    out.healthyMeanMs = r1(ifupdown + T + answeredPingMs);
    out.healthyWorstMs = out.healthyMeanMs;
  }
  return out;
}

/** Pass/fail targets of one fault class; the worst run counts ("every fault"). */
function nethealTargets(c, n, runs) {
  const limit = c.netlink ? 5 : 1000;
  const worstD = n.detectedMs.length ? Math.max(...n.detectedMs) : null;
  const worstR = n.recoveredMs.length ? Math.max(...n.recoveredMs) : null;
  const measurable = runs - n.invalid.length;
  const unmeasurable = n.invalid.length ? ` (${measurable} of ${runs} runs measurable: in the others runLab matched the record of the preparatory drop, before t0)` : '';
  return [
    {
      what: `netheal ${c.label}: detected (worst of ${runs} runs)${c.netlink ? ', netlink class' : ''}${unmeasurable}`,
      target: `< ${limit} ms`,
      measured: worstD === null ? null : `${r3(worstD)} ms`,
      pass: measurable > 0 && n.detectedMs.length === measurable && worstD < limit,
    },
    {
      what: c.causeRemoved
        ? `netheal ${c.label}: healthy again after the cause is removed (worst run)`
        : `netheal ${c.label}: healthy again counted from detection, the ladder's own repair time included (stricter than "after the cause is removed"; worst run)${unmeasurable}`,
      target: `<= ${VERIFY_MS} ms (one verification interval)`,
      measured: worstR === null ? null : `${r1(worstR)} ms`,
      pass: measurable > 0 && n.recoveredMs.length === (c.causeRemoved ? runs : measurable) && worstR <= VERIFY_MS,
    },
  ];
}

// ---- the real managers under a booted systemd ----

/**
 * Runs test/managers.test.js (systemd-nspawn containers with systemd-networkd, ifupdown and
 * NetworkManager beside a gateway namespace; the real daemon inside) and collects the
 * timings each case records: per manager and fault, detection, detection to the configured
 * state being back, the manager commands that ran (PATH shims), netheal's actions, sockets
 * destroyed and whether a long-lived TCP connection survived.
 */
function managerRuns(dir) {
  const out = path.join(dir, 'managers-timings.json');
  const ava = path.join(__dirname, '..', 'node_modules', '.bin', 'ava');
  const env = { ...process.env, NETHEAL_TIMINGS_OUT: out };
  delete env.CI;
  let passed = true;
  let output = '';
  try {
    output = execFileSync(ava, ['test/managers.test.js'], { cwd: path.join(__dirname, '..'), env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900000 });
  } catch (error) {
    passed = false;
    output = String(error.stdout ?? '') + String(error.stderr ?? '');
  }
  const records = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : [];
  const failed = [...output.matchAll(/✘ \[fail\]: (.*)/g)].map((m) => m[1].slice(0, 200));
  return { passed, failed, records };
}

const MANAGER_TARGETS = [
  { match: /^address removed/, what: 'lost address healed (detection to configured)', key: 'detectionToConfiguredMs', limit: 300 },
  { match: /^default route removed/, what: 'lost default route healed (detection to configured)', key: 'detectionToConfiguredMs', limit: 300 },
  { match: /^admin-down by something else/, what: 'admin-down against the intent healed (detection to configured)', key: 'detectionToConfiguredMs', limit: 300 },
];

function managerTable(result) {
  const rows = result.records.map((r) => {
    const heal = r.detectionToConfiguredMs ?? null;
    return `| ${r.manager} | ${r.case} | ${r.faultToDetectionMs ?? '-'} | ${heal ?? '-'} | ${(r.actions ?? []).join(', ') || 'none'} | ${(r.managerCommands ?? []).join('; ') || 'none'} | ${r.socketsDestroyed ?? 0} | ${r.tcpSurvived === undefined ? '-' : r.tcpSurvived ? 'yes' : 'NO'} |`;
  });
  const targets = [];
  for (const t of MANAGER_TARGETS) {
    for (const r of result.records.filter((x) => t.match.test(x.case))) {
      const v = r[t.key];
      targets.push({ what: `${r.manager}: ${t.what}`, target: `<= ${t.limit} ms`, measured: v === undefined || v === null ? null : `${v} ms`, pass: typeof v === 'number' && v <= t.limit });
    }
  }
  const collateral = result.records.filter((r) => /carrier blip|re-applies while healthy/.test(r.case));
  targets.push({
    what: 'sockets destroyed by a 100 ms carrier blip or a manager re-apply (all managers)', target: '0',
    measured: String(collateral.reduce((n, r) => n + (r.socketsDestroyed ?? 0), 0)), pass: collateral.length > 0 && collateral.every((r) => (r.socketsDestroyed ?? 0) === 0),
  });
  const beyond = result.records.filter((r) => /beyond-first-hop/.test(r.case));
  const disruptive = beyond.reduce((n, r) => n + (r.actions ?? []).filter((a) => /^(manager-reapply|link-bounce):/.test(a)).length + (r.managerCommands ?? []).length, 0);
  targets.push({ what: 'bounces or re-applies for a loss beyond the first hop (all managers)', target: '0', measured: String(disruptive), pass: beyond.length > 0 && disruptive === 0 });
  const markdown = [
    'Real managers under a booted systemd (test/managers.test.js: systemd-nspawn, systemd-networkd 252, ifupdown with the stanza in interfaces.d, NetworkManager 1.42; the real daemon inside, 100 ms probes x3 to the gateway and a far host). Detection is stamped by the daemon; "configured" is polled (every 20 ms, through nsenter) until the declared address, default route and admin state are back, so it errs late by up to ~30 ms. Manager commands are recorded by PATH shims, independently of the daemon\'s word.',
    '',
    '| manager | fault | fault to detection (ms) | detection to configured (ms) | netheal actions | manager commands | sockets destroyed | TCP connection survived |',
    '|---|---|---:|---:|---|---|---:|---|',
    ...rows,
    ...(result.failed.length ? ['', `Failed cases in this run: ${result.failed.join('; ')}`] : []),
  ].join('\n');
  return { targets, markdown };
}

async function run({ quick }) {
  const netheaRuns = quick ? 1 : 3;
  const loopRoundsN = quick ? 1 : 5;
  const idleSeconds = quick ? 10 : 60;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-recovery-bench-'));
  try {
    const netheal = await nethealRuns(netheaRuns);
    const loopRaw = await loopRounds({ rounds: loopRoundsN, dir: path.join(dir, 'loop') });
    const loop = analyzeLoop(loopRaw);
    const idle = await idleCost({ seconds: idleSeconds, dir: path.join(dir, 'idle') });
    const managers = managerRuns(dir);
    const managerPart = managerTable(managers);

    const metrics = { nethealRuns: netheaRuns, loopRounds: loopRoundsN, loopSleepS: LOOP_SLEEP_S, scaledToSleepS: REAL_SLEEP_S, classes: {}, loopClock: loop.clock, idle, managers: { passed: managers.passed, failed: managers.failed, cases: managers.records } };
    const ratios = { detection: {}, recovery: {} };
    const targets = [];
    const rows = [];
    for (const c of CLASSES) {
      const n = netheal.perClass[c.nethealKey ?? c.key];
      const l = loop.perClass[c.key];
      const entry = {
        netheal: {
          detectedMs: round(summarize(n.detectedMs), 3),
          recoveredMs: round(summarize(n.recoveredMs), 3),
          recoveredFrom: n.recoveredFrom,
          detectedBy: [...new Set(n.detectedBy)],
          actions: n.actions,
          ...(n.invalid.length ? { invalidDetections: n.invalid } : {}),
          ...(n.notes.length ? { notes: n.notes } : {}),
        },
      };
      if (l) {
        entry.bashLoop = {
          detectedMs: round(summarize(l.detectedMs), 1),
          detectedScaledMs: round(summarize(l.detectedScaledMs), 1),
          recoveredMs: round(summarize(l.recoveredMs), 1),
          recoveredScaledMs: round(summarize(l.recoveredScaledMs), 1),
          recoveredFrom: c.causeRemoved ? 'cause removed' : 'detection',
          ifdownIfupMs: round(summarize(l.repairedMs), 1),
          bouncesPerFault: l.bounces,
          pingsAnsweredBeforeDetection: l.pingsAnsweredBeforeDetection,
          ...(l.notes.length ? { notes: l.notes } : {}),
        };
      } else {
        entry.bashLoop = { notApplicable: c.nethealOnly ?? 'the loop pings the uplink gateway; a tap NIC has no gateway to ping, so the loop does not watch it' };
      }
      if (l && l.detectedMs.length < loopRoundsN) {
        entry.bashLoop.missed = `${loopRoundsN - l.detectedMs.length}/${loopRoundsN} not detected${c.key === 'defaultRouteLoss' ? ': the gateway is on-link, so ping GW answers without a default route' : ''}`;
      }
      metrics.classes[c.key] = entry;

      const nd = median(n.detectedMs);
      const nr = median(n.recoveredMs);
      const ld = l ? median(l.detectedMs) : null;
      const lds = l ? median(l.detectedScaledMs) : null;
      const lr = l ? median(l.recoveredMs) : null;
      const lrs = l ? median(l.recoveredScaledMs) : null;
      const model = l && l.detectedMs.length ? loopModel30s(c, l, loop.answeredPingMs.median) : null;
      if (model) entry.bashLoop.expected30s = model;
      if (l) {
        ratios.detection[c.key] = { nethealOverLoop: ratio(nd, ld, 6), nethealOverLoopScaled30s: ratio(nd, lds, 6), nethealOverLoopExpected30s: ratio(nd, model?.detectMeanMs, 6) };
        ratios.recovery[c.key] = { nethealOverLoop: ratio(nr, lr, 4), nethealOverLoopScaled30s: ratio(nr, lrs, 4), nethealOverLoopExpected30s: ratio(nr, model?.healthyMeanMs, 4) };
      }

      if (c.loopOnly) entry.netheal = `see ${c.nethealKey}`;
      else targets.push(...nethealTargets(c, n, netheaRuns));
      const missed = l ? `never (${loopRoundsN - l.detectedMs.length}/${loopRoundsN} missed)` : 'n/a (cannot watch it)';
      const loopCell = (v) => (v === null ? (l && l.detectedMs.length === 0 ? missed : 'n/a') : fmtMs(v));
      const times = (a, b, digits) => (a !== null && b ? `${(a / b).toLocaleString('en-US', { maximumFractionDigits: digits })}x` : 'n/a');
      const band = (mean, worst) => (model ? (mean === worst ? fmtMs(mean) : `${fmtMs(mean)} / ${fmtMs(worst)}`) : loopCell(null));
      rows.push(`| ${c.label} | ${fmtMs(nd)} | ${fmtMs(nr)} | ${loopCell(ld)} | ${loopCell(lds)} | ${band(model?.detectMeanMs, model?.detectWorstMs)} | ${loopCell(lr)} | ${loopCell(lrs)} | ${band(model?.healthyMeanMs, model?.healthyWorstMs)} | ${times(model?.detectMeanMs ?? null, nd, 0)} | ${times(model?.healthyMeanMs ?? null, nr, 1)} |`);
    }
    targets.push(...managerPart.targets);
    targets.push({
      what: 'netheal lab runs: every fault detected and recovered (runLab ok)',
      target: 'all runs ok',
      measured: `${netheal.okRuns.filter(Boolean).length}/${netheal.okRuns.length}`,
      pass: netheal.okRuns.every(Boolean),
    });

    const d = idle.daemon;
    const b = idle.bashLoop1s;
    const markdown = [
      `Fault classes in a client/router namespace lab (uplink0 192.0.2.2/24 <-> router 192.0.2.1). netheal: the real daemon via runLab(), median of ${netheaRuns} run(s), probes 20 ms x3. Bash loop: \`while true; do ping -c1 -W1 GW >/dev/null || { ifdown IF; ifup IF; }; sleep 30; done\` run for real inside the client namespace with Debian ifupdown (own interfaces file and state dir, --no-scripts), median of ${loopRoundsN} round(s), each fault at a random phase of the loop's cycle, **sleep shortened to ${LOOP_SLEEP_S} s**. Scaling to the real 30 s sleep, two ways: "scaled" takes each measured interval and multiplies the part of it spent inside the loop's sleeps by ${REAL_SLEEP_S / LOOP_SLEEP_S} (median of the scaled samples; few samples, so the phase makes it noisy); "30 s loop mean / worst" is built from the measured parts (answered ping ${fmtMs(loop.answeredPingMs.median)}, failing ping, ifdown+ifup) with a uniform phase: detection is up to 30 s plus the failing ping (up to 1 s), ~15 s plus that on average. "healthy" counts from the cause's removal for carrier loss, blackhole and the storm, and from detection for the faults the tool must heal itself (address, default route, tap).`,
      '',
      '| fault | netheal detect | netheal healthy | loop detect, 3 s sleep | scaled to 30 s | 30 s loop mean / worst | loop healthy, 3 s sleep | scaled to 30 s | 30 s loop mean / worst | detect: 30 s loop mean / netheal | healthy: 30 s loop mean / netheal |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      `Loop recovery counts from the same point as netheal's (cause removed, or detection for faults it heals itself). The loop's ifdown+ifup itself took ${fmtMs(median(Object.values(loop.perClass).flatMap((p) => p.repairedMs)))} (median); its "healthy" is the next ping after that, one sleep later. The loop cannot watch the tap NIC (nothing to ping on it), and pinging the gateway never notices a lost default route: the gateway is on-link, so its ping answers regardless (the variant row pings the router's 198.51.100.1 instead, as loops that ping a far address do). During the flap storm the loop ran ifdown+ifup ${JSON.stringify(loop.perClass.flapStorm?.bounces ?? [])} time(s) per storm: one per cycle at most, so no bounce storm of its own, but no damping either; its ping answered ${JSON.stringify(loop.perClass.flapStorm?.pingsAnsweredBeforeDetection ?? [])} time(s) during a storm before one failed (the storm's 2 s do not stretch with the sleep, so the scaled storm detection is the 30 s loop's first ping after t0, which lands after the storm, plus the failing ping).${netheal.perClass.nicCarrierLoss.invalid.length ? ` The tap fault gave ${netheal.perClass.nicCarrierLoss.invalid.length} negative detection(s) (runLab matched the record of its preparatory drop, before t0); those runs are left out of the tap figures.` : ''} Loop stamps: bash $EPOCHREALTIME converted to CLOCK_MONOTONIC (calibration uncertainty ${loop.clock.uncertaintyNs.join('/')} ns; lines reached the bench ${fmtMs(loop.clock.receiptMinusStampMs.median)} after their stamp, median). Fault t0 for address/route/blackhole in the loop lab is taken before the \`ip\` command is spawned (a few ms early, against the loop).`,
      '',
      managerPart.markdown,
      '',
      `Idle (${idle.seconds} s, one watched veth, default 1 s gateway probe): daemon RSS ${(d.rssStartKiB / 1024).toFixed(1)} MiB at start, ${(d.rssEndKiB / 1024).toFixed(1)} MiB at end (high water ${(d.rssHighWaterKiB / 1024).toFixed(1)} MiB), CPU ${d.cpuMs} ms = ${d.cpuPercent}% of one core. The bash loop at the same 1 s rate beside it: RSS ${(b.rssEndKiB / 1024).toFixed(1)} MiB (bash alone), CPU with its ping children ${b.cpuMsWithChildren} ms = ${b.cpuPercentWithChildren}% (${b.pings} pings; clock ticks are ${1000 / CLK_TCK} ms).`,
    ].join('\n');

    return { name: 'recovery', metrics, peers: { bashLoop: { command: 'while true; do ping -c1 -W1 GW >/dev/null || { ifdown IF; ifup IF; }; sleep 30; done', measuredSleepS: LOOP_SLEEP_S, scaledSleepS: REAL_SLEEP_S, ifupdown: execFileSync('ifup', ['--version'], { encoding: 'utf8' }).split('\n')[0] } }, ratios, targets, markdown };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = {
  name: 'recovery',
  description: 'Issues #5 and #12: time to detect and to recover per fault class, the netheal daemon against the common ping || { ifdown; ifup; } bash loop (run for real in the lab, 3 s sleep, also scaled to 30 s); per real manager (networkd, ifupdown, NetworkManager under a booted systemd): heal time, actions, manager commands, collateral; the daemon\'s idle RSS and CPU.',
  run,
};
