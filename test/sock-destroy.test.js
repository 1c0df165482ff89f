// @ts-check
'use strict';
// The threaded bulk destroy (native/sock_destroy.cc) against the real kernel: thousands of
// connections between two lab namespaces; destroys spread over several threads and many
// small windows take exactly the matching sockets (ss agrees), the peers see ECONNRESET and
// the owners ECONNABORTED; every errno lands on its own socket; close() mid-flight, worker
// threads and their termination leave no fd behind.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Lab } = require('../lib/lab/lab');
const { Sockets, socketId } = require('../lib/kernel/sockets');
const { nativeBinding } = require('../lib/native');
const d = require('../lib/kernel/inet-diag');
const { parseMessages } = require('../lib/kernel/netlink');

const MANY = path.join(__dirname, 'fixtures', 'sock-many.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fds = () => fs.readdirSync('/proc/self/fd').length;
const ENOENT = 2;

// Connections per server port: 8001 bulk kill, 8002 errno mapping, 8003 close() mid-flight,
// 8004 a worker thread, 8005 a worker terminated mid-flight, 8006 a destroy then close().
const COUNTS = { 8001: 2000, 8002: 2000, 8003: 1000, 8004: 300, 8005: 1000, 8006: 300 };

function spawnMany(lab, ns, spec) {
  const child = lab.spawn(ns, process.execPath, [MANY, JSON.stringify(spec)]);
  const waiters = [];
  let buffer = '';
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      waiters.shift()?.(line);
    }
  });
  const next = () => new Promise((resolve) => waiters.push(resolve));
  return {
    ready: next(),
    /** Socket errors by port and code, and how many sockets are still open. */
    report() {
      const line = next();
      child.stdin.write('\n');
      return line;
    },
  };
}

/** Polls `peer` until errors[port][code] reaches `count` and `open` is down to `open` (or 10 s pass). */
async function waitErrors(peer, port, code, count, open = Infinity) {
  let last;
  for (let i = 0; i < 200; i++) {
    last = await peer.report();
    if ((last.errors[port]?.[code] ?? 0) >= count && last.open <= open) return last;
    await sleep(50);
  }
  return last;
}

/** `ss -tnH` in ns: connections per remote port (established only). */
async function ssByDport(lab, ns) {
  const out = await lab.exec(ns, '/usr/bin/ss', ['-tnH', 'state', 'established']);
  const counts = {};
  for (const line of out.split('\n')) {
    const peer = line.trim().split(/\s+/)[3];
    if (peer === undefined) continue;
    const port = peer.slice(peer.lastIndexOf(':') + 1);
    counts[port] = (counts[port] ?? 0) + 1;
  }
  return counts;
}

test.before(async (t) => {
  const lab = Lab.create();
  const a = await lab.addNamespace('a');
  const b = await lab.addNamespace('b');
  await lab.addVeth({ ns: a, name: 'a0' }, { ns: b, name: 'b0' });
  await lab.addAddress(a, 'a0', '10.7.0.1/24');
  await lab.addAddress(b, 'b0', '10.7.0.2/24');
  await lab.exec(b, 'sysctl', ['-qw', 'net.core.somaxconn=8192', 'net.ipv4.tcp_max_syn_backlog=8192']);
  await lab.exec(a, 'sysctl', ['-qw', 'net.ipv4.ip_local_port_range=10000 65000']);
  const ports = Object.keys(COUNTS).map(Number);
  const server = spawnMany(lab, b, { listen: ports.map((port) => ({ host: '10.7.0.2', port })) });
  t.true((await server.ready).ready);
  const clients = [];
  let made = 0;
  for (const port of ports) {
    const client = spawnMany(lab, a, { connect: { host: '10.7.0.2', ports: [port], count: COUNTS[port] } });
    made += (await client.ready).made;
    clients.push(client);
  }
  t.is(made, ports.reduce((sum, port) => sum + COUNTS[port], 0));
  const client = (port) => clients[ports.indexOf(port)];
  t.context = { lab, a, b, server, client };
});

test.after.always(async (t) => {
  await /** @type {any} */ (t.context).lab?.destroy();
});

/**
 * What test.before sets up, shared by the serial tests.
 * @param {import('ava').ExecutionContext} t
 * @returns {{ lab: Lab, a: string, b: string, server: any, client: (port: number) => any }}
 */
const shared = (t) => /** @type {any} */ (t.context);

test.serial('threaded dump+destroy takes exactly the matching sockets; peers see ECONNRESET, owners ECONNABORTED', async (t) => {
  const { lab, a, server, client } = shared(t);
  const before = await ssByDport(lab, a);
  t.is(before['8001'], COUNTS[8001]);
  // Small windows and four threads: many windows in flight at once, taken while the dump streams.
  const sockets = new Sockets({ netns: a, window: 64, threads: 4 });
  try {
    const result = await sockets.destroy({ dport: 8001 });
    t.is(result.matched, COUNTS[8001]);
    t.is(result.destroyed, COUNTS[8001]);
    t.is(result.gone, 0);
    t.deepEqual(result.failed, []);
    t.regex(result.lastAckNs, /^\d+$/);
  } finally {
    sockets.close();
  }
  const after = await ssByDport(lab, a);
  t.is(after['8001'], undefined, 'none left on the destroyed port');
  for (const port of ['8002', '8003', '8004', '8005', '8006']) t.is(after[port], before[port], `port ${port} untouched`);
  const peer = await waitErrors(server, 8001, 'ECONNRESET', COUNTS[8001]);
  t.is(peer.errors[8001]?.ECONNRESET, COUNTS[8001], 'every peer got an RST');
  t.is(peer.errors[8002], undefined, 'no peer of another port did');
  const owner = await waitErrors(client(8001), 8001, 'ECONNABORTED', COUNTS[8001], 0);
  t.is(owner.errors[8001]?.ECONNABORTED, COUNTS[8001]);
  t.is(owner.open, 0);
});

test.serial('every errno lands on its own socket across threads and windows; already-gone sockets are "gone"', async (t) => {
  const { lab, a, server } = shared(t);
  const sockets = new Sockets({ netns: a, window: 16, threads: 4 });
  t.teardown(() => sockets.close());
  const list = await sockets.query({ dport: 8002, state: 'established' });
  t.is(list.length, COUNTS[8002]);
  // Every third socket goes first.
  const early = list.filter((_, i) => i % 3 === 0);
  t.is((await sockets.destroySockets(early)).destroyed, early.length);

  // The native call on its own: the first 1000 sockets, a stale-cookie copy after every fifth
  // (the kernel answers ENOENT), 4 threads, windows of 16. Each answer must be its socket's.
  const destroyer = new (nativeBinding().SockDestroyer)({ sockets: 4, netns: Lab.path(a) });
  t.teardown(() => destroyer.close());
  const requests = [];
  const expected = [];
  list.slice(0, 1000).forEach((socket, i) => {
    const id = socketId(socket);
    requests.push(d.encodeSockDestroy(0, d.AF_INET, d.IPPROTO_TCP, id));
    expected.push(i % 3 === 0 ? ENOENT : 0);
    if (i % 5 === 4) {
      /** @type {typeof id} */
      const stale = { ...id, cookie: [(id.cookie[0] + 1000000) >>> 0, id.cookie[1]] };
      requests.push(d.encodeSockDestroy(0, d.AF_INET, d.IPPROTO_TCP, stale));
      expected.push(ENOENT);
    }
  });
  const done = await destroyer.destroy(Buffer.concat(requests), 16, 4, 10000);
  t.deepEqual([...done.errnos], expected);
  t.throws(() => destroyer.destroy(Buffer.alloc(72), 16, 4, 10000), { message: /SOCK_DESTROY/ }, 'not a SOCK_DESTROY: refused');

  // The public API over all of them: what is left is destroyed, the rest is gone.
  const rest = list.length - early.length - list.slice(0, 1000).filter((_, i) => i % 3 !== 0).length;
  const all = await sockets.destroySockets(list);
  t.deepEqual({ matched: all.matched, destroyed: all.destroyed, gone: all.gone, failed: all.failed.length },
    { matched: list.length, destroyed: rest, gone: list.length - rest, failed: 0 });
  t.is((await ssByDport(lab, a))['8002'], undefined);
  const peer = await waitErrors(server, 8002, 'ECONNRESET', COUNTS[8002]);
  t.is(peer.errors[8002]?.ECONNRESET, COUNTS[8002]);
  // parseMessages agrees that the requests were what was sent: one per expected answer.
  t.is(parseMessages(Buffer.concat(requests)).length, expected.length);
});

test.serial('close() before, during and after a destroy: NETHEAL_ERR_CLOSED, and no fd left behind', async (t) => {
  const { a } = shared(t);
  await sleep(50);
  const baseline = fds();
  const sockets = new Sockets({ netns: a, threads: 3 });
  sockets.prepare();
  t.true(fds() > baseline, 'destroy sockets open on prepare()');
  const pending = sockets.destroy({ dport: 8003 });
  // Let the dump start on the pool thread, then close underneath it.
  await new Promise((resolve) => setImmediate(resolve));
  sockets.close();
  sockets.close();
  const error = /** @type {import('../lib/errors').NethealError} */ (await t.throwsAsync(pending));
  t.is(error.code, 'NETHEAL_ERR_CLOSED');
  t.is(/** @type {import('../lib/errors').NethealError} */ (await t.throwsAsync(sockets.destroy({ dport: 8003 }))).code, 'NETHEAL_ERR_CLOSED');
  await sleep(50);
  t.is(fds(), baseline, 'every fd closed once the call let go');

  // A completed destroy and close(): back to the baseline as well.
  const again = new Sockets({ netns: a });
  const result = await again.destroy({ dport: 8006 });
  t.is(result.destroyed, COUNTS[8006]);
  again.close();
  await sleep(50);
  t.is(fds(), baseline);
});

test.serial('in worker threads: a destroy completes; a worker terminated mid-flight leaves no fd and no crash', async (t) => {
  const { lab, a } = shared(t);
  await sleep(50);
  const baseline = fds();
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Sockets } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'kernel', 'sockets'))});
    const sockets = new Sockets({ netns: workerData.netns });
    parentPort.postMessage({ started: true });
    sockets.destroy({ dport: workerData.port }).then((r) => {
      sockets.close();
      parentPort.postMessage({ destroyed: r.destroyed });
    }, (e) => parentPort.postMessage({ error: e.code }));
  `;
  const run = (port) => {
    const worker = new Worker(code, { eval: true, workerData: { netns: a, port } });
    const messages = [];
    const next = () => new Promise((resolve) => worker.once('message', resolve));
    return { worker, messages, next };
  };
  const done = run(8004);
  t.deepEqual(await done.next(), { started: true });
  t.deepEqual(await done.next(), { destroyed: COUNTS[8004] });
  await done.worker.terminate();

  const killed = run(8005);
  t.deepEqual(await killed.next(), { started: true });
  // Terminate while the destroy is on its way: depending on how far the worker got, none,
  // some or all of the sockets are gone (Node lets a threadpool call that has started
  // finish before the cleanup hooks close the destroyer and its fds).
  await killed.worker.terminate();
  await sleep(100);
  t.is(fds(), baseline, 'no fd left by either worker');
  // What is left is consistent: a destroy from here finds exactly what ss lists, and then
  // ss lists nothing.
  const left = (await ssByDport(lab, a))['8005'] ?? 0;
  const sockets = new Sockets({ netns: a });
  const rest = await sockets.destroy({ dport: 8005 });
  sockets.close();
  t.is(rest.destroyed, left, `the ${left} sockets ss still listed`);
  t.is((await ssByDport(lab, a))['8005'], undefined);
});
