/**
 * systemd's native journal protocol: one datagram per entry to /run/systemd/journal/socket,
 * fields as `KEY=value\n`, or, for a value holding a newline, `KEY\n` + its length as a 64-bit
 * little-endian integer + the bytes + `\n`. Unlike priority-prefixed lines on stdout, fields
 * arrive as fields, so `journalctl INTERFACE=eth0` or `NETHEAL_ACTION=link-bounce` select them.
 *
 * Field names: the log record's `iface` becomes INTERFACE (the name systemd and networkd use),
 * every other field NETHEAL_<NAME> in upper snake case (`fault` -> NETHEAL_FAULT, `monotonicNs`
 * -> NETHEAL_MONOTONIC_NS). Names are [A-Z0-9_], at most 64 bytes, never starting with `_`
 * (those are the journal's trusted fields).
 */

import { existsSync, fstatSync } from 'node:fs';
import { nativeBinding } from '../native';

/** Where journald listens for native entries. */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/** The journal's limit on field names. */
const MAX_FIELD_NAME = 64;

/** A log field's name in the journal. */
export function journalFieldName(key: string): string {
  if (key === 'iface') return 'INTERFACE';
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_');
  return `NETHEAL_${snake}`.slice(0, MAX_FIELD_NAME);
}

/** A field value as text: strings as they are, everything else as JSON. */
function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? String(value);
}

/**
 * The fields of one entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then the record's fields.
 * Values of `undefined` are left out.
 */
export function journalFields(identifier: string, priority: number, message: string, fields: Record<string, unknown> = {}): Array<[string, string]> {
  const out: Array<[string, string]> = [['MESSAGE', message], ['PRIORITY', String(priority)], ['SYSLOG_IDENTIFIER', identifier]];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out.push([journalFieldName(key), fieldText(value)]);
  }
  return out;
}

/** The datagram of one entry. */
export function encodeJournalEntry(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!/^[A-Z0-9][A-Z0-9_]*$/.test(name) || name.length > MAX_FIELD_NAME) throw new RangeError(`not a journal field name: ${JSON.stringify(name)}`);
    const bytes = Buffer.from(value, 'utf8');
    if (!bytes.includes(0x0a)) {
      parts.push(Buffer.from(`${name}=`), bytes, Buffer.from('\n'));
      continue;
    }
    // Binary-safe form: the name, a newline, the length (u64 LE), the bytes, a newline.
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`), length, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** True when `fd` is the stream that JOURNAL_STREAM ("DEV:INODE") names. */
function isStream(journalStream: string, fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return journalStream === `${stat.dev}:${stat.ino}`;
  } catch {
    return false;
  }
}

/**
 * A sender of native entries when the daemon runs under systemd with its output going to the
 * journal (JOURNAL_STREAM set, as systemd sets it for such services, and naming our stdout)
 * and journald's socket is there; otherwise undefined, and the logger writes priority-prefixed lines. A send that fails
 * (EAGAIN: journald's queue is full; EMSGSIZE: an entry too large for one datagram, where
 * systemd's own client would pass a memfd) returns false and that record goes to stdout.
 */
export function journalSender(env: NodeJS.ProcessEnv = process.env, socket = JOURNAL_SOCKET, stdoutFd: number | null = 1): ((entry: Buffer) => boolean) | undefined {
  if (!env.JOURNAL_STREAM || !existsSync(socket)) return undefined;
  // JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it is inherited by children
  // whose stdout may go elsewhere (a shell redirect), so it counts only when it is our stdout.
  if (stdoutFd !== null && !isStream(env.JOURNAL_STREAM, stdoutFd)) return undefined;
  const binding = nativeBinding();
  return (entry) => {
    try {
      binding.sendDatagram(socket, entry, true);
      return true;
    } catch {
      return false;
    }
  };
}
