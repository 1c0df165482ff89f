// @ts-check
// The status socket under abuse: clients that send a byte and close, clients that hang,
// clients that flood. None may leak a connection or hold up close().
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { serveStatus, closeStatusServer, readStatus } = require('../lib/daemon/status');

/** @param {import('ava').ExecutionContext} t */
function socketPath(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-status-socket-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'status.sock');
}

const openFds = () => fs.readdirSync('/proc/self/fd').length;

/**
 * Resolves once `predicate()` holds, polling on the event loop; rejects after `ms`
 * (a generous bound that only catches a hang, not a timing).
 * @param {() => boolean} predicate
 */
async function until(predicate, what, ms = 20_000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Connects, writes one byte, closes, and resolves with whatever the server sent. */
function byteAndClose(/** @type {string} */ where) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(where, () => socket.end('x'));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { data += chunk; });
    socket.once('close', () => resolve(data));
    socket.once('error', reject);
  });
}

/**
 * A client that never writes and never closes: it keeps its side open after the server's FIN
 * (allowHalfOpen) and does not read, so it never even sees that FIN.
 */
function hangingClient(/** @type {string} */ where) {
  const socket = net.createConnection({ path: where, allowHalfOpen: true });
  socket.pause();
  return socket;
}

test.serial('100 clients that write a byte and close leave no connection and no fd behind', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 60_000 });
  t.teardown(() => closeStatusServer(server));
  const before = openFds();
  const answers = await Promise.all(Array.from({ length: 100 }, () => byteAndClose(where)));
  t.true(answers.every((a) => a === '{"ok":true}\n'), 'each client still got the answer');
  // The server side closes when it reads the client's FIN, not by a timer (the deadline is 60 s).
  await until(() => server.openConnections === 0, 'the server to close its connections');
  const connections = await new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  t.is(connections, 0);
  t.is(openFds(), before, 'fds back to where they were');
});

test.serial('close() resolves at once with a hung client connected, and cuts that client off', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 60_000 });
  const hung = hangingClient(where);
  const hungClosed = new Promise((resolve) => hung.once('end', resolve));
  hung.on('error', () => {});
  await until(() => server.openConnections === 1, 'the hung connection to be accepted');
  // Before the fix close() waited for the client; the bound is far under the 60 s deadline.
  const closed = closeStatusServer(server).then(() => 'closed');
  const verdict = await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000, 'hung'))]);
  t.is(verdict, 'closed');
  hung.resume(); // reading now, it sees the server's side gone
  await hungClosed;
  t.is(server.openConnections, 0);
  t.false(server.listening);
});

test.serial('plain server.close() also destroys open connections (what the daemon teardown calls)', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 60_000 });
  const hung = hangingClient(where);
  hung.on('error', () => {});
  await until(() => server.openConnections === 1, 'the hung connection');
  await new Promise((resolve) => server.close(resolve));
  t.is(server.openConnections, 0);
});

test.serial('a client that never closes is cut at the deadline, after its answer', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 300 });
  t.teardown(() => closeStatusServer(server));
  const hung = hangingClient(where);
  hung.on('error', () => {});
  await until(() => server.openConnections === 1, 'the hung connection to be accepted');
  await until(() => server.openConnections === 0, 'the deadline to cut the hung connection');
  let answer = '';
  hung.setEncoding('utf8');
  hung.on('data', (chunk) => { answer += chunk; });
  hung.resume();
  await new Promise((resolve) => hung.once('end', resolve));
  t.is(answer, '{"ok":true}\n', 'answered before it was cut');
  hung.destroy();

});

test.serial('the deadline counts from the accept: a client trickling bytes is cut as well', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 300 });
  t.teardown(() => closeStatusServer(server));
  const trickle = net.createConnection({ path: where, allowHalfOpen: true });
  trickle.on('error', () => {});
  trickle.resume();
  await until(() => server.openConnections === 1, 'the connection to be accepted');
  // A byte every 100 ms: an idle timeout of 300 ms would never fire.
  const timer = setInterval(() => { if (!trickle.destroyed) trickle.write('x'); }, 100);
  t.teardown(() => clearInterval(timer));
  await until(() => server.openConnections === 0, 'the deadline to cut the trickling connection');
  clearInterval(timer);
  trickle.destroy();
  t.pass();
});

test.serial('a client that floods is cut at the read limit, not at the deadline', async (t) => {
  const where = socketPath(t);
  const server = await serveStatus(where, () => ({ ok: true }), { deadlineMs: 60_000, readLimit: 1024 });
  t.teardown(() => closeStatusServer(server));
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  const flood = net.createConnection({ path: where, allowHalfOpen: true });
  flood.on('error', () => {});
  flood.write(Buffer.alloc(64 * 1024, 1));
  await accepted;
  await until(() => server.openConnections === 0, 'the read limit to cut the flooding connection');
  flood.destroy();
  t.pass();
});

test.serial('readStatus still reads the document; a status() that throws answers with its message', async (t) => {
  const where = socketPath(t);
  let fail = false;
  const server = await serveStatus(where, () => {
    if (fail) throw new Error('boom');
    return { pid: 1 };
  });
  t.teardown(() => closeStatusServer(server));
  t.deepEqual(await readStatus(where), { pid: 1 });
  fail = true;
  t.deepEqual(await readStatus(where), { error: 'boom' });
  await until(() => server.openConnections === 0, 'both connections to close');
});

test.serial('the metrics server closes at once with a scraper hanging mid-request', async (t) => {
  const { DaemonMetrics } = require('../lib/daemon/metrics');
  const { serveMetrics } = require('../lib/daemon/metrics-server');
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const address = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(address.port));
    });
  });
  const server = await serveMetrics(new DaemonMetrics(), `127.0.0.1:${port}`);
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  const hung = net.createConnection(port, '127.0.0.1', () => hung.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'));
  hung.on('error', () => {});
  await accepted;
  const closed = new Promise((resolve) => server.close(() => resolve('closed')));
  const verdict = await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 4000, 'hung'))]);
  t.is(verdict, 'closed', 'under the 5 s headers timeout: close() did not wait for the client');
  hung.destroy();
});
