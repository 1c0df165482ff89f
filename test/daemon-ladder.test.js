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
const { tcpConnection } = require('./helpers/tcp');

const quietLogger = () => createLogger({ format: 'json', minLevel: 'error', write: () => {} });

const clientRouter = (t) => labTopology(t, { extraRoutes: [['198.51.100.0/24', 'via', '192.0.2.1']] });

async function startDaemon(t, config, extra = {}) {
  const actions = (extra.actions ?? []).map((a) => a.kind);
  const daemon = new Daemon({ config: validateConfig(config, 'config', { actions }), logger: quietLogger(), ...extra });
  t.teardown(() => daemon.stop());
  const events = [];
  for (const type of ['health', 'action', 'verify', 'alert', 'recovered']) /** @type {import('node:events').EventEmitter} */ (daemon).on(type, (e) => events.push({ type, ...e }));
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

const actions = (events, kind) => events.filter((e) => e.type === 'action' && (kind === undefined || e.kind === kind) && e.result.status !== 'skipped');

test('a deleted default route on an unmanaged interface is put back by repair: no bounce, the connection lives', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const tcp = await tcpConnection(t, { clientNs: client, serverNs: router, serverAddress: '192.0.2.1', clientAddress: '192.0.2.2', port: 7001 });
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { verifyTimeoutMs: 500 } },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await lab.removeRoute(client, 'default');
  const down = await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'down', 3000, 'down');
  const healed = await waitFor(events, (e) => e.type === 'verify' && e.verified, 3000, 'verified repair');
  t.is(healed.kind, 'repair');
  t.true(healed.credited);
  t.is(healed.fault, 'local-config');
  const healthy = await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'healthy', 3000, 'healthy');
  t.log(`down -> healthy in ${healthy.atMs - down.atMs} ms`);
  t.true(healthy.atMs - down.atMs < 1000, `healed in ${healthy.atMs - down.atMs} ms`);
  t.deepEqual(actions(events).map((e) => e.kind), ['repair'], 'only the repair ran: no bounce, no socket killed');
  const routes = /** @type {Array<{dst: string, gateway?: string}>} */ (await lab.ipJson(client, 'route', 'show'));
  t.true(routes.some((r) => r.dst === 'default' && r.gateway === '192.0.2.1'), 'default route is back');
  t.true(routes.some((r) => r.dst === '198.51.100.0/24' && r.gateway === '192.0.2.1'), 'the other route is untouched');
  t.is(await tcp.exchange(), 'echo', 'the long-lived connection still exchanges data');
});

test('a carrier blip of 100 ms: no action, no socket destroyed, recovered without action', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const tcp = await tcpConnection(t, { clientNs: client, serverNs: router, serverAddress: '192.0.2.1', clientAddress: '192.0.2.2', port: 7002 });
  const { daemon, events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { probe: { targets: ['gateway'], intervalMs: 50, timeoutMs: 50, multiplier: 3, recovery: 2 } } },
    killSockets: { pathDeadMs: 10000 },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await waitFor(events, (e) => e.type === 'health' && e.subject === 'group' && e.to === 'healthy', 3000, 'probes up').catch(() => {});
  await lab.setLink(router, 'down0', false);
  await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'down', 3000, 'down');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await lab.setLink(router, 'down0', true);
  const recovered = await waitFor(events, (e) => e.type === 'recovered' && e.iface === 'up0', 3000, 'recovered');
  t.truthy(recovered.fault, 'the class of what cleared is named');
  // The probes lost while the gateway's neighbour entry is re-learnt are the same incident.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.deepEqual(events.filter((e) => e.type === 'recovered').map((e) => e.by).filter((by) => by !== 'without-action'), [], 'no step credited');
  t.deepEqual(actions(events), [], 'nothing ran');
  t.is(await tcp.exchange(), 'echo', 'the connection survived the blip');
  t.is(daemon.snapshot().interfaces.up0.damping.flaps, 1, 'one incident, one flap (the probes the blip cost are part of it)');
});

test('an interface set admin-down behind netheal\'s back is set up again at once; a held one is left alone', async (t) => {
  const { lab, client } = await clientRouter(t);
  const { daemon, events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    // Verification ends as soon as the evidence recovers; the window is only a deadline (on a
    // loaded machine the route's event can take longer than half a second to be judged).
    interfaces: { up0: { verifyTimeoutMs: 3000 } },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await lab.setLink(client, 'up0', false);
  const up = await waitFor(events, (e) => e.type === 'verify' && e.kind === 'link-up' && e.verified, 6000, 'link-up verified');
  t.is(up.fault, 'link');
  await waitFor(events, (e) => e.type === 'verify' && e.kind === 'repair' && e.verified, 6000, 'routes the admin-down flushed put back');
  await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'healthy', 6000, 'healthy');
  const routes = /** @type {any[]} */ (await lab.ipJson(client, 'route', 'show', 'default'));
  t.is(routes.length, 1, 'the default route the kernel flushed is back');
  t.is(daemon.snapshot().interfaces.up0.intent.owner, 'netheal');
  // Under a maintenance hold the same change is the operator's: watched, never undone.
  t.true(daemon.hold('up0', true));
  const before = actions(events).length;
  await lab.setLink(client, 'up0', false);
  await waitFor(events, (e) => e.type === 'alert' && e.reason === 'held', 3000, 'held alert');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(actions(events).length, before, 'nothing ran under the hold');
  t.false(/** @type {any[]} */ (await lab.ipJson(client, 'link', 'show', 'up0'))[0].flags.includes('UP'));
  t.true(/** @type {any} */ (daemon.status()).interfaces.up0.hold);
});

test('a path lost beyond the first hop: located, alerted, no bounce or re-apply; recovered without action', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  await lab.addAddress(router, 'lo', '198.51.100.1/32');
  const tcp = await tcpConnection(t, { clientNs: client, serverNs: router, serverAddress: '192.0.2.1', clientAddress: '192.0.2.2', port: 7003 });
  const { daemon, events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { up0: { probe: { targets: ['gateway', '198.51.100.1'], intervalMs: 30, timeoutMs: 30, multiplier: 3, recovery: 2, quorum: 2 } } },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await waitFor(events, (e) => e.type === 'health' && e.subject === 'group' && e.to === 'healthy', 3000, 'probes up').catch(() => {});
  await lab.ip(router, 'addr', 'del', '198.51.100.1/32', 'dev', 'lo');
  const down = await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'down', 3000, 'down');
  t.is(daemon.snapshot().interfaces.up0.fault.class, 'beyond-first-hop');
  await waitFor(events, (e) => e.type === 'alert' && e.reason === 'cannot-fix', 3000, 'alert only').catch(() => {});
  t.deepEqual(actions(events).filter((e) => ['link-bounce', 'manager-reapply', 'repair', 'link-up'].includes(e.kind)), [], 'nothing disruptive');
  t.is(await tcp.exchange(), 'echo', 'the connection to the gateway is healthy and untouched');
  await lab.addAddress(router, 'lo', '198.51.100.1/32');
  const recovered = await waitFor(events, (e) => e.type === 'recovered' && e.iface === 'up0' && events.indexOf(e) > events.indexOf(down), 5000, 'recovered');
  t.is(recovered.by, 'without-action');
  t.is(recovered.fault, 'beyond-first-hop');
});

test('path loss at the first hop: the hook sees the located fault; the bounce cannot fix it and is skipped', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  // Not under /tmp: a hook in a directory others can write to is refused (it runs as root).
  const dir = fs.mkdtempSync('/run/netheal-hook-');
  fs.chmodSync(dir, 0o755);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hook = path.join(dir, 'hook.sh');
  const seen = path.join(dir, 'seen.env');
  const whole = path.join(dir, 'whole.env');
  const netns = path.join(dir, 'netns');
  fs.writeFileSync(hook, `#!/bin/sh\nenv | grep ^NETHEAL_ | sort > ${seen}\nenv > ${whole}\nstat -L -c %i /proc/self/ns/net > ${netns}\n`, { mode: 0o755 });
  const { events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: {
      up0: {
        probe: { targets: ['gateway'], intervalMs: 20, timeoutMs: 20, multiplier: 3, recovery: 2 },
        ladder: ['kill-sockets', 'link-bounce', 'hook'],
        hook: { path: hook, timeoutMs: 5000 },
        verifyTimeoutMs: 200,
      },
    },
    killSockets: { pathDeadMs: 200 },
    managers: { networkScriptsDir: os.tmpdir() },
  });
  await waitFor(events, (e) => e.type === 'health' && e.subject === 'group' && e.to === 'healthy', 3000, 'probes up').catch(() => {});
  // The router drops everything back to the client: link, address and routes look fine.
  await lab.ip(router, 'route', 'add', 'blackhole', '192.0.2.2/32');
  const down = await waitFor(events, (e) => e.type === 'health' && e.iface === 'up0' && e.to === 'down', 3000, 'down');
  t.is(down.evidence.kind, 'probe-group', 'only the probes can tell');
  await waitFor(events, (e) => e.type === 'action' && e.kind === 'hook', 5000, 'hook ran');
  const ran = events.filter((e) => e.type === 'action' && e.iface === 'up0').map((e) => [e.kind, e.result.status]);
  t.deepEqual(ran.slice(0, 3), [['kill-sockets', 'ok'], ['link-bounce', 'skipped'], ['hook', 'ok']]);
  t.regex(events.find((e) => e.type === 'action' && e.kind === 'link-bounce').result.detail, /cannot fix a first-hop fault/);
  const env = fs.readFileSync(seen, 'utf8');
  t.regex(env, /^NETHEAL_IFACE=up0$/m);
  t.regex(env, /^NETHEAL_ACTION=hook$/m);
  t.regex(env, /^NETHEAL_FAULT=first-hop$/m);
  t.regex(env, /^NETHEAL_STEP=3$/m);
  t.regex(env, /^NETHEAL_REASONS=.*probe-group-down/m);
  t.regex(env, new RegExp(`^NETHEAL_NETNS=${Lab.path(client)}$`, 'm'));
  t.regex(env, /^NETHEAL_TIMEOUT_MS=5000$/m, 'the real limit: the hook\'s own 5 s, not the 30 s action timeout');
  // It ran inside the watched namespace, with nothing of the daemon's environment.
  t.is(fs.readFileSync(netns, 'utf8').trim(), String(fs.statSync(Lab.path(client)).ino));
  const names = fs.readFileSync(whole, 'utf8').split('\n').filter(Boolean).map((l) => l.split('=')[0]).filter((n) => !n.startsWith('NETHEAL_'));
  t.deepEqual(names.filter((n) => !['PATH', 'LANG', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(n)), [], 'only PATH and LANG besides NETHEAL_*');
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
    interfaces: { up0: { ladder: ['repair'], verifyTimeoutMs: 200 } },
    managers: { networkScriptsDir: os.tmpdir() },
  }, { dryRun: true });
  await lab.removeRoute(client, 'default');
  const action = await waitFor(events, (e) => e.type === 'action' && e.kind === 'repair', 3000, 'dry repair');
  t.true(action.dryRun);
  t.is(action.result.status, 'dry-run');
  const routes = await lab.ipJson(client, 'route', 'show', 'default');
  t.deepEqual(routes, [], 'nothing restored: nothing was done');
});

test('ifupdown back end: a lost address is put back by netlink, ifdown is respected, admin-down behind its back is healed', async (t) => {
  const { lab, client } = await clientRouter(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-ifupdown-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const interfaces = path.join(dir, 'interfaces');
  const stateDir = path.join(dir, 'state');
  fs.mkdirSync(stateDir);
  fs.mkdirSync(path.join(dir, 'interfaces.d'));
  // An interface the test namespace owns, its stanza in a `source`d file as Debian lays it
  // out; nothing of the host's configuration is read.
  await lab.addVeth({ ns: client, name: 'managed0' }, { ns: client, name: 'peer0' });
  await lab.setLink(client, 'peer0', true);
  fs.writeFileSync(interfaces, `source ${dir}/interfaces.d/*\n`);
  fs.writeFileSync(path.join(dir, 'interfaces.d', 'managed0'), 'iface managed0 inet static\n    address 203.0.113.7/24\n');
  const run = require('node:util').promisify(require('node:child_process').execFile);
  const ifupdown = (cmd, ...args) => run('nsenter', [`--net=${Lab.path(client)}`, '--', cmd, '-i', interfaces, `--state-dir=${stateDir}`, '--no-scripts', ...args]);
  await ifupdown('ifup', 'managed0');
  t.true((await lab.ip(client, 'addr', 'show', 'managed0')).includes('203.0.113.7/24'), 'ifup configured it');
  const { daemon, events } = await startDaemon(t, {
    netns: Lab.path(client), policy,
    interfaces: { managed0: { verifyTimeoutMs: 1000 } },
    managers: { ifupdown: { interfaces, stateDir, options: ['--no-scripts'] } },
  });
  await waitFor([daemon.snapshot()], (snap) => snap.interfaces.managed0.intent !== null, 100, 'intent').catch(() => {});
  await lab.removeAddress(client, 'managed0', '203.0.113.7/24');
  const verified = await waitFor(events, (e) => e.type === 'verify' && e.verified, 8000, 'verified repair');
  t.is(verified.kind, 'repair');
  t.false(events.some((e) => e.type === 'action' && ['manager-reapply', 'link-bounce'].includes(e.kind) && e.result.status !== 'skipped'), 'no ifdown/ifup cycle, no raw bounce');
  t.true((await lab.ip(client, 'addr', 'show', 'managed0')).includes('203.0.113.7/24'), 'the address is back');
  t.is(daemon.snapshot().interfaces.managed0.intent.owner, 'ifupdown');
  // Admin-down behind ifupdown's back: ifupdown still wants it up, so it comes back.
  await lab.setLink(client, 'managed0', false);
  await waitFor(events, (e) => e.type === 'verify' && e.kind === 'link-up' && e.verified, 5000, 'link-up');
  // ifdown is the operator's word: respected.
  const count = actions(events).length;
  await ifupdown('ifdown', 'managed0');
  await waitFor(events, (e) => e.type === 'alert' && e.reason === 'admin-down', 5000, 'respected');
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(actions(events).length, count, 'nothing undoes an ifdown');
  t.is(daemon.snapshot().interfaces.managed0.intent.wantUp, false);
});

test('a flap storm ends in suppression, not a bounce storm', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  const { LinkControl } = require('../lib/kernel/link-control');
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
  const bounces = events.filter((e) => e.type === 'action' && e.kind === 'link-bounce' && e.result.status !== 'skipped').length;
  t.is(bounces, 0, `${bounces} bounces for 20 flaps of 40 ms: none lasted the link hold-down`);
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
