// @ts-check
// What the CLI prints and how it exits at the edges: usage errors (one line and a hint),
// a closed stdout (quiet 0), bad --root, missing privilege for --netns (77 naming the
// capability), unknown interfaces (2, named), and `status` exit codes by health.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { serveStatus, closeStatusServer } = require('../lib/daemon/status');
const { statusVerdict } = require('../lib/cli/status');

const CLI = require.resolve('../lib/cli.js');
/** uid 0 without any capability: reads the checkout wherever it is, but may not setns or trace. */
const NO_CAPS = ['--inh-caps=-all', '--bounding-set=-all'];

/**
 * Runs the CLI; with `prefix`, under setpriv with those arguments.
 * @param {string[]} args
 * @param {string[]} [prefix]
 * @returns {Promise<{code: number, stdout: string, stderr: string}>}
 */
function cli(args, prefix = []) {
  return new Promise((resolve) => {
    const [command, argv] = prefix.length ? ['setpriv', [...prefix, process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
    execFile(command, argv, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs the CLI with its stdout a pipe whose reading end is closed at once, as `| head -0`
 * would: every write the command makes fails with EPIPE.
 * @param {string[]} args
 * @returns {Promise<{code: number | null, stderr: string}>}
 */
function cliIntoClosedPipe(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

/** @type {Lab} */
let lab;
/** @type {string} */
let ns;
test.before(async () => {
  lab = Lab.create();
  ns = await lab.addNamespace('cli');
  // Enough links that `links` writes more than once.
  for (let i = 0; i < 10; i++) await lab.ip(ns, 'link', 'add', `va${i}`, 'type', 'veth', 'peer', 'name', `vb${i}`);
});
test.after.always(() => lab?.destroy());

test('usage errors: one line naming the fault and a pointer to the help, exit 2', async (t) => {
  const cases = [
    { args: ['links', '--bogus'], line: "error: unknown option '--bogus'", hint: "see 'netheal links --help'" },
    { args: ['ping'], line: "error: missing required argument 'target'", hint: "see 'netheal ping --help'" },
    { args: ['sockets', 'kill', '--sport', 'x'], line: /^error: option '--sport <N>' argument 'x' is invalid/, hint: "see 'netheal sockets kill --help'" },
    { args: ['frobnicate'], line: "error: unknown command 'frobnicate'", hint: "see 'netheal --help'" },
  ];
  for (const { args, line, hint } of cases) {
    const result = await cli(args);
    t.is(result.code, 2, args.join(' '));
    const lines = result.stderr.trimEnd().split('\n');
    t.is(lines.length, 2, `${args.join(' ')}: ${result.stderr}`);
    if (typeof line === 'string') t.is(lines[0], line);
    else t.regex(lines[0] ?? '', line);
    t.is(lines[1], hint);
    t.is(result.stdout, '');
  }
});

test('a closed stdout ends links, sockets and status quietly with 0', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-cli-epipe-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'status.sock');
  const server = await serveStatus(socket, () => ({
    pid: 1, startedAt: 'now', netns: null, dryRun: false, recentEvents: [], targets: {},
    interfaces: { eth0: { state: 'healthy', reasons: [], ladder: { phase: 'idle', action: null, waitingFor: null }, attempts: 0, damping: { penalty: 0, suppressed: false }, budget: { remaining: 5, maxActions: 5 }, lastActions: [] } },
  }));
  t.teardown(() => closeStatusServer(server));
  for (const args of [['links', '--netns', ns], ['links', '--netns', ns, '--json'], ['sockets', '--netns', ns], ['status', '--socket', socket]]) {
    const result = await cliIntoClosedPipe(args);
    t.is(result.stderr, '', args.join(' '));
    t.is(result.code, 0, args.join(' '));
  }
});

test('install/uninstall --root must be an absolute existing directory (exit 2, --root named)', async (t) => {
  const file = path.join(os.tmpdir(), `netheal-root-file-${process.pid}`);
  fs.writeFileSync(file, '');
  t.teardown(() => fs.rmSync(file, { force: true }));
  const cwd = process.cwd();
  for (const [command, root] of [['install', ''], ['install', 'relative/dir'], ['install', file], ['install', '/nonexistent/netheal-root'], ['uninstall', '']]) {
    const result = await cli([command, '--root', root]);
    t.is(result.code, 2, `${command} --root ${JSON.stringify(root)}`);
    t.regex(result.stderr, /--root.*must be an absolute path to an existing directory/);
  }
  t.false(fs.existsSync(path.join(cwd, 'etc')), 'nothing written under the current directory');
  t.false(fs.existsSync(path.join(cwd, 'relative')));
});

test('without CAP_SYS_ADMIN: doctor/tune/links --netns exit 77 naming it; another process\'s namespace is "permission denied"', async (t) => {
  for (const args of [['doctor', '--netns', ns], ['tune', '--netns', ns], ['links', '--netns', ns]]) {
    const result = await cli(args, NO_CAPS);
    t.is(result.code, 77, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, /CAP_SYS_ADMIN/);
    t.notRegex(result.stderr, /nsenter|\n\s+at /);
  }
  // PID 1 holds every capability; a process without CAP_SYS_PTRACE may not open its namespace.
  const other = await cli(['links', '--netns', '/proc/1/ns/net'], NO_CAPS);
  t.is(other.code, 77, other.stderr);
  t.regex(other.stderr, /permission denied on \/proc\/1\/ns\/net/);
  t.notRegex(other.stderr, /no network namespace/);
});

test('an unknown interface is a usage error naming it, for ping --interface and sockets --dev alike', async (t) => {
  const ping = await cli(['ping', '--netns', ns, '--count', '1', '--interface', 'nosuch0', '192.0.2.1']);
  const sockets = await cli(['sockets', '--netns', ns, '--dev', 'nosuch0']);
  const kill = await cli(['sockets', 'kill', '--netns', ns, '--dev', 'nosuch0', '--dry-run']);
  for (const [result, flag] of /** @type {const} */ ([[ping, '--interface'], [sockets, '--dev'], [kill, '--dev']])) {
    t.is(result.code, 2);
    t.is(result.stderr, `netheal: ${flag}: no interface named "nosuch0" in ${Lab.path(ns)}\n`);
  }
});

/**
 * An interface entry of a status document in `state`.
 * @param {string} state
 * @param {string[]} [reasons]
 */
const iface = (state, reasons = []) => ({
  state, reasons, ladder: { phase: 'idle', action: null, waitingFor: null }, attempts: 0,
  damping: { penalty: 0, suppressed: false }, budget: { remaining: 5, maxActions: 5 }, lastActions: [],
});

test('status exits by health (0 healthy, 1 degraded, 3 down or no daemon); --check prints one line', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-cli-status-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'status.sock');
  /** @type {Record<string, unknown>} */
  let interfaces = {};
  const server = await serveStatus(socket, () => ({ pid: 1, startedAt: 'now', netns: null, dryRun: false, recentEvents: [], targets: {}, interfaces }));
  t.teardown(() => closeStatusServer(server));
  const cases = [
    { interfaces: { eth0: iface('healthy') }, code: 0, line: 'OK: eth0 healthy' },
    { interfaces: {}, code: 0, line: 'OK: no interfaces watched' },
    { interfaces: { eth0: iface('healthy'), eth1: iface('suspect', ['probe-target-down:gw']) }, code: 1, line: 'WARNING: eth0 healthy, eth1 suspect (probe-target-down:gw)' },
    { interfaces: { eth0: iface('recovering', ['carrier-down']) }, code: 1, line: 'WARNING: eth0 recovering (carrier-down)' },
    { interfaces: { eth0: iface('down', ['carrier-down']), eth1: iface('suspect') }, code: 3, line: 'CRITICAL: eth0 down (carrier-down), eth1 suspect' },
  ];
  for (const c of cases) {
    interfaces = c.interfaces;
    t.deepEqual(statusVerdict({ interfaces: /** @type {any} */ (c.interfaces) }), { code: c.code, line: c.line });
    const check = await cli(['status', '--check', '--socket', socket]);
    t.is(check.code, c.code, c.line);
    t.is(check.stdout, `${c.line}\n`);
    t.is((await cli(['status', '--socket', socket])).code, c.code, `table: ${c.line}`);
    t.is((await cli(['status', '--json', '--socket', socket])).code, c.code, `json: ${c.line}`);
  }
  const none = await cli(['status', '--check', '--socket', path.join(dir, 'nothing.sock')]);
  t.is(none.code, 3);
  t.regex(none.stdout, /^CRITICAL: no netheal daemon is running/);
});
