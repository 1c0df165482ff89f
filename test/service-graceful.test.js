// @ts-check
// gracefulShutdown in this process, on a listener made inside a lab namespace by
// listenReusePort: in-flight requests finish, idle keep-alive connections close, what
// outlives the limit is reset, and no socket of ours is left on the port (ss agrees). The
// clients are a process in the namespace, driven by JSON lines.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const http = require('node:http');
const net = require('node:net');
const readline = require('node:readline');
const { Lab } = require('../lib/lab/lab');
const { listenReusePort, gracefulShutdown } = require('../lib/service');

const PORT = 8090;

// Commands on stdin, one JSON per line; answers on stdout, one JSON per line.
//   {op:'get', id, path}  -> {id, status, connection, body} or {id, error}  (keep-alive agent)
//   {op:'hold', id}       -> {id, connected: true}, later {id, closed: true, error}
//   {op:'connect', id}    -> {id, connected: true} or {id, error}
const CLIENT = `
const http = require('node:http');
const net = require('node:net');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'get') {
    http.get({ host: '127.0.0.1', port: ${PORT}, path: c.path, agent: c.fresh ? undefined : agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => say({ id: c.id, status: res.statusCode, connection: res.headers.connection, body }));
    }).on('error', (e) => say({ id: c.id, error: e.code }));
  } else if (c.op === 'hold' || c.op === 'connect') {
    const s = net.connect(${PORT}, '127.0.0.1', () => {
      say({ id: c.id, connected: true });
      if (c.op === 'connect') s.end();
    });
    let error = null;
    s.on('error', (e) => { error = e.code; if (c.op === 'connect') say({ id: c.id, error: e.code }); });
    s.on('close', () => { if (c.op === 'hold') say({ id: c.id, closed: true, error }); });
    s.resume();
  }
});
say({ ready: true });
`;

/**
 * The client process in `ns`, and a way to send it a command and wait for its answers.
 * @param {Lab} lab
 * @param {string} ns
 */
async function client(lab, ns) {
  const child = lab.spawn(ns, process.execPath, ['-e', CLIENT]);
  /** @type {Array<Record<string, unknown>>} */
  const answers = [];
  /** @type {Array<() => void>} */
  const wake = [];
  readline.createInterface({ input: /** @type {import('stream').Readable} */ (child.stdout) }).on('line', (line) => {
    answers.push(JSON.parse(line));
    for (const w of wake.splice(0)) w();
  });
  /**
   * Resolves with the first answer matching `match` (seen already or still to come).
   * @param {(a: Record<string, unknown>) => boolean} match
   * @returns {Promise<Record<string, unknown>>}
   */
  const answer = async (match) => {
    for (;;) {
      const found = answers.find(match);
      if (found !== undefined) return found;
      await new Promise((resolve) => wake.push(() => resolve(undefined)));
    }
  };
  await answer((a) => a.ready === true);
  return {
    /** @param {Record<string, unknown>} command */
    send: (command) => /** @type {import('stream').Writable} */ (child.stdin).write(`${JSON.stringify(command)}\n`),
    answer,
  };
}

/**
 * Our TCP sockets on PORT in `ns`, as ss lists them ("STATE local peer").
 * @param {Lab} lab
 * @param {string} ns
 */
async function socketsOnPort(lab, ns) {
  const out = await lab.exec(ns, 'ss', ['-tanH', 'sport', '=', `:${PORT}`]);
  return out.split('\n').filter((l) => l.trim() !== '');
}

/** @param {import('ava').ExecutionContext} t */
async function namespace(t) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('graceful');
  return { lab, ns, netns: Lab.path(ns) };
}

test('in-flight requests finish, idle keep-alive closes, new connections are refused, no socket of ours is left', async (t) => {
  const { lab, ns, netns } = await namespace(t);
  /** @type {(() => void) | undefined} */
  let release;
  /** @type {() => void} */
  let arrived = () => {};
  const slowArrived = new Promise((resolve) => { arrived = () => resolve(undefined); });
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') {
      release = () => res.end('slow');
      arrived();
    } else {
      res.end('fast');
    }
  });
  t.teardown(() => server.close());
  await listenReusePort(server, { port: PORT, host: '127.0.0.1', netns });
  let stoppedAccepting = false;
  const graceful = gracefulShutdown(server, { exit: false, signals: [], timeoutMs: 20_000, netns, onStopAccepting: () => { stoppedAccepting = true; } });
  t.teardown(() => graceful.dispose());

  const c = await client(lab, ns);
  c.send({ op: 'get', id: 'fast', path: '/fast' });
  t.like(await c.answer((a) => a.id === 'fast'), { status: 200, body: 'fast' });
  // The keep-alive connection stays open, idle; a second connection carries a slow request.
  c.send({ op: 'get', id: 'slow', path: '/slow', fresh: true });
  await slowArrived;

  const shutdown = graceful.shutdown();
  t.true(graceful.draining);
  t.is(graceful.shutdown(), shutdown, 'one shutdown, however often asked');
  // Not listening any more: a new connection is refused while the slow request still runs.
  while (server.listening) await new Promise((resolve) => setImmediate(resolve));
  t.true(stoppedAccepting, 'onStopAccepting ran');
  c.send({ op: 'connect', id: 'late' });
  t.like(await c.answer((a) => a.id === 'late'), { error: 'ECONNREFUSED' });

  /** @type {() => void} */ (release)();
  // It arrived before the drain, so it is answered as it was asked (keep-alive); its
  // connection is closed once idle.
  t.like(await c.answer((a) => a.id === 'slow'), { status: 200, body: 'slow' }, 'finished, not cut');
  const report = await shutdown;
  t.log(report);
  t.like(report, { drained: 2, forced: 0 });
  t.is(report.cleanupError, undefined);
  t.true(report.leftoversDestroyed >= 1, 'the server side of the connections it closed (TIME_WAIT) went');
  t.deepEqual(await socketsOnPort(lab, ns), [], 'ss shows nothing on the port');
});

test('a connection that outlives the limit is reset (forced), and nothing lingers', async (t) => {
  const { lab, ns, netns } = await namespace(t);
  const server = net.createServer((socket) => socket.on('error', () => {}));
  t.teardown(() => server.close());
  await listenReusePort(server, { port: PORT, host: '127.0.0.1', netns });
  const graceful = gracefulShutdown(server, { exit: false, signals: [], timeoutMs: 100, netns });
  t.teardown(() => graceful.dispose());
  const c = await client(lab, ns);
  const accepted = new Promise((resolve) => server.once('connection', resolve));
  c.send({ op: 'hold', id: 'held' });
  await c.answer((a) => a.id === 'held' && a.connected === true);
  await accepted;
  const report = await graceful.shutdown();
  t.like(report, { drained: 0, forced: 1 });
  t.is(report.cleanupError, undefined);
  t.like(await c.answer((a) => a.id === 'held' && a.closed === true), { error: 'ECONNRESET' }, 'the peer got an RST');
  t.deepEqual(await socketsOnPort(lab, ns), []);
});

test('options: a bad timeout is refused; without a port the cleanup says why; dispose removes the handlers', async (t) => {
  const server = net.createServer();
  t.throws(() => gracefulShutdown(server, { timeoutMs: -1 }), { code: 'NETHEAL_ERR_INVALID_OPTION', message: /timeoutMs/ });
  const before = process.listenerCount('SIGTERM');
  const graceful = gracefulShutdown(server, { exit: false, signals: ['SIGTERM'] });
  t.is(process.listenerCount('SIGTERM'), before + 1);
  graceful.dispose();
  t.is(process.listenerCount('SIGTERM'), before);
  // Never listened: nothing to drain, and no port to clean up.
  const report = await gracefulShutdown(server, { exit: false, signals: [] }).shutdown();
  t.like(report, { drained: 0, forced: 0, leftoversDestroyed: 0 });
  t.regex(report.cleanupError ?? '', /no port given and the server does not listen/);
});
