// @ts-check
// Two instances of a small HTTP service on one port through listenReusePort (SO_REUSEPORT,
// which Node 20 cannot set), inside a lab namespace. SIGTERM to the old one under load: no
// request is lost, and gracefulShutdown leaves no socket of the old instance behind (ss agrees),
// while the new instance's sockets on the same port are untouched.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { Lab } = require('../lib/lab/lab');
const { listenReusePort } = require('../lib/service');

const LIB = path.resolve(__dirname, '../lib');
const PORT = 8080;

const SERVICE = `
const http = require('node:http');
const { listenReusePort, gracefulShutdown } = require(${JSON.stringify(path.join(LIB, 'service'))});
const server = http.createServer((req, res) => {
  // In flight for 100 ms: a SIGTERM catches requests half-way.
  setTimeout(() => res.end(String(process.pid)), 100);
});
const shutdown = gracefulShutdown(server, { timeoutMs: 5000, exit: false });
process.on('SIGTERM', async () => {
  const report = await shutdown.shutdown();
  process.stdout.write(JSON.stringify({ report }) + '\\n');
  process.exit(report.cleanupError ? 1 : 0);
});
listenReusePort(server, { port: ${PORT}, host: '127.0.0.1' }).then(() => process.stdout.write('ready\\n'));
`;

// Keeps CONCURRENCY requests in flight (new connection each: Connection: close) until told to
// stop on stdin; then prints every outcome with the client's local port.
const LOAD = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: false });
const results = [];
let stop = false;
process.stdin.on('data', () => { stop = true; });
function one() {
  if (stop) return Promise.resolve();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: ${PORT}, agent }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { results.push({ ok: res.statusCode === 200, pid: body, port: req.socket.localPort }); resolve(); });
      res.on('error', (e) => { results.push({ ok: false, error: e.code }); resolve(); });
    });
    req.on('error', (e) => { results.push({ ok: false, error: e.code }); resolve(); });
  }).then(one);
}
Promise.all(Array.from({ length: 20 }, one)).then(() => process.stdout.write(JSON.stringify(results) + '\\n'));
`;

function lines(child) {
  const queue = [];
  const waiters = [];
  let buffer = '';
  child.stdout.on('data', (d) => {
    buffer += d;
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (waiters.length) waiters.shift()(line);
      else queue.push(line);
    }
  });
  return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve)));
}

test('listenReusePort: two listeners share a port where plain net.Server gets EADDRINUSE', async (t) => {
  const a = net.createServer();
  const b = net.createServer();
  await listenReusePort(a, { port: 0, host: '127.0.0.1' });
  const port = /** @type {net.AddressInfo} */ (a.address()).port;
  await listenReusePort(b, { port, host: '127.0.0.1' });
  t.is(/** @type {net.AddressInfo} */ (b.address()).port, port);
  const plain = net.createServer();
  const error = await new Promise((resolve) => plain.once('error', resolve).listen(port, '127.0.0.1'));
  t.is(error.code, 'EADDRINUSE');
  t.throws(() => listenReusePort(net.createServer(), { port: 70000 }), { message: /port/ });
  await new Promise((r) => a.close(r));
  await new Promise((r) => b.close(r));
});

test('SIGTERM to the old instance under load: no request lost, none of its sockets left', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-reuseport-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'service.js'), SERVICE);
  fs.writeFileSync(path.join(dir, 'load.js'), LOAD);
  const ns = await lab.addNamespace('svc');
  // Pending connections of a closing SO_REUSEPORT listener move to the other one only with
  // tcp_migrate_req=1: set by `netheal tune`, in the lab namespace only.
  await lab.exec(ns, process.execPath, [path.join(LIB, 'cli.js'), 'tune', '--apply', '--netns', ns, '--set', 'net.ipv4.tcp_migrate_req=1', '--file', path.join(dir, 'tune.conf')]);
  t.is((await lab.exec(ns, 'sysctl', ['-n', 'net.ipv4.tcp_migrate_req'])).trim(), '1');

  const old = lab.spawn(ns, process.execPath, [path.join(dir, 'service.js')]);
  const oldLine = lines(old);
  t.is(await oldLine(), 'ready');
  const load = lab.spawn(ns, process.execPath, [path.join(dir, 'load.js')]);
  const loadLine = lines(load);
  await new Promise((r) => setTimeout(r, 700));
  const fresh = lab.spawn(ns, process.execPath, [path.join(dir, 'service.js')]);
  const freshLine = lines(fresh);
  t.is(await freshLine(), 'ready');
  await new Promise((r) => setTimeout(r, 300));
  const oldExit = new Promise((resolve) => old.once('exit', resolve));
  old.kill('SIGTERM');
  const { report } = JSON.parse(await oldLine());
  t.is(await oldExit, 0);
  t.log(`old instance: ${JSON.stringify(report)}`);
  t.is(report.cleanupError, undefined);
  t.true(report.leftoversDestroyed > 0, 'its TIME_WAIT leftovers were destroyed');
  await new Promise((r) => setTimeout(r, 500));
  load.stdin.write('stop\n');
  const results = JSON.parse(await loadLine());
  const failed = results.filter((r) => !r.ok);
  const byOld = results.filter((r) => r.ok && r.pid === String(old.pid));
  const byNew = results.filter((r) => r.ok && r.pid === String(fresh.pid));
  t.log(`${results.length} requests: ${byOld.length} served by the old instance, ${byNew.length} by the new one, ${failed.length} failed`);
  t.deepEqual(failed, [], 'no request lost');
  t.true(byOld.length > 0 && byNew.length > 0);

  // ss agrees: nothing on the port belongs to the old instance (its peers' ports), and the new
  // instance's own leftovers were not touched by the old one's cleanup.
  // A client port may be reused by a later connection to the new instance: only ports that
  // the old instance alone served identify its sockets.
  const newPorts = new Set(byNew.map((r) => r.port));
  const oldPeers = new Set(byOld.map((r) => r.port).filter((port) => !newPorts.has(port)));
  const ss = await lab.exec(ns, 'ss', ['-Htan', `sport = :${PORT}`]);
  const rows = ss.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/));
  const leftovers = rows.filter((r) => r[0] !== 'LISTEN' && oldPeers.has(Number(r[4].split(':').pop())));
  t.deepEqual(leftovers, [], 'no socket of the old instance');
  const listeners = rows.filter((r) => r[0] === 'LISTEN');
  t.is(listeners.length, 1, 'only the new listener');
  const newPeers = new Set(byNew.map((r) => r.port));
  const newLeft = rows.filter((r) => r[0] !== 'LISTEN' && newPeers.has(Number(r[4].split(':').pop())));
  t.log(`${newLeft.length} sockets of the new instance's connections remain (theirs, not the old one's)`);
  t.true(newLeft.length > 0, 'the old instance did not destroy the new one\'s sockets');
  fresh.kill('SIGKILL');
});
