// @ts-check
// `netheal hold` / `release` against the real daemon process in a namespace lab: under a hold
// an admin-down is watched and reported but not undone, the hold outlives a kill -9 and a
// restart (state directory), and a release lets the daemon heal the interface at once.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const readline = require('node:readline');
const { clientRouter } = require('./helpers/lab');
const { startDaemonProcess } = require('./helpers/daemon-process');
const { Lab } = require('../lib/lab/lab');

const DAEMON = require.resolve('../lib/daemon.js');
const CLI = require.resolve('../lib/cli.js');

function cli(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30000 }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

const startDaemon = startDaemonProcess;

test('hold keeps netheal\'s hands off across a kill -9 and a restart; release heals at once', async (t) => {
  const { lab, client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-hold-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'status.sock');
  const stateDir = path.join(dir, 'state');
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({
    netns: Lab.path(client), policy: { graceMs: 0 }, status: { socket },
    interfaces: { up0: {} }, managers: { networkScriptsDir: dir },
  }));
  let daemon = await startDaemon(t, configFile, stateDir);

  const unknown = await cli(['hold', 'eth9', '--socket', socket]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /eth9 is not watched/);

  const held = await cli(['hold', 'up0', '--socket', socket]);
  t.is(held.code, 0, held.stderr);
  t.regex(held.stdout, /up0: held/);
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(stateDir, 'holds.json'), 'utf8')), { version: 1, holds: ['up0'] });

  // Killed without a chance to say anything, then started again: the hold is still there.
  daemon.child.kill('SIGKILL');
  await new Promise((resolve) => daemon.child.once('exit', resolve));
  daemon = await startDaemon(t, configFile, stateDir);
  await daemon.next((l) => l.hold === true && /kept from before/.test(l.msg));
  await lab.setLink(client, 'up0', false);
  await daemon.next((l) => l.alert === 'held' || /held for maintenance/.test(l.msg ?? ''));
  const status = JSON.parse((await cli(['status', '--json', '--socket', socket])).stdout);
  t.true(status.interfaces.up0.hold);
  t.is(status.interfaces.up0.state, 'down');
  t.false(daemon.logs.some((l) => l.iface === 'up0' && typeof l.action === 'string' && l.result !== undefined && l.result !== 'skipped'), 'nothing ran under the hold');
  t.false(/** @type {any[]} */ (await lab.ipJson(client, 'link', 'show', 'up0'))[0].flags.includes('UP'), 'left down as the operator left it');

  const released = await cli(['release', 'up0', '--socket', socket]);
  t.is(released.code, 0, released.stderr);
  await daemon.next((l) => l.iface === 'up0' && l.action === 'link-up' && l.result === 'ok');
  await daemon.next((l) => l.iface === 'up0' && l.to === 'healthy');
  t.true(/** @type {any[]} */ (await lab.ipJson(client, 'link', 'show', 'up0'))[0].flags.includes('UP'), 'healed after the release');
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(stateDir, 'holds.json'), 'utf8')).holds, []);
});

test('a SIGHUP while the daemon starts is queued behind the start, never fatal', async (t) => {
  const { client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-hup-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ netns: Lab.path(client), policy: { graceMs: 60000 }, status: { socket: path.join(dir, 'status.sock') }, interfaces: { up0: {} } }));
  const child = spawn(process.execPath, [DAEMON, '--config', configFile, '--log-format', 'json'], {
    env: { ...process.env, STATE_DIRECTORY: path.join(dir, 'state') }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  /** @type {string[]} */
  const messages = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => messages.push(JSON.parse(line).msg));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  // As soon as the process catches SIGHUP (bit 1 of SigCgt), send one: the daemon is then
  // still starting (its first dump and probes), the moment that used to kill it (exit 129).
  const catchesHup = () => {
    try {
      const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n;
    } catch {
      return false;
    }
  };
  while (!catchesHup()) await new Promise((resolve) => setImmediate(resolve));
  const duringStart = !messages.includes('monitoring is live');
  child.kill('SIGHUP');
  const deadline = Date.now() + 15000;
  while (!messages.includes('configuration reloaded') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.log(`SIGHUP sent ${duringStart ? 'during' : 'after'} the start`);
  t.true(messages.includes('configuration reloaded'), messages.join(' | '));
  t.true(messages.indexOf('monitoring is live') < messages.indexOf('configuration reloaded'), 'the reload waited for the start');
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
