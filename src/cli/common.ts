/** What every `netheal` subcommand shares: --netns/--json, output, errors and exit codes. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ExitCode, NethealError, fromSystemError } from '../errors';
import type { LinkControl } from '../kernel/link-control';
import { resolveNetns } from '../netns';

/** Options every subcommand takes. */
export interface CommonOptions {
  netns?: string;
  json?: boolean;
}

/** Adds --netns and --json to a subcommand. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--netns <name|path>', 'network namespace: a name under /run/netns or a path like /proc/PID/ns/net')
    .option('--json', 'machine-readable JSON output');
}

/** Parses an integer option in [min, max]; commander reports the error as a usage error. */
export function intOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer, got ${JSON.stringify(value)}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

/** A positive number option (milliseconds, seconds) in [min, max]. */
export function numberOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got ${JSON.stringify(value)}`);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

export { Option };

/**
 * Checks that the interface a flag names exists (in `netns`): a usage error (exit 2) naming
 * the flag and the interface otherwise, the same for every subcommand (ping --interface,
 * sockets --dev).
 */
export async function requireInterface(name: string, netns: string | undefined, flag: string): Promise<void> {
  const path = resolveNetns(netns, '--netns');
  let control: LinkControl;
  try {
    // Loaded here, not at the top: every subcommand loads this module, and only the two that
    // take an interface need netlink (and the addon).
    const { LinkControl: Control } = require('../kernel/link-control') as typeof import('../kernel/link-control');
    control = new Control(path === undefined ? {} : { netns: path });
  } catch (error) {
    throw fromSystemError(error, 'open rtnetlink socket', path);
  }
  try {
    await control.getLink(name);
  } catch (error) {
    if (error instanceof NethealError && error.code === 'NETHEAL_ERR_NO_DEVICE') {
      throw new NethealError('NETHEAL_ERR_USAGE', `${flag}: no interface named ${JSON.stringify(name)}${path === undefined ? '' : ` in ${path}`}`);
    }
    throw error;
  } finally {
    control.close();
  }
}

/** Writes a line to stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Prints rows as an aligned text table. */
export function printTable(headers: string[], rows: Array<Array<string | number | boolean | null>>): void {
  const cells = [headers, ...rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  for (const row of cells) out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** Reports an error on stderr (never a stack trace for expected errors) and returns the exit code. */
export function reportError(error: unknown): number {
  if (error instanceof NethealError) {
    process.stderr.write(`netheal: ${error.message}\n`);
    return error.exitCode;
  }
  const e = error as { code?: string; message?: string; path?: string; syscall?: string };
  if (e.path !== undefined && (e.code === 'EPERM' || e.code === 'EACCES' || e.code === 'EROFS')) {
    // A file the command had to write or read (units, sysctl.d, /run/netheal).
    process.stderr.write(`netheal: ${e.syscall ?? 'access'} ${e.path}: ${e.code}: run as root (or choose a writable path)\n`);
    return e.code === 'EROFS' ? ExitCode.FAILURE : ExitCode.NO_PRIVILEGE;
  }
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    process.stderr.write(`netheal: ${e.message}: needs CAP_NET_ADMIN\n`);
    return ExitCode.NO_PRIVILEGE;
  }
  // A bug, not a usage problem: say what happened; the stack only when asked for.
  process.stderr.write(`netheal: unexpected error: ${e.message ?? String(error)}${e.code ? ` (${e.code})` : ''}\n`);
  if (process.env.NETHEAL_DEBUG) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
  else process.stderr.write('netheal: set NETHEAL_DEBUG=1 to see where\n');
  return ExitCode.FAILURE;
}

/**
 * Wraps a subcommand action: errors become a message on stderr and the documented exit code.
 * The action may return an exit code (default 0).
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exitCode = code ?? ExitCode.OK;
    } catch (error) {
      process.exitCode = reportError(error);
    }
  };
}
