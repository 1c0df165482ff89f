/** Resolving `--netns NAME|PATH` / the `netns` option the way `ip -n` does. */
import { readFileSync, statSync } from 'node:fs';
import { NethealError } from './errors';

/**
 * Returns the namespace file for a name under /run/netns or a path such as
 * /proc/PID/ns/net; undefined stays undefined (the current namespace). Throws
 * NETHEAL_ERR_NETNS when it does not exist, NETHEAL_ERR_INVALID_OPTION when malformed.
 */
export function resolveNetns(netns: string | undefined, option = 'netns'): string | undefined {
  if (netns === undefined) return undefined;
  if (typeof netns !== 'string' || netns.length === 0 || netns.includes('\0')) {
    throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option}: expected a namespace name or a path, got ${JSON.stringify(netns)}`);
  }
  const isPath = netns.includes('/');
  if (!isPath && (netns === '.' || netns === '..')) {
    throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option}: ${JSON.stringify(netns)} is not a namespace name`);
  }
  const path = isPath ? netns : `/run/netns/${netns}`;
  try {
    statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      // /proc/PID/ns/net of a process we may not trace (another user's, or one with more
      // capabilities than ours): it exists, we may not look.
      throw new NethealError('NETHEAL_ERR_PRIVILEGE',
        `${option}: permission denied on ${path}: another process's namespace needs root (CAP_SYS_PTRACE to open it, CAP_SYS_ADMIN to enter it)`,
        { errno: code === 'EACCES' ? 13 : 1, syscall: 'stat', cause: error });
    }
    throw new NethealError('NETHEAL_ERR_NETNS',
      isPath ? `${option}: no network namespace at ${path}` : `${option}: no network namespace named ${netns} (looked for ${path})`);
  }
  return path;
}

/** CAP_SYS_ADMIN, which setns(CLONE_NEWNET) needs in the caller's user namespace. */
const CAP_SYS_ADMIN = 21;

/** True when this process has `capability` in its effective set (/proc/self/status CapEff). */
export function hasCapability(capability: number, status?: string): boolean {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return true; // cannot tell: let the kernel decide
    }
  }
  const match = /^CapEff:\s*([0-9a-f]+)/im.exec(text);
  if (match === null) return true;
  return ((BigInt(`0x${match[1]}`) >> BigInt(capability)) & 1n) === 1n;
}

/**
 * Throws NETHEAL_ERR_PRIVILEGE naming CAP_SYS_ADMIN when this process cannot enter another
 * network namespace. For work done by a child under `nsenter`, which would otherwise fail
 * with its own text and exit code.
 */
export function requireNetnsEntry(netnsPath: string | undefined, option = 'netns'): void {
  if (netnsPath === undefined || hasCapability(CAP_SYS_ADMIN)) return;
  throw new NethealError('NETHEAL_ERR_PRIVILEGE', `${option} ${netnsPath}: entering a network namespace needs CAP_SYS_ADMIN (run as root)`, { syscall: 'setns', errno: 1 });
}
