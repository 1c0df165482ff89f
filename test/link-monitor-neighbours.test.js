// LinkMonitor and the neighbour (ARP/NDP) entries of the default routes' gateways, against
// the real kernel (issue #12): the states it reports, the gateways it follows, and what a
// resync finds. A file of its own: these tests ping and wait out NUD timers, and would crowd
// the timing-sensitive tests of link-monitor.test.js off their event loop.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { Lab } = require('../lib/lab/lab');
const { LinkMonitor } = require('../lib/monitor/link-monitor');
const { lossyBinding, recorder, until } = require('./helpers/monitor');

// A client namespace (veth0 192.0.2.2/24, 2001:db8::2/64) whose default routes go via a
// gateway namespace (veth1 192.0.2.1/24, 2001:db8::1/64) that also answers as 192.0.2.5, a
// host that is not a gateway. Short NUD timers on veth0: a reachable entry is re-checked
// within about a second and a probe gives up after 3 x 100 ms.
async function gatewaySetup(t, options = {}) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('mon');
  const gw = await lab.addNamespace('gw');
  await lab.addVeth({ ns, name: 'veth0' }, { ns: gw, name: 'veth1' });
  await lab.addAddress(ns, 'veth0', '192.0.2.2/24');
  await lab.addAddress(ns, 'veth0', '2001:db8::2/64');
  await lab.addAddress(gw, 'veth1', '192.0.2.1/24');
  await lab.addAddress(gw, 'veth1', '192.0.2.5/24');
  await lab.addAddress(gw, 'veth1', '2001:db8::1/64');
  await lab.addRoute(ns, 'default', 'via', '192.0.2.1');
  await lab.addRoute(ns, 'default', 'via', '2001:db8::1');
  await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.neigh.veth0.base_reachable_time_ms=500',
    'net.ipv4.neigh.veth0.delay_first_probe_time=1', `net.ipv4.neigh.veth0.retrans_time_ms=${options.retransMs ?? 100}`]);
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false, ...options.monitor });
  t.teardown(() => monitor.close());
  await monitor.start();
  const rec = recorder(monitor);
  const veth0 = monitor.getLink('veth0').ifindex;
  const ping = (...args) => lab.exec(ns, 'ping', ['-c1', '-W1', ...args]);
  return { lab, ns, gw, monitor, rec, veth0, ping };
}

const isNeighbour = (address, check = (/** @type {any} */ _event) => true) => (e) => e.type === 'neighbour' && e.address === address && check(e);

test('gateway neighbour: reachable, probed, failed and flushed; other neighbours are passed over', async (t) => {
  const { lab, ns, gw, monitor, rec, veth0, ping } = await gatewaySetup(t);
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), null, 'no entry before any traffic');
  // A host that is not a gateway first: its entry comes and goes unreported.
  await ping('192.0.2.5');
  const reachable = rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'reachable'), 3000, 'gateway reachable');
  await ping('192.0.2.1');
  const event = await reachable;
  t.deepEqual(Object.keys(event), ['type', 'action', 'ifindex', 'family', 'address', 'state', 'monotonicNs', 'via']);
  t.like(event, { action: 'changed', ifindex: veth0, family: 4, via: 'netlink' });
  t.regex(event.monotonicNs, /^\d+$/);
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), 'reachable');
  t.is(monitor.neighbourState(veth0, '192.0.2.5'), null, 'not a gateway: not tracked');
  const v6 = rec.next(isNeighbour('2001:db8::1', (e) => e.state === 'reachable'), 3000, 'IPv6 gateway reachable');
  await ping('-6', '2001:db8::1');
  t.like(await v6, { action: 'changed', ifindex: veth0, family: 6 });
  t.is(monitor.neighbourState(veth0, '2001:DB8:0::1'), 'reachable', 'any spelling of the address');

  // The gateway goes (its address moves elsewhere): the kernel probes the entry, then gives up.
  const probe = rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'probe'), 5000, 'probe');
  const failed = rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'failed'), 5000, 'failed');
  await lab.removeAddress(gw, 'veth1', '192.0.2.1/24');
  await ping('192.0.2.1').catch(() => {});
  await probe;
  t.like(await failed, { action: 'changed', family: 4, via: 'netlink' });
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), 'failed');

  const removed = rec.next(isNeighbour('192.0.2.1', (e) => e.action === 'removed'), 3000, 'removed');
  await lab.ip(ns, 'neigh', 'flush', 'dev', 'veth0');
  t.like(await removed, { state: 'none', ifindex: veth0, family: 4, via: 'netlink' });
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), null);
  t.false(rec.events.some((e) => e.type === 'neighbour' && e.address === '192.0.2.5'), 'the other host was never reported');
  // Every event is a state change: no two in a row with the same state for one gateway.
  for (const address of ['192.0.2.1', '2001:db8::1']) {
    const states = rec.events.filter(isNeighbour(address)).map((e) => e.state);
    t.true(states.every((state, i) => i === 0 || state !== states[i - 1]), `${address}: ${states.join(' ')}`);
  }
});

test('the tracked gateways follow the default route', async (t) => {
  const { lab, ns, monitor, rec, veth0, ping } = await gatewaySetup(t);
  const far = await lab.addNamespace('gw2');
  await lab.addVeth({ ns, name: 'veth2' }, { ns: far, name: 'veth3' });
  await lab.addAddress(ns, 'veth2', '198.51.100.2/24');
  await lab.addAddress(far, 'veth3', '198.51.100.1/24');
  const veth2 = (await lab.ipJson(ns, 'link', 'show', 'veth2'))[0].ifindex;
  await ping('198.51.100.1');
  await ping('192.0.2.1');
  await rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'reachable'), 3000, 'first gateway reachable');
  t.is(monitor.neighbourState(veth2, '198.51.100.1'), null, 'not a gateway yet');
  t.false(rec.events.some(isNeighbour('198.51.100.1')));
  // The new gateway's entry exists already: the monitor dumps it when the route names it.
  const adopted = rec.next(isNeighbour('198.51.100.1'), 3000, 'new gateway adopted');
  await lab.ip(ns, 'route', 'replace', 'default', 'via', '198.51.100.1');
  const event = await adopted;
  t.like(event, { action: 'changed', ifindex: veth2, family: 4, via: 'netlink' });
  t.true(['reachable', 'stale', 'delay', 'probe'].includes(event.state), event.state);
  t.is(monitor.neighbourState(veth2, '198.51.100.1'), event.state);
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), null, 'the old gateway is no longer tracked');
  // The old gateway's entry goes unreported, the new one's is reported (notifications are
  // handled in order, so the first would have come before the second).
  const removed = rec.next(isNeighbour('198.51.100.1', (e) => e.action === 'removed'), 3000, 'new gateway flushed');
  await lab.ip(ns, 'neigh', 'flush', 'dev', 'veth0');
  await lab.ip(ns, 'neigh', 'flush', 'dev', 'veth2');
  await removed;
  t.false(rec.events.some(isNeighbour('192.0.2.1', (e) => e.action === 'removed')), 'old gateway not reported');
});

// The kernel notifies no entry into incomplete (nor delay): a resync's dump is what shows it.
test('a resync reports the gateway entry as the dump finds it: incomplete, then failed; removed unseen', async (t) => {
  const { binding, control } = lossyBinding();
  const { lab, ns, gw, monitor, rec, veth0 } = await gatewaySetup(t, { retransMs: 1000, monitor: { binding } });
  await lab.removeAddress(gw, 'veth1', '192.0.2.1/24');
  // Nobody answers for the gateway: its entry stays incomplete for 3 x 1 s of solicitations.
  const asking = lab.spawn(ns, 'ping', ['-c1', '-W4', '192.0.2.1']);
  await until(() => lab.ip(ns, 'neigh', 'show', '192.0.2.1').then((out) => out.includes('INCOMPLETE')), 'an incomplete entry', 3000, 25);
  const incomplete = rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'incomplete'), 3000, 'incomplete');
  const failed = rec.next(isNeighbour('192.0.2.1', (e) => e.state === 'failed'), 6000, 'failed');
  control.lose();
  t.like(await incomplete, { action: 'changed', ifindex: veth0, family: 4, via: 'resync' });
  t.like(await failed, { action: 'changed', via: 'netlink' });
  await new Promise((resolve) => asking.once('exit', resolve));
  // Flushed while the monitor hears nothing: the resync finds it gone.
  control.deaf = true;
  await lab.ip(ns, 'neigh', 'flush', 'dev', 'veth0');
  const RTM_DELNEIGH = 29;
  await until(() => control.dropped.some((m) => m.type === RTM_DELNEIGH), 'the flush to be dropped');
  control.deaf = false;
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), 'failed', 'the table still believes in it');
  const removed = rec.next(isNeighbour('192.0.2.1', (e) => e.action === 'removed'), 3000, 'removed');
  control.lose();
  t.like(await removed, { state: 'none', via: 'resync' });
  t.is(monitor.neighbourState(veth0, '192.0.2.1'), null);
});
