/**
 * The operator's hook. It runs through the daemon's `hook` executor with the event in
 * NETHEAL_* environment variables (see actionEnvironment in src/policy/actions.ts) and a
 * time limit; here is the check that a configured hook can run at all.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { NethealError } from '../errors';

/** Checks at config time that `path` is an executable regular file; throws naming `field`. */
export function checkHookPath(path: string, field: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
    accessSync(path, constants.X_OK);
  } catch {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${path} is not ${isFile ? 'executable' : 'an existing file'}`);
  }
  if (!isFile) throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${path} is not a regular file`);
}
