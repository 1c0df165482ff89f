// @ts-check
// The NetworkTable (src/monitor/network-table.ts), the LinkMonitor's pure part, fed recorded
// kernel bytes (test/fixtures/rtnetlink.json: lo, veth0 as a port of br0, br0 with the
// default routes; rtnetlink-neighbours.json: a gateway's neighbour entry through its life).
// No socket, no namespace: what it holds and every event it reports, in order.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const nl = require('../lib/kernel/netlink');
const rt = require('../lib/kernel/rtnetlink');
const { NetworkTable, networkStateOf, gatewayStatesOf, defaultRoutesOf } = require('../lib/monitor/network-table');
const fixture = require('./fixtures/rtnetlink.json');
const neighbours = require('./fixtures/rtnetlink-neighbours.json');

/** @typedef {import('../lib/monitor/network-table').MonitorEvent} MonitorEvent */

/** @param {string} hex */
const first = (hex) => nl.parseMessages(Buffer.from(hex, 'hex'))[0];
/** The recorded message with another type (RTM_DELADDR for an RTM_NEWADDR: same payload). */
const withType = (/** @type {string} */ hex, /** @type {number} */ type) => {
  const bytes = Buffer.from(hex, 'hex');
  bytes.writeUInt16LE(type, 4);
  return nl.parseMessages(bytes)[0];
};

const BR0 = 4;
const VETH0 = 3;

/** A table whose events are collected; `during` sees the table as each event is reported. */
function tableWith(/** @type {((event: MonitorEvent, table: any) => void) | undefined} */ during = undefined) {
  /** @type {MonitorEvent[]} */
  const events = [];
  /** @type {any} */
  let table;
  table = new NetworkTable((event) => {
    events.push(event);
    during?.(event, table);
  });
  return { table: /** @type {import('../lib/monitor/network-table').NetworkTable} */ (table), events };
}

/** The snapshot the recording's dumps make, optionally without some links (and what was on them). */
function recordedState(/** @type {bigint} */ stamp, /** @type {number[]} */ vanished = []) {
  const links = fixture.links.map(first).filter((m) => !vanished.includes(rt.decodeLink(m).ifindex));
  const addresses = fixture.addresses.map(first).filter((m) => !vanished.includes(rt.decodeAddress(m)?.ifindex ?? -1));
  // The kernel flushes the routes of a deleted device: they are not in a later dump.
  const routes = fixture.routes.map(first).filter((m) => !vanished.includes(rt.decodeRoute(m)?.ifindex ?? -1));
  return networkStateOf({ links, addresses, routes, monotonicNs: stamp });
}

const empty = () => networkStateOf({ links: [], addresses: [], routes: [], monotonicNs: 0n });
const brief = (/** @type {MonitorEvent} */ e) => {
  switch (e.type) {
    case 'link': return `link ${e.link.name} ${e.changed.join(',')}`;
    case 'link-removed': return `link-removed ${e.name}`;
    case 'address': return `address ${e.action} ${e.ifindex} ${e.address}/${e.prefixlen}`;
    case 'default-route': return `default-route ${e.action} ${e.family} ${e.gateway} ${e.ifindex}`;
    case 'neighbour': return `neighbour ${e.action} ${e.ifindex} ${e.address} ${e.state}`;
    case 'resync': return `resync ${e.reason}`;
    default: return 'unknown';
  }
};

test('a table loaded from recorded dumps holds the links, their addresses and the default routes, and reports nothing', (t) => {
  const { table, events } = tableWith();
  table.load(recordedState(1n), new Map());
  t.deepEqual(events, []);
  const links = table.linkTable();
  t.deepEqual(links.map((l) => [l.ifindex, l.name, l.kind]), [[1, 'lo', null], [VETH0, 'veth0', 'veth'], [BR0, 'br0', 'bridge']]);
  t.is(links[1].master, BR0);
  t.deepEqual(table.getLink('br0')?.addresses.map((a) => `${a.address}/${a.prefixlen}`), ['192.0.2.10/24', '2001:db8::10/64', 'fe80::b4bf:4aff:fe8a:8e70/64']);
  t.deepEqual(table.getLink(1)?.addresses.map((a) => a.address), ['127.0.0.1', '::1']);
  t.deepEqual(table.defaultRoutes().map((r) => [r.family, r.gateway, r.ifindex, r.metric]), [[4, '192.0.2.1', BR0, 100], [6, '2001:db8::1', BR0, 1024]]);
  t.like(table.activeDefaultRoute(4), { gateway: '192.0.2.1', ifindex: BR0 });
  t.like(table.activeDefaultRoute(6), { gateway: '2001:db8::1', ifindex: BR0 });
  t.true(table.touchesDefaultRoute(BR0), 'a change on the routes\' device may flush them');
  t.false(table.touchesDefaultRoute(VETH0));
  t.true(table.hasGateways());
  t.is(table.neighbourState(BR0, '192.0.2.1'), null, 'no entry known yet');
  // Copies: changing what a query returned changes nothing in the table.
  links[2].addresses.length = 0;
  t.is(table.getLink('br0')?.addresses.length, 3);
});

test('notifications: links appear and change, addresses come and go, each reported once', (t) => {
  const { table, events } = tableWith();
  table.load(empty(), new Map());
  const linkMessages = fixture.links.map((hex) => rt.decodeLink(first(hex)));
  for (const raw of linkMessages) t.true(table.updateLink(raw, 10n, 'netlink'));
  for (const raw of linkMessages) t.false(table.updateLink(raw, 11n, 'netlink'), 'the same message again changes nothing');
  const all = 'ifindex,name,kind,adminUp,carrier,operstate,mtu,mac,master';
  t.deepEqual(events.map(brief), [`link lo ${all}`, `link veth0 ${all}`, `link br0 ${all}`]);
  t.like(events[0], { monotonicNs: '10', via: 'netlink' });

  events.length = 0;
  const veth = linkMessages[1];
  t.true(table.updateLink({ ...veth, carrier: true, operstate: 'up' }, 12n, 'carrier-sync'));
  t.deepEqual(events.map(brief), ['link veth0 carrier,operstate']);
  t.like(events[0], { via: 'carrier-sync', link: { name: 'veth0', carrier: true, operstate: 'up' } });

  events.length = 0;
  for (const hex of fixture.addresses) {
    const address = rt.decodeAddress(first(hex));
    if (address !== null) table.updateAddress(address, true, 13n, 'netlink');
  }
  t.is(events.length, 6);
  t.true(events.every((e) => e.type === 'address' && e.action === 'added'));
  t.deepEqual(table.getLink('br0')?.addresses.map((a) => a.address), ['192.0.2.10', '2001:db8::10', 'fe80::b4bf:4aff:fe8a:8e70']);

  events.length = 0;
  const v4 = fixture.addresses.find((hex) => rt.decodeAddress(first(hex))?.address === '192.0.2.10');
  const removed = rt.decodeAddress(withType(/** @type {string} */ (v4), rt.RTM_DELADDR));
  t.truthy(removed);
  t.true(table.updateAddress(/** @type {any} */ (removed), false, 14n, 'netlink'));
  t.false(table.updateAddress(/** @type {any} */ (removed), false, 15n, 'netlink'), 'removed once');
  t.deepEqual(events.map(brief), [`address removed ${BR0} 192.0.2.10/24`]);
  t.deepEqual(table.getLink('br0')?.addresses.map((a) => a.address), ['2001:db8::10', 'fe80::b4bf:4aff:fe8a:8e70']);

  events.length = 0;
  table.removeLink(VETH0, 16n, 'netlink');
  t.deepEqual(events.map(brief), [`address removed ${VETH0} fe80::b4bf:4aff:fe8a:8e70/64`, 'link-removed veth0']);
  t.is(table.getLink('veth0'), undefined);
  t.deepEqual(table.getLink('br0')?.addresses.map((a) => a.address), ['2001:db8::10', 'fe80::b4bf:4aff:fe8a:8e70'], 'the same address on another device stays');
});

test('a resync snapshot in which a device vanished: its addresses are reported removed, while it is still known, then the device and its routes', (t) => {
  /** @type {Array<[string, string | undefined]>} */
  const seen = [];
  const { table, events } = tableWith((event, current) => {
    // What the daemon does with an address event: name its interface by asking for the link.
    if (event.type === 'address') seen.push([event.address, current.getLink(event.ifindex)?.name]);
  });
  table.load(recordedState(1n), new Map([[`${BR0}|192.0.2.1`, rt.NUD_REACHABLE]]));
  t.is(table.neighbourState(BR0, '192.0.2.1'), 'reachable');

  table.applySnapshot(recordedState(500n, [BR0]), new Map(), 501n, 'ENOBUFS: the kernel dropped notifications');
  t.deepEqual(events.map(brief), [
    'resync ENOBUFS: the kernel dropped notifications',
    `address removed ${BR0} 192.0.2.10/24`,
    `address removed ${BR0} 2001:db8::10/64`,
    `address removed ${BR0} fe80::b4bf:4aff:fe8a:8e70/64`,
    'link-removed br0',
    `default-route lost 4 192.0.2.1 ${BR0}`,
    `default-route lost 6 2001:db8::1 ${BR0}`,
  ]);
  t.true(events.every((e) => e.via === 'resync' && e.monotonicNs === '500'));
  t.deepEqual(seen, [['192.0.2.10', 'br0'], ['2001:db8::10', 'br0'], ['fe80::b4bf:4aff:fe8a:8e70', 'br0']],
    'each address event can still be tied to its device');
  t.deepEqual(table.linkTable().map((l) => l.name), ['lo', 'veth0']);
  t.deepEqual(table.defaultRoutes(), []);
  t.is(table.activeDefaultRoute(4), null);
  t.is(table.activeDefaultRoute(6), null);
  t.false(table.hasGateways(), 'no default route, no gateway to follow: forgotten without an event');
  t.is(table.neighbourState(BR0, '192.0.2.1'), null);

  // The same snapshot again: nothing differs, only the resync is reported.
  events.length = 0;
  table.applySnapshot(recordedState(600n, [BR0]), new Map(), 601n, 'again');
  t.deepEqual(events.map(brief), ['resync again']);

  // The device comes back (a later resync): link, addresses and routes restored.
  events.length = 0;
  table.applySnapshot(recordedState(700n), new Map(), 701n, 'back');
  t.deepEqual(events.map(brief).slice(0, 2), ['resync back', `link br0 ${'ifindex,name,kind,adminUp,carrier,operstate,mtu,mac,master'}`]);
  t.deepEqual(events.map(brief).slice(2), [
    `address added ${BR0} 192.0.2.10/24`,
    `address added ${BR0} 2001:db8::10/64`,
    `address added ${BR0} fe80::b4bf:4aff:fe8a:8e70/64`,
    `default-route restored 4 192.0.2.1 ${BR0}`,
    `default-route restored 6 2001:db8::1 ${BR0}`,
  ]);
});

/** The recorded lab's two default routes (IPv4 and IPv6 gateways) through device `gw`. */
const gatewayRoutes = (gw, linkdown = false) => [
  { family: /** @type {4} */ (4), gateway: '192.0.2.1', ifindex: gw, metric: 0, linkdown },
  { family: /** @type {6} */ (6), gateway: '2001:db8::1', ifindex: gw, metric: 1024, linkdown },
];
/** Route watch of one device. */
const watchOn = (gw) => ({ devices: new Set([gw]), sources: new Set(), anyDevice: false });

test('a default route that turns linkdown is reported lost, saying linkdown; one really gone says nothing of the kind', (t) => {
  const { table, events } = tableWith();
  const gw = neighbours.veth0;
  table.load(empty(), new Map());
  table.setDefaultRoutes(gatewayRoutes(gw), watchOn(gw), 5n, 'netlink');
  events.length = 0;
  table.setDefaultRoutes(gatewayRoutes(gw, true), watchOn(gw), 6n, 'netlink');
  /** @param {any} e */
  const lost = (e) => [e.type, e.action, e.family, e.linkdown];
  t.deepEqual(events.map(lost), [['default-route', 'lost', 4, true], ['default-route', 'lost', 6, true]]);
  table.setDefaultRoutes(gatewayRoutes(gw), watchOn(gw), 7n, 'netlink');
  events.length = 0;
  table.setDefaultRoutes([], watchOn(gw), 8n, 'netlink');
  t.deepEqual(events.map(lost), [['default-route', 'lost', 4, undefined], ['default-route', 'lost', 6, undefined]]);
  // A better route through the same gateway (netheal's failover route at metric 1): the old
  // one is superseded, not lost; one really removed while a backup takes over is lost.
  const [v4] = gatewayRoutes(gw);
  const manager = { ...v4, metric: 100 };
  const backup = { ...v4, gateway: '192.0.2.254', metric: 200 };
  table.setDefaultRoutes([manager, backup], watchOn(gw), 9n, 'netlink');
  events.length = 0;
  table.setDefaultRoutes([{ ...v4, metric: 1 }, manager, backup], watchOn(gw), 10n, 'netlink');
  /** @param {any} e */
  const brief4 = (e) => [e.action, e.family, e.gateway, e.superseded];
  t.deepEqual(events.filter((e) => /** @type {any} */ (e).family === 4).map(brief4), [['lost', 4, '192.0.2.1', true], ['restored', 4, '192.0.2.1', undefined]]);
  events.length = 0;
  table.setDefaultRoutes([backup], watchOn(gw), 11n, 'netlink');
  t.deepEqual(events.filter((e) => /** @type {any} */ (e).family === 4).map(brief4), [['lost', 4, '192.0.2.1', undefined], ['restored', 4, '192.0.2.254', undefined]]);
});

test('the gateway\'s neighbour entry through its recorded life; other neighbours and bridge FDB entries pass unseen', (t) => {
  const { table, events } = tableWith();
  // The neighbour recording's lab: the gateways on veth0 (ifindex 3).
  const gw = neighbours.veth0;
  const routes = gatewayRoutes(gw);
  table.load(empty(), new Map());
  t.true(table.setDefaultRoutes(routes, watchOn(gw), 5n, 'netlink'), 'new gateways');
  t.deepEqual(events.map(brief), [`default-route restored 4 192.0.2.1 ${gw}`, `default-route restored 6 2001:db8::1 ${gw}`]);
  events.length = 0;
  for (const hex of neighbours.events) {
    const message = first(hex);
    const entry = table.gatewayAt(message.payload, 0, message.payload.length);
    if (entry === undefined) continue;
    table.updateNeighbour(entry, message.type === rt.RTM_DELNEIGH ? null : message.payload.readUInt16LE(8), 20n, 'netlink');
  }
  t.deepEqual(events.map(brief), [
    `neighbour changed ${gw} 192.0.2.1 reachable`,
    `neighbour changed ${gw} 2001:db8::1 reachable`,
    `neighbour changed ${gw} 192.0.2.1 probe`,
    `neighbour changed ${gw} 192.0.2.1 failed`,
    `neighbour removed ${gw} 192.0.2.1 none`,
    `neighbour changed ${gw} 2001:db8::1 failed`,
    `neighbour removed ${gw} 2001:db8::1 none`,
  ]);
  t.is(table.neighbourState(gw, '192.0.2.1'), null);
  // Same routes again: no new gateway, nothing reported.
  events.length = 0;
  t.false(table.setDefaultRoutes(routes, watchOn(gw), 30n, 'netlink'));
  t.deepEqual(events, []);
});

test('a neighbour dump yields to a notification read after it began', (t) => {
  const { table, events } = tableWith();
  const gw = neighbours.veth0;
  const routes = gatewayRoutes(gw);
  table.load(empty(), new Map());
  table.setDefaultRoutes(routes, watchOn(gw), 5n, 'netlink');
  events.length = 0;
  const { gen, gateways } = table.beginNeighbourDump();
  // The recorded dump of the gateway's device: both gateways reachable.
  const states = gatewayStatesOf(neighbours.dumpVeth0.map(first), gateways);
  t.deepEqual([...states.keys()].sort(), [`${gw}|192.0.2.1`, `${gw}|2001:db8::1`]);
  // Meanwhile a notification: the IPv4 gateway failed. The dump predates it.
  const failed = neighbours.events.map(first).find((m) => m.type === rt.RTM_NEWNEIGH && rt.decodeNeighbour(m)?.address === '192.0.2.1'
    && rt.decodeNeighbour(m)?.state === rt.NUD_FAILED);
  t.truthy(failed);
  const message = /** @type {import('../lib/kernel/netlink').NetlinkMessage} */ (failed);
  const entry = table.gatewayAt(message.payload, 0, message.payload.length);
  t.truthy(entry);
  table.updateNeighbour(/** @type {any} */ (entry), message.payload.readUInt16LE(8), 40n, 'netlink');
  table.applyNeighbourDump(gen, gateways, states, 41n, 'netlink');
  t.deepEqual(events.map(brief), [`neighbour changed ${gw} 192.0.2.1 failed`, `neighbour changed ${gw} 2001:db8::1 reachable`]);
  t.is(table.neighbourState(gw, '192.0.2.1'), 'failed');
  t.is(table.neighbourState(gw, '2001:db8::1'), 'reachable');
});

test('defaultRoutesOf keeps the main table\'s default routes and what a silent flush would touch', (t) => {
  const { routes, watch } = defaultRoutesOf(fixture.routes.map(first));
  t.deepEqual(routes.map((r) => [r.family, r.gateway, r.linkdown]), [[4, '192.0.2.1', false], [6, '2001:db8::1', false]]);
  t.deepEqual([...watch.devices], [BR0]);
  t.false(watch.anyDevice);
});
