// @ts-check
// Codecs on recorded kernel bytes (test/fixtures/rtnetlink.json and rtnetlink-neighbours.json,
// from labs on kernel 6.18)
// and a fuzz target per decoder: arbitrary bytes decode or raise ProtocolError, nothing else.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fc = require('fast-check');
const nl = require('../lib/kernel/netlink');
const rt = require('../lib/kernel/rtnetlink');
const fixture = require('./fixtures/rtnetlink.json');
const neighbours = require('./fixtures/rtnetlink-neighbours.json');

const first = (hex) => nl.parseMessages(Buffer.from(hex, 'hex'))[0];

test('links decode from recorded RTM_NEWLINK bytes', (t) => {
  const links = fixture.links.map((hex) => rt.decodeLink(first(hex)));
  t.deepEqual(links.map((l) => l.name), ['lo', 'veth0', 'br0']);
  const [lo, veth, bridge] = links;
  t.is(lo.operstate, 'unknown');
  t.true(lo.carrier);
  t.is(lo.kind, null);
  t.is(lo.mtu, 65536);
  t.is(veth.kind, 'veth');
  t.is(veth.master, bridge.ifindex, 'bridge port points at its master');
  t.false(veth.carrier, 'far end was down: no carrier');
  t.is(veth.operstate, 'down');
  t.not(veth.iflink, veth.ifindex, 'a veth with a distinct peer is stacked');
  t.is(bridge.kind, 'bridge');
  const { needsCarrierSync } = require('../lib/monitor/link-monitor');
  t.false(needsCarrierSync(veth), 'stacked veth: linkwatch reports it at once');
  t.true(needsCarrierSync(bridge), 'bridge: linkwatch delays carrier-down');
  t.false(needsCarrierSync(lo), 'loopback never needs it');
  t.regex(veth.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
});

test('addresses decode IFA_LOCAL for IPv4 and compressed IPv6', (t) => {
  const addresses = fixture.addresses.map((hex) => rt.decodeAddress(first(hex)));
  const text = addresses.map((a) => `${a.family} ${a.address}/${a.prefixlen}`);
  t.true(text.includes('4 192.0.2.10/24'));
  t.true(text.includes('4 127.0.0.1/8'));
  t.true(text.includes('6 2001:db8::10/64'));
  t.true(text.includes('6 ::1/128'));
});

test('default routes of the main table are recognised with gateway and metric', (t) => {
  const defaults = fixture.routes.map((hex) => rt.decodeRoute(first(hex))).filter((r) => r && rt.isDefaultRoute(r));
  t.deepEqual(defaults.map((r) => [r.family, r.gateway, r.metric]), [[4, '192.0.2.1', 100], [6, '2001:db8::1', 1024]]);
  const local = fixture.routes.map((hex) => rt.decodeRoute(first(hex))).filter((r) => r && !rt.isDefaultRoute(r));
  t.true(local.length > 0, 'non-default routes are not mistaken for default ones');
});

test('neighbours decode from a recorded RTM_GETNEIGH dump, every NUD state by name', (t) => {
  const entries = neighbours.dump.map((hex) => rt.decodeNeighbour(first(hex)));
  const text = entries.map((n) => `${n.family} ${n.address} ${rt.nudStateName(n.state)}`);
  for (const line of ['4 192.0.2.1 reachable', '4 192.0.2.50 permanent', '4 192.0.2.51 stale', '4 192.0.2.99 incomplete',
    '6 2001:db8::1 reachable', '6 ff02::16 noarp']) t.true(text.includes(line), line);
  const gateway = entries.find((n) => n.address === '192.0.2.1');
  t.is(gateway.ifindex, neighbours.veth0);
  t.regex(gateway.lladdr, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  t.is(entries.find((n) => n.address === '192.0.2.50').lladdr, '02:00:5e:00:53:50');
  t.is(entries.find((n) => n.address === '192.0.2.99').lladdr, null, 'unresolved: no link-layer address');
  // The NDA_IFINDEX filter: the kernel returned the gateway device's entries only.
  const filtered = neighbours.dumpVeth0.map((hex) => rt.decodeNeighbour(first(hex)));
  t.true(filtered.length > 0 && filtered.length < entries.length);
  t.true(filtered.every((n) => n.ifindex === neighbours.veth0));
});

test('neighbour notifications: a gateway probed, failed and flushed; bridge FDB entries are not neighbours', (t) => {
  const messages = neighbours.events.map(first);
  const lines = messages.map((m) => {
    const n = rt.decodeNeighbour(m);
    return `${m.type === rt.RTM_DELNEIGH ? 'del' : 'new'} ${n === null ? `family ${m.payload[0]}` : `${n.address} ${rt.nudStateName(n.state)}`}`;
  });
  const gateway = lines.filter((l) => / 192\.0\.2\.1 /.test(l));
  t.deepEqual(gateway, ['new 192.0.2.1 reachable', 'new 192.0.2.1 probe', 'new 192.0.2.1 failed', 'del 192.0.2.1 failed']);
  t.true(lines.includes('new 2001:db8::1 reachable'));
  t.true(lines.includes('del 2001:db8::1 failed'));
  const fdb = messages.filter((m) => m.payload[0] === rt.AF_BRIDGE);
  t.true(fdb.length > 0, 'the recording has bridge FDB notifications');
  for (const m of fdb) t.is(rt.decodeNeighbour(m), null);
});

test('neighbourDstAt finds the NDA_DST that decodeNeighbour reads, in place', (t) => {
  for (const hex of [...neighbours.dump, ...neighbours.events]) {
    const m = first(hex);
    const n = rt.decodeNeighbour(m);
    const padded = Buffer.concat([Buffer.alloc(3, 0xee), m.payload, Buffer.alloc(5, 0xee)]);
    const at = rt.neighbourDstAt(padded, 3, 3 + m.payload.length);
    if (n === null) continue;
    const length = padded.readUInt16LE(at);
    t.true(padded.subarray(at + 4, at + length).equals(rt.parseIp(n.address)), n.address);
  }
  t.throws(() => rt.neighbourDstAt(Buffer.alloc(11), 0, 11), { instanceOf: nl.ProtocolError });
});

test('nudStateName names every NUD state and marks anything else', (t) => {
  t.deepEqual([0, 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80].map(rt.nudStateName),
    ['none', 'incomplete', 'reachable', 'stale', 'delay', 'probe', 'failed', 'noarp', 'permanent']);
  t.is(rt.nudStateName(0x06), 'nud-0x06');
  t.is(rt.nudStateName(0x100), 'nud-0x100');
});

test('parseIp and formatIp round-trip', (t) => {
  for (const address of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', '::1', '2001:db8::10', 'fe80::b4bf:4aff:fe8a:8e70', '1:2:3:4:5:6:7:8', '::ffff:192.0.2.1', '2001:db8:0:1::']) {
    t.is(rt.formatIp(rt.parseIp(address)), address);
  }
  t.throws(() => rt.parseIp('10.0.0.256'), { instanceOf: RangeError });
  t.throws(() => rt.parseIp('1::2::3'), { instanceOf: RangeError });
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
    const buffer = Buffer.from(bytes);
    return rt.parseIp(rt.formatIp(buffer)).equals(buffer);
  }));
});

test('encoders produce what the decoders and the kernel framing expect', (t) => {
  const message = nl.parseMessages(rt.encodeSetLinkAdmin(7, 42, false))[0];
  t.is(message.type, rt.RTM_NEWLINK);
  t.is(message.seq, 7);
  t.is(message.flags, nl.NLM_F_REQUEST | nl.NLM_F_ACK);
  t.is(message.payload.readInt32LE(4), 42);
  t.is(message.payload.readUInt32LE(8), 0, 'flags: IFF_UP cleared');
  t.is(message.payload.readUInt32LE(12), rt.IFF_UP, 'change mask: only IFF_UP');
  const byName = nl.parseMessages(rt.encodeGetLinkByName(1, 'eth0'))[0];
  t.is(nl.attrString(nl.parseAttributes(byName.payload, 16), rt.IFLA_IFNAME), 'eth0');
  const all = nl.parseMessages(rt.encodeGetNeighbours(3))[0];
  t.like(all, { type: rt.RTM_GETNEIGH, seq: 3, flags: nl.NLM_F_REQUEST | nl.NLM_F_DUMP });
  t.is(all.payload.length, 12, 'a bare ndmsg');
  t.is(all.payload[0], rt.AF_UNSPEC);
  const oneDevice = nl.parseMessages(rt.encodeGetNeighbours(4, rt.AF_INET6, 7))[0];
  t.is(oneDevice.payload[0], rt.AF_INET6);
  t.is(nl.attrU32(nl.parseAttributes(oneDevice.payload, 12), rt.NDA_IFINDEX), 7);
});

test('NLMSG_ERROR with extended ack text', (t) => {
  // error -19 (ENODEV), capped echo, NLMSGERR_ATTR_MSG "no such device"
  const text = Buffer.from('no such device\0');
  const attr = nl.encodeAttribute(nl.NLMSGERR_ATTR_MSG, text);
  const payload = Buffer.alloc(4 + 16);
  payload.writeInt32LE(-19, 0);
  payload.writeUInt32LE(16, 4);
  const message = { type: nl.NLMSG_ERROR, flags: nl.NLM_F_CAPPED | nl.NLM_F_ACK_TLVS, seq: 9, pid: 0, payload: Buffer.concat([payload, attr]) };
  t.deepEqual(nl.parseErrorReply(message), { errno: 19, seq: 9, extAck: 'no such device' });
});

test('truncated and overlong messages raise ProtocolError', (t) => {
  const good = Buffer.from(fixture.links[1], 'hex');
  t.throws(() => nl.parseMessages(good.subarray(0, good.length - 8)), { instanceOf: nl.ProtocolError });
  const liar = Buffer.from(good);
  liar.writeUInt32LE(good.length + 100, 0);
  t.throws(() => nl.parseMessages(liar), { instanceOf: nl.ProtocolError });
  t.throws(() => rt.decodeLink({ type: 16, flags: 0, seq: 0, pid: 0, payload: Buffer.alloc(8) }), { instanceOf: nl.ProtocolError });
});

// One fuzz target per decoder. Inputs: random bytes, and recorded messages with random
// bytes overwritten (which reach much deeper into the attribute walks).
function mutated(hexes) {
  return fc.tuple(fc.constantFrom(...hexes), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
    .map(([hex, edits, cut]) => {
      const bytes = Buffer.from(hex, 'hex');
      for (const [at, value] of edits) bytes[at % bytes.length] = value;
      return bytes.subarray(0, bytes.length - (cut % 4 === 0 ? cut % 24 : 0));
    });
}
const anyBytes = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));

function onlyProtocolErrors(decode) {
  return (bytes) => {
    try {
      for (const message of nl.parseMessages(bytes)) decode(message);
    } catch (error) {
      if (!(error instanceof nl.ProtocolError)) throw error;
    }
  };
}

const fuzzRuns = { numRuns: 3000 };
test('fuzz parseMessages', (t) => {
  fc.assert(fc.property(fc.oneof(anyBytes, mutated(fixture.links)), onlyProtocolErrors(() => {})), fuzzRuns);
  t.pass();
});
test('fuzz decodeLink', (t) => {
  fc.assert(fc.property(fc.oneof(anyBytes, mutated(fixture.links)), onlyProtocolErrors(rt.decodeLink)), fuzzRuns);
  t.pass();
});
// The event path decodes in place and reuses the previous strings of the device when the
// bytes match: whatever the previous decode was, the result equals a fresh decode.
test('fuzz decodeLinkAt with a previous decode equals decodeLink', (t) => {
  const previousOf = fc.oneof(
    fc.constantFrom(...fixture.links).map((hex) => rt.decodeLink(first(hex))),
    // A partial previous decode: decodeLinkAt reads only name, kind and mac of it.
    fc.record({ name: fc.string({ maxLength: 16 }), kind: fc.option(fc.string({ maxLength: 8 })), mac: fc.option(fc.string({ maxLength: 20 })) })
      .map((partial) => /** @type {import('../lib/kernel/rtnetlink').LinkMessage} */ (/** @type {unknown} */ (partial))),
  );
  fc.assert(fc.property(mutated(fixture.links), previousOf, (bytes, previous) => {
    let messages;
    try {
      messages = nl.parseMessages(bytes);
    } catch (error) {
      if (error instanceof nl.ProtocolError) return;
      throw error;
    }
    for (const message of messages) {
      let fresh;
      try {
        fresh = rt.decodeLink(message);
      } catch (error) {
        if (!(error instanceof nl.ProtocolError)) throw error;
        t.throws(() => rt.decodeLinkAt(message.payload, 0, message.payload.length, previous), { instanceOf: nl.ProtocolError });
        continue;
      }
      const padded = Buffer.concat([Buffer.alloc(5, 0xee), message.payload, Buffer.alloc(3, 0xee)]);
      const reused = rt.decodeLinkAt(padded, 5, 5 + message.payload.length, previous);
      if (JSON.stringify(reused) !== JSON.stringify(fresh)) throw new Error(`differs: ${JSON.stringify(reused)} vs ${JSON.stringify(fresh)}`);
    }
  }), fuzzRuns);
  t.pass();
});

test('fuzz decodeAddress', (t) => {
  fc.assert(fc.property(fc.oneof(anyBytes, mutated(fixture.addresses)), onlyProtocolErrors(rt.decodeAddress)), fuzzRuns);
  t.pass();
});
test('fuzz decodeRoute', (t) => {
  fc.assert(fc.property(fc.oneof(anyBytes, mutated(fixture.routes)), onlyProtocolErrors(rt.decodeRoute)), fuzzRuns);
  t.pass();
});
test('fuzz decodeNeighbour', (t) => {
  fc.assert(fc.property(fc.oneof(anyBytes, mutated(neighbours.dump), mutated(neighbours.events)), onlyProtocolErrors(rt.decodeNeighbour)), fuzzRuns);
  t.pass();
});
// The monitor matches gateways with neighbourDstAt on the datagram in place: it raises
// exactly when the attribute walk does, and finds the NDA_DST that parseAttributes keeps.
test('fuzz neighbourDstAt agrees with parseAttributes', (t) => {
  fc.assert(fc.property(fc.oneof(mutated(neighbours.dump), mutated(neighbours.events)), (bytes) => {
    let messages;
    try {
      messages = nl.parseMessages(bytes);
    } catch (error) {
      if (error instanceof nl.ProtocolError) return;
      throw error;
    }
    for (const message of messages) {
      const padded = Buffer.concat([Buffer.alloc(5, 0xee), message.payload, Buffer.alloc(3, 0xee)]);
      let expected;
      try {
        if (message.payload.length < 12) throw new nl.ProtocolError('short');
        expected = nl.parseAttributes(message.payload, 12).get(rt.NDA_DST) ?? null;
      } catch (error) {
        if (!(error instanceof nl.ProtocolError)) throw error;
        t.throws(() => rt.neighbourDstAt(padded, 5, 5 + message.payload.length), { instanceOf: nl.ProtocolError });
        continue;
      }
      const at = rt.neighbourDstAt(padded, 5, 5 + message.payload.length);
      if (expected === null) {
        if (at !== -1) throw new Error(`found NDA_DST at ${at} where there is none`);
      } else if (at === -1 || !padded.subarray(at + 4, at + padded.readUInt16LE(at)).equals(expected)) {
        throw new Error(`NDA_DST at ${at} differs from ${expected.toString('hex')}`);
      }
    }
  }), fuzzRuns);
  t.pass();
});
test('fuzz parseErrorReply', (t) => {
  fc.assert(fc.property(anyBytes, fc.integer({ min: 0, max: 0xffff }), (payload, flags) => {
    try {
      nl.parseErrorReply({ type: nl.NLMSG_ERROR, flags, seq: 1, pid: 0, payload });
    } catch (error) {
      if (!(error instanceof nl.ProtocolError)) throw error;
    }
  }), fuzzRuns);
  t.pass();
});
