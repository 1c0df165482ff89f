'use strict';
/**
 * Issues #3 and #15: path-loss detection time of the Prober against FRR's bfdd and fping, in
 * the same run, at the same packet rate and multiplier.
 *
 * A client and a router namespace joined by a veth (client 10.5.0.2, router 10.5.0.1); the
 * Prober's target (192.0.2.1) lives on the router's lo. bfdd runs in both namespaces (a
 * single-hop session 10.5.0.2 <-> 10.5.0.1, the same interval x 3); the client's bfdd is
 * measured. fping -l -p I -t I watches the same target from the client.
 * Faults, injected in the router at t0 = CLOCK_MONOTONIC just before the request:
 *  - blackhole: a /32 blackhole route for 10.5.0.2, one RTM_NEWROUTE (the router's echo
 *    replies and its BFD packets to the client die);
 *  - nft drop-all: input and output chains with policy drop, one line written to an `nft -i`
 *    started beforehand (one transaction, no process start inside the measurement).
 * Detection: netheal = the `target-down` event's monotonicNs (taken when the Prober decides);
 * bfdd = the stamp of its "up -> down" state-change log line (`log timestamp precision 6`,
 * CLOCK_REALTIME converted with benchmarks/lib/clock.js); fping = receipt in this process
 * (through a pipe) of the third consecutive "timed out" line after t0.
 * Recovery (fault removed at t1): netheal = `target-up` (recovery 2, i.e. the second reply),
 * also from the first reply after t1; bfdd = its "-> up" log line.
 * A random 0..interval pause before each fault puts it at a different phase of every schedule.
 *
 * Then a clean run (default 10 min, PATH_LOSS_CLEAN_S to change, 0 to skip; skipped in quick
 * mode) at 10 ms x 3 with `yes >/dev/null` keeping the other core busy: false downs of each.
 * Also the default interval (1 s x 3): detection must stay within 3 x interval + 1 s.
 * Without frr installed (/usr/lib/frr/bfdd, user frr) the bfdd rows are reported as skipped.
 * Investigation knobs: PATH_LOSS_ROWS="10:blackhole,50:nft-drop-all", PATH_LOSS_ROUNDS=N.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { Prober } = require('../lib/monitor/prober');
const { NetlinkClient } = require('../lib/kernel/netlink-client');
const { encodeMessage, encodeAttribute, NLM_F_REQUEST, NLM_F_ACK } = require('../lib/kernel/netlink');
const { summarize, round, ratio, cdf } = require('./lib/stats');
const { calibrate, realtimeToMonotonic } = require('./lib/clock');

const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTN_BLACKHOLE = 6;
const RTA_DST = 1;
/** PATH_LOSS_BFDD names another bfdd binary (or a missing one, to see the rows skipped). */
const BFDD = process.env.PATH_LOSS_BFDD ?? '/usr/lib/frr/bfdd';
const NFT = '/usr/sbin/nft';
const CLIENT = '10.5.0.2';
const ROUTER = '10.5.0.1';
const TARGET = '192.0.2.1';
const MULTIPLIER = 3;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (ns) => Number(ns) / 1e6;

/** rtmsg + RTA_DST for a /32 blackhole in the main table (linux/rtnetlink.h). */
function routeMessage(type, flags, seq, address) {
  const rtmsg = Buffer.alloc(12);
  rtmsg[0] = 2; // AF_INET
  rtmsg[1] = 32; // dst_len
  rtmsg[4] = 254; // RT_TABLE_MAIN
  rtmsg[5] = 4; // RTPROT_STATIC
  rtmsg[6] = 0; // RT_SCOPE_UNIVERSE
  rtmsg[7] = RTN_BLACKHOLE;
  const dst = Buffer.from(address.split('.').map(Number));
  return encodeMessage(type, flags, seq, Buffer.concat([rtmsg, encodeAttribute(RTA_DST, dst)]));
}

function waitFor(emitter, event, predicate, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.off(event, fn); reject(new Error(`no ${event} within ${timeoutMs} ms`)); }, timeoutMs);
    function fn(e) {
      if (!predicate(e)) return;
      clearTimeout(timer);
      emitter.off(event, fn);
      resolve(e);
    }
    emitter.on(event, fn);
  });
}

/** Resolves with `check()`'s first non-null value, polled every 5 ms; null after timeoutMs. */
async function poll(check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > end) return null;
    await sleep(5);
  }
}

/** fping in loop mode; records the receipt time of each "timed out" / reply line. */
function startFping(lab, ns, target, intervalMs) {
  const child = lab.spawn(ns, 'fping', ['-l', '-p', String(intervalMs), '-t', String(intervalMs), '-D', target]);
  const lines = [];
  let buffer = '';
  const onData = (chunk) => {
    const stamp = process.hrtime.bigint();
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      lines.push({ stamp, timeout: /timed out/.test(line) });
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return {
    lines,
    /** Third consecutive timeout after t0 (fping's down, by the old counting rule). */
    detection(t0) {
      let run = 0;
      for (const l of lines) {
        if (l.stamp < t0) continue;
        if (l.timeout) { run++; if (run === MULTIPLIER) return l.stamp; } else run = 0;
      }
      return null;
    },
    /** Runs of `MULTIPLIER` consecutive timeouts since t0 (false downs on a clean path). */
    downs(t0) {
      let run = 0, downs = 0, replies = 0;
      for (const l of lines) {
        if (l.stamp < t0) continue;
        if (l.timeout) { run++; if (run === MULTIPLIER) downs++; } else { run = 0; replies++; }
      }
      return { downs, replies };
    },
    stop() { child.kill('SIGINT'); },
  };
}

function bfddAvailable() {
  if (!fs.existsSync(BFDD)) return { ok: false, why: `${BFDD} not found (apt-get install frr)` };
  try {
    execFileSync('id', ['frr'], { stdio: 'ignore' });
  } catch {
    return { ok: false, why: 'no user frr' };
  }
  let version = null;
  try { version = execFileSync(BFDD, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim(); } catch { /* still usable */ }
  return { ok: true, version };
}

/**
 * Two bfdd processes (client and router ends) at `intervalMs` x MULTIPLIER, each with its
 * own directory (owned by frr, which bfdd drops to) for config, pid file, vty and control
 * sockets and the log. Returns the client end's state changes, as CLOCK_MONOTONIC stamps.
 */
async function startBfdPair(lab, c, r, intervalMs, clock) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-bfd-'));
  const frr = Number(execFileSync('id', ['-u', 'frr'], { encoding: 'utf8' }).trim());
  const frrGid = Number(execFileSync('id', ['-g', 'frr'], { encoding: 'utf8' }).trim());
  const ends = [];
  for (const [ns, side, peer, local] of [[c, 'client', ROUTER, CLIENT], [r, 'router', CLIENT, ROUTER]]) {
    const dir = path.join(base, side);
    fs.mkdirSync(dir, { recursive: true });
    const log = path.join(dir, 'bfdd.log');
    fs.writeFileSync(path.join(dir, 'bfdd.conf'), [
      'log timestamp precision 6',
      `log file ${log} debugging`,
      'debug bfd peer',
      'bfd',
      ` peer ${peer} local-address ${local}`,
      `  detect-multiplier ${MULTIPLIER}`,
      `  receive-interval ${intervalMs}`,
      `  transmit-interval ${intervalMs}`,
      ' !',
      '!',
      '',
    ].join('\n'));
    fs.chownSync(base, frr, frrGid);
    for (const f of ['', 'bfdd.conf']) fs.chownSync(path.join(dir, f), frr, frrGid);
    const child = lab.spawn(ns, BFDD, ['-f', path.join(dir, 'bfdd.conf'), '-i', path.join(dir, 'bfdd.pid'), '--vty_socket', dir,
      '-z', path.join(dir, 'zserv.api'), '--bfdctl', path.join(dir, 'bfdd.sock'), '-P', '0']);
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', () => {});
    ends.push({ side, child, log, stderr: () => stderr });
  }
  const client = ends[0];
  /** State changes of the client end: [{ monotonicNs (bigint), from, to }], parsed afresh. */
  const changes = () => {
    let text = '';
    try { text = fs.readFileSync(client.log, 'utf8'); } catch { return []; }
    const out = [];
    for (const line of text.split('\n')) {
      const m = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) .*state-change: .* (\w+) -> (\w+)/.exec(line);
      if (m === null) continue;
      const realMs = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
      const realNs = BigInt(realMs) * 1000000n + BigInt(m[7]) * 1000n;
      out.push({ monotonicNs: realtimeToMonotonic(realNs, clock.before, clock.after), from: m[8], to: m[9] });
    }
    return out;
  };
  const up = await poll(() => changes().find((x) => x.to === 'up') ?? null, 10_000);
  if (up === null) throw new Error(`bfdd session at ${intervalMs} ms did not come up: ${ends.map((e) => e.stderr()).join(' ')}`);
  return {
    changes,
    /** First change into `to` stamped at or after `sinceNs`. */
    next(to, sinceNs) { return changes().find((x) => x.to === to && x.monotonicNs >= sinceNs) ?? null; },
    isUp() { const all = changes(); return all.length > 0 && all[all.length - 1].to === 'up'; },
    stop() {
      for (const e of ends) e.child.kill('SIGTERM');
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** An `nft -i` in the router: one line = one transaction, no process start at t0. */
function startNft(lab, r) {
  const child = lab.spawn(r, NFT, ['-i']);
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return {
    write(line) { child.stdin.write(`${line}\n`); },
    output: () => output,
    stop() { child.stdin.end(); child.kill('SIGTERM'); },
  };
}

const DROP_ALL = 'add table inet pathloss; add chain inet pathloss in { type filter hook input priority 0; policy drop; }; ' +
  'add chain inet pathloss out { type filter hook output priority 0; policy drop; }';
const UNDROP = 'delete table inet pathloss';

async function inject(kind, router, nft) {
  if (kind === 'blackhole') {
    await router.request('blackhole', (seq) => routeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, CLIENT));
  } else {
    nft.write(DROP_ALL);
  }
}

async function remove(kind, router, nft) {
  if (kind === 'blackhole') {
    await router.request('unblackhole', (seq) => routeMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, CLIENT));
  } else {
    nft.write(UNDROP);
  }
}

/**
 * One row: `rounds` faults of `kind` at `interval` ms x 3, netheal, bfdd (when given) and
 * fping watching together. Misses (no detection within the wait) are counted, not dropped.
 */
async function runRow(lab, c, r, { interval, kind, rounds, bfd, router, nft }) {
  const prober = new Prober({ netns: Lab.path(c), interval, timeout: interval, multiplier: MULTIPLIER, recovery: 2 });
  const fp = startFping(lab, c, TARGET, interval);
  const replies = [];
  prober.on('probe', (p) => { if (p.status === 'reply') replies.push(process.hrtime.bigint()); });
  const out = {
    netheal: [], nethealMissed: 0, nethealRecovery: [], nethealRecoveryFromFirstReply: [], nethealSilentMs: [], nethealByCount: 0,
    bfdd: [], bfddMissed: 0, bfddRecovery: [], bfddRecoveryMissed: 0,
    fping: [], fpingMissed: 0, lastReplyAgeMs: [],
  };
  try {
    const up = waitFor(prober, 'target-up', () => true, 5000);
    prober.add(TARGET);
    await up;
    await sleep(interval * 5 + 200);
    for (let i = 0; i < rounds; i++) {
      if (bfd && !bfd.isUp()) await poll(() => (bfd.isUp() ? true : null), 5000);
      await sleep(interval * 3 + Math.random() * interval);
      const down = waitFor(prober, 'target-down', () => true, interval * (MULTIPLIER + 2) + 2000).catch(() => null);
      const t0 = process.hrtime.bigint();
      await inject(kind, router, nft);
      const event = await down;
      const last = replies.filter((s) => s < t0).pop();
      if (last !== undefined) out.lastReplyAgeMs.push(ms(t0 - last));
      if (event === null) out.nethealMissed++;
      else {
        out.netheal.push(ms(event.monotonicNs - t0));
        out.nethealSilentMs.push(event.silentMs);
        // Decided by the count of unanswered probes, before the silence deadline.
        if (event.silentMs < MULTIPLIER * interval) out.nethealByCount++;
      }
      if (bfd) {
        const d = await poll(() => bfd.next('down', t0), interval * (MULTIPLIER + 2) + 2000);
        if (d === null) out.bfddMissed++;
        else out.bfdd.push(ms(d.monotonicNs - t0));
      }
      await sleep(interval * 2 + 30);
      const f = fp.detection(t0);
      if (f === null) out.fpingMissed++;
      else out.fping.push(ms(f - t0));
      const back = waitFor(prober, 'target-up', () => true, interval * 10 + 5000);
      const t1 = process.hrtime.bigint();
      await remove(kind, router, nft);
      const upEvent = await back;
      out.nethealRecovery.push(ms(upEvent.monotonicNs - t1));
      const first = replies.find((s) => s >= t1);
      if (first !== undefined) out.nethealRecoveryFromFirstReply.push(ms(upEvent.monotonicNs - first));
      if (bfd) {
        const u = await poll(() => bfd.next('up', t1), 10_000);
        if (u === null) out.bfddRecoveryMissed++;
        else out.bfddRecovery.push(ms(u.monotonicNs - t1));
      }
    }
  } finally {
    fp.stop();
    prober.close();
  }
  return out;
}

/** The default interval: detection within 3 x 1 s + 1 s. */
async function runSlow(c, router, rounds) {
  const interval = 1000;
  const prober = new Prober({ netns: Lab.path(c), interval, timeout: interval, multiplier: MULTIPLIER, recovery: 2 });
  const latencies = [];
  try {
    const up = waitFor(prober, 'target-up', () => true, 5000);
    prober.add(TARGET);
    await up;
    for (let i = 0; i < rounds; i++) {
      await sleep(Math.random() * interval + 500);
      const down = waitFor(prober, 'target-down', () => true, interval * (MULTIPLIER + 2) + 2000);
      const t0 = process.hrtime.bigint();
      await inject('blackhole', router, null);
      latencies.push(ms((await down).monotonicNs - t0));
      const back = waitFor(prober, 'target-up', () => true, interval * 10);
      await remove('blackhole', router, null);
      await back;
    }
  } finally {
    prober.close();
  }
  return latencies;
}

/** A clean path for `seconds` at 10 ms x 3 with the other core busy: false downs of each. */
async function cleanRun(lab, c, r, seconds, bfdOk, clock) {
  const interval = 10;
  const bfd = bfdOk ? await startBfdPair(lab, c, r, interval, clock) : null;
  const prober = new Prober({ netns: Lab.path(c), interval, timeout: interval, multiplier: MULTIPLIER, recovery: 2 });
  const fp = startFping(lab, c, TARGET, interval);
  const downs = [];
  let probes = 0, replies = 0;
  prober.on('target-down', (e) => downs.push({ silentMs: e.silentMs, reason: e.reason?.kind }));
  prober.on('probe', (p) => { probes++; if (p.status === 'reply') replies++; });
  const busy = spawn('sh', ['-c', 'exec yes >/dev/null'], { stdio: 'ignore' });
  let result;
  try {
    const up = waitFor(prober, 'target-up', () => true, 5000);
    prober.add(TARGET);
    await up;
    const t0 = process.hrtime.bigint();
    const started = Date.now();
    const loadBefore = os.loadavg()[0];
    await sleep(seconds * 1000);
    const bfdDowns = bfd ? bfd.changes().filter((x) => x.monotonicNs >= t0 && x.from === 'up' && x.to === 'down').length : null;
    const f = fp.downs(t0);
    result = {
      seconds: Math.round((Date.now() - started) / 1000), interval, multiplier: MULTIPLIER, busyCore: 'yes >/dev/null',
      loadavg1: { before: loadBefore, after: os.loadavg()[0] },
      netheal: { falseDowns: downs.length, downs, probes, replies },
      bfdd: bfd ? { falseDowns: bfdDowns } : { skipped: 'frr not installed' },
      fping: { falseDowns: f.downs, replies: f.replies },
    };
  } finally {
    busy.kill('SIGTERM');
    fp.stop();
    prober.close();
    bfd?.stop();
  }
  return result;
}

function row(values, digits = 2) {
  const s = round(summarize(values), digits);
  const sorted = [...values].sort((a, b) => a - b);
  const p95 = sorted.length === 0 ? null : Number(sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)].toFixed(digits));
  return { ...s, p95 };
}

async function run({ quick = false } = {}) {
  const bfdInfo = bfddAvailable();
  const cleanSeconds = process.env.PATH_LOSS_CLEAN_S !== undefined ? Number(process.env.PATH_LOSS_CLEAN_S) : quick ? 0 : 600;
  const lab = Lab.create();
  const clock = { before: calibrate(), after: undefined };
  const rowsOut = [];
  let slow = [];
  let clean = null;
  try {
    const c = await lab.addNamespace('client');
    const r = await lab.addNamespace('router');
    await lab.addVeth({ ns: c, name: 'eth0' }, { ns: r, name: 'rt0' });
    await lab.addAddress(c, 'eth0', `${CLIENT}/24`);
    await lab.addAddress(r, 'rt0', `${ROUTER}/24`);
    await lab.addAddress(r, 'lo', `${TARGET}/32`);
    await lab.addRoute(c, 'default', 'via', ROUTER);
    const router = new NetlinkClient({ protocol: 0, netns: Lab.path(r) });
    const nft = startNft(lab, r);
    const rounds = Number(process.env.PATH_LOSS_ROUNDS ?? (quick ? 5 : 20));
    // PATH_LOSS_ROWS="10:blackhole,50:nft-drop-all" runs only those rows (for investigation).
    const only = process.env.PATH_LOSS_ROWS?.split(',') ?? null;
    const wanted = (interval, kind) => only === null || only.includes(`${interval}:${kind}`);
    try {
      for (const interval of [10, 50]) {
        if (!wanted(interval, 'blackhole') && !wanted(interval, 'nft-drop-all')) continue;
        const bfd = bfdInfo.ok ? await startBfdPair(lab, c, r, interval, clock) : null;
        try {
          for (const kind of ['blackhole', 'nft-drop-all']) {
            if (!wanted(interval, kind)) continue;
            process.stderr.write(`  path-loss: ${interval} ms x ${MULTIPLIER}, ${kind}, ${rounds} rounds\n`);
            const o = await runRow(lab, c, r, { interval, kind, rounds, bfd, router, nft });
            rowsOut.push({ interval, kind, ...o });
          }
        } finally {
          bfd?.stop();
        }
      }
      if (only === null) slow = await runSlow(c, router, quick ? 2 : 5);
      if (cleanSeconds > 0) {
        process.stderr.write(`  path-loss: clean run ${cleanSeconds} s at 10 ms x ${MULTIPLIER}, other core busy\n`);
        clean = await cleanRun(lab, c, r, cleanSeconds, bfdInfo.ok, clock);
      }
    } finally {
      nft.stop();
      router.close();
    }
    clock.after = calibrate();
  } finally {
    await lab.destroy();
  }

  const rows = rowsOut.map((o) => ({
    interval: o.interval, kind: o.kind, rounds: o.netheal.length + o.nethealMissed,
    netheal: row(o.netheal), nethealMissed: o.nethealMissed, nethealSilentMs: row(o.nethealSilentMs), nethealByCount: o.nethealByCount,
    nethealRecovery: row(o.nethealRecovery), nethealRecoveryFromFirstReply: row(o.nethealRecoveryFromFirstReply),
    bfdd: bfdInfo.ok ? row(o.bfdd) : null, bfddMissed: bfdInfo.ok ? o.bfddMissed : null,
    bfddRecovery: bfdInfo.ok ? row(o.bfddRecovery) : null, bfddRecoveryMissed: bfdInfo.ok ? o.bfddRecoveryMissed : null,
    fping: row(o.fping), fpingMissed: o.fpingMissed,
    // How long before t0 the last reply was processed: the phase of the fault in netheal's schedule.
    lastReplyAgeMs: row(o.lastReplyAgeMs),
    raw: { netheal: o.netheal.map((x) => Number(x.toFixed(3))), bfdd: o.bfdd.map((x) => Number(x.toFixed(3))), fping: o.fping.map((x) => Number(x.toFixed(3))) },
    cdf: { netheal: cdf(o.netheal), bfdd: bfdInfo.ok ? cdf(o.bfdd) : [], fping: cdf(o.fping) },
  }));
  const b = round(summarize(slow), 1);
  const bound = MULTIPLIER * 1000 + 1000;
  const targets = [];
  const ratios = {};
  for (const x of rows) {
    const name = `${x.interval} ms x ${MULTIPLIER}, ${x.kind}`;
    const key = `i${x.interval}${x.kind === 'blackhole' ? 'Blackhole' : 'NftDrop'}`;
    ratios[key] = { medianVsBfdd: x.bfdd ? ratio(x.netheal.median, x.bfdd.median) : null, maxVsBfdd: x.bfdd ? ratio(x.netheal.max, x.bfdd.max) : null, medianVsFping: ratio(x.netheal.median, x.fping.median) };
    if (x.bfdd) {
      targets.push({ what: `${name}: netheal median / bfdd median`, target: '<= 1.0', measured: ratios[key].medianVsBfdd, pass: ratios[key].medianVsBfdd !== null && ratios[key].medianVsBfdd <= 1.0 });
      targets.push({ what: `${name}: netheal max <= bfdd max (ms)`, target: `<= ${x.bfdd.max}`, measured: x.netheal.max, pass: x.netheal.max !== null && x.bfdd.max !== null && x.netheal.max <= x.bfdd.max });
    } else {
      targets.push({ what: `${name}: netheal vs bfdd`, target: 'bfdd', measured: null, pass: false, skipped: `bfdd not run: ${bfdInfo.why}` });
    }
    targets.push({ what: `${name}: netheal missed detections`, target: 0, measured: x.nethealMissed, pass: x.nethealMissed === 0 });
    targets.push({ what: `${name}: netheal recovery median (ms, fault removed -> up)`, target: `<= ${2 * x.interval}`, measured: x.nethealRecovery.median, pass: x.nethealRecovery.median !== null && x.nethealRecovery.median <= 2 * x.interval });
  }
  targets.push({ what: 'detection max, interval 1 s x 3 (ms)', target: `<= ${bound}`, measured: b.max, pass: b.max !== null && b.max <= bound, ...(b.count === 0 ? { skipped: 'not run (PATH_LOSS_ROWS)' } : {}) });
  if (clean) {
    targets.push({ what: `clean run ${clean.seconds} s, 10 ms x 3, other core busy: netheal false downs`, target: 0, measured: clean.netheal.falseDowns, pass: clean.netheal.falseDowns === 0 });
  } else {
    targets.push({ what: 'clean run, 10 ms x 3, other core busy: netheal false downs', target: 0, measured: null, pass: false, skipped: quick ? 'quick mode' : 'PATH_LOSS_CLEAN_S=0' });
  }

  const silence = rows.map((x) => ({ median: x.nethealSilentMs.median, max: x.nethealSilentMs.max, deadline: MULTIPLIER * x.interval, byCount: x.nethealByCount, rounds: x.netheal.count }));
  const notes = [
    '',
    `Why netheal can be ahead at the same rate and multiplier: bfdd and fping declare down ${MULTIPLIER} x interval after the last packet they heard (a BFD receiver does not know when its peer sends). netheal knows when its own probes left: ${MULTIPLIER} probes sent since the last reply, the last unanswered for max(1 ms, interval / 10, SRTT + 4 RTTVAR), decide, and with the RFC 5880 jitter those ${MULTIPLIER} probes leave 12.5 % early on average. Silence when netheal decided (its \`silentMs\`) against the ${MULTIPLIER} x interval deadline, per row: median ${silence.map((l) => l.median).join(' / ')} ms, max ${silence.map((l) => l.max).join(' / ')} ms; decided by the count before the deadline in ${silence.map((l) => `${l.byCount}/${l.rounds}`).join(', ')} rounds. The nft rows add nft's own commit time after t0 (a process woken on a loaded machine), which delays the fault for every contender alike; which contender's worst round had a packet land just before t0 is chance.`,
    'netheal recovery counts from the fault\'s removal to `target-up` (recovery 2: the second reply); "from first reply" is that up after the first reply, one jittered interval. bfdd comes back through its three-way handshake at its 1 s slow rate.',
  ];
  if (clean && typeof clean.bfdd.falseDowns === 'number' && clean.bfdd.falseDowns > 0) {
    notes.push(`bfdd's false downs in the clean run (\`up -> down\` changes in the client end's log) are most likely scheduling: a BFD session needs both daemons to run every interval, and with \`yes\` and other test runs on 2 cores (load average up to ${clean.loadavg1.after.toFixed(0)}) an end can be kept off the CPU for more than ${MULTIPLIER} x 10 ms. netheal's echo is answered by the router's kernel, and a probe it failed to send on time moves the start of the silence on instead of counting against the path.`);
  }
  const f = (s) => (s === null ? 'skipped' : `${s.median} / ${s.p95} / ${s.max}`);
  const markdown = [
    '### Path-loss detection: netheal Prober vs FRR bfdd vs fping (issues #3, #15)',
    '',
    `Client and router namespaces joined by a veth; every contender watches the path in the same run at the same rate and multiplier (x ${MULTIPLIER}). netheal: Prober to 192.0.2.1 on the router's lo, timeout = interval, recovery 2; down when 3 probes sent since the last reply went unanswered, the last past its RTT allowance, or when nothing was heard for 3 x interval, whichever comes first; sends jittered 0-25% (RFC 5880). bfdd: ${bfdInfo.ok ? `${bfdInfo.version ?? 'FRR bfdd'}, single-hop session client <-> router, transmit and receive interval = interval; the client end's \`up -> down\` log stamp (CLOCK_REALTIME, microseconds, converted).` : `**skipped** (${bfdInfo.why}).`} fping -l -p I -t I: third consecutive "timed out" line, stamped at receipt through a pipe.`,
    'Faults in the router at t0 (monotonic, just before the request): **blackhole** = a /32 blackhole route for the client (one RTM_NEWROUTE); **nft drop-all** = input and output chains with policy drop (one line to a waiting `nft -i`). A random pause before each fault varies its phase.',
    '',
    '| interval | fault | rounds | netheal median / p95 / max ms | missed | bfdd median / p95 / max ms | missed | fping median / p95 / max ms | missed | netheal/bfdd median | netheal recovery median / max ms | from first reply, median | bfdd recovery median / max ms |',
    '|---:|---|---:|---|---:|---|---:|---|---:|---:|---|---:|---|',
    ...rows.map((x) => `| ${x.interval} ms | ${x.kind} | ${x.rounds} | ${f(x.netheal)} | ${x.nethealMissed} | ${f(x.bfdd)} | ${x.bfddMissed ?? '-'} | ${f(x.fping)} | ${x.fpingMissed} | ${ratios[`i${x.interval}${x.kind === 'blackhole' ? 'Blackhole' : 'NftDrop'}`].medianVsBfdd ?? '-'} | ${x.nethealRecovery.median} / ${x.nethealRecovery.max} | ${x.nethealRecoveryFromFirstReply.median} | ${x.bfddRecovery ? `${x.bfddRecovery.median} / ${x.bfddRecovery.max}` : 'skipped'} |`),
    '',
    b.count === 0 ? 'netheal, 1 s x 3: not run.' : `netheal, 1 s x 3 (bound ${bound} ms), blackhole, ${b.count} rounds: median ${b.median} ms, max ${b.max} ms.`,
    '',
    clean
      ? `Clean run: ${clean.seconds} s at 10 ms x 3 with \`yes >/dev/null\` on the other core (load average ${clean.loadavg1.before.toFixed(2)} -> ${clean.loadavg1.after.toFixed(2)}; other test runs shared the machine): netheal ${clean.netheal.falseDowns} false down(s) (${clean.netheal.replies} replies of ${clean.netheal.probes} probes), bfdd ${clean.bfdd.falseDowns ?? 'skipped'} false down(s), fping ${clean.fping.falseDowns} run(s) of 3 timeouts (${clean.fping.replies} replies).`
      : 'Clean run: skipped in this run.',
    ...notes,
  ].join('\n');
  const first = rows.find((x) => x.interval === 10 && x.kind === 'blackhole');
  return {
    name: 'path-loss',
    metrics: {
      // Per-round values stay in rows[].raw; CDFs only for the plotted row.
      rows: rows.map(({ cdf: _cdf, ...x }) => x),
      interval10ms: first ? { ...first.netheal, cdf: first.cdf.netheal } : null,
      interval1s: b, bound1sMs: bound, clean,
      bfdd: bfdInfo,
    },
    peers: {
      fping: first ? { ...first.fping, cdf: first.cdf.fping } : null,
      bfdd: first && first.bfdd ? { ...first.bfdd, cdf: first.cdf.bfdd } : null,
    },
    ratios,
    targets,
    markdown,
    machine: { note: 'shared VM: other helpers ran test suites concurrently' },
  };
}

module.exports = { name: 'path-loss', description: 'Prober path-loss detection and recovery vs FRR bfdd and fping at the same rate (blackhole route, nft drop-all), and false downs on a busy clean run', run };

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, (k, v) => (typeof v === 'bigint' ? String(v) : v), 2)), (e) => { console.error(e); process.exit(1); });
}
