// @ts-check
// Two uplinks to two routers in front of one far server, against the real kernel in a
// namespace lab: netheal keeps its own default route (proto 222, metric 1) on the preferred
// uplink, moves it to the backup when the primary's path dies beyond its first hop, destroys
// the connections whose source address the backup's network drops (their owners see
// ECONNABORTED) and spares the ones that do not use the dead path, fails back after the
// hold-up, and removes its route when it stops.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { Lab } = require('../lib/lab/lab');
const { tcpConnection } = require('./helpers/tcp');
const { startUplinkDaemon, nextEvent } = require('./helpers/uplink-daemon');

const { addTwoUplinks, FAR_SERVER: FAR } = require('../lib/lab/two-uplinks');

/** The two-uplink lab (src/lab/two-uplinks.ts), removed at the test's end. */
async function twoUplinks(t) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  return { lab, ...(await addTwoUplinks(lab)) };
}

/** A server in `ns` that accepts for ever; a client loop that connects every 10 ms, each success printed with its start time. */
function connectLoop(t, lab, serverNs, clientNs, port) {
  const server = spawn('nsenter', [`--net=${Lab.path(serverNs)}`, '--', 'python3', '-u', '-c', `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${FAR}", ${port})); s.listen(64)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.close()
`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => server.kill('SIGKILL'));
  const listening = new Promise((resolve) => readline.createInterface({ input: server.stdout }).once('line', resolve));
  /** @type {bigint[]} */
  const successes = [];
  const start = async () => {
    await listening;
    const client = spawn('nsenter', [`--net=${Lab.path(clientNs)}`, '--', 'python3', '-u', '-c', `
import socket, time
while True:
    began = time.monotonic_ns()
    try:
        c = socket.create_connection(("${FAR}", ${port}), timeout=0.05); c.close()
        print(began, flush=True)
    except OSError:
        pass
    time.sleep(0.01)
`], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => client.kill('SIGKILL'));
    readline.createInterface({ input: client.stdout }).on('line', (line) => successes.push(BigInt(line)));
  };
  return { start, successes };
}

const nethealRoute = async (lab, ns) => /** @type {any[]} */ (await lab.ipJson(ns, 'route', 'show', 'default')).find((r) => String(r.protocol) === '222');

test('two uplinks: fail over beyond the first hop, move only the connections that lost their path, fail back after the hold-up, clean up on stop', async (t) => {
  const { lab, client, r1, far } = await twoUplinks(t);
  const { daemon, events } = await startUplinkDaemon(t, client, { holdUpMs: 1000, events: ['path-changed', 'path-lost'] });
  const first = await nethealRoute(lab, client);
  t.like(first, { gateway: '192.0.2.1', dev: 'up0', metric: 1 }, 'netheal\'s route on the preferred uplink');

  // Connections: through the primary to the far server (its source, 192.0.2.2, is dropped by
  // the backup's provider), and on-link to the primary's router (never used the dead path).
  const throughPrimary = await tcpConnection(t, { clientNs: client, serverNs: far, serverAddress: FAR, clientAddress: '192.0.2.2', port: 7301 });
  const onLink = await tcpConnection(t, { clientNs: client, serverNs: r1, serverAddress: '192.0.2.1', clientAddress: '192.0.2.2', port: 7302 });
  // Bound to the backup's device: it has its own way out (the backup's route at metric 200).
  const boundToBackup = await tcpConnection(t, { clientNs: client, serverNs: far, serverAddress: FAR, clientAddress: '198.51.100.2', port: 7304, device: 'up1' });
  t.is(await throughPrimary.exchange(), 'echo');
  t.is(await boundToBackup.exchange(), 'echo');
  const loop = connectLoop(t, lab, far, client, 7303);
  await loop.start();
  while (loop.successes.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));

  // The primary's path dies beyond its first hop: its router still answers, the far server does not.
  await lab.ip(r1, 'route', 'replace', 'blackhole', `${FAR}/32`);
  const faultAt = process.hrtime.bigint(); // (in place: ip has returned)
  const failover = await nextEvent(daemon, events, 'path-changed', (e) => e.reason === 'failover');
  t.is(failover.to, 'up1/198.51.100.1');
  t.true(failover.destroyed >= 1, `connections from 192.0.2.2 destroyed: ${failover.destroyed}`);
  t.like(await nethealRoute(lab, client), { gateway: '198.51.100.1', dev: 'up1', metric: 1 });
  while (!loop.successes.some((s) => s >= faultAt)) await new Promise((resolve) => setTimeout(resolve, 5));
  const firstNewFlowMs = Number(loop.successes.find((s) => s >= faultAt) - faultAt) / 1e6;
  t.log(`fault -> first new connection through the backup: ${firstNewFlowMs.toFixed(1)} ms`);
  t.true(firstNewFlowMs < 1000, `${firstNewFlowMs} ms`);
  const reply = await throughPrimary.exchange();
  t.regex(String(reply), /^error .*abort/i, 'its owner saw ECONNABORTED at once');
  t.is(await onLink.exchange(), 'echo', 'the on-link connection to the primary router was left alone');
  t.true(events.some((e) => e.type === 'path-lost' && e.address === '192.0.2.2' && e.iface === 'up0'));

  // The path comes back: traffic returns after the hold-up, not before.
  const healedAt = Date.now();
  await lab.ip(r1, 'route', 'replace', `${FAR}/32`, 'via', '10.1.0.2');
  const failback = await nextEvent(daemon, events, 'path-changed', (e) => e.reason === 'failback');
  t.is(failback.to, 'up0/192.0.2.1');
  t.true(Date.now() - healedAt >= 1000, 'not before the hold-up');
  t.like(await nethealRoute(lab, client), { gateway: '192.0.2.1', dev: 'up0' });
  t.is(await boundToBackup.exchange(), 'echo', 'the fail-back spared the connection bound to the backup\'s device');

  // A manager that clears foreign routes (networkd's ManageForeignRoutes=yes) removes it: back at once.
  await lab.ip(client, 'route', 'del', 'default', 'metric', '1');
  const deadline = Date.now() + 5000;
  while ((await nethealRoute(lab, client)) === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.like(await nethealRoute(lab, client), { gateway: '192.0.2.1', dev: 'up0' }, 'put back after a removal');

  await daemon.stop();
  t.is(await nethealRoute(lab, client), undefined, 'netheal\'s route is gone; the managers\' remain');
  t.is(/** @type {any[]} */ (await lab.ipJson(client, 'route', 'show', 'default')).length, 2);
});
