/**
 * The operator's hook: the check that a configured hook can run, and may be trusted to run
 * as the daemon (root), and its environment. It runs through the daemon's `hook` executor
 * inside the watched namespace, with a time limit, killed as a whole process group.
 *
 * A hook is a program, or a directory of programs (`hooks.d`, like NetworkManager's
 * dispatcher.d and ifplugd's action.d) run one after the other in the C locale's order of
 * their names. As run-parts does, only names of letters, digits, `_` and `-` count, so that
 * `foo.dpkg-old`, `foo~` or `.swp` files left by editors and packages never run.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Names run-parts would run. */
const RUNNABLE_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * The programs a hook path stands for: itself if it is a file, else the runnable names in
 * the directory, sorted bytewise. Throws (ENOENT, ENOTDIR...) when it cannot be read.
 */
export function hookPrograms(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => RUNNABLE_NAME.test(name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => join(path, name))
    .filter((file) => statSync(file).isFile());
}
import { NethealError } from '../errors';

/**
 * Checks at config time that `path` is an executable regular file that nobody but root (or
 * the daemon's own user) can change: the file and every directory above it owned by root
 * or us, and writable by neither group nor others (sshd's StrictModes rule; a sticky 1777
 * directory such as /tmp does not pass). Throws NETHEAL_ERR_CONFIG naming `field`.
 */
export function checkHookPath(path: string, field: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${path} is not an existing file or directory`);
  }
  if (isDirectory) {
    checkOwnership(path, field);
    for (const program of hookPrograms(path)) checkHookFile(program, field);
    return;
  }
  checkHookFile(path, field);
}

/** {@link checkHookPath} for one program. */
function checkHookFile(path: string, field: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
    accessSync(path, constants.X_OK);
  } catch {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${path} is not ${isFile ? 'executable' : 'an existing file'}`);
  }
  if (!isFile) throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${path} is not a regular file`);
  checkOwnership(path, field);
}

/** `path` and every directory above it belong to root (or us) and only the owner may write. */
function checkOwnership(path: string, field: string): void {
  const me = process.getuid?.() ?? 0;
  for (let at = path; ; at = dirname(at)) {
    const st = statSync(at);
    if (st.uid !== 0 && st.uid !== me) {
      throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${at} is owned by uid ${st.uid}: a hook runs as root, so it and every directory above it must belong to root`);
    }
    if ((st.mode & 0o022) !== 0) {
      throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: ${at} is writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)}): anyone who can change it could run code as root`);
    }
    if (at === dirname(at)) break;
  }
}

/**
 * The hook's whole environment: the documented NETHEAL_* variables, PATH and LANG; nothing
 * of the daemon's own (NOTIFY_SOCKET, credentials, ...).
 */
export function hookEnvironment(netheal: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: process.env.LANG ?? 'C.UTF-8',
    ...netheal,
  };
}
