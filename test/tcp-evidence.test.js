// @ts-check
// Passive evidence from TCP, against the real kernel in the two-uplink lab (src/lab/two-uplinks.ts):
// a TCP-only blackhole on the primary (its router drops TCP, ICMP passes: the probes stay
// healthy) with a live flow on it is seen in the flow's tcp_info alone within 1 s, and the
// default route moves to the backup, where the flow reconnects; a healthy busy flow raises no
// alarm; an uplink without connections is not polled fast.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { Lab } = require('../lib/lab/lab');
const { addTwoUplinks, FAR_SERVER: FAR } = require('../lib/lab/two-uplinks');
const { startEchoServer, startFlow } = require('../lib/lab/flow');
const { validateConfig } = require('../lib/daemon/config');
const { startUplinkDaemon, nextEvent } = require('./helpers/uplink-daemon');

const PRIMARY = 'up0/192.0.2.1';
const BACKUP = 'up1/198.51.100.1';

/** The lab, a daemon with the two uplinks (probing the far server), an echo server there and its events. */
async function setUp(t, port) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const { client, r1, far } = await addTwoUplinks(lab);
  const server = await startEchoServer(far, FAR, port);
  t.teardown(() => server.kill('SIGKILL'));
  // The hold-up keeps traffic on the backup for the rest of the test once it moved.
  const { daemon, events } = await startUplinkDaemon(t, client, { holdUpMs: 600000, events: ['path-changed', 'uplink-health'] });
  return { lab, client, r1, daemon, events };
}

/** Waits until `predicate()` holds, checking on each of the daemon's TCP polls (every 20 ms at most). */
async function until(predicate, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test.serial('a TCP-only blackhole with a live flow is seen in TCP alone within 1 s; the route moves to the backup, the flow comes back there', async (t) => {
  const { lab, client, r1, daemon, events } = await setUp(t, 7601);
  const flow = startFlow(client, FAR, 7601, { everyMs: 20, timeoutMs: 3000 });
  t.teardown(() => flow.stop());
  // The flow runs and the evidence polls it fast.
  await until(() => flow.echoes >= 10 && (daemon.tcpEvidence()?.[PRIMARY]?.last?.sockets ?? 0) >= 1, 'the flow and its first polls');

  // r1 drops TCP only: ICMP to the far server (the probes) still passes.
  await lab.exec(r1, '/usr/sbin/nft', ['add table inet tcpdrop']);
  await lab.exec(r1, '/usr/sbin/nft', ['add chain inet tcpdrop through { type filter hook forward priority 0; }']);
  await lab.exec(r1, '/usr/sbin/nft', ['add rule inet tcpdrop through meta l4proto tcp drop']);
  const faultMs = performance.now();
  const faultNs = process.hrtime.bigint();
  const stall = await nextEvent(daemon, events, 'uplink-health', (e) => e.source === 'tcp' && e.uplink === PRIMARY && !e.healthy);
  const detectMs = stall.atMs - faultMs;
  t.log(`TCP-only blackhole -> dead-path verdict from TCP evidence: ${detectMs.toFixed(0)} ms (${JSON.stringify(stall.tcp)})`);
  t.true(detectMs <= 1000, `${detectMs} ms`);
  const failover = await nextEvent(daemon, events, 'path-changed', (e) => e.reason === 'failover');
  t.is(failover.to, BACKUP);
  t.true(failover.destroyed >= 1, 'the flow\'s connection from the primary\'s address was destroyed');
  const route = /** @type {any[]} */ (await lab.ipJson(client, 'route', 'show', 'default')).find((r) => String(r.protocol) === '222');
  t.like(route, { gateway: '198.51.100.1', dev: 'up1' });
  // The flow reconnects through the backup and exchanges data again.
  const backNs = await flow.echoAfter(faultNs);
  t.log(`fault -> the reconnecting flow exchanges data again: ${(Number(backNs - faultNs) / 1e6).toFixed(0)} ms`);
  t.false(events.some((e) => e.type === 'uplink-health' && e.source === 'probes' && e.uplink === PRIMARY && !e.healthy),
    'the probes never saw it: the evidence was TCP\'s alone');
  // The nft rule is still there: the echo really went through the backup.
  t.true((daemon.tcpEvidence()?.[BACKUP]?.polls ?? 0) > 0);
});

test.serial('a healthy busy flow raises no alarm and is polled fast; an uplink without connections is polled slowly', async (t) => {
  const { client, daemon, events } = await setUp(t, 7602);
  const flow = startFlow(client, FAR, 7602, { everyMs: 5, timeoutMs: 3000 });
  t.teardown(() => flow.stop());
  await until(() => flow.echoes >= 10, 'the flow');
  const start = performance.now();
  const polls = () => daemon.tcpEvidence() ?? {};
  const before = { primary: polls()[PRIMARY]?.polls ?? 0, backup: polls()[BACKUP]?.polls ?? 0 };
  // 40 polls of the busy uplink: 4 s at the fast interval (100 ms).
  await until(() => (polls()[PRIMARY]?.polls ?? 0) - before.primary >= 40, '40 polls of the busy uplink');
  const elapsedMs = performance.now() - start;
  const backupPolls = (polls()[BACKUP]?.polls ?? 0) - before.backup;
  t.log(`${elapsedMs.toFixed(0)} ms: 40 polls of the busy uplink, ${backupPolls} of the idle one; ${flow.echoes} echoes`);
  t.true(backupPolls <= Math.ceil(elapsedMs / 2000) + 1, `the idle uplink was polled ${backupPolls} times in ${elapsedMs} ms`);
  t.true(elapsedMs < 40 * 2000 / 4, 'the busy uplink was polled at the fast interval, not the idle one');
  t.true(flow.echoes > 100);
  t.false(events.some((e) => e.type === 'uplink-health' && !e.healthy), JSON.stringify(events));
  t.false(events.some((e) => e.type === 'path-changed' && e.reason === 'failover'));
  t.false(polls()[PRIMARY]?.dead);
});

test('config: failover.tcpEvidence has defaults, and bad values are refused naming the field', (t) => {
  const base = { uplinks: [{ iface: 'a', gateway: '192.0.2.1' }, { iface: 'b', gateway: '198.51.100.1' }] };
  t.like(validateConfig(base).failover.tcpEvidence, { enabled: true, fastIntervalMs: 100, idleIntervalMs: 2000, stallMs: 500, minSegments: 2, minRetransmits: 2 });
  for (const [tcpEvidence, field] of /** @type {[any, RegExp][]} */ ([
    [{ stallMs: 'x' }, /failover\.tcpEvidence\.stallMs/],
    [{ minRetransmits: 0 }, /failover\.tcpEvidence\.minRetransmits/],
    [{ fastIntervalMs: 5000, idleIntervalMs: 1000 }, /failover\.tcpEvidence\.fastIntervalMs: 5000 is above idleIntervalMs 1000/],
    [{ bogus: 1 }, /failover\.tcpEvidence: unknown key "bogus"/],
  ])) {
    t.throws(() => validateConfig({ ...base, failover: { tcpEvidence } }), { message: field });
  }
});
