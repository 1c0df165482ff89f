/**
 * Files in the state directory (systemd's StateDirectory=, default /var/lib/netheal): small
 * JSON documents with a schema version, written atomically (a temporary file, fsync, then
 * renamed over the old one) so that a crash leaves either the old or the new file, never a
 * torn one. Each file also says which boot and which network namespace it describes: a
 * state from another boot, or of another namespace, describes nothing that exists now.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';

/**
 * The schema of a stored interface configuration (src/actions/interruption.ts's
 * StoredConfiguration: addresses and routes as base64 netlink messages), shared by the safety
 * state and the action journal.
 */
const integer = v.pipe(v.number(), v.integer());
const storedMessageSchema = v.object({ type: integer, flags: integer, payload: v.string() });
export const storedConfigurationSchema = v.object({
  ifindex: integer,
  routes: v.array(storedMessageSchema),
  addresses: v.array(storedMessageSchema),
});

/** The first issue of a stored file that does not match its schema, as `field.path: message`. */
export function firstIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  return `${issue?.path?.map((item) => String(item.key)).join('.') || '(top)'}: ${issue?.message}`;
}

/** The state directory systemd gives the unit, else /var/lib/netheal. */
export function defaultStateDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.STATE_DIRECTORY?.split(':')[0] || '/var/lib/netheal';
}

/** Which boot and namespace a state describes. */
export interface StateScope {
  /** /proc/sys/kernel/random/boot_id: a reboot changes it. */
  bootId: string;
  /** The watched namespace's path, null for the daemon's own. */
  netns: string | null;
  /** Its inode (namespaces are told apart by it). */
  netnsInode: number;
}

/** The scope of a daemon watching `netnsPath` (undefined: its own namespace). */
export function currentScope(netnsPath: string | undefined): StateScope {
  let bootId = 'unknown';
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch { /* no /proc: every start looks like a new boot, so nothing is carried */ }
  return { bootId, netns: netnsPath ?? null, netnsInode: statSync(netnsPath ?? '/proc/self/ns/net').ino };
}

/** Whether a stored scope is this one. */
export function sameScope(a: StateScope, b: unknown): boolean {
  const s = b as Partial<StateScope> | null;
  return typeof s === 'object' && s !== null && s.bootId === a.bootId && s.netns === a.netns && s.netnsInode === a.netnsInode && a.bootId !== 'unknown';
}

/** CLOCK_MONOTONIC in ms: shared by every process of one boot, so ages survive a restart. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000000n);
}

/**
 * Reads `name` from `dir` as JSON. Missing: undefined. Unreadable or not JSON: reported
 * through `warn` and undefined (a corrupt state file must never stop the daemon).
 */
export function readStateFile(dir: string, name: string, warn: (message: string) => void): unknown {
  const file = join(dir, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') warn(`${file}: cannot read (${code}); ignored`);
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    warn(`${file}: ignored, not JSON: ${(error as Error).message}`);
    return undefined;
  }
}

/** Writes `value` as `name` in `dir` atomically and durably (mode 0600; a new directory 0700). */
export function writeStateFile(dir: string, name: string, value: unknown): void {
  // The directory itself may be made, never its parents: a state directory whose parent is
  // gone (a lab's scratch directory removed while its daemon stops) must not be resurrected.
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const file = join(dir, name);
  const temporary = `${file}.${process.pid}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}
