'use strict';
/**
 * Issue #16: CPU cost per probe of the Prober's three kinds of check at the same rate: ICMP
 * echo, TCP connect (to a listening port: SYN-ACK; to a closed one: RST) and HTTP GET with an
 * expected status.
 *
 * Lab: client and router namespaces joined by a veth; TARGETS addresses on the router's lo.
 * On the router one small node server accepts TCP on port 7 (it only waits for the client's
 * reset) and answers HTTP on port 80 with 204; port 9 has no listener (the kernel answers RST).
 * Each kind probes every target RATE times a second for `seconds` seconds, with TARGETS and then TARGETS/5 targets (1000 and 200 probes/s per kind; timeout 500 ms,
 * multiplier 3), from a child process started in the client namespace (`ip netns exec`), so
 * the checks run in that process the way a daemon in the watched namespace runs them.
 * Two more rows run the child outside the lab with the Prober's `netns` option, as a daemon
 * watching another namespace does: the addon then makes each probe's socket inside the
 * namespace (setns there and back on the calling thread, per connection).
 * CPU: process.cpuUsage() of the probing child from its first result until every result is
 * in, divided by the probes sent meanwhile (node start-up excluded); the router's server is
 * another process and is not charged, but veth
 * delivers in the sender's softirq, so the router's kernel work (echo replies, handshakes)
 * lands in the child's system time alike for every kind.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { ratio } = require('./lib/stats');
const { collect } = require('./lib/processes');
const { clientAndTargets } = require('./lib/target-lab');

const TARGETS = 100;
const RATE = 10; // probes per second per target: 1000 probes/s per kind
const TIMEOUT = 500;

function addresses() {
  const out = [];
  for (let i = 0; i < TARGETS; i++) out.push(`10.201.0.${i + 1}`);
  return out;
}


/** The router's servers: TCP on 7 (accept, wait for the reset), HTTP 204 on 80. */
const SERVER = `
const net = require('node:net');
const http = require('node:http');
net.createServer((s) => { s.on('error', () => {}); s.resume(); }).listen({ port: 7, host: '0.0.0.0', backlog: 4096 }, () => {
  http.createServer((q, r) => { r.writeHead(204); r.end(); }).on('clientError', (e, s) => s.destroy()).listen({ port: 80, host: '0.0.0.0', backlog: 4096 }, () => console.log('ready'));
});
`;

function startServer(lab, ns) {
  const child = lab.spawn(ns, process.execPath, ['-e', SERVER]);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve(child);
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`router server exited (${code})`)));
  });
}

async function runChild(lab, ns, kind, file, count) {
  const outside = kind.endsWith('-netns');
  const args = [__filename, '--child', outside ? kind.slice(0, -6) : kind, file, String(count)];
  // The -netns variant runs outside the lab; its Prober opens every socket inside `ns`.
  const res = await collect(outside ? spawn(process.execPath, [...args, Lab.path(ns)], { stdio: 'pipe' }) : lab.spawn(ns, process.execPath, args));
  const line = res.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${kind} child failed (${res.code}): ${res.stderr || res.stdout}`);
  }
}

// ---- child ---------------------------------------------------------------------------

const TARGET_OF = {
  icmp: (a) => [a, {}],
  'tcp-open': (a) => [`tcp://${a}:7`, {}],
  'tcp-refused': (a) => [`tcp://${a}:9`, {}],
  http: (a) => [{ http: `http://${a}/`, expectStatus: 204 }, {}],
};

/**
 * Probes `count` times per target. CPU is counted from the first result on (the first
 * connection's set-up excluded), over the probes sent since then. With `netnsPath` the child
 * runs outside the lab and the Prober's `netns` option makes every socket inside it.
 */
async function child(kind, file, count, netnsPath) {
  const { Prober } = require('../lib/monitor/prober');
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  const prober = new Prober({ interval: 1000 / RATE, timeout: TIMEOUT, multiplier: 3, ...(netnsPath ? { netns: netnsPath } : {}) });
  const names = [];
  const statuses = {};
  let first;
  const firstResult = new Promise((resolve) => { first = resolve; });
  prober.on('probe', (r) => { statuses[r.status] = (statuses[r.status] ?? 0) + 1; first(); });
  const t0 = Date.now();
  for (const a of list) {
    const [target, options] = TARGET_OF[kind](a);
    names.push(prober.add(target, { ...options, count }));
  }
  const total = () => names.reduce((acc, n) => { const s = prober.stats(n); acc.sent += s.sent; acc.replies += s.received; acc.lost += s.lost; return acc; }, { sent: 0, replies: 0, lost: 0 });
  await firstResult;
  const sent0 = total().sent;
  const cpu0 = process.cpuUsage();
  const h0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 + (count - 1) * (1000 / RATE) + TIMEOUT + 50 - Date.now())));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - h0) / 1e6;
  const end = total();
  prober.close();
  const userMs = cpu.user / 1000;
  const systemMs = cpu.system / 1000;
  return { userMs, systemMs, cpuMs: userMs + systemMs, wallMs, measured: end.sent - sent0, sent: end.sent, replies: end.replies, lost: end.lost, statuses };
}

if (require.main === module && process.argv[2] === '--child') {
  const [kind, file, n, netnsPath] = process.argv.slice(3);
  child(kind, file, Number(n), netnsPath).then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
}

// ---- the benchmark -------------------------------------------------------------------

const KINDS = ['icmp', 'tcp-open', 'tcp-refused', 'http', 'tcp-open-netns', 'http-netns'];
const LABELS = {
  icmp: 'ICMP echo', 'tcp-open': 'TCP connect, port open (SYN-ACK)', 'tcp-refused': 'TCP connect, port closed (RST)', http: 'HTTP GET, expect 204',
  'tcp-open-netns': 'TCP connect, open, from outside the namespace (`netns`: socket made by setns)', 'http-netns': 'HTTP GET, from outside the namespace (`netns`: socket made by setns)',
};

/** Every kind, `reps` interleaved runs at `n` targets x RATE; the median run of each kind. */
async function measure(lab, ns, list, n, count, reps) {
  const runs = Object.fromEntries(KINDS.map((k) => [k, []]));
  for (let i = 0; i < reps; i++) {
    for (const k of KINDS) runs[k].push(await runChild(lab, ns, k, list, count));
  }
  const median = (xs) => [...xs].sort((a, b) => a.cpuMs / a.measured - b.cpuMs / b.measured)[Math.floor((xs.length - 1) / 2)];
  const chosen = Object.fromEntries(KINDS.map((k) => [k, median(runs[k])]));
  const us = (x, key) => (x.measured > 0 ? Number(((x[key] * 1000) / x.measured).toFixed(2)) : null);
  const perProbe = Object.fromEntries(KINDS.map((k) => [k, { userUs: us(chosen[k], 'userMs'), systemUs: us(chosen[k], 'systemMs'), totalUs: us(chosen[k], 'cpuMs') }]));
  const vsIcmp = Object.fromEntries(KINDS.filter((k) => k !== 'icmp').map((k) => [k, ratio(perProbe[k].totalUs, perProbe.icmp.totalUs)]));
  // A miss: a planned probe that was not sent on time (the process fell behind) or got no
  // reply; the path is clean, so every miss is the prober's.
  const planned = n * count;
  const misses = Object.fromEntries(KINDS.map((k) => [k, runs[k].reduce((a, x) => a + (planned - x.replies), 0)]));
  const rows = KINDS.map((k) => {
    const x = chosen[k];
    return `| ${LABELS[k]} | ${planned} | ${x.sent} | ${x.replies} | ${x.lost} | ${Object.entries(x.statuses).map(([s, v]) => `${s} ${v}`).join(', ')} | ${perProbe[k].userUs} | ${perProbe[k].systemUs} | ${perProbe[k].totalUs} | ${k === 'icmp' ? 1 : vsIcmp[k]} |`;
  });
  return { targets: n, rate: n * RATE, planned, perProbe, vsIcmp, misses, chosen, runs, rows };
}

async function run({ quick = false } = {}) {
  const seconds = quick ? 3 : 10;
  const count = seconds * RATE;
  const load = os.loadavg().map((x) => Number(x.toFixed(2)));
  const lab = Lab.create();
  try {
    const targets = addresses();
    const { client: c, router: r } = await clientAndTargets(lab, { link: '10.5.0', targetsRoute: '10.201.0.0/16', targets });
    await startServer(lab, r);

    // Two rates: 1000 probes/s per kind (100 targets), and 200 probes/s (20 targets). Interleaved repetitions; each kind's
    // median run (by CPU per probe) is reported.
    const reps = quick ? 1 : 3;
    const passes = [];
    for (const n of [TARGETS, TARGETS / 5]) {
      const list = path.join(os.tmpdir(), `netheal-probe-kinds-${process.pid}-${n}.json`);
      fs.writeFileSync(list, JSON.stringify(targets.slice(0, n)));
      try {
        passes.push(await measure(lab, c, list, n, count, reps));
      } finally {
        fs.rmSync(list, { force: true });
      }
    }
    const [high, low] = passes;
    const targetsOut = passes.flatMap((x) => KINDS.map((k) => ({
      what: `${LABELS[k]}, ${x.rate} probes/s: planned probes without a reply on a clean path (all runs)`, target: '0', measured: x.misses[k], pass: x.misses[k] === 0,
    })));
    const header = ['| kind | planned | sent | replies | lost | outcomes | user µs / probe | system µs / probe | CPU µs / probe | CPU / ICMP |', '|---|---|---|---|---|---|---|---|---|---|'];
    const markdown = [
      '### Cost per probe by kind (issue #16)',
      '',
      `${RATE} probes/s per target for ${seconds} s, timeout ${TIMEOUT} ms, clean path; kinds run one after another in the same lab, from a process in the client namespace. Median of ${reps} interleaved run(s) per kind. Load average at start: ${load.join(', ')}, at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(', ')} (a 2-core machine shared with other work).`,
      '',
      `**${high.rate} probes/s per kind** (${high.targets} targets):`,
      '',
      ...header,
      ...high.rows,
      '',
      `**${low.rate} probes/s per kind** (${low.targets} targets):`,
      '',
      ...header,
      ...low.rows,
      '',
      "CPU per probe counts from each run's first result (start-up excluded). A planned probe that was never sent is one the process could not send on time.",
      "System time includes the router's kernel work for each probe (echo reply, handshake, reset), which veth runs in the sender's softirq context; the router's user-space HTTP and TCP server is another process and is not charged.",
    ].join('\n');
    const strip = ({ rows, ...rest }) => rest;
    return {
      name: 'probe-kinds',
      metrics: { perProbe: high.perProbe, vsIcmp: high.vsIcmp, low: strip(low), high: strip(high), seconds, rate: RATE, timeoutMs: TIMEOUT, loadAverage: load },
      ratios: { ...high.vsIcmp, ...Object.fromEntries(Object.entries(low.vsIcmp).map(([k, v]) => [`${k}@${low.rate}`, v])) },
      targets: targetsOut,
      markdown,
    };
  } finally {
    await lab.destroy();
  }
}

module.exports = { name: 'probe-kinds', description: 'CPU per probe: ICMP echo vs TCP connect vs HTTP check at the same rate', run };

if (require.main === module && process.argv[2] !== '--child') {
  run({ quick: process.argv.includes('--quick') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => { console.error(e); process.exit(1); });
}
