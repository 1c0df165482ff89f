// @ts-check
'use strict';
// `netheal sockets`, `sockets kill` and `port-free` as a user runs them: real namespaces, real
// processes holding ports, a bind() without SO_REUSEADDR as the judge, no privilege (exit 77),
// bad filters (exit 2, the flag and value named, never a stack trace).
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { NO_CAPS } = require('./helpers/unprivileged');

const CLI = path.join(__dirname, '..', 'lib', 'cli.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(command, args, options = {}) {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 30000, ...options }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}
const cli = (...args) => run(process.execPath, [CLI, ...args]);

/** python3 bind()+listen() on PORT without SO_REUSEADDR, inside ns: "ok" or the errno name. */
async function plainBind(lab, ns, port) {
  const r = await run('ip', ['netns', 'exec', ns, 'python3', '-c', [
    'import socket, errno',
    's = socket.socket()',
    'try:',
    `    s.bind(("0.0.0.0", ${port})); s.listen(); print("ok")`,
    'except OSError as e:',
    '    print(errno.errorcode[e.errno])',
  ].join('\n')]);
  return r.stdout.trim();
}

function waitLine(child, pattern) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (d) => {
      buffer += d;
      if (pattern.test(buffer)) resolve(buffer);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${buffer}`)));
  });
}

const HOLDER = `
const net = require('net');
const conns = [];
const server = net.createServer((s) => { conns.push(s); s.on('error', () => {}); });
server.listen(8080, '0.0.0.0', () => {
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const c = net.connect(8080, '127.0.0.1', () => { if (++n === 5) console.log('ready'); });
    c.on('error', () => {});
    c.on('end', () => c.end());
    c.resume();
  }
});
process.stdin.on('data', () => {
  // The server closes first: its side of every connection ends in TIME_WAIT on port 8080.
  for (const s of conns) s.end();
  server.close();
  setTimeout(() => process.exit(0), 300);
});
`;

test('port-free: a listener is reported with its pid; TIME_WAIT leftovers block a plain bind until --kill-stale', async (t) => {
  const lab = Lab.create();
  try {
    const ns = await lab.addNamespace('port');
    const holder = lab.spawn(ns, process.execPath, ['-e', HOLDER]);
    await waitLine(holder, /ready/);

    let r = await cli('port-free', '8080', '--netns', ns, '--json');
    t.is(r.code, 1, r.stderr);
    let status = JSON.parse(r.stdout);
    t.false(status.free);
    t.is(status.holders.length, 1);
    t.is(status.holders[0].state, 'listen');
    t.deepEqual(status.holders[0].owners.map((o) => o.pid), [holder.pid]);
    // The kernel's name for the process, as ss -p shows it: `node`, or `MainThread` on Node 24,
    // which names its main thread.
    const comm = fs.readFileSync(`/proc/${holder.pid}/comm`, 'utf8').trim();
    t.is(status.holders[0].owners[0].command, comm);
    // Human form names the pid too.
    r = await cli('port-free', '8080', '--netns', ns);
    t.is(r.code, 1);
    t.regex(r.stdout, new RegExp(`pid ${holder.pid} \\(${comm}\\): tcp listen 0\\.0\\.0\\.0:8080`));

    // The holder closes its connections first and exits: TIME_WAIT stays on port 8080.
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.stdin.write('go\n');
    await exited;
    await sleep(200);
    r = await cli('port-free', '8080', '--netns', ns, '--json');
    t.is(r.code, 1);
    status = JSON.parse(r.stdout);
    t.deepEqual(status.holders, []);
    t.is(status.stale.length, 5);
    t.true(status.stale.every((s) => s.state === 'time-wait' && s.sport === 8080));
    t.is(await plainBind(lab, ns, 8080), 'EADDRINUSE', 'a bind without SO_REUSEADDR fails on the leftovers');

    r = await cli('port-free', '8080', '--netns', ns, '--json', '--kill-stale');
    t.is(r.code, 0, r.stderr);
    status = JSON.parse(r.stdout);
    t.true(status.free);
    t.is(status.killed.destroyed, 5);
    t.deepEqual(status.killed.failed, []);
    t.is(await plainBind(lab, ns, 8080), 'ok', 'a new listener binds');
    // The client side's sockets (other local ports) were not touched by --kill-stale.
    t.is((await lab.exec(ns, '/usr/bin/ss', ['-tanH', 'sport', '=', ':8080'])).trim(), '');
  } finally {
    await lab.destroy();
  }
});

test('port-free --wait polls until the holder goes', async (t) => {
  const lab = Lab.create();
  try {
    const ns = await lab.addNamespace('wait');
    const holder = lab.spawn(ns, process.execPath, ['-e',
      "const s=require('net').createServer().listen(9090,()=>{console.log('ready');setTimeout(()=>process.exit(0),800)})"]);
    await waitLine(holder, /ready/);
    const started = Date.now();
    const r = await cli('port-free', '9090', '--netns', ns, '--wait', '10');
    const elapsed = Date.now() - started;
    t.is(r.code, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /port 9090 is free/);
    t.true(elapsed >= 500 && elapsed < 5000, `waited ${elapsed} ms`);
    // With nothing to wait for, a held port fails after the time is up.
    const holder2 = lab.spawn(ns, process.execPath, ['-e', "require('net').createServer().listen(9091,()=>console.log('ready'))"]);
    await waitLine(holder2, /ready/);
    const r2 = await cli('port-free', '9091', '--netns', ns, '--wait', '0.3', '--json');
    t.is(r2.code, 1);
    t.is(JSON.parse(r2.stdout).holders[0].owners[0].pid, holder2.pid);
  } finally {
    await lab.destroy();
  }
});

test('without CAP_NET_ADMIN: listing works, kill exits 77 naming CAP_NET_ADMIN, --netns names CAP_SYS_ADMIN', async (t) => {
  const lab = Lab.create();
  try {
    const ns = await lab.addNamespace('priv');
    const holder = lab.spawn(ns, 'python3', ['-c', [
      'import socket, sys',
      'l = socket.socket(); l.bind(("127.0.0.1", 7070)); l.listen()',
      'c = socket.create_connection(("127.0.0.1", 7070)); a, _ = l.accept()',
      'print("ready", flush=True); sys.stdin.read()',
    ].join('\n')]);
    await waitLine(holder, /ready/);
    // uid 0 without capabilities: it can read the checkout wherever it is (helpers/unprivileged.js).
    const nobody = ['netns', 'exec', ns, 'setpriv', ...NO_CAPS, process.execPath, CLI];

    const list = await run('ip', [...nobody, 'sockets', '--json', '--sport', '7070']);
    t.is(list.code, 0, list.stderr);
    t.is(JSON.parse(list.stdout).length, 2);

    const kill = await run('ip', [...nobody, 'sockets', 'kill', '--dport', '7070', '--json']);
    t.is(kill.code, 77, kill.stdout + kill.stderr);
    t.regex(kill.stderr, /CAP_NET_ADMIN/);
    t.notRegex(kill.stderr, /\n\s+at /, 'no stack trace');
    // Nothing was destroyed.
    t.regex(await lab.exec(ns, '/usr/bin/ss', ['-tanH', 'dport', '=', ':7070']), /ESTAB/);

    const other = await run('setpriv', [...NO_CAPS, process.execPath, CLI, 'sockets', '--netns', ns]);
    t.is(other.code, 77, other.stderr);
    t.regex(other.stderr, /CAP_SYS_ADMIN/);
    t.notRegex(other.stderr, /\n\s+at /);
    holder.stdin.end();
  } finally {
    await lab.destroy();
  }
});

test('bad filters: exit 2 naming the flag and the value, never a stack trace', async (t) => {
  const lab = Lab.create();
  try {
    const ns = await lab.addNamespace('usage');
    /** @type {Array<[string[], RegExp]>} */
    const cases = [
      [['sockets', '--sport', '70000'], /--sport.*70000/],
      [['sockets', 'kill', '--dport', '70000'], /--dport.*70000/],
      [['sockets', 'kill', '--src', '10.0.0.300/8'], /--src.*10\.0\.0\.300\/8/],
      [['sockets', '--dst', 'fd00::1/200'], /--dst.*fd00::1\/200/],
      [['sockets', '--state', 'established,half-open'], /--state.*half-open/],
      [['sockets', 'kill'], /refusing an empty filter/],
      [['sockets', 'kill', '--tcp', '-4'], /refusing an empty filter/],
      [['sockets', '--dev', 'nope0'], /nope0/],
      [['port-free', '0'], /PORT.*0/],
      [['port-free', '80', '--wait', 'soon'], /--wait.*soon/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args, '--netns', ns);
      t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      t.regex(r.stderr, message, args.join(' '));
      t.notRegex(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
    }
    const missing = await cli('sockets', '--netns', 'nh-no-such-namespace');
    t.is(missing.code, 1);
    t.regex(missing.stderr, /nh-no-such-namespace/);
    // An empty namespace lists nothing, as a table and as JSON.
    const table = await cli('sockets', '--netns', ns);
    t.is(table.code, 0);
    t.regex(table.stdout, /^Proto\s+State\s+Local\s+Peer/);
    t.deepEqual(JSON.parse((await cli('sockets', '--netns', ns, '--json')).stdout), []);
  } finally {
    await lab.destroy();
  }
});
