// @ts-check
// ICMP layer: the record codecs (pure) and the native IcmpSocket against the real kernel,
// raw and ping-socket flavours, error queue, kernel timestamps, a concurrent iputils ping.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const fc = require('fast-check');
const { Lab } = require('../lib/lab/lab');
const { dualStackPair } = require('./helpers/lab');
const { nativeBinding } = require('../lib/native');
const icmp = require('../lib/kernel/icmp');

test('addresses round-trip through the 16-byte record form', (t) => {
  const cases = ['10.0.0.1', '255.255.255.255', '::1', 'fd07::2', '2001:db8::1', '2001:db8:0:0:1:0:0:1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8'];
  const expected = { '2001:db8:0:0:1:0:0:1': '2001:db8::1:0:0:1' };
  for (const a of cases) {
    const family = a.includes(':') ? 6 : 4;
    t.is(icmp.decodeAddress(icmp.encodeAddress(a), 0, family), expected[a] ?? a);
  }
  t.is(icmp.decodeAddress(icmp.encodeAddress('::ffff:192.0.2.1'), 0, 6), '::ffff:192.0.2.1', 'IPv4-mapped printed as inet_ntop and ping do');
  t.is(icmp.decodeAddress(Buffer.alloc(16), 0, 4), null);
  t.throws(() => icmp.encodeAddress('example.org'), { instanceOf: TypeError });
  fc.assert(fc.property(fc.ipV6(), (a) => {
    const bytes = icmp.encodeAddress(a);
    return icmp.encodeAddress(icmp.decodeAddress(bytes, 0, 6) ?? '::').equals(bytes);
  }));
  fc.assert(fc.property(fc.ipV4(), (a) => icmp.decodeAddress(icmp.encodeAddress(a), 0, 4) === (a === '0.0.0.0' ? null : a)));
});

test('send and result records have the layout the addon uses', (t) => {
  const buf = Buffer.alloc(icmp.SEND_RECORD);
  icmp.writeSendRecord(buf, 0, icmp.encodeAddress('192.0.2.1'), 0x12345, 0xdeadbeef);
  t.deepEqual([...buf.subarray(0, 4)], [192, 0, 2, 1]);
  t.is(buf.readUInt16LE(16), 0x2345, 'seq is 16 bits on the wire');
  t.is(buf.readUInt32LE(20), 0xdeadbeef);
  const r = Buffer.alloc(icmp.RESULT_RECORD * 2);
  const o = icmp.RESULT_RECORD;
  r[o] = 1; r[o + 1] = 3; r[o + 2] = 13; r[o + 3] = 1;
  r.writeUInt16LE(7, o + 4); r.writeUInt16LE(99, o + 6); r.writeUInt32LE(42, o + 8); r.writeInt32LE(113, o + 12);
  icmp.encodeAddress('10.7.0.1').copy(r, o + 16); icmp.encodeAddress('203.0.113.9').copy(r, o + 32);
  r.writeDoubleLE(1500, o + 48);
  t.like(icmp.readResult(r, 1, 4), { kind: 1, type: 3, code: 13, flags: 1, seq: 7, ident: 99, tag: 42, errno: 113, from: '10.7.0.1', dest: '203.0.113.9', rttNs: 1500 });
  t.throws(() => icmp.readResult(r, 2, 4), { instanceOf: RangeError });
  t.is(icmp.icmpErrorName(4, 3, 1), 'host-unreachable');
  t.is(icmp.icmpErrorName(4, 3, 13), 'admin-prohibited');
  t.is(icmp.icmpErrorName(4, 11, 0), 'ttl-exceeded');
  t.is(icmp.icmpErrorName(6, 1, 0), 'no-route');
  t.is(icmp.icmpErrorName(6, 3, 0), 'hop-limit-exceeded');
});

const topology = (t) => dualStackPair(t, { net: 8, noRateLimit: 'both' });

// Opens a native socket that collects decoded results.
function open(options) {
  const results = [];
  const errors = [];
  const socket = new (nativeBinding().IcmpSocket)(options, (buf, count) => {
    for (let i = 0; i < count; i++) results.push(icmp.readResult(buf, i, options.family));
  }, (e) => errors.push(e));
  return { socket, results, errors };
}

function send(socket, probes) {
  const buf = Buffer.alloc(probes.length * icmp.SEND_RECORD);
  probes.forEach((p, i) => icmp.writeSendRecord(buf, i * icmp.SEND_RECORD, icmp.encodeAddress(p.address), p.seq, p.tag));
  const errnos = new Int32Array(probes.length);
  const failed = socket.send(buf, probes.length, errnos);
  return { failed, errnos: [...errnos] };
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

test.serial('raw sockets: a burst of probes, v4 and v6 replies with kernel-to-kernel RTT', async (t) => {
  const { netns } = await topology(t);
  for (const [family, address] of [[4, '10.8.0.1'], [6, 'fd08::1']]) {
    const { socket, results, errors } = open({ family, netns });
    t.is(socket.kind, 'raw');
    const probes = Array.from({ length: 50 }, (_, i) => ({ address, seq: i + 1, tag: 1000 + i }));
    t.deepEqual(send(socket, probes), { failed: 0, errnos: new Array(50).fill(0) });
    await sleep(100);
    socket.close();
    t.deepEqual(errors, []);
    t.is(results.length, 50);
    t.deepEqual(results.map((r) => r.tag).sort((a, b) => a - b), probes.map((p) => p.tag));
    for (const r of results) {
      t.is(r.kind, 0);
      t.is(r.type, family === 4 ? 0 : 129);
      t.is(r.from, address);
      t.is(r.ident, socket.ident);
      t.true((r.flags & icmp.ResultFlag.KERNEL_RTT) !== 0, 'kernel tx and rx stamps');
      t.true(r.rttNs > 0 && r.rttNs < 5e6, `rtt ${r.rttNs} ns`);
    }
  }
});

test.serial('ICMP errors arrive through the error queue with type, code, offender and destination', async (t) => {
  const { lab, r, netns } = await topology(t);
  await lab.ip(r, 'route', 'add', 'prohibit', '203.0.113.0/24');
  const { socket, results } = open({ family: 4, netns });
  send(socket, [{ address: '203.0.113.9', seq: 5, tag: 77 }]);
  // A send error is reported synchronously, per probe: no route in the client.
  await lab.ip(lab.namespaceNames[0], 'route', 'del', 'default');
  t.deepEqual(send(socket, [{ address: '203.0.113.9', seq: 6, tag: 78 }, { address: '10.8.0.1', seq: 7, tag: 79 }]), { failed: 1, errnos: [101, 0] });
  await sleep(100);
  socket.close();
  const error = results.find((x) => x.kind === 1);
  t.like(error, { type: 3, code: 13, seq: 5, tag: 77, errno: 113, from: '10.8.0.1', dest: '203.0.113.9' });
  t.true(results.some((x) => x.kind === 0 && x.tag === 79), 'the probe after the failed one still went out');
});

test.serial('ping sockets (no CAP_NET_RAW): the kernel picks the identifier; replies and errors still match', async (t) => {
  const { lab, c, r } = await topology(t);
  await lab.ip(r, 'route', 'add', 'unreachable', '198.51.100.0/24');
  await lab.exec(c, 'sysctl', ['-qw', 'net.ipv4.ping_group_range=0 2147483647']);
  const script = `const { nativeBinding } = require(${JSON.stringify(require.resolve('../lib/native'))});
    const icmp = require(${JSON.stringify(require.resolve('../lib/kernel/icmp'))});
    const out = { results: [] };
    const s = new (nativeBinding().IcmpSocket)({ family: 4 }, (b, n) => { for (let i = 0; i < n; i++) out.results.push(icmp.readResult(b, i, 4)); }, () => {});
    out.kind = s.kind; out.ident = s.ident;
    try { new (nativeBinding().IcmpSocket)({ family: 4, mode: 'raw' }, () => {}, () => {}); } catch (e) { out.rawError = e.code; }
    const buf = Buffer.alloc(48);
    icmp.writeSendRecord(buf, 0, icmp.encodeAddress('10.8.0.1'), 1, 11);
    icmp.writeSendRecord(buf, 24, icmp.encodeAddress('198.51.100.7'), 2, 12);
    s.send(buf, 2, new Int32Array(2));
    setTimeout(() => { s.close(); console.log(JSON.stringify(out)); }, 200);`;
  const out = JSON.parse(await lab.exec(c, 'setpriv', ['--inh-caps=-net_raw', '--bounding-set=-net_raw', process.execPath, '-e', script]));
  t.is(out.kind, 'dgram');
  t.is(out.rawError, 'EPERM');
  t.true(out.ident > 0);
  const reply = out.results.find((x) => x.kind === 0);
  const error = out.results.find((x) => x.kind === 1);
  t.like(reply, { tag: 11, seq: 1, ident: out.ident, from: '10.8.0.1' });
  t.true(reply.rttNs > 0);
  t.like(error, { tag: 12, seq: 2, type: 3, code: 1, from: '10.8.0.1', dest: '198.51.100.7' });
});

test.serial('a concurrent iputils ping to the same target does not confuse the matching', async (t) => {
  const { lab, c, netns } = await topology(t);
  // iputils ping as root uses a raw socket: its replies reach our raw socket too.
  const ping = lab.spawn(c, 'ping', ['-n', '-i', '0.01', '-c', '60', '10.8.0.1']);
  let pingOut = '';
  ping.stdout.on('data', (d) => { pingOut += d; });
  // 'close', not 'exit': under load 'exit' can come before ping's output has been read.
  const pingDone = new Promise((res) => ping.on('close', res));
  const { socket, results } = open({ family: 4, netns });
  for (let round = 0; round < 30; round++) {
    send(socket, [{ address: '10.8.0.1', seq: round, tag: round }]);
    await sleep(10);
  }
  // Our 30 replies, then ping's end with the socket still open: any of ping's replies that
  // the matching took for ours would be counted below.
  for (const end = Date.now() + 20_000; results.length < 30 && Date.now() < end;) await sleep(10);
  await pingDone;
  socket.close();
  t.is(results.length, 30, 'exactly our 30 replies, none of ping\'s');
  t.deepEqual(results.map((r) => r.tag).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
  t.regex(pingOut, /60 packets transmitted, 60 received/);
});

test.serial('close() leaves no fd behind, twice is fine, send after close throws', async (t) => {
  const { netns } = await topology(t);
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  await sleep(50);
  const before = fds();
  const sockets = [open({ family: 4, netns }), open({ family: 6, netns }), open({ family: 4, netns, device: 'eth0' })];
  t.is(fds(), before + 6, 'a socket and its epoll fd each');
  for (const { socket } of sockets) { socket.close(); socket.close(); }
  // The fds close in libuv's close callbacks, on a later turn of the loop.
  for (const end = Date.now() + 20_000; fds() !== before && Date.now() < end;) await sleep(5);
  t.is(fds(), before);
  t.throws(() => send(sockets[0].socket, [{ address: '10.8.0.1', seq: 1, tag: 1 }]), { code: 'NETHEAL_ERR_CLOSED' });
  t.throws(() => open({ family: 4, netns, device: 'nosuchdev0' }), { code: 'ENODEV' });
  t.is(fds(), before, 'a failed open leaks nothing');
});
