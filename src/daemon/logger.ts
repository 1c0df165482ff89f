/**
 * Daemon logging. Three formats:
 * - `journal`: when a journal sender is given (the daemon gives one under systemd with
 *   journald's socket present), each record is a native journal entry with its fields
 *   (journal.ts: INTERFACE=, NETHEAL_FAULT=, NETHEAL_ACTION=, ...); otherwise, and for an entry
 *   the sender refuses (journald's queue full, an entry too large), one line with the syslog
 *   priority prefix (`<3>`..`<7>`) that journald parses from a service's stdout. The default
 *   when JOURNAL_STREAM is set.
 * - `text`: timestamped readable lines for a terminal.
 * - `json`: one JSON object per line for collectors (`--log-format json`).
 */
import { encodeJournalEntry, journalFields } from './journal';

/** Severity, with the syslog priority journald understands. */
export const LEVELS = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
export type LogLevel = keyof typeof LEVELS;
export type LogFormat = 'journal' | 'text' | 'json';

/** Structured fields attached to a record. */
export type LogFields = Record<string, unknown>;

/** A minimal structured logger. */
export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  warning(message: string, fields?: LogFields): void;
  notice(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

/** journal when started by systemd with stdout on the journal, else text. */
export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env): LogFormat {
  return env.JOURNAL_STREAM ? 'journal' : 'text';
}

/**
 * Control characters spelled out (`\x1b`, `\n`): kernel-supplied strings such as interface
 * names may hold ESC, and a terminal or a log viewer must not interpret them, nor may a
 * newline forge a record of its own.
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

function formatFields(fields: LogFields | undefined): string {
  if (fields === undefined) return '';
  const parts = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`);
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/** Sends one native journal entry; false (or a throw) when it could not, and the line is written instead. */
export type JournalSender = (entry: Buffer) => boolean;

/** The SYSLOG_IDENTIFIER of the daemon's journal entries. */
export const SYSLOG_IDENTIFIER = 'netheal';

/** Creates a logger writing to `write` (default: stdout) at `minLevel` and above. */
export function createLogger(options: { format?: LogFormat; minLevel?: LogLevel; write?: (line: string) => void; journal?: JournalSender } = {}): Logger {
  const format = options.format ?? defaultLogFormat();
  const min = LEVELS[options.minLevel ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const journal = format === 'journal' ? options.journal : undefined;
  const sentToJournal = (level: LogLevel, text: string, fields?: LogFields): boolean => {
    if (journal === undefined) return false;
    try {
      return journal(encodeJournalEntry(journalFields(SYSLOG_IDENTIFIER, LEVELS[level], text, fields)));
    } catch {
      return false;
    }
  };
  const log = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (LEVELS[level] > min) return;
    if (format === 'json') {
      write(`${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`);
      return;
    }
    // One text for the entry and both line forms, so `journalctl -u netheal` reads the same
    // either way; one record per line: a newline inside would start an unprefixed record.
    const text = escapeControl(`${message}${formatFields(fields)}`);
    if (format === 'journal') {
      if (!sentToJournal(level, text, fields)) write(`<${LEVELS[level]}>${text}\n`);
    } else {
      write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(7)} ${text}\n`);
    }
  };
  return {
    log,
    error: (m, f) => log('error', m, f),
    warning: (m, f) => log('warning', m, f),
    notice: (m, f) => log('notice', m, f),
    info: (m, f) => log('info', m, f),
    debug: (m, f) => log('debug', m, f),
  };
}
