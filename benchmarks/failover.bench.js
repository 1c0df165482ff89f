'use strict';
/**
 * Issue #17: uplink failover. Fault on the primary uplink -> first successful NEW TCP
 * connection from the client to the far server through the backup; netheal (the daemon,
 * in-process, failover 10 ms x 3) against keepalived (ping track_script + route switch on
 * transition, its fastest legitimate settings) in the same run.
 *
 * Topology (as test/uplinks.test.js `twoUplinks`): client --up0-- r1 --core1-- far,
 * client --up1-- r2 --core2-- far (203.0.113.10 on far's lo); the routers forward and
 * rp_filter, so a packet with the other provider's source address is dropped. The managers'
 * default routes: via r1 metric 100, via r2 metric 200; each contender keeps its own
 * `default ... metric 1` through the uplink it chose.
 *
 * Faults on the primary, each "in place" when the command that makes it has returned (t0,
 * CLOCK_MONOTONIC in this process; python's time.monotonic_ns() is the same clock):
 *  - carrier: r1's down0 set down (up0 loses carrier);
 *  - first-hop: r1 drops everything that comes in on down0 (nft netdev ingress, policy drop,
 *    ARP included);
 *  - beyond: a blackhole route for 203.0.113.10 on r1 (the gateway still answers).
 * New flows: a python loop in the client starts a non-blocking connect to the far server
 * every 5 ms (each attempt stamped at its start, given 300 ms), so an attempt stuck on the
 * dead path never delays the next. The result of a round is the start stamp of the first
 * attempt started at or after t0 that succeeded, minus t0.
 * Sockets: a holder in the client keeps long-lived connections: through the backup to the far
 * server (source 198.51.100.2, SO_BINDTODEVICE up1), on-link to r2, on-link to r1 (primary's
 * address, spared by design), and one unbound through the default route that reconnects when
 * it is aborted (the one netheal is expected to destroy). Destroyed = its blocking recv()
 * returned ECONNABORTED.
 * Between rounds the fault is removed and the round waits until the contender is back on the
 * primary (netheal: its `failback` event; keepalived: its metric 1 route via r1 again, seen by
 * `ip monitor route`). netheal runs as a fresh in-process Daemon per round: its uplink flap
 * damping (RFC 2439 defaults, not configurable for uplinks) would, by design, suppress the
 * fail-back after the third failover within minutes. Hold-up 1 s in the rounds (default 5 s in
 * the flap storm).
 *  - tcp-only: r1 drops forwarded TCP only (nft, inet forward hook): ICMP, and so every
 *    probe, still passes. netheal can see it only in TCP itself (passive TCP evidence from the
 *    tcp_info of the uplink's connections); the round records when that evidence declared the
 *    path dead, and whether the probes ever did.
 * Reconnecting client: a flow (src/lab/flow.ts) that exchanges a line every 10 ms with an echo
 * server on the far namespace and reconnects at once on ECONNABORTED, ECONNRESET or 2 s without
 * an echo; per round, fault -> its first echo again. It is also the traffic the TCP evidence reads.
 * Flap storm: the primary's carrier at 1 Hz (0.5 s down, 0.5 s up) for 20 s, then 10 s quiet:
 * changes of each contender's metric 1 route.
 * False alarms of the TCP evidence: FAILOVER_FALSE_ALARM_S=600 runs netheal that long with 1 %
 * of forwarded TCP dropped at random on r1 (nft numgen; netem is not built into this kernel)
 * under three flows (exchanges every 1, 10 and 100 ms) and the new-flow loop; counted: the
 * TCP evidence's dead-path verdicts and the failovers. Off by default (not part of npm test).
 * Knobs: FAILOVER_ROUNDS=N, FAILOVER_ONLY=netheal|keepalived, FAILOVER_STORM=0, FAILOVER_FALSE_ALARM_S=S.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { spawnSync } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { addTwoUplinks } = require('../lib/lab/two-uplinks');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');
const { startEchoServer, startFlow } = require('../lib/lab/flow');
const { summarize, round, cdf } = require('./lib/stats');

const FAR = '203.0.113.10';
const GW0 = '192.0.2.1';
const GW1 = '198.51.100.1';
const SRC0 = '192.0.2.2';
const SRC1 = '198.51.100.2';
const LOOP_PORT = 7401;
const HOLD_PORT = 7402;
const FLOW_PORT = 7403;
const FLOW_TIMEOUT_MS = 2000;
const ATTEMPT_EVERY_MS = 5;
const HOLD_UP_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => process.hrtime.bigint();
const msSince = (a, b) => Number(b - a) / 1e6;

async function poll(check, timeoutMs, everyMs = 5) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > end) return null;
    await sleep(everyMs);
  }
}

/** The two-uplink lab (src/lab/two-uplinks.ts), plus a veth pair in the client for keepalived's VRRP. */
async function buildLab() {
  const lab = Lab.create();
  const { client, r1, r2, far } = await addTwoUplinks(lab);
  await lab.addVeth({ ns: client, name: 'ka0' }, { ns: client, name: 'ka1' });
  await lab.addAddress(client, 'ka0', '10.255.0.1/30');
  await lab.addAddress(client, 'ka1', '10.255.0.2/30');
  return { lab, client, r1, r2, far };
}

function lines(child, onLine) {
  readline.createInterface({ input: child.stdout }).on('line', onLine);
}

const ACCEPT_CLOSE = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1024)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.close()
`;

const HOLD_SERVER = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
print("listening", flush=True)
def serve(c):
    try:
        while c.recv(4096): pass
    except OSError: pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/** Starts a non-blocking connect every 5 ms; prints "<start ns> <source>" of each success. */
const CONNECT_LOOP = `
import socket, selectors, struct, sys, time
far, port, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) * 1000000
sel = selectors.DefaultSelector(); pending = {}
linger = struct.pack("ii", 1, 0)
nxt = time.monotonic_ns()
while True:
    t = time.monotonic_ns()
    if t >= nxt:
        began = time.monotonic_ns()
        s = socket.socket(); s.setblocking(False)
        try:
            s.connect((far, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close(); s = None
        if s is not None:
            sel.register(s, selectors.EVENT_WRITE, began); pending[s] = began
        nxt = max(nxt + every, t)
    for key, _ in sel.select(max(0, (nxt - time.monotonic_ns()) / 1e9)):
        s = key.fileobj
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        sel.unregister(s); del pending[s]
        if err == 0:
            try:
                src = s.getsockname()[0]
            except OSError:
                src = "?"
            print(key.data, src, flush=True)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger); s.close()
    t = time.monotonic_ns()
    for s, began in list(pending.items()):
        if t - began > 300000000:
            sel.unregister(s); del pending[s]; s.close()
`;

/** Long-lived connections; prints "down NAME ERRNO NS" when one breaks (then reconnects). */
const HOLDER = `
import socket, sys, threading, time
lock = threading.Lock()
def say(*words):
    with lock:
        sys.stdout.write(" ".join(str(w) for w in words) + "\\n"); sys.stdout.flush()
def run(name, src, dev, dst, port):
    while True:
        c = socket.socket()
        try:
            if dev: c.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            if src: c.bind((src, 0))
            c.settimeout(2); c.connect((dst, port)); c.settimeout(None)
            say("up", name, c.getsockname()[0], time.monotonic_ns())
            while True:
                if not c.recv(1): raise OSError(0, "eof")
        except OSError as e:
            say("down", name, e.errno or 0, time.monotonic_ns())
        c.close(); time.sleep(0.1)
for spec in sys.argv[1:]:
    name, src, dev, dst, port = spec.split(",")
    threading.Thread(target=run, args=(name, src, dev, dst, int(port)), daemon=True).start()
while True: time.sleep(3600)
`;

const ECONNABORTED = 103;

async function startPython(lab, ns, code, args) {
  const child = lab.spawn(ns, 'python3', ['-u', '-c', code, ...args]);
  child.stderr.on('data', (d) => process.stderr.write(`  [${ns.replace(/^nh-\d+-\d+-/, '')}] ${d}`));
  return child;
}

async function startServers(lab, { r1, r2, far }) {
  const ready = [];
  const wait = (child) => new Promise((resolve) => readline.createInterface({ input: child.stdout }).once('line', resolve));
  ready.push(wait(await startPython(lab, far, ACCEPT_CLOSE, [FAR, String(LOOP_PORT)])));
  for (const ns of [far, r1, r2]) ready.push(wait(await startPython(lab, ns, HOLD_SERVER, [String(HOLD_PORT)])));
  await Promise.all(ready);
}

/** The client's new-flow loop: successes as { began (bigint ns), src }. */
async function startConnectLoop(lab, client) {
  const child = await startPython(lab, client, CONNECT_LOOP, [FAR, String(LOOP_PORT), String(ATTEMPT_EVERY_MS)]);
  const successes = [];
  const counted = { total: 0 };
  lines(child, (line) => {
    const [began, src] = line.split(' ');
    counted.total++;
    successes.push({ began: BigInt(began), src });
    if (successes.length > 50000) successes.splice(0, 25000);
  });
  return {
    successes,
    /** Successes since the start (the list above keeps only the latest). */
    get total() { return counted.total; },
    /** The first attempt started at or after t0 that succeeded through the backup (its source address). */
    firstSince(t0) { return successes.find((s) => s.began >= t0 && s.src === SRC1) ?? null; },
  };
}

const HELD = [
  // name, source, device, destination, role
  { name: 'backupFar', src: SRC1, dev: 'up1', dst: FAR, healthy: true },
  { name: 'backupOnLink', src: SRC1, dev: '', dst: GW1, healthy: true },
  { name: 'primaryOnLink', src: SRC0, dev: '', dst: GW0, healthy: false },
  { name: 'defaultRoute', src: '', dev: '', dst: FAR, healthy: false },
];

async function startHolder(lab, client) {
  const child = await startPython(lab, client, HOLDER, HELD.map((h) => [h.name, h.src, h.dev, h.dst, HOLD_PORT].join(',')));
  const events = [];
  lines(child, (line) => {
    const [kind, name, detail, stamp] = line.split(' ');
    events.push({ kind, name, detail, at: BigInt(stamp) });
  });
  return {
    events,
    /** ECONNABORTED per connection in [from, to). */
    aborted(from, to) {
      const out = {};
      for (const h of HELD) out[h.name] = events.filter((e) => e.kind === 'down' && e.name === h.name && Number(e.detail) === ECONNABORTED && e.at >= from && e.at < to).length;
      return out;
    },
    allUp() {
      return HELD.every((h) => {
        const last = events.filter((e) => e.name === h.name).pop();
        return last?.kind === 'up';
      });
    },
  };
}

/** `ip monitor route` in the client: changes of the metric 1 default route, stamped at receipt. */
function startRouteMonitor(lab, client) {
  const child = lab.spawn(client, 'ip', ['monitor', 'route']);
  const changes = [];
  let current = null;
  lines(child, (line) => {
    const at = now();
    if (!/^(Deleted )?default /.test(line) || !/ metric 1\b/.test(line)) return;
    const via = line.startsWith('Deleted') ? null : (/ via (\S+)/.exec(line)?.[1] ?? null);
    if (via === current) return;
    current = via;
    changes.push({ at, via, line });
  });
  return {
    changes,
    get current() { return current; },
    /** First change to `via` at or after `since`. */
    next(via, since) { return changes.find((c) => c.at >= since && c.via === via) ?? null; },
    count(from, to) { return changes.filter((c) => c.at >= from && c.at < to).length; },
    stop() { child.kill('SIGTERM'); },
  };
}

async function metricOneVia(lab, client) {
  const routes = JSON.parse(await lab.ip(client, '-j', 'route', 'show', 'default'));
  return routes.find((r) => r.metric === 1)?.gateway ?? null;
}

/** Faults on the primary: apply and remove; each resolves when the command has returned. */
function faults(lab, { r1 }) {
  const NFT_TABLE = 'add table netdev nhfailover\nadd chain netdev nhfailover in { type filter hook ingress device "down0" priority 0; policy drop; }\n';
  return {
    carrier: {
      apply: () => lab.ip(r1, 'link', 'set', 'down0', 'down'),
      remove: () => lab.ip(r1, 'link', 'set', 'down0', 'up'),
    },
    firstHop: {
      apply: () => nftScript(lab, r1, NFT_TABLE),
      remove: () => nftScript(lab, r1, 'delete table netdev nhfailover\n'),
    },
    beyond: {
      apply: () => lab.ip(r1, 'route', 'replace', 'blackhole', `${FAR}/32`),
      remove: () => lab.ip(r1, 'route', 'replace', `${FAR}/32`, 'via', '10.1.0.2'),
    },
    tcpOnly: {
      apply: () => nftScript(lab, r1, 'add table inet nhtcponly\nadd chain inet nhtcponly through { type filter hook forward priority 0; }\nadd rule inet nhtcponly through meta l4proto tcp drop\n'),
      remove: () => nftScript(lab, r1, 'delete table inet nhtcponly\n'),
    },
  };
}

function nftScript(lab, ns, script) {
  const file = path.join(os.tmpdir(), `nh-failover-${process.pid}.nft`);
  fs.writeFileSync(file, script);
  return lab.exec(ns, 'nft', ['-f', file]);
}

// ---------------------------------------------------------------- netheal

function nethealConfig(client, holdUpMs) {
  return validateConfig({
    netns: Lab.path(client), policy: { graceMs: 600000 }, interfaces: { up0: {}, up1: {} },
    uplinks: [
      { iface: 'up0', gateway: GW0, targets: [FAR] },
      { iface: 'up1', gateway: GW1, targets: [FAR] },
    ],
    failover: { intervalMs: 10, multiplier: 3, recovery: 3, holdUpMs },
    managers: { networkScriptsDir: '/nonexistent' },
  });
}

async function startNetheal(lab, client, holdUpMs) {
  const daemon = new Daemon({
    config: nethealConfig(client, holdUpMs),
    logger: createLogger({ format: 'json', minLevel: process.env.FAILOVER_DEBUG ? 'debug' : 'error', write: (l) => { if (process.env.FAILOVER_DEBUG) process.stderr.write(l); } }),
  });
  const events = [];
  daemon.on('path-changed', (e) => events.push({ at: now(), ...e }));
  daemon.on('uplink-health', (e) => events.push({ at: now(), type: 'uplink-health', ...e }));
  await daemon.start();
  const on = await poll(async () => (await metricOneVia(lab, client)) === GW0, 5000, 10);
  if (!on) throw new Error('netheal did not put its route on the primary');
  return { daemon, events };
}

// ---------------------------------------------------------------- keepalived

function keepalivedVersion() {
  // It prints its version on stderr.
  const r = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
  if (r.error) return null;
  const line = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim();
  return line.startsWith('Keepalived') ? line : null;
}

function keepalivedConfig(dir, target) {
  const toPrimary = path.join(dir, 'to-primary.sh');
  const toBackup = path.join(dir, 'to-backup.sh');
  fs.writeFileSync(toPrimary, `#!/bin/sh\nexec ip route replace default via ${GW0} dev up0 metric 1\n`, { mode: 0o755 });
  fs.writeFileSync(toBackup, `#!/bin/sh\nexec ip route replace default via ${GW1} dev up1 metric 1\n`, { mode: 0o755 });
  const conf = [
    'global_defs {',
    '  router_id nh_failover_bench',
    '  vrrp_version 3',
    '  script_user root',
    '  enable_script_security',
    '}',
    'vrrp_script chk_primary {',
    `  script "/usr/bin/ping -n -q -c1 -W0.2 -I up0 ${target}"`,
    '  interval 1',
    '  timeout 1',
    '  fall 1',
    '  rise 1',
    '}',
    'vrrp_instance uplink {',
    '  state BACKUP',
    '  interface ka0',
    '  virtual_router_id 17',
    '  priority 100',
    '  advert_int 0.01',
    '  track_interface {',
    '    up0',
    '  }',
    '  track_script {',
    '    chk_primary',
    '  }',
    '  virtual_ipaddress {',
    '    10.255.0.100/32 dev ka0',
    '  }',
    `  notify_master "${toPrimary}"`,
    `  notify_backup "${toBackup}"`,
    `  notify_fault "${toBackup}"`,
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'keepalived.conf'), conf);
  return conf;
}

async function startKeepalived(lab, client, target, monitor) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nh-keepalived-'));
  fs.chmodSync(dir, 0o755);
  const conf = keepalivedConfig(dir, target);
  const child = lab.spawn(client, 'keepalived', ['-n', '-l', '-D', '-P', '-f', path.join(dir, 'keepalived.conf'),
    '-p', path.join(dir, 'keepalived.pid'), '-r', path.join(dir, 'vrrp.pid'), '-c', path.join(dir, 'checkers.pid'),
    '-i', 'nh_failover_bench']);
  let log = '';
  const onData = (d) => { log += d; if (log.length > 1e6) log = log.slice(-5e5); if (process.env.FAILOVER_DEBUG) process.stderr.write(d); };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const since = now();
  const on = await poll(() => monitor.next(GW0, since) ?? (monitor.current === GW0 ? true : null), 10000, 10);
  if (!on) throw new Error(`keepalived did not go MASTER (route via the primary): ${log.slice(-2000)}`);
  return {
    conf,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await poll(() => child.exitCode !== null || child.signalCode !== null, 5000, 20);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- rounds

/**
 * One round: fault at t0, first new flow through the backup, sockets, restore, fail-back.
 * `waitBack(restoredAt)` resolves with the stamp of the contender's return to the primary.
 */
async function oneRound({ fault, loop, holder, monitor, flow, waitFailover, waitBack, maxWaitMs }) {
  const pauseFrom = now();
  await sleep(150 + Math.random() * 50); // a random phase in every schedule
  // A contender that left the primary with no fault (a check that timed out on a loaded
  // machine) is counted, and the round waits until it is back before the fault.
  const falseFailovers = monitor.changes.filter((c) => c.at >= pauseFrom && c.via === GW1).length;
  if (monitor.current !== GW0) await poll(() => monitor.current === GW0, 10000, 5);
  await fault.apply();
  const t0 = now();
  const reconnected = Promise.race([flow.echoAfter(t0), sleep(maxWaitMs).then(() => null)]);
  const first = await poll(() => loop.firstSince(t0), maxWaitMs, 2);
  const moved = await waitFailover(t0);
  const echoAgain = await reconnected;
  await sleep(100);
  const restoreAt = now();
  const aborted = holder.aborted(t0, restoreAt);
  await fault.remove();
  const restored = now();
  const back = await waitBack(restored);
  const backAt = now();
  await sleep(300);
  const abortedFailback = holder.aborted(restored, now());
  return {
    falseFailovers,
    newFlowMs: first === null ? null : msSince(t0, first.began),
    newFlowSrc: first?.src ?? null,
    routeMs: moved === null ? null : msSince(t0, moved),
    t0,
    reconnectMs: echoAgain === null ? null : msSince(t0, echoAgain),
    aborted, abortedFailback,
    failbackMs: back === null ? null : msSince(restored, back),
    failbackWaitedMs: msSince(restored, backAt),
  };
}

async function runNetheal(lab, nss, loop, holder, monitor, flow, faultSet, kinds, rounds) {
  const out = {};
  for (const kind of kinds) {
    process.stderr.write(`  failover: netheal, ${kind}, ${rounds} rounds\n`);
    const rows = [];
    for (let i = 0; i < rounds; i++) {
      const { daemon, events } = await startNetheal(lab, nss.client, HOLD_UP_MS);
      try {
        await poll(() => holder.allUp(), 5000, 20);
        await sleep(300); // the probes' first replies
        // The flow on the primary and exchanging (it may still be reconnecting from the last round).
        await poll(() => flow.src === SRC0 && Number(now() - flow.lastEchoNs) < 100e6, 10000, 10);
        const r = await oneRound({
          fault: faultSet[kind], loop, holder, monitor, flow, maxWaitMs: 5000,
          waitFailover: (t0) => poll(() => monitor.next(GW1, t0)?.at, 5000, 2),
          waitBack: (t1) => poll(() => events.find((e) => e.at >= t1 && e.reason === 'failback')?.at, 15000, 5),
        });
        const failover = events.find((e) => e.reason === 'failover');
        r.destroyedReported = failover?.destroyed ?? null;
        r.destroyedAtFailback = events.find((e) => e.reason === 'failback')?.destroyed ?? null;
        const primary = `up0/${GW0}`;
        const tcpDead = events.find((e) => e.type === 'uplink-health' && e.uplink === primary && e.source === 'tcp' && !e.healthy && e.at >= r.t0);
        r.tcpEvidenceMs = tcpDead === undefined ? null : msSince(r.t0, tcpDead.at);
        r.probesSawIt = events.some((e) => e.type === 'uplink-health' && e.uplink === primary && e.source === 'probes' && !e.healthy && e.at >= r.t0);
        delete r.t0;
        rows.push(r);
      } finally {
        await daemon.stop();
      }
    }
    out[kind] = rows;
  }
  return out;
}

async function runKeepalived(lab, nss, loop, holder, monitor, flow, faultSet, plan, rounds) {
  const out = {};
  for (const { key, kind, target, maxWaitMs, rounds: n } of plan) {
    const count = n ?? rounds;
    process.stderr.write(`  failover: keepalived (ping ${target}), ${kind}, ${count} rounds\n`);
    const ka = await startKeepalived(lab, nss.client, target, monitor);
    const rows = [];
    try {
      for (let i = 0; i < count; i++) {
        await poll(() => holder.allUp(), 5000, 20);
        await sleep(Math.random() * 1000); // the check's 1 s schedule at a random phase
        rows.push(await oneRound({
          fault: faultSet[kind], loop, holder, monitor, flow, maxWaitMs,
          waitFailover: (t0) => poll(() => monitor.next(GW1, t0)?.at, maxWaitMs, 5),
          waitBack: async (t1) => {
            const hit = await poll(() => monitor.next(GW0, t1)?.at ?? (monitor.current === GW0 ? t1 : null), 15000, 5);
            return hit;
          },
        }));
        delete rows[rows.length - 1].t0;
      }
    } finally {
      await ka.stop();
      out[key] = { rows, conf: ka.conf };
    }
  }
  return out;
}

/**
 * False alarms of the TCP evidence: netheal for `seconds` with 1 % of the TCP r1 forwards
 * dropped at random (both directions), busy flows on the primary. No fault: every dead-path
 * verdict from TCP, and every failover, is a false alarm.
 */
async function falseAlarmRun(lab, nss, monitor, loop, seconds) {
  const { daemon, events } = await startNetheal(lab, nss.client, HOLD_UP_MS);
  const flows = [1, 10, 100].map((everyMs) => startFlow(nss.client, FAR, FLOW_PORT, { everyMs, timeoutMs: FLOW_TIMEOUT_MS }));
  const failures = [];
  flows.forEach((f, i) => f.on('failed', (e) => failures.push({ flow: i, error: e.error })));
  try {
    await poll(() => flows.every((f) => f.echoes > 0), 10000, 20);
    await nftScript(lab, nss.r1, 'add table inet nhloss\nadd chain inet nhloss through { type filter hook forward priority 0; }\nadd rule inet nhloss through meta l4proto tcp numgen random mod 100 < 1 counter drop\n');
    const from = now();
    const echoesBefore = flows.map((f) => f.echoes);
    const newFlowsBefore = loop.total;
    await sleep(seconds * 1000);
    const counters = await lab.exec(nss.r1, 'nft', ['list', 'table', 'inet', 'nhloss']);
    await nftScript(lab, nss.r1, 'delete table inet nhloss\n');
    const status = daemon.tcpEvidence() ?? {};
    return {
      seconds,
      lossPercent: 1,
      droppedPackets: Number(/packets (\d+)/.exec(counters)?.[1] ?? NaN),
      echoes: flows.map((f, i) => f.echoes - echoesBefore[i]),
      newFlows: loop.total - newFlowsBefore,
      flowFailures: failures.length,
      tcpFalseAlarms: events.filter((e) => e.type === 'uplink-health' && e.source === 'tcp' && !e.healthy && e.at >= from).length,
      probeFalseAlarms: events.filter((e) => e.type === 'uplink-health' && e.source === 'probes' && !e.healthy && e.at >= from).length,
      failovers: events.filter((e) => e.reason === 'failover' && e.at >= from).length,
      primaryPolls: status[`up0/${GW0}`]?.polls ?? null,
    };
  } finally {
    for (const f of flows) f.stop();
    await daemon.stop();
  }
}

/** 1 Hz carrier flaps of the primary for 20 s, then 10 s quiet: route changes. */
async function flapStorm(lab, nss, monitor, start) {
  const handle = await start();
  await sleep(1500);
  const from = now();
  for (let i = 0; i < 20; i++) {
    await lab.ip(nss.r1, 'link', 'set', 'down0', 'down');
    await sleep(500);
    await lab.ip(nss.r1, 'link', 'set', 'down0', 'up');
    await sleep(500);
  }
  const stormEnd = now();
  await sleep(10000);
  const end = now();
  const result = {
    flaps: 20,
    routeChangesDuringStorm: monitor.count(from, stormEnd),
    routeChangesAfter10s: monitor.count(stormEnd, end),
    onPrimaryAtEnd: monitor.current === GW0,
    changes: monitor.changes.filter((c) => c.at >= from && c.at < end).map((c) => ({ atMs: Number(msSince(from, c.at).toFixed(1)), via: c.via })),
  };
  await handle.stop();
  return result;
}

function summary(values) {
  return round(summarize(values.filter((v) => v !== null)), 1);
}

function table(rows) {
  const flows = rows.map((r) => r.newFlowMs);
  const sum = (f) => rows.reduce((a, r) => a + f(r), 0);
  return {
    rounds: rows.length,
    newFlowMs: summary(flows),
    missed: flows.filter((v) => v === null).length,
    routeMs: summary(rows.map((r) => r.routeMs)),
    failbackMs: summary(rows.map((r) => r.failbackMs)),
    failbackMissed: rows.filter((r) => r.failbackMs === null).length,
    healthyDestroyed: sum((r) => HELD.filter((h) => h.healthy).reduce((a, h) => a + r.aborted[h.name], 0)),
    primaryOnLinkDestroyed: sum((r) => r.aborted.primaryOnLink),
    movedClientDestroyed: sum((r) => r.aborted.defaultRoute),
    backupFarDestroyedAtFailback: sum((r) => r.abortedFailback.backupFar),
    falseFailovers: sum((r) => r.falseFailovers),
    reconnectMs: summary(rows.map((r) => r.reconnectMs)),
    reconnectMissed: rows.filter((r) => r.reconnectMs === null).length,
    tcpEvidenceMs: summary(rows.map((r) => r.tcpEvidenceMs ?? null)),
    tcpEvidenceMissed: rows.filter((r) => r.tcpEvidenceMs === null).length,
    probesSawIt: rows.filter((r) => r.probesSawIt === true).length,
    raw: flows.map((v) => (v === null ? null : Number(v.toFixed(2)))),
    cdf: cdf(flows.filter((v) => v !== null)),
  };
}

async function run({ quick = false } = {}) {
  const rounds = Number(process.env.FAILOVER_ROUNDS ?? (quick ? 3 : 20));
  const only = process.env.FAILOVER_ONLY ?? null;
  const doStorm = process.env.FAILOVER_STORM !== '0';
  const falseAlarmS = quick ? 0 : Number(process.env.FAILOVER_FALSE_ALARM_S ?? 0);
  const kaVersion = keepalivedVersion();
  const loadBefore = os.loadavg();
  const nss = await buildLab();
  const { lab } = nss;
  const kinds = ['carrier', 'firstHop', 'beyond', 'tcpOnly'];
  let netheal = null, keepalived = null, storm = { netheal: null, keepalived: null }, kaConf = {}, falseAlarm = null;
  try {
    await startServers(lab, nss);
    const echo = await startEchoServer(nss.far, FAR, FLOW_PORT);
    const flow = startFlow(nss.client, FAR, FLOW_PORT, { everyMs: 10, timeoutMs: FLOW_TIMEOUT_MS });
    const loop = await startConnectLoop(lab, nss.client);
    const holder = await startHolder(lab, nss.client);
    const monitor = startRouteMonitor(lab, nss.client);
    const faultSet = faults(lab, nss);
    if (!(await poll(() => holder.allUp() && loop.successes.length > 0, 20000, 50))) throw new Error(`lab traffic did not start: ${loop.successes.length} new flows, holder ${JSON.stringify(holder.events.slice(-8), (k, v) => (typeof v === "bigint" ? String(v) : v))}`);
    if (!(await poll(() => flow.echoes > 0, 20000, 50))) throw new Error('the reconnecting flow did not start');
    if (only === null || only === 'netheal') netheal = await runNetheal(lab, nss, loop, holder, monitor, flow, faultSet, kinds, rounds);
    if (kaVersion && (only === null || only === 'keepalived')) {
      const ka = await runKeepalived(lab, nss, loop, holder, monitor, flow, faultSet, [
        { key: 'carrier', kind: 'carrier', target: GW0, maxWaitMs: 5000 },
        { key: 'firstHop', kind: 'firstHop', target: GW0, maxWaitMs: 5000 },
        { key: 'beyond', kind: 'beyond', target: FAR, maxWaitMs: 5000 },
        { key: 'beyondPingGateway', kind: 'beyond', target: GW0, maxWaitMs: 4000, rounds: Math.min(rounds, 5) },
        { key: 'tcpOnly', kind: 'tcpOnly', target: FAR, maxWaitMs: 4000, rounds: Math.min(rounds, 5) },
      ], rounds);
      keepalived = Object.fromEntries(Object.entries(ka).map(([k, v]) => [k, v.rows]));
      kaConf = { gateway: ka.carrier?.conf, far: ka.beyond?.conf };
    }
    if (doStorm && !quick) {
      if (only === null || only === 'netheal') {
        process.stderr.write('  failover: flap storm, netheal (hold-up 5 s)\n');
        storm.netheal = await flapStorm(lab, nss, monitor, async () => {
          const h = await startNetheal(lab, nss.client, 5000);
          return { stop: () => h.daemon.stop() };
        });
      }
      if (kaVersion && (only === null || only === 'keepalived')) {
        process.stderr.write('  failover: flap storm, keepalived\n');
        storm.keepalived = await flapStorm(lab, nss, monitor, () => startKeepalived(lab, nss.client, GW0, monitor));
      }
    }
    if (falseAlarmS > 0 && (only === null || only === 'netheal')) {
      process.stderr.write(`  failover: TCP evidence false alarms, ${falseAlarmS} s at 1 % random TCP loss\n`);
      falseAlarm = await falseAlarmRun(lab, nss, monitor, loop, falseAlarmS);
    }
    flow.stop();
    echo.kill('SIGKILL');
    monitor.stop();
  } finally {
    await lab.destroy();
  }
  const loadAfter = os.loadavg();

  const n = netheal ? Object.fromEntries(Object.entries(netheal).map(([k, v]) => [k, table(v)])) : null;
  const k = keepalived ? Object.fromEntries(Object.entries(keepalived).map(([key, v]) => [key, table(v)])) : null;
  const names = { carrier: 'carrier loss', firstHop: 'first-hop loss', beyond: 'loss beyond the first hop', tcpOnly: 'TCP-only blackhole (ICMP passes)' };
  const targets = [];
  for (const kind of kinds.filter((k) => k !== 'tcpOnly')) {
    const x = n?.[kind];
    const skip = x ? {} : { skipped: 'netheal not run (FAILOVER_ONLY)' };
    targets.push({ what: `${names[kind]}: netheal new flow p50 (ms)`, target: '<= 100', measured: x?.newFlowMs.median ?? null, pass: !!x && x.missed === 0 && x.newFlowMs.median <= 100, ...skip });
    targets.push({ what: `${names[kind]}: netheal new flow p99 (ms)`, target: '<= 250', measured: x?.newFlowMs.p99 ?? null, pass: !!x && x.missed === 0 && x.newFlowMs.p99 <= 250, ...skip });
    targets.push({ what: `${names[kind]}: sockets destroyed on the healthy uplink (netheal)`, target: 0, measured: x?.healthyDestroyed ?? null, pass: !!x && x.healthyDestroyed === 0, ...skip });
  }
  {
    const x = n?.tcpOnly;
    const skip = x ? {} : { skipped: 'netheal not run (FAILOVER_ONLY)' };
    targets.push({ what: 'TCP-only blackhole: netheal detects it from TCP evidence alone, p99 (ms; the probes never saw it)', target: '<= 1000', measured: x?.tcpEvidenceMs.p99 ?? null, pass: !!x && x.tcpEvidenceMissed === 0 && x.probesSawIt === 0 && x.tcpEvidenceMs.p99 <= 1000, ...skip });
    targets.push({ what: 'TCP-only blackhole: netheal new flow through the backup in every round, p99 (ms)', target: 'every round', measured: x?.newFlowMs.p99 ?? null, pass: !!x && x.missed === 0, ...skip });
    for (const kind of kinds) {
      const y = n?.[kind];
      targets.push({ what: `${names[kind]}: reconnecting client exchanges data again, netheal p99 (ms)`, target: '<= 1000', measured: y?.reconnectMs.p99 ?? null, pass: !!y && y.reconnectMissed === 0 && y.reconnectMs.p99 <= 1000, ...skip });
    }
  }
  if (falseAlarm) targets.push({ what: `TCP evidence false alarms in ${falseAlarm.seconds} s at 1 % random TCP loss`, target: 0, measured: falseAlarm.tcpFalseAlarms, pass: falseAlarm.tcpFalseAlarms === 0 && falseAlarm.failovers === 0 });
  const boundBack = n ? kinds.reduce((a, kind) => a + n[kind].backupFarDestroyedAtFailback, 0) : null;
  targets.push({ what: 'netheal: connections bound to the backup (SO_BINDTODEVICE up1, unaffected by the default route) destroyed at fail-back', target: 0, measured: boundBack, pass: boundBack === 0, ...(n ? {} : { skipped: 'netheal not run (FAILOVER_ONLY)' }) });
  if (storm.netheal) targets.push({ what: 'flap storm (1 Hz x 20): netheal route changes after the first failover', target: 0, measured: storm.netheal.routeChangesDuringStorm + storm.netheal.routeChangesAfter10s - 1, pass: storm.netheal.routeChangesDuringStorm + storm.netheal.routeChangesAfter10s - 1 <= 0 });

  const f = (s) => (s && s.count ? `${s.median} / ${s.p99} / ${s.max}` : 'none');
  const row = (who, kind, x) => (x ? `| ${who} | ${kind} | ${x.rounds} | ${f(x.newFlowMs)} | ${x.missed} | ${f(x.routeMs)} | ${x.routeMs.count === 0 ? 'never left the primary' : f(x.failbackMs)} | ${x.healthyDestroyed} | ${x.movedClientDestroyed} | ${x.primaryOnLinkDestroyed} | ${x.backupFarDestroyedAtFailback} | ${x.falseFailovers} |` : null);
  const stormLine = (who, s) => (s ? `- ${who}: ${s.routeChangesDuringStorm} changes of its route during the 20 s storm, ${s.routeChangesAfter10s} in the 10 s after; on the primary at the end: ${s.onPrimaryAtEnd ? 'yes' : 'no'}.` : `- ${who}: not run.`);
  const markdown = [
    '### Uplink failover: netheal vs keepalived (issue #17)',
    '',
    `Two uplinks (client up0 -> r1, up1 -> r2, routers forwarding to a far namespace with ${FAR}, rp_filter on the routers), src/lab/two-uplinks.ts (as test/uplinks.test.js). Fault on the primary at t0 (the command returned): **carrier** = r1's down0 set down; **first-hop** = r1 drops everything arriving on down0 (nft netdev ingress, policy drop); **beyond** = blackhole ${FAR}/32 on r1. New flow = the start stamp (CLOCK_MONOTONIC) of the first connect attempt started at or after t0 that succeeded; attempts start every ${ATTEMPT_EVERY_MS} ms, non-blocking, each given 300 ms, so a stuck one never delays the next. Sockets: a holder keeps a connection through the backup to the far server (source ${SRC1}, SO_BINDTODEVICE up1) and one on-link to r2 (the healthy uplink), one on-link to r1 from ${SRC0}, and one unbound through the default route that reconnects when aborted; destroyed = its recv() returned ECONNABORTED. Each round waits until the contender is back on the primary before the next.`,
    '',
    `netheal: in-process Daemon, uplinks up0 (gateway ${GW0}) and up1 (gateway ${GW1}), both with targets [${FAR}], failover intervalMs 10, multiplier 3, recovery 3, holdUpMs ${HOLD_UP_MS} (5000 in the storm); a fresh daemon per round, because its uplink flap damping (RFC 2439 defaults: 1000 per flap, suppress at 2500, half-life 5 min; not configurable for uplinks) would rightly suppress the fail-back from the third failover on. Route moved: the change of its metric 1 route, seen by \`ip monitor route\` in the client (stamped at receipt in this process), as for keepalived; fail-back: its \`failback\` event.`,
    `keepalived: ${kaVersion ?? '**not installed: skipped**'}, run inside the client namespace only (\`ip netns exec CLIENT keepalived -n -l -D -P -f CONF -p/-r/-c PIDFILES\`), VRRP on ka0, one end of a veth pair made for it inside the client namespace (no VRRP on any uplink, none on the host). One instance, no peer: MASTER ~3 adverts (30 ms) after start or recovery; the ping track_script has no weight, so its failure puts the instance in FAULT at once (fall 1); \`track_interface up0\` puts it in FAULT on carrier loss. notify_master = \`ip route replace default via ${GW0} dev up0 metric 1\`, notify_backup and notify_fault = \`ip route replace default via ${GW1} dev up1 metric 1\`. The check pings out of up0 (-I up0: via the primary whatever the default route). Route: the change of the metric 1 route, seen by \`ip monitor route\` in the client. A random 0-1 s pause before each fault varies the phase of its 1 s schedule. Its exact config (target = the gateway; for "beyond" the far server):`,
    '',
    '```',
    (kaConf.far ?? kaConf.gateway ?? '(not run)').replace(/\/tmp\/nh-keepalived-[^/]+\//g, '$DIR/').trimEnd(),
    '```',
    '',
    '| contender | fault | rounds | new flow p50 / p99 / max ms | missed | route moved p50 / p99 / max ms | fail-back p50 / p99 / max ms (from the fault\'s removal) | destroyed on the healthy uplink | unbound client aborted (moved) | on-link to r1 aborted | backup-bound aborted at fail-back | false failovers (no fault) |',
    '|---|---|---:|---|---:|---|---|---:|---:|---:|---:|---:|',
    ...kinds.map((kind) => row('netheal', names[kind], n?.[kind])).filter(Boolean),
    row(`keepalived (ping ${GW0})`, names.carrier, k?.carrier),
    row(`keepalived (ping ${GW0})`, names.firstHop, k?.firstHop),
    row(`keepalived (ping ${FAR})`, names.beyond, k?.beyond),
    row(`keepalived (ping ${GW0}, the common setup)`, names.beyond, k?.beyondPingGateway),
    row(`keepalived (ping ${FAR})`, names.tcpOnly, k?.tcpOnly),
    '',
    `**TCP evidence and the reconnecting client.** TCP-only blackhole = r1 drops forwarded TCP (nft inet forward hook), ICMP passes, so no probe fails: netheal sees it only in the tcp_info of the primary's connections (failover.tcpEvidence defaults: polled every 100 ms while they carry traffic, dead after 500 ms without a received segment with >= 2 segments sent and >= 2 retransmitted). "TCP evidence" = fault -> the evidence's dead-path verdict (its \`uplink-health\` event); "probes saw it" = rounds in which the primary's probes failed too. Reconnecting client = a flow exchanging a line every 10 ms that reconnects on ECONNABORTED, ECONNRESET or ${FLOW_TIMEOUT_MS} ms without an echo; fault -> its first echo again (within the round's wait).`,
    '',
    '| contender | fault | rounds | TCP evidence p50 / p99 / max ms | evidence missed | probes saw it | reconnecting client p50 / p99 / max ms | client missed |',
    '|---|---|---:|---|---:|---:|---|---:|',
    ...kinds.map((kind) => (n?.[kind] ? `| netheal | ${names[kind]} | ${n[kind].rounds} | ${kind === 'tcpOnly' ? f(n[kind].tcpEvidenceMs) : f(n[kind].tcpEvidenceMs) + ' (beside the probes)'} | ${kind === 'tcpOnly' ? n[kind].tcpEvidenceMissed : '-'} | ${n[kind].probesSawIt} | ${f(n[kind].reconnectMs)} | ${n[kind].reconnectMissed} |` : null)).filter(Boolean),
    ...[['carrier', GW0, k?.carrier], ['firstHop', GW0, k?.firstHop], ['beyond', FAR, k?.beyond], ['tcpOnly', FAR, k?.tcpOnly]].map(([kind, target, x]) => (x ? `| keepalived (ping ${target}) | ${names[kind]} | ${x.rounds} | n/a | - | - | ${f(x.reconnectMs)} | ${x.reconnectMissed} |` : null)).filter(Boolean),
    '',
    falseAlarm
      ? `False alarms of the TCP evidence: ${falseAlarm.seconds} s with 1 % of r1's forwarded TCP dropped at random (nft \`numgen random mod 100 < 1\`: ${falseAlarm.droppedPackets} packets dropped; netem is not built into this kernel), flows exchanging every 1 / 10 / 100 ms (${falseAlarm.echoes.join(' / ')} echoes) and ${falseAlarm.newFlows} new connections: **${falseAlarm.tcpFalseAlarms} dead-path verdicts from TCP**, ${falseAlarm.probeFalseAlarms} from the probes, ${falseAlarm.failovers} failovers; ${falseAlarm.flowFailures} flow failures (2 s without an echo).`
      : 'False alarms of the TCP evidence: not run in this run (FAILOVER_FALSE_ALARM_S=600 runs it).',
    '',
    `"missed": no new flow through the backup within the wait (5 s; 4 s for the gateway-ping row). Fail-back includes netheal's hold-up (${HOLD_UP_MS} ms) and recovery (3 replies at 10 ms).`,
    'New flows count only through the backup (source address ' + SRC1 + '). t0 is when the command that makes the fault (`ip`, `nft`, run through `ip netns exec`) has returned to this process, so on a loaded machine the fault is in place a few ms before t0, for every contender alike; a keepalived round can then come out below 1 ms (its reaction to a carrier event started before t0). "false failovers": moves to the backup with no fault, in the pause before a fault (a check timed out on the loaded machine); the round then waits until the contender is back on the primary.',
    'Destroyed sockets: netheal destroys, as designed, the unbound connection through the default route on every failover (its owner reconnects through the backup) and spares the on-link one to r1 and both on the backup. At fail-back it destroys the connections from the backup\'s address, which is right for unbound ones (after the fail-back they would leave through the primary with a source r1 drops), and spares the one bound to up1 with SO_BINDTODEVICE, whose path (the up1 default route, metric 200) never changed (the last column: the first run of this bench found it destroyed every time; fixed since). keepalived destroys nothing, so its unbound client stays stuck on the dead path until TCP gives up.',
    'Fail-back after carrier loss takes ~0.85 s more than after the other faults for netheal: the uplink is healthy only when replies come back, and after the carrier returns the gateway\'s ARP entry, which went INCOMPLETE/FAILED while the link was down, is re-resolved on the kernel\'s retransmit timer (1 s). keepalived returns on the carrier event itself (track_interface) when its 1 s check did not run during the outage, i.e. before the path is proven.',
    '',
    'Flap storm (primary carrier 0.5 s down / 0.5 s up, 20 times, then 10 s quiet; netheal hold-up 5 s; keepalived pinging the gateway, track_interface up0):',
    stormLine('netheal', storm.netheal),
    stormLine('keepalived', storm.keepalived),
    'netheal stays on the backup after the storm by design: each flap adds 1000 to the primary\'s damping penalty (suppressed above 2500, reused below 800, half-life 5 min, at most 30 min), so after 20 flaps it will not fail back for up to 30 minutes after the last flap.',
    '',
    `Load average (1 min) before / after: ${loadBefore[0].toFixed(2)} / ${loadAfter[0].toFixed(2)} (shared 2-core VM; other helpers' jobs may have run).`,
  ].filter((l) => l !== null).join('\n');
  return {
    name: 'failover',
    metrics: { netheal: n, rounds, holdUpMs: HOLD_UP_MS, storm, falseAlarm, loadavg1: { before: loadBefore[0], after: loadAfter[0] } },
    peers: { keepalived: k, keepalivedVersion: kaVersion, keepalivedConfig: kaConf },
    targets,
    markdown,
    machine: { note: `shared VM; load average ${loadBefore[0].toFixed(2)} -> ${loadAfter[0].toFixed(2)}` },
  };
}

module.exports = { name: 'failover', description: 'Uplink failover: fault on the primary -> first new TCP connection through the backup, netheal vs keepalived (ping track_script), sockets destroyed, fail-back, flap storm', run };

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, (key, v) => (typeof v === 'bigint' ? String(v) : v), 2)), (e) => { console.error(e); process.exit(1); });
}
