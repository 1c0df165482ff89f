// @ts-check
'use strict';
// struct tcp_info in INET_DIAG_INFO on recorded kernel bytes (test/fixtures/tcp-info.json: a
// whole SOCK_DIAG_BY_FAMILY reply from Linux 6.18, checked against what `ss -tin` printed for
// the same socket), the same struct cut to the lengths older kernels send, bytes that do not
// decode, and the per-uplink stall rule (src/policy/tcp-evidence.ts) on synthetic counters.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fc = require('fast-check');
const d = require('../lib/kernel/inet-diag');
const { parseMessages, ProtocolError, encodeAttribute } = require('../lib/kernel/netlink');
const { decodeTcpInfo, TCP_INFO_MIN_LEN, TCP_INFO_RTO_LEN } = require('../lib/kernel/tcp-info');
const { TcpStallDetector } = require('../lib/policy/tcp-evidence');
const fixture = require('./fixtures/tcp-info.json');

/** The recorded reply, decoded. */
function recorded() {
  const [message] = parseMessages(Buffer.from(fixture.hex, 'hex'));
  return { message, decoded: d.decodeInetDiagMessage(message) };
}

test('the dump asks for tcp_info: idiag_ext bit INET_DIAG_INFO - 1', (t) => {
  const [message] = parseMessages(d.encodeInetDiagDump(1, d.AF_INET, d.IPPROTO_TCP, 1 << d.TCP_ESTABLISHED, undefined, d.INET_DIAG_INFO_EXT));
  t.is(message.payload.readUInt8(2), 0b10);
  t.is(message.payload.readUInt32LE(4), 1 << d.TCP_ESTABLISHED);
});

test('a recorded Linux 6.18 reply decodes to what ss printed, 6.7 RTO totals included', (t) => {
  const { decoded } = recorded();
  t.truthy(decoded.info);
  const info = decodeTcpInfo(/** @type {Buffer} */ (decoded.info));
  t.true(/** @type {Buffer} */ (decoded.info).length >= TCP_INFO_RTO_LEN);
  t.is(info.state, d.TCP_ESTABLISHED);
  t.is(info.segsOut, fixture.expect.segsOut);
  t.is(info.segsIn, fixture.expect.segsIn);
  t.is(info.totalRetrans, fixture.expect.totalRetrans);
  t.true(info.totalRetrans > 0, 'the recording retransmitted');
  t.is(info.lost, fixture.expect.lost);
  t.is(info.unacked, fixture.expect.unacked);
  t.is(info.rtoUs, Number(/rto:(\d+)/.exec(fixture.ss)?.[1]) * 1000);
  t.is(info.lastDataRecvMs, decoded.info?.readUInt32LE(52));
  t.is(info.totalRto, 1, 'one RTO timeout (the drop outlasted the loss probe)');
  t.is(info.totalRtoRecoveries, 1);
  t.is(typeof info.totalRtoTimeMs, 'number');
});

test('older kernels send a shorter struct: the RTO totals are absent, the rest is the same', (t) => {
  const { message, decoded } = recorded();
  const full = decodeTcpInfo(/** @type {Buffer} */ (decoded.info));
  // 232 bytes: Linux 5.4 to 6.1 (up to tcpi_snd_wnd); 144: Linux 4.2 (up to tcpi_segs_in).
  for (const length of [TCP_INFO_RTO_LEN - 1, 240, 232, TCP_INFO_MIN_LEN]) {
    // The whole message rebuilt with a shorter INET_DIAG_INFO, as such a kernel sends it.
    const payload = Buffer.concat([message.payload.subarray(0, d.INET_DIAG_MSG_LEN), encodeAttribute(d.INET_DIAG_INFO, /** @type {Buffer} */ (decoded.info).subarray(0, length))]);
    const short = d.decodeInetDiagMessage({ ...message, payload });
    t.is(short.info?.length, length);
    const info = decodeTcpInfo(/** @type {Buffer} */ (short.info));
    t.is(info.totalRto, undefined, `${length} bytes`);
    t.is(info.totalRtoRecoveries, undefined);
    t.is(info.totalRtoTimeMs, undefined);
    t.is(info.segsOut, full.segsOut);
    t.is(info.segsIn, full.segsIn);
    t.is(info.totalRetrans, full.totalRetrans);
  }
});

test('a struct too short for the counters, or an attribute cut off, is a ProtocolError', (t) => {
  const { message, decoded } = recorded();
  t.throws(() => decodeTcpInfo(/** @type {Buffer} */ (decoded.info).subarray(0, TCP_INFO_MIN_LEN - 1)), { instanceOf: ProtocolError, message: /tcp_info of 143 bytes/ });
  t.throws(() => decodeTcpInfo(Buffer.alloc(0)), { instanceOf: ProtocolError });
  // The attribute claims its full length but the datagram ends early.
  const cut = message.payload.subarray(0, message.payload.length - 40);
  t.throws(() => d.decodeInetDiagMessage({ ...message, payload: cut }), { instanceOf: ProtocolError });
});

test('fuzz: any bytes decode or throw ProtocolError, never read out of bounds', (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
    try {
      const info = decodeTcpInfo(Buffer.from(bytes));
      return bytes.length >= TCP_INFO_MIN_LEN && (info.totalRto === undefined) === (bytes.length < TCP_INFO_RTO_LEN);
    } catch (error) {
      return error instanceof ProtocolError && bytes.length < TCP_INFO_MIN_LEN;
    }
  }));
  t.pass();
});

const RULE = { stallMs: 500, minSegments: 3, minRetransmits: 2, clearMs: 30000 };
/** A socket's counters. */
const s = (cookie, segsOut, segsIn, totalRetrans, unacked = 0, totalRto = undefined) => ({ cookie, segsOut, segsIn, totalRetrans, unacked, totalRto });

test('stall rule: a blackhole (segments and retransmissions out, nothing in) is declared after stallMs', (t) => {
  const detector = new TcpStallDetector(RULE);
  t.false(detector.observe([s('a', 100, 100, 0)], 0).dead);
  t.false(detector.observe([s('a', 110, 110, 0)], 100).dead, 'healthy: both ways');
  // The path dies after t=100: a few sends, a loss probe, RTOs.
  t.false(detector.observe([s('a', 112, 110, 0, 2)], 200).dead);
  const mid = detector.observe([s('a', 113, 110, 1, 2)], 400);
  t.false(mid.dead, 'not before stallMs');
  t.is(mid.stalledForMs, 300, 'the stall began at the last poll that saw a segment in');
  const v = detector.observe([s('a', 114, 110, 2, 2)], 600);
  t.true(v.dead);
  t.true(v.declared);
  t.true(v.active);
  t.false(detector.observe([s('a', 115, 110, 3, 2)], 700).declared, 'declared once');
  const back = detector.observe([s('a', 116, 111, 3)], 800);
  t.false(back.dead, 'one segment received clears it');
});

test('stall rule: the 6.7 RTO count counts when it rose more than total_retrans', (t) => {
  const detector = new TcpStallDetector(RULE);
  detector.observe([s('a', 10, 10, 0, 0, 0)], 0);
  detector.observe([s('a', 12, 10, 0, 1, 1)], 300);
  t.true(detector.observe([s('a', 13, 10, 0, 1, 2)], 600).dead);
});

test('stall rule: no verdict without retransmissions, with one socket receiving, or with too little sent', (t) => {
  const quiet = new TcpStallDetector(RULE);
  quiet.observe([s('a', 0, 0, 0)], 0);
  t.false(quiet.observe([s('a', 10, 0, 0)], 1000).dead, 'sent, no receive, no retransmission: a one-way sender');
  const mixed = new TcpStallDetector(RULE);
  mixed.observe([s('a', 0, 0, 0), s('b', 0, 0, 0)], 0);
  t.false(mixed.observe([s('a', 10, 0, 5), s('b', 10, 3, 0)], 1000).dead, 'another socket of the uplink receives: the path works');
  const little = new TcpStallDetector(RULE);
  little.observe([s('a', 0, 0, 0)], 0);
  t.false(little.observe([s('a', 2, 0, 2)], 1000).dead, 'fewer than minSegments');
  const fresh = new TcpStallDetector(RULE);
  t.false(fresh.observe([s('a', 500, 0, 400)], 0).dead, 'a socket seen for the first time is a baseline');
});

test('stall rule: a verdict with nothing left to judge by fades after clearMs; counters wrap', (t) => {
  const detector = new TcpStallDetector(RULE);
  detector.observe([s('a', 0xfffffffe, 5, 0xffffffff)], 0);
  t.true(detector.observe([s('a', 3, 5, 1, 1)], 600).dead, 'u32 wrap-around: 5 sent, 2 retransmitted');
  t.true(detector.observe([], 700).dead, 'its sockets moved away: still dead');
  t.false(detector.observe([], 700 + RULE.clearMs).active);
  t.false(detector.dead, 'cleared after clearMs');
  t.false(detector.observe([], 800 + RULE.clearMs).dead);
});

test('stall rule: the kernel dates the last receive (a fault between two polls counts from then)', (t) => {
  const detector = new TcpStallDetector({ ...RULE, minSegments: 2 });
  detector.observe([{ ...s('a', 10, 10, 0), lastRecvMs: 5 }], 0);
  const v = detector.observe([{ ...s('a', 12, 10, 2, 1), lastRecvMs: 520 }], 100);
  t.is(v.stalledForMs, 520, 'not 100: the last receive was 520 ms ago');
  t.true(v.dead);
});

test('stall rule: idle sockets left on the uplink (nothing in flight) do not keep a verdict alive', (t) => {
  const detector = new TcpStallDetector(RULE);
  detector.observe([s('a', 0, 0, 0), s('idle', 5, 5, 0)], 0);
  t.true(detector.observe([s('a', 5, 0, 3, 2), s('idle', 5, 5, 0)], 600).dead);
  // The stalled socket was destroyed by the failover; an idle one stays.
  t.true(detector.observe([s('idle', 5, 5, 0)], 700).dead);
  t.false(detector.observe([s('idle', 5, 5, 0)], 600 + RULE.clearMs).dead, 'cleared after clearMs');
});
