// @ts-check
// The daemon's recovery ladder against the real kernel, in-process (the library face):
// a lost default route healed by the link bounce with routes restored, path loss escalating
// to the operator's hook, an embedder's own action, and the real Debian ifupdown back end.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Lab } = require('../lib/lab/lab');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');
const { clientRouter: labTopology } = require('./helpers/lab');

const quietLogger = () => createLogger({ format: 'json', minLevel: 'error', write: () => {} });

const clientRouter = (t) => labTopology(t, { extraRoutes: [['198.51.100.0/24', 'via', '192.0.2.1']] });

async function startDaemon(t, config, extra = {}) {
  const daemon = new Daemon({ config: validateConfig(config), logger: quietLogger(), ...extra });
  t.teardown(() => daemon.stop());
  const events = [];
  for (const type of ['health', 'action', 'verify', 'alert']) /** @type {import('node:events').EventEmitter} */ (daemon).on(type, (e) => events.push({ type, ...e }));
  await daemon.start();
  return { daemon, events };
}

function waitFor(events, predicate, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const hit = events.find(predicate);
      if (hit) return resolve(hit);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(events.map((e) => [e.type, e.iface, e.to ?? e.kind, e.result?.status ?? e.reason]))}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

const policy = { graceMs: 0, defaults: { backoff: { initialMs: 100, maxMs: 500 } } };

test('a deleted default route is healed by the link bounce, routes restored', async (t) => {
  const { lab, client } = await clientRouter(t);
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { ladder: ['kill-sockets', 'link-bounce'], verifyTimeoutMs: 500 } },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await lab.removeRoute(client, 'default');
  const healed = await waitFor(events, (e) => e.type === 'verify' && e.kind === 'link-bounce' && e.verified, 5000, 'verified bounce');
  t.is(healed.iface, 'up0');
  const kinds = events.filter((e) => e.type === 'action').map((e) => e.kind);
  t.deepEqual(kinds, ['kill-sockets', 'link-bounce'], 'the ladder in order, bounce after sockets');
  const routes = /** @type {Array<{dst: string, gateway?: string}>} */ (await lab.ipJson(client, 'route', 'show'));
  t.true(routes.some((r) => r.dst === 'default' && r.gateway === '192.0.2.1'), 'default route is back');
  t.true(routes.some((r) => r.dst === '198.51.100.0/24' && r.gateway === '192.0.2.1'), 'the other route the bounce flushed is back too');
});

test('path loss climbs the ladder up to the hook, which sees the event', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-hook-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hook = path.join(dir, 'hook.sh');
  const seen = path.join(dir, 'seen.env');
  fs.writeFileSync(hook, `#!/bin/sh\nenv | grep ^NETHEAL_ | sort > ${seen}\n`, { mode: 0o755 });
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: {
      up0: {
        probe: { targets: ['gateway'], intervalMs: 20, timeoutMs: 20, multiplier: 3, recovery: 2 },
        ladder: [{ action: 'kill-sockets', verifyTimeoutMs: 100 }, { action: 'link-bounce', verifyTimeoutMs: 300 }, 'hook'],
        hook: { path: hook, timeoutMs: 5000 },
        verifyTimeoutMs: 200,
      },
    },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await waitFor(events, (e) => e.type === 'health' && e.subject === 'group' && e.to === 'healthy', 3000, 'probes up').catch(() => {});
  // The router drops everything back to the client: link, address and routes look fine.
  await lab.ip(router, 'route', 'add', 'blackhole', '192.0.2.2/32');
  const down = await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'down', 3000, 'down');
  t.is(down.evidence.kind, 'probe-group', 'only the probes can tell');
  await waitFor(events, (e) => e.type === 'action' && e.kind === 'hook', 5000, 'hook ran');
  const kinds = events.filter((e) => e.type === 'action' && e.iface === 'up0').map((e) => e.kind).slice(0, 3);
  t.deepEqual(kinds, ['kill-sockets', 'link-bounce', 'hook']);
  const env = fs.readFileSync(seen, 'utf8');
  t.regex(env, /^NETHEAL_IFACE=up0$/m);
  t.regex(env, /^NETHEAL_ACTION=hook$/m);
  t.regex(env, /^NETHEAL_STEP=3$/m);
  t.regex(env, /^NETHEAL_REASONS=.*probe-group-down/m);
  t.regex(env, new RegExp(`^NETHEAL_NETNS=${Lab.path(client)}$`, 'm'));
  await lab.ip(router, 'route', 'del', 'blackhole', '192.0.2.2/32');
  await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'healthy' && events.indexOf(e) > events.indexOf(down), 5000, 'healthy again');
});

test('an embedder plugs its own action into the ladder', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const drained = [];
  const drainPool = {
    kind: 'drain-pool',
    async run(ctx) {
      drained.push({ iface: ctx.iface, reasons: [...ctx.reasons] });
      return { status: 'ok', detail: 'pool drained' };
    },
  };
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { ladder: ['drain-pool'], verifyTimeoutMs: 200 } },
  }, { actions: [drainPool] });
  await lab.setLink(router, 'down0', false);
  await waitFor(events, (e) => e.type === 'action' && e.kind === 'drain-pool', 3000, 'drain-pool');
  t.is(drained[0].iface, 'up0');
  t.true(drained[0].reasons.some((r) => /carrier/.test(r)));
});

test('dry run decides the ladder and changes nothing', async (t) => {
  const { lab, client } = await clientRouter(t);
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { ladder: ['link-bounce'], verifyTimeoutMs: 200 } },
    managers: { networkScriptsDir: os.tmpdir() },
  }, { dryRun: true });
  await lab.removeRoute(client, 'default');
  const action = await waitFor(events, (e) => e.type === 'action' && e.kind === 'link-bounce', 3000, 'dry bounce');
  t.true(action.dryRun);
  t.is(action.result.status, 'dry-run');
  const routes = await lab.ipJson(client, 'route', 'show', 'default');
  t.deepEqual(routes, [], 'nothing restored: nothing was done');
});

test('ifupdown back end: the real ifup re-applies an interface of its own interfaces file', async (t) => {
  const { lab, client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-ifupdown-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const interfaces = path.join(dir, 'interfaces');
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  // An interface the test namespace owns; nothing of the host's configuration is read.
  await lab.addVeth({ ns: client, name: 'managed0' }, { ns: client, name: 'peer0' });
  fs.writeFileSync(interfaces, 'iface managed0 inet static\n    address 203.0.113.7/24\n');
  const nsenter = ['nsenter', `--net=${Lab.path(client)}`, '--'];
  await require('node:util').promisify(require('node:child_process').execFile)(nsenter[0], [...nsenter.slice(1), 'ifup', '-i', interfaces, `--state-dir=${stateDir}`, '--no-scripts', 'managed0']);
  t.true((await lab.ip(client, 'addr', 'show', 'managed0')).includes('203.0.113.7/24'), 'ifup configured it');
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { managed0: { ladder: ['manager-reapply', 'link-bounce'], verifyTimeoutMs: 1000, requiredAddresses: ['203.0.113.7'] } },
    managers: { ifupdown: { interfaces, stateDir, options: ['--no-scripts'] } },
  });
  await lab.removeAddress(client, 'managed0', '203.0.113.7/24');
  const verified = await waitFor(events, (e) => e.type === 'verify' && e.verified, 8000, 'verified re-apply');
  t.is(verified.kind, 'manager-reapply');
  const action = events.find((e) => e.type === 'action' && e.kind === 'manager-reapply');
  t.is(action.result.status, 'ok');
  t.regex(action.result.detail, /ifupdown: ifdown .*--force managed0; ifup .*managed0/);
  t.false(events.some((e) => e.type === 'action' && e.kind === 'link-bounce'), 'no raw bounce of a managed interface');
  t.true((await lab.ip(client, 'addr', 'show', 'managed0')).includes('203.0.113.7/24'), 'the address is back');
});

test('a flap storm ends in suppression, not a bounce storm', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const { LinkControl } = require('../lib/monitor/link-control');
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { ladder: ['link-bounce'], verifyTimeoutMs: 300 } },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  const control = new LinkControl({ netns: router });
  t.teardown(() => control.close());
  for (let i = 0; i < 20; i++) {
    await control.setAdmin('down0', false);
    await new Promise((resolve) => setTimeout(resolve, 40));
    await control.setAdmin('down0', true);
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
  const suppressed = await waitFor(events, (e) => e.type === 'alert' && e.reason === 'suppressed', 3000, 'suppressed');
  t.is(suppressed.iface, 'up0');
  const bounces = events.filter((e) => e.type === 'action' && e.kind === 'link-bounce').length;
  t.true(bounces <= 2, `${bounces} bounces for 20 flaps`);
});

test('a reload that cannot be built goes back to the running configuration', async (t) => {
  const { client } = await clientRouter(t);
  const good = { netns: Lab.path(client), policy, interfaces: { up0: { ladder: ['kill-sockets'] } } };
  const { daemon } = await startDaemon(t, good);
  // Valid as a file, impossible to build: the namespace is gone.
  const bad = validateConfig({ ...good, netns: `/run/netns/nh-${process.pid}-vanished` });
  await t.throwsAsync(() => daemon.reload(bad), { code: 'NETHEAL_ERR_NETNS' });
  t.false(daemon.stopped);
  t.deepEqual(daemon.interfaces, ['up0']);
  t.is(daemon.status().state, 'running');
  t.is(daemon.status().netns, Lab.path(client), 'the previous configuration runs again');
  t.is(daemon.snapshot().interfaces.up0.state, 'healthy');
});
