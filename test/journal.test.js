// @ts-check
'use strict';
// systemd's native journal protocol: the entry encoder (binary-safe values), field names, the
// logger's choice between an entry and a priority-prefixed line, and the addon's datagram to a
// real AF_UNIX socket. Under a booted systemd, test/systemd.test.js reads the entries back with
// `journalctl INTERFACE=...`.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { encodeJournalEntry, journalFields, journalFieldName, journalSender } = require('../lib/daemon/journal');
const { createLogger } = require('../lib/daemon/logger');
const { nativeBinding } = require('../lib/native');

/**
 * Decodes an entry as journald does (both field forms).
 * @param {Buffer} data
 * @returns {Array<[string, string]>}
 */
function decode(data) {
  /** @type {Array<[string, string]>} */
  const fields = [];
  let at = 0;
  while (at < data.length) {
    const newline = data.indexOf(0x0a, at);
    const equals = data.indexOf(0x3d, at);
    if (equals !== -1 && equals < newline) {
      fields.push([data.subarray(at, equals).toString(), data.subarray(equals + 1, newline).toString()]);
      at = newline + 1;
    } else {
      const name = data.subarray(at, newline).toString();
      const length = Number(data.readBigUInt64LE(newline + 1));
      const start = newline + 9;
      fields.push([name, data.subarray(start, start + length).toString()]);
      if (data[start + length] !== 0x0a) throw new Error('no newline after a binary field');
      at = start + length + 1;
    }
  }
  return fields;
}

test('a value with a newline takes the binary-safe form: name, newline, u64 LE length, bytes, newline', (t) => {
  const entry = encodeJournalEntry([['MESSAGE', 'two\nlines'], ['PRIORITY', '4']]);
  const expected = Buffer.concat([Buffer.from('MESSAGE\n'), Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('two\nlines\n'), Buffer.from('PRIORITY=4\n')]);
  t.deepEqual(entry, expected);
  t.deepEqual(decode(entry), [['MESSAGE', 'two\nlines'], ['PRIORITY', '4']]);
  // Multi-byte text: the length counts bytes, not characters.
  t.deepEqual(decode(encodeJournalEntry([['NETHEAL_X', 'é\n€']])), [['NETHEAL_X', 'é\n€']]);
});

test('field names: iface is INTERFACE, the rest NETHEAL_ in upper snake case; bad names are refused', (t) => {
  t.is(journalFieldName('iface'), 'INTERFACE');
  t.is(journalFieldName('fault'), 'NETHEAL_FAULT');
  t.is(journalFieldName('action'), 'NETHEAL_ACTION');
  t.is(journalFieldName('monotonicNs'), 'NETHEAL_MONOTONIC_NS');
  t.is(journalFieldName('a.b-c'), 'NETHEAL_A_B_C');
  t.true(journalFieldName('x'.repeat(100)).length <= 64);
  t.throws(() => encodeJournalEntry([['_PID', '1']]), { message: /not a journal field name/ });
  t.throws(() => encodeJournalEntry([['lower', '1']]), { message: /not a journal field name/ });
  t.deepEqual(journalFields('netheal', 4, 'm', { iface: 'eth0', step: 2, skipped: undefined, fault: 'link' }),
    [['MESSAGE', 'm'], ['PRIORITY', '4'], ['SYSLOG_IDENTIFIER', 'netheal'], ['INTERFACE', 'eth0'], ['NETHEAL_STEP', '2'], ['NETHEAL_FAULT', 'link']]);
});

test('journal format with a sender: one entry with its fields, no line; a refused entry becomes the line', (t) => {
  /** @type {Buffer[]} */
  const entries = [];
  /** @type {string[]} */
  const lines = [];
  let accept = true;
  const logger = createLogger({ format: 'journal', write: (line) => lines.push(line), journal: (entry) => { entries.push(entry); return accept; } });
  logger.warning('eth0: healthy -> down', { iface: 'eth0', fault: 'link', action: 'link-bounce' });
  t.is(lines.length, 0);
  const fields = Object.fromEntries(decode(entries[0]));
  t.is(fields.MESSAGE, 'eth0: healthy -> down iface=eth0 fault=link action=link-bounce', 'the same text as the line');
  t.is(fields.PRIORITY, '4');
  t.is(fields.SYSLOG_IDENTIFIER, 'netheal');
  t.is(fields.INTERFACE, 'eth0');
  t.is(fields.NETHEAL_FAULT, 'link');
  t.is(fields.NETHEAL_ACTION, 'link-bounce');
  accept = false;
  logger.error('still logged', { iface: 'eth1' });
  t.deepEqual(lines, ['<3>still logged iface=eth1\n']);
  // Other formats ignore the sender.
  const text = createLogger({ format: 'json', write: (line) => lines.push(line), journal: () => t.fail('json never sends entries') });
  text.info('x');
});

test('no sender outside systemd: JOURNAL_STREAM unset, or no journald socket', (t) => {
  t.is(journalSender({}), undefined);
  t.is(journalSender({ JOURNAL_STREAM: '8:1234' }, path.join(os.tmpdir(), 'no-such-journal-socket')), undefined);
  // JOURNAL_STREAM inherited, but our stdout is something else: no entries.
  const socket = path.join(os.tmpdir(), `netheal-journal-socket-${process.pid}`);
  fs.writeFileSync(socket, '');
  t.teardown(() => fs.rmSync(socket, { force: true }));
  t.is(journalSender({ JOURNAL_STREAM: '1:1' }, socket, 1), undefined);
  const stat = fs.fstatSync(1);
  t.is(typeof journalSender({ JOURNAL_STREAM: `${stat.dev}:${stat.ino}` }, socket, 1), 'function');
});

test('the addon sends one datagram (a Buffer, binary bytes intact) to an AF_UNIX socket, and EAGAIN does not block', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-journal-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'socket');
  // A receiver that reads one datagram and prints it as hex (Node's dgram has no AF_UNIX).
  const receiver = spawn('python3', ['-u', '-c', `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print('ready', flush=True)
print(s.recv(65536).hex(), flush=True)
time.sleep(300)  # bound, not reading: the queue fills (a closed socket would refuse instead)
`, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => receiver.kill('SIGKILL'));
  let out = '';
  const lines = new Promise((resolve) => receiver.stdout.on('data', (d) => { out += d; if (out.split('\n').length > 2) resolve(out); }));
  for (const end = Date.now() + 30_000; !fs.existsSync(socket) && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 20));
  const entry = encodeJournalEntry([['MESSAGE', 'a\nb'], ['INTERFACE', 'eth0']]);
  const send = journalSender({ JOURNAL_STREAM: '1:1' }, socket, null);
  t.truthy(send);
  t.true(/** @type {any} */ (send)(entry));
  const hex = String(await lines).split('\n')[1];
  t.deepEqual(Buffer.from(hex, 'hex'), entry);
  // Nobody reads any more: the queue fills, and a dontWait send fails at once instead of blocking.
  const binding = nativeBinding();
  let error;
  for (let i = 0; i < 10_000 && error === undefined; i++) {
    try { binding.sendDatagram(socket, entry, true); } catch (e) { error = e; }
  }
  t.truthy(error, 'a full queue is reported');
  t.is(/** @type {any} */ (error).code, 'EAGAIN');
  t.is(/** @type {any} */ (error).syscall, 'sendto');
});
