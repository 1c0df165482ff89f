// @ts-check
// Safety limits that outlive the process and the engine, against the real kernel in a
// namespace lab: a daemon killed (-9) in the middle of a link bounce leaves the link down and
// its routes flushed, and the next daemon undoes that from its journal before anything
// else; the budget spent survives the restart; a reload in the middle of a hook never lets
// two hooks run at once and keeps budget and damping; a corrupt state file is reported and
// ignored; a hooks directory runs in order and refuses what others could write.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { clientRouter } = require('./helpers/lab');
const { startDaemonProcess } = require('./helpers/daemon-process');
const { Lab } = require('../lib/lab/lab');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');


/** A scratch directory a root hook may live in (not under /tmp: others can write there). */
function rootOnlyDir(t, prefix) {
  const dir = fs.mkdtempSync(`/run/${prefix}`);
  fs.chmodSync(dir, 0o755);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const startDaemon = startDaemonProcess;

/** Resolves when `check()` holds (a condition on the kernel's or a file's state, re-read every 20 ms). */
async function until(check, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const linkUp = async (lab, ns, dev) => /** @type {any[]} */ (await lab.ipJson(ns, 'link', 'show', dev))[0].flags.includes('UP');
const routes = async (lab, ns) => /** @type {Array<{dst: string, gateway?: string}>} */ (await lab.ipJson(ns, 'route', 'show'));

test('kill -9 in the middle of a link bounce: the next daemon sets the link up and puts the flushed routes back; the budget spent survives', async (t) => {
  const { lab, client, router } = await clientRouter(t, { extraRoutes: [['198.51.0.0/16', 'via', '192.0.2.1']] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-crash-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stateDir = path.join(dir, 'state');
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({
    netns: Lab.path(client), policy: { graceMs: 0 }, status: { socket: path.join(dir, 'status.sock') },
    // A bounce that keeps the link down for 60 s: the window to kill the daemon in.
    interfaces: { up0: { ladder: [{ action: 'link-bounce', options: { downMs: 60000 } }], budget: { maxActions: 5, windowMs: 3600000 } } },
    managers: { networkScriptsDir: dir, ifupdown: { interfaces: path.join(dir, 'interfaces') } },
  }));
  let daemon = await startDaemon(t, configFile, stateDir);
  // The carrier goes (the far end is set down): a link fault, bounced after its hold-down.
  await lab.carrierLoss({ ns: router, name: 'down0' });
  await until(async () => !(await linkUp(lab, client, 'up0')), 'the bounce to set up0 down');
  const journal = JSON.parse(fs.readFileSync(path.join(stateDir, 'journal.json'), 'utf8'));
  t.is(journal.entries.length, 1);
  t.like(journal.entries[0], { iface: 'up0', action: 'link-bounce', pid: daemon.child.pid, undo: { kind: 'link-up-and-replay' } });

  daemon.child.kill('SIGKILL');
  await new Promise((resolve) => daemon.child.once('exit', resolve));
  // What the dead daemon left: the link down, and the kernel flushed its routes.
  t.false(await linkUp(lab, client, 'up0'));
  t.false((await routes(lab, client)).some((r) => r.dst === 'default'), 'admin-down flushed the default route');
  await lab.carrierRestore({ ns: router, name: 'down0' });

  daemon = await startDaemon(t, configFile, stateDir);
  const undone = await daemon.next((l) => /undid the link-bounce/.test(l.msg ?? ''));
  t.is(undone.result, 'ok', undone.msg);
  t.true(await linkUp(lab, client, 'up0'), 'set up again');
  const after = await routes(lab, client);
  t.true(after.some((r) => r.dst === 'default' && r.gateway === '192.0.2.1'), 'the default route is back');
  t.true(after.some((r) => r.dst === '198.51.0.0/16' && r.gateway === '192.0.2.1'), 'the /16 route is back');
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(stateDir, 'journal.json'), 'utf8')).entries, [], 'the journal is clear');
  // It was undone before the monitor's first dump: the engine never saw it down.
  await until(async () => {
    const status = JSON.parse(await new Promise((resolve) => {
      const { execFile } = require('node:child_process');
      execFile(process.execPath, [require.resolve('../lib/cli.js'), 'status', '--json', '--socket', path.join(dir, 'status.sock')], (_e, out) => resolve(out || '{}'));
    }));
    if (status.interfaces?.up0 === undefined) return false;
    t.is(status.interfaces.up0.budget.remaining, 4, 'the bounce before the crash still counts against the budget');
    return status.interfaces.up0.state === 'healthy';
  }, 'up0 healthy');
  t.false(daemon.logs.some((l) => l.iface === 'up0' && l.to === 'down'), 'never judged down');
  t.false(daemon.logs.some((l) => l.iface === 'up0' && l.action === 'link-bounce' && l.result !== undefined && l.undo === undefined), `no new bounce: ${daemon.logs.map((l) => l.msg).join(' | ')}`);
});

test('a corrupt state file is reported and ignored; the daemon starts', async (t) => {
  const { client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-corrupt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  fs.writeFileSync(path.join(stateDir, 'safety.json'), '{"version":1,"scope":');
  fs.writeFileSync(path.join(stateDir, 'journal.json'), JSON.stringify({ version: 1, scope: {}, entries: [{ iface: 'up0' }] }));
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ netns: Lab.path(client), policy: { graceMs: 60000 }, interfaces: { up0: {} } }));
  const daemon = await startDaemon(t, configFile, stateDir);
  const safety = daemon.logs.find((l) => /safety\.json: ignored, not JSON/.test(l.msg));
  t.truthy(safety, daemon.logs.map((l) => l.msg).join(' | '));
  t.is(safety.level, 'warning');
  t.truthy(daemon.logs.find((l) => /journal\.json: ignored, not a journal: entries\.0\.id/.test(l.msg)), 'names the field at fault');
});

const quietLogger = () => createLogger({ format: 'json', minLevel: 'error', write: () => {} });

function collect(daemon) {
  /** @type {any[]} */
  const events = [];
  for (const type of ['health', 'action', 'alert', 'recovered']) /** @type {import('node:events').EventEmitter} */ (daemon).on(type, (e) => events.push({ type, ...e }));
  return events;
}

test('a reload in the middle of a hook: the hook is stopped before the next starts, never two at once; budget, damping and backoff are kept', async (t) => {
  const { lab, client } = await clientRouter(t);
  const dir = rootOnlyDir(t, 'netheal-reload-');
  const hook = path.join(dir, 'hook.sh');
  const log = path.join(dir, 'hook.log');
  // Holds a lock for as long as it lives: a second copy that finds it taken says so.
  fs.writeFileSync(hook, `#!/bin/bash\nexec 9>${dir}/lock\nif ! flock -n 9; then echo overlap >> ${log}; exit 1; fi\necho "start $$" >> ${log}\nsleep 30\n`, { mode: 0o755 });
  const raw = {
    netns: Lab.path(client), policy: { graceMs: 0, defaults: { backoff: { initialMs: 100, maxMs: 200 } } },
    interfaces: { up0: { ladder: ['hook'], hook: { path: hook, timeoutMs: 60000 }, actionTimeoutMs: 60000, budget: { maxActions: 7, windowMs: 3600000 } } },
    managers: { networkScriptsDir: dir },
  };
  const daemon = new Daemon({ config: validateConfig(raw), logger: quietLogger(), stopGraceMs: 300 });
  t.teardown(() => daemon.stop());
  const events = collect(daemon);
  await daemon.start();
  await lab.removeRoute(client, 'default');
  await until(() => fs.existsSync(log) && /start/.test(fs.readFileSync(log, 'utf8')), 'the first hook');
  const before = /** @type {any} */ (daemon.snapshot()).interfaces.up0;
  t.is(before.budget.remaining, 6);
  t.true(before.damping.flaps >= 1);

  await daemon.reload(validateConfig(raw));
  await until(() => (fs.readFileSync(log, 'utf8').match(/^start/gm) ?? []).length >= 2, 'the hook of the new engine');
  const lines = fs.readFileSync(log, 'utf8');
  t.false(/overlap/.test(lines), `never two hooks at once:\n${lines}`);
  const [first] = lines.match(/^start (\d+)/m)?.slice(1) ?? [];
  t.throws(() => process.kill(Number(first), 0), undefined, 'the first hook was stopped (its process group killed)');
  const after = /** @type {any} */ (daemon.snapshot()).interfaces.up0;
  t.is(after.budget.remaining, 5, 'both hooks count: the reload did not refill the budget');
  t.true(after.damping.flaps >= before.damping.flaps, 'damping kept');
  t.true(after.attempts >= 1, 'backoff attempts kept');
  await lab.addRoute(client, 'default', 'via', '192.0.2.1');
});

test('a hooks directory runs its hooks in name order, skips names run-parts would skip, and refuses one others can write', async (t) => {
  const { lab, client } = await clientRouter(t);
  const dir = rootOnlyDir(t, 'netheal-hooksd-');
  const hooks = path.join(dir, 'hooks.d');
  fs.mkdirSync(hooks, { mode: 0o755 });
  const order = path.join(dir, 'order');
  for (const name of ['20-second', '10-first', 'skipped.dpkg-old', '.hidden']) {
    fs.writeFileSync(path.join(hooks, name), `#!/bin/sh\necho ${name} $NETHEAL_IFACE >> ${order}\n`, { mode: 0o755 });
  }
  const raw = {
    netns: Lab.path(client), policy: { graceMs: 0 },
    interfaces: { up0: { ladder: ['hook'], hook: { path: hooks, timeoutMs: 5000 }, verifyTimeoutMs: 200 } },
    managers: { networkScriptsDir: dir },
  };
  const daemon = new Daemon({ config: validateConfig(raw), logger: quietLogger() });
  t.teardown(() => daemon.stop());
  const events = collect(daemon);
  await daemon.start();
  await lab.removeRoute(client, 'default');
  await until(() => events.some((e) => e.type === 'action' && e.kind === 'hook'), 'the hooks');
  t.is(fs.readFileSync(order, 'utf8'), '10-first up0\n20-second up0\n');
  const ran = events.find((e) => e.type === 'action' && e.kind === 'hook');
  t.is(ran.result.status, 'ok');
  t.deepEqual(ran.result.data.commands, [path.join(hooks, '10-first'), path.join(hooks, '20-second')]);
  await daemon.stop();

  // One that others may write refuses the whole configuration, naming the field and file.
  fs.chmodSync(path.join(hooks, '20-second'), 0o757);
  const error = t.throws(() => validateConfig(raw));
  t.regex(error.message, /interfaces\.up0\.hook\.path: .*20-second is writable by others/);
});

test('a refused reload shows in status: the running configuration is kept and says so', async (t) => {
  const { client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-reload-status-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'status.sock');
  const configFile = path.join(dir, 'config.json');
  const good = { netns: Lab.path(client), policy: { graceMs: 60000 }, status: { socket }, interfaces: { up0: {} } };
  fs.writeFileSync(configFile, JSON.stringify(good));
  const daemon = await startDaemonProcess(t, configFile, path.join(dir, 'state'));
  const status = (args) => new Promise((resolve) => {
    require('node:child_process').execFile(process.execPath, [require.resolve('../lib/cli.js'), 'status', '--socket', socket, ...args], (_e, out) => resolve(out));
  });
  t.is(JSON.parse(String(await status(['--json']))).lastReload, null, 'no reload yet');
  fs.writeFileSync(configFile, JSON.stringify({ ...good, interfaces: { up0: { probe: { targets: ['nonsense'] } } } }));
  daemon.child.kill('SIGHUP');
  await daemon.next((l) => /reload refused/.test(l.msg ?? ''));
  const refused = JSON.parse(String(await status(['--json']))).lastReload;
  t.false(refused.ok);
  t.regex(refused.error, /interfaces\.up0\.probe\.targets\[0\]/);
  t.regex(String(await status([])), /LAST RELOAD REFUSED at .*running the previous configuration: .*targets\[0\]/);
  fs.writeFileSync(configFile, JSON.stringify(good));
  daemon.child.kill('SIGHUP');
  await daemon.next((l) => l.msg === 'configuration reloaded');
  t.true(JSON.parse(String(await status(['--json']))).lastReload.ok);
});
