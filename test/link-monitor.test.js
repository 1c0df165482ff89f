// @ts-check
// LinkMonitor against the real kernel: every event type, the silent IPv4 route flush,
// carrier-sync on a tap, a storm that overflows the receive buffer, and clean close().
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Lab } = require('../lib/lab/lab');
const { LinkMonitor } = require('../lib/monitor/link-monitor');
const { lossyBinding, recorder, until } = require('./helpers/monitor');

/** @param {string} name @param {(link: any, event: any) => boolean} [check] */
const isLink = (name, check = () => true) => (/** @type {any} */ e) => e.type === 'link' && e.link.name === name && check(e.link, e);

async function setup(t, options = {}) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('mon');
  const far = await lab.addNamespace('far');
  await lab.addVeth({ ns, name: 'veth0' }, { ns: far, name: 'veth1' });
  await lab.addAddress(ns, 'veth0', '192.0.2.2/24');
  await lab.addAddress(far, 'veth1', '192.0.2.1/24');
  await lab.addRoute(ns, 'default', 'via', '192.0.2.1');
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false, ...options });
  t.teardown(() => monitor.close());
  await monitor.start();
  return { lab, ns, far, monitor, rec: recorder(monitor) };
}

test('initial table and default route', async (t) => {
  const { monitor } = await setup(t);
  const veth = monitor.getLink('veth0');
  t.truthy(veth);
  t.true(veth.carrier);
  t.deepEqual(veth.addresses.filter((a) => a.family === 4), [{ family: 4, address: '192.0.2.2', prefixlen: 24 }]);
  t.like(monitor.activeDefaultRoute(4), { family: 4, gateway: '192.0.2.1', ifindex: veth.ifindex, linkdown: false });
});

test('carrier loss from the far side, then back', async (t) => {
  const { lab, far, rec } = await setup(t);
  const down = rec.next(isLink('veth0', (l) => !l.carrier), 3000, 'carrier loss');
  const lost = rec.next((e) => e.type === 'default-route' && e.action === 'lost', 3000, 'default route lost');
  await lab.carrierLoss({ ns: far, name: 'veth1' });
  const event = await down;
  t.true(event.changed.includes('carrier'));
  t.is(event.via, 'netlink');
  t.regex(event.monotonicNs, /^\d+$/);
  t.true(event.link.adminUp, 'still admin up: it is the carrier that went');
  // Carrier loss leaves the route in place, marked linkdown: the monitor judges it unusable.
  t.like(await lost, { family: 4, gateway: '192.0.2.1' });
  const up = rec.next(isLink('veth0', (l) => l.carrier && l.operstate === 'up'), 3000, 'carrier back');
  const restored = rec.next((e) => e.type === 'default-route' && e.action === 'restored', 3000, 'route restored');
  await lab.carrierRestore({ ns: far, name: 'veth1' });
  await up;
  t.like(await restored, { family: 4, gateway: '192.0.2.1' });
});

test('admin down flushes the IPv4 default route silently; the monitor still reports it', async (t) => {
  const { lab, ns, rec, monitor } = await setup(t);
  const down = rec.next(isLink('veth0', (l) => !l.adminUp), 3000, 'admin down');
  const lost = rec.next((e) => e.type === 'default-route' && e.action === 'lost', 3000, 'route lost');
  await lab.setLink(ns, 'veth0', false);
  t.true((await down).changed.includes('adminUp'));
  t.like(await lost, { family: 4, gateway: '192.0.2.1' });
  t.deepEqual(monitor.defaultRoutes().filter((r) => r.family === 4), [], 'route really gone from the table');
  const routes = await lab.ipJson(ns, 'route', 'show', 'default');
  t.deepEqual(routes, [], 'ip agrees: the kernel flushed it');
  const up = rec.next(isLink('veth0', (l) => l.adminUp), 3000, 'admin up');
  await lab.setLink(ns, 'veth0', true);
  await up;
  const restored = rec.next((e) => e.type === 'default-route' && e.action === 'restored', 3000, 'route restored');
  await lab.addRoute(ns, 'default', 'via', '192.0.2.1');
  t.like(await restored, { family: 4, gateway: '192.0.2.1' });
});

// The kernel flushes a default route silently when its device goes down. If that happens
// after the monitor asked for a route dump (started by the route's own notification) but
// before the reply is read, the reply still holds the route: the monitor must dump again,
// not believe it (found in review). The test makes that window certain: the device goes
// down synchronously right after the IPv4 route dump request has left. Which of the two
// sockets the loop then reads first varies, so several rounds.
async function flushedWhileDumping(t, busyMs) {
  const { lab, ns, monitor } = await setup(t);
  const { execFileSync } = require('node:child_process');
  await lab.ip(ns, 'route', 'del', 'default');
  // Test-only reach into the monitor's request socket (private): the IPv4 RTM_GETROUTE dump.
  const socket = /** @type {any} */ (monitor).client.socket;
  const send = socket.send.bind(socket);
  let armed = false;
  // (A native method is read-only on the prototype: define an own property.)
  Object.defineProperty(socket, 'send', { configurable: true, value: (datagram) => {
    const sent = send(datagram);
    const isIpv4RouteDump = datagram.readUInt16LE(4) === 26 && datagram[16] === 2;
    if (armed && isIpv4RouteDump) {
      armed = false;
      execFileSync('ip', ['-n', ns, 'link', 'set', 'veth0', 'down']);
      // A busy event loop: both sockets have data by the time it is read again.
      for (const end = Date.now() + busyMs; Date.now() < end;);
    }
    return sent;
  } });
  for (let i = 0; i < 8; i++) {
    armed = true;
    await lab.addRoute(ns, 'default', 'via', '192.0.2.1', 'dev', 'veth0');
    const deadline = Date.now() + 2000;
    while (armed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    t.false(armed, `round ${i}: the route dump was requested`);
    // Wait for the monitor to catch up (nothing periodic runs here: carrierSync is off, so
    // only the events and dumps of this round can clear the route), bounded against a hang.
    const settled = () => monitor.activeDefaultRoute(4) === null && monitor.defaultRoutes().every((r) => r.family !== 4);
    for (const end = Date.now() + 10_000; !settled() && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 5));
    t.deepEqual(await lab.ipJson(ns, 'route', 'show', 'default'), [], 'the kernel flushed it');
    t.is(monitor.activeDefaultRoute(4), null, `round ${i}: no active default route in the table`);
    t.deepEqual(monitor.defaultRoutes().filter((r) => r.family === 4), [], `round ${i}: none at all`);
    await lab.setLink(ns, 'veth0', true);
  }
}

test('a default route flushed while its dump is in flight does not stay in the table', (t) => flushedWhileDumping(t, 0));

// The same with the loop kept busy for 100 ms after the flush (as on a loaded machine): the
// link-down notification and the dump's reply are then both waiting when the loop reads.
// Serial: the busy-wait would stall the tests running beside it.
test.serial('a default route flushed while its dump is in flight, loop busy, does not stay in the table', (t) => flushedWhileDumping(t, 100));

test('address added and removed; removing the last IPv4 address loses the default route', async (t) => {
  const { lab, ns, rec } = await setup(t);
  const added = rec.next((e) => e.type === 'address' && e.action === 'added' && e.address === '2001:db8::2', 3000, 'v6 added');
  await lab.addAddress(ns, 'veth0', '2001:db8::2/64');
  t.like(await added, { family: 6, prefixlen: 64, via: 'netlink' });
  const removed = rec.next((e) => e.type === 'address' && e.action === 'removed' && e.address === '192.0.2.2', 3000, 'v4 removed');
  const lost = rec.next((e) => e.type === 'default-route' && e.action === 'lost', 3000, 'route lost');
  await lab.removeAddress(ns, 'veth0', '192.0.2.2/24');
  t.like(await removed, { family: 4, prefixlen: 24 });
  t.like(await lost, { family: 4 });
});

test('device deletion is link-removed; bridge nomaster is not', async (t) => {
  const { lab, ns, rec } = await setup(t);
  await lab.addVeth({ ns, name: 'pa' }, { ns, name: 'pb' });
  await lab.ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  const enslaved = rec.next(isLink('pa', (l) => l.master !== null), 3000, 'master set');
  await lab.ip(ns, 'link', 'set', 'pa', 'master', 'br0');
  await enslaved;
  const released = rec.next(isLink('pa', (l) => l.master === null), 3000, 'nomaster');
  await lab.ip(ns, 'link', 'set', 'pa', 'nomaster');
  t.true((await released).changed.includes('master'));
  t.false(rec.events.some((e) => e.type === 'link-removed' && e.name === 'pa'), 'nomaster (RTM_DELLINK AF_BRIDGE) is not a deletion');
  const gone = rec.next((e) => e.type === 'link-removed' && e.name === 'pa', 3000, 'deleted');
  await lab.ip(ns, 'link', 'del', 'pa');
  t.like(await gone, { type: 'link-removed', name: 'pa', via: 'netlink' });
});

test('carrier-sync sees a tap carrier loss that linkwatch delays', async (t) => {
  const { lab, ns, monitor } = await setup(t);
  monitor.close();
  const tap = await lab.addTap(ns, 'tap0');
  const synced = new LinkMonitor({ netns: ns, carrierSync: { intervalMs: 20 } });
  t.teardown(() => synced.close());
  await synced.start();
  const rec = recorder(synced);
  // Two drops 0.2 s apart: the second waits for linkwatch's 1 s timer (docs/kernel-facts.md).
  // Seen by the poll, so before linkwatch lets the kernel announce it: that is the point. On
  // a machine starved of CPU for most of that second the kernel's notification can still win
  // the race (CI with both cores busy saw it once); such an attempt is logged and repeated,
  // and one of three must go to the poll. A poll that never sees it fails all three.
  const attempts = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    tap.setCarrier(false);
    await rec.next(isLink('tap0', (l) => !l.carrier), 3000, 'first drop');
    tap.setCarrier(true);
    await rec.next(isLink('tap0', (l) => l.carrier), 3000, 'carrier up');
    await new Promise((resolve) => setTimeout(resolve, 150));
    const t0 = process.hrtime.bigint();
    tap.setCarrier(false);
    const event = await rec.next(isLink('tap0', (l) => !l.carrier), 3000, 'second drop');
    const latencyMs = Number(BigInt(event.monotonicNs) - t0) / 1e6;
    attempts.push(`${event.via} after ${latencyMs.toFixed(1)} ms`);
    // How soon (about one 20 ms interval when the machine keeps up) is logged, not asserted.
    if (event.via === 'carrier-sync') break;
    tap.setCarrier(true);
    await rec.next(isLink('tap0', (l) => l.carrier), 3000, 'carrier up again');
  }
  t.log(`second drop seen: ${attempts.join('; ')}`);
  t.true(attempts.at(-1).startsWith('carrier-sync'), `seen by the poll in one of three attempts: ${attempts.join('; ')}`);
});

test('a storm that overflows the receive buffer ends in a resync and the truth', async (t) => {
  const { lab, ns, monitor } = await setup(t);
  monitor.close();
  await lab.addVeth({ ns, name: 'sa' }, { ns, name: 'sb' });
  // A tiny buffer guarantees ENOBUFS; the storm ends with sa down.
  const small = new LinkMonitor({ netns: ns, carrierSync: false, receiveBuffer: 4096 });
  t.teardown(() => small.close());
  await small.start();
  const rec = recorder(small);
  await lab.flapStorm(ns, 'sa', 1500);
  await lab.setLink(ns, 'sa', false);
  if (!rec.events.some((e) => e.type === 'resync')) await rec.next((e) => e.type === 'resync', 5000, 'resync');
  // Let the resync and the notifications behind it settle.
  let quiet = rec.events.length;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (rec.events.length === quiet) break;
    quiet = rec.events.length;
  }
  const ipLinks = /** @type {Array<any>} */ (await lab.ipJson(ns, 'link', 'show'));
  for (const name of ['sa', 'sb', 'veth0']) {
    const truth = ipLinks.find((l) => l.ifname === name);
    const last = [...rec.events].reverse().find((e) => e.type === 'link' && e.link.name === name);
    const current = last ? last.link : small.getLink(name);
    t.is(current.adminUp, truth.flags.includes('UP'), `${name} adminUp`);
    t.is(current.carrier, truth.flags.includes('LOWER_UP'), `${name} carrier`);
    t.is(current.operstate, truth.operstate.toLowerCase(), `${name} operstate`);
  }
  t.false(small.getLink('sa').adminUp);
  t.true(rec.events.some((e) => e.type === 'resync' && /ENOBUFS/.test(e.reason)));
});

// Issue #14: the resync removed a vanished device's addresses from its table silently, so
// the address losses (and the sockets on those addresses) were never reported.
test('a resync reports every address of a device that vanished unseen, before link-removed', async (t) => {
  const { lab, ns, monitor: plain } = await setup(t);
  plain.close();
  await lab.addVeth({ ns, name: 'gone0' }, { ns, name: 'gone1' });
  await lab.addAddress(ns, 'gone0', '198.51.100.1/24');
  await lab.addAddress(ns, 'gone0', '2001:db8:5::1/64');
  const { binding, control } = lossyBinding();
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false, binding });
  t.teardown(() => monitor.close());
  await monitor.start();
  const rec = recorder(monitor);
  const gone = monitor.getLink('gone0');
  t.true(gone.addresses.length >= 2);
  // The device and its addresses go while the monitor hears nothing.
  control.deaf = true;
  await lab.ip(ns, 'link', 'del', 'gone0');
  const RTM_DELLINK = 17;
  await until(() => control.dropped.some((m) => m.type === RTM_DELLINK && m.payload.readInt32LE(4) === gone.ifindex), 'the deletion to be dropped');
  control.deaf = false;
  t.truthy(monitor.getLink('gone0'), 'the table still believes in it');
  control.lose();
  const removed = await rec.next((e) => e.type === 'link-removed' && e.ifindex === gone.ifindex, 3000, 'link-removed');
  t.is(removed.via, 'resync');
  const at = rec.events.indexOf(removed);
  for (const address of gone.addresses) {
    const event = rec.events.find((e) => e.type === 'address' && e.action === 'removed' && e.address === address.address);
    t.truthy(event, `address removed: ${address.address}`);
    t.like(event, { ifindex: gone.ifindex, family: address.family, prefixlen: address.prefixlen, via: 'resync' });
    t.true(rec.events.indexOf(event) < at, `${address.address} is reported before link-removed`);
  }
  t.is(monitor.getLink('gone0'), undefined);
});

// A loss reported while a resync runs is not covered by it when it comes after the resync's
// link dump: the change it dropped is in neither the dump nor the held notifications.
test('notifications lost during a resync, after its link dump, bring another resync', async (t) => {
  const { lab, ns, monitor: plain } = await setup(t);
  plain.close();
  await lab.addVeth({ ns, name: 'la' }, { ns, name: 'lb' });
  const { binding, control } = lossyBinding();
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false, binding });
  t.teardown(() => monitor.close());
  await monitor.start();
  const rec = recorder(monitor);
  const { execFileSync } = require('node:child_process');
  // Test-only reach into the monitor's request socket (private), as above: the moment the
  // resync's address dump is asked for, its link dump is answered.
  const socket = /** @type {any} */ (monitor).client.socket;
  const send = socket.send.bind(socket);
  let armed = true;
  Object.defineProperty(socket, 'send', { configurable: true, value: (datagram) => {
    const sent = send(datagram);
    if (armed && datagram.readUInt16LE(4) === 22 /* RTM_GETADDR */) {
      armed = false;
      control.deaf = true;
      execFileSync('ip', ['-n', ns, 'link', 'set', 'la', 'down']);
      control.lose();
    }
    return sent;
  } });
  const first = rec.next((e) => e.type === 'resync', 3000, 'first resync');
  control.lose();
  await first;
  await until(() => control.dropped.some((m) => m.type === 16 && m.payload.readInt32LE(4) === monitor.getLink('la').ifindex), 'la down to be dropped');
  control.deaf = false;
  const down = await rec.next(isLink('la', (l) => !l.adminUp), 3000, 'la down, found by a second resync');
  t.is(down.via, 'resync');
  t.is(rec.events.filter((e) => e.type === 'resync').length, 2);
});

test('async iteration yields events and ends on close()', async (t) => {
  const { lab, far, monitor } = await setup(t);
  const seen = [];
  const done = (async () => {
    for await (const event of monitor) {
      seen.push(event);
      if (event.type === 'link' && !event.link.carrier) monitor.close();
    }
  })();
  await lab.carrierLoss({ ns: far, name: 'veth1' });
  await done;
  t.true(seen.some((e) => e.type === 'link' && e.link.name === 'veth0' && !e.link.carrier));
});

// Serial: ava runs serial tests before the concurrent ones, so no other test opens fds meanwhile.
test.serial('close() leaves no fd behind', async (t) => {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('fds');
  const count = () => fs.readdirSync('/proc/self/fd').length;
  const before = count();
  for (let i = 0; i < 5; i++) {
    const monitor = new LinkMonitor({ netns: ns });
    await monitor.start();
    t.true(count() > before);
    monitor.close();
  }
  // The fds are closed in the poll handles' close callbacks, in a later loop turn.
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(count(), before);
});

test('works in a worker thread', async (t) => {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('worker');
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { LinkMonitor } = require(workerData.module);
    (async () => {
      const monitor = new LinkMonitor({ netns: workerData.ns });
      await monitor.start();
      parentPort.postMessage(monitor.linkTable().map((l) => l.name));
      monitor.close();
    })();
  `, { eval: true, workerData: { ns, module: require.resolve('../lib/monitor/link-monitor') } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const names = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  t.deepEqual(names, ['lo']);
  t.is(await exited, 0, 'the worker exits on its own: no handle left open');
});
