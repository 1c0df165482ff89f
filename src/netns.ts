/** Resolving `--netns NAME|PATH` / the `netns` option the way `ip -n` does. */
import { statSync } from 'node:fs';
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
  } catch {
    throw new NethealError('NETHEAL_ERR_NETNS',
      isPath ? `${option}: no network namespace at ${path}` : `${option}: no network namespace named ${netns} (looked for ${path})`);
  }
  return path;
}
