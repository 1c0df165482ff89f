/**
 * Installing and removing a generated unit: write the file, daemon-reload, enable --now.
 * A unit file that differs from what would be written (edited by hand, or generated from
 * another config) is never overwritten without `force`.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { NethealError } from '../errors';
import { CommandResult, describeFailure, runCommand } from '../actions/run';
import { systemdBooted } from './systemd';

/** Where and how to install. */
export interface InstallOptions {
  /** File name, e.g. netheal.service. */
  name: string;
  /** The unit text. */
  content: string;
  /**
   * An offline root (like `systemctl --root`): the file goes to ROOT/etc/systemd/system and
   * `systemctl --root=ROOT enable` only makes the symlinks; no running manager is touched.
   */
  root?: string;
  /** Say what would be done, do nothing. */
  dryRun?: boolean;
  /** Overwrite a file that differs. */
  force?: boolean;
  /** enable --now after writing (default true). */
  enable?: boolean;
}

/** One step of an install or uninstall, done or (with dryRun) planned. */
export interface InstallStep {
  what: string;
  done: boolean;
  detail?: string;
}

/** What install/uninstall did. */
export interface InstallReport {
  path: string;
  /** new, unchanged, replaced, removed, absent. */
  file: 'new' | 'unchanged' | 'replaced' | 'removed' | 'absent';
  steps: InstallStep[];
  dryRun: boolean;
}

/**
 * Checks an offline root: an absolute path to an existing directory (an empty or relative
 * root would write under the current directory, a file would fail half-way). Throws
 * NETHEAL_ERR_USAGE naming `option`.
 */
export function checkRoot(root: string | undefined, option = 'root'): void {
  if (root === undefined) return;
  if (typeof root !== 'string' || !isAbsolute(root)) {
    throw new NethealError('NETHEAL_ERR_USAGE', `${option} must be an absolute path to an existing directory, got ${JSON.stringify(root)}`);
  }
  let directory = false;
  try {
    directory = statSync(root).isDirectory();
  } catch (error) {
    throw new NethealError('NETHEAL_ERR_USAGE', `${option} must be an absolute path to an existing directory: ${root}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!directory) throw new NethealError('NETHEAL_ERR_USAGE', `${option} must be an absolute path to an existing directory: ${root} is not a directory`);
}

/** The unit directory for an optional offline root. */
export function unitDirectory(root?: string): string {
  return root === undefined ? '/etc/systemd/system' : join(root, 'etc/systemd/system');
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9:_.\\@-]+\.service$/.test(name)) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `not a service unit file name: ${JSON.stringify(name)}`);
}

async function systemctl(args: string[], root: string | undefined, steps: InstallStep[], dryRun: boolean): Promise<void> {
  const full = root === undefined ? args : [`--root=${root}`, ...args];
  const what = `systemctl ${full.join(' ')}`;
  if (dryRun) {
    steps.push({ what, done: false });
    return;
  }
  const result: CommandResult = await runCommand('systemctl', full, { timeoutMs: 90_000 });
  if (result.exitCode !== 0) {
    throw new NethealError('NETHEAL_ERR_SYSTEMD', `${describeFailure(result)}`);
  }
  steps.push({ what, done: true });
}

/** Writes the unit (atomically), then daemon-reload and enable --now (or, offline, enable). */
export async function installUnit(options: InstallOptions): Promise<InstallReport> {
  checkName(options.name);
  checkRoot(options.root);
  const dryRun = options.dryRun === true;
  if (options.root === undefined && !dryRun && !systemdBooted()) {
    throw new NethealError('NETHEAL_ERR_SYSTEMD', 'systemd is not running here (no /run/systemd/system): use --root DIR for an offline root, or `netheal supervisor` for supervisord');
  }
  const dir = unitDirectory(options.root);
  const path = join(dir, options.name);
  const steps: InstallStep[] = [];
  let file: InstallReport['file'] = 'new';
  if (existsSync(path)) {
    const current = readFileSync(path, 'utf8');
    if (current === options.content) {
      file = 'unchanged';
    } else if (options.force !== true) {
      throw new NethealError('NETHEAL_ERR_UNIT_CHANGED',
        `${path} exists and differs from the unit netheal would write (edited by hand, or generated from another config); compare with \`netheal unit\`, then use --force to replace it`);
    } else {
      file = 'replaced';
    }
  }
  if (file !== 'unchanged') {
    if (dryRun) {
      steps.push({ what: `write ${path}`, done: false, detail: file });
    } else {
      mkdirSync(dir, { recursive: true });
      const tmp = `${path}.netheal-tmp`;
      writeFileSync(tmp, options.content, { mode: 0o644 });
      renameSync(tmp, path);
      steps.push({ what: `write ${path}`, done: true, detail: file });
    }
  }
  if (options.root === undefined) await systemctl(['daemon-reload'], undefined, steps, dryRun);
  if (options.enable !== false) {
    await systemctl(options.root === undefined ? ['enable', '--now', options.name] : ['enable', options.name], options.root, steps, dryRun);
  }
  return { path, file, steps, dryRun };
}

/** Options of {@link uninstallUnit}. */
export interface UninstallOptions {
  name: string;
  root?: string;
  dryRun?: boolean;
  /** Remove a unit that netheal did not generate. */
  force?: boolean;
}

/** disable --now, remove the file, daemon-reload. */
export async function uninstallUnit(options: UninstallOptions): Promise<InstallReport> {
  checkName(options.name);
  checkRoot(options.root);
  const dryRun = options.dryRun === true;
  const path = join(unitDirectory(options.root), options.name);
  const steps: InstallStep[] = [];
  if (!existsSync(path)) return { path, file: 'absent', steps, dryRun };
  if (options.force !== true && !readFileSync(path, 'utf8').startsWith('# Generated by `netheal ')) {
    throw new NethealError('NETHEAL_ERR_UNIT_CHANGED', `${path} was not generated by netheal; use --force to remove it anyway`);
  }
  await systemctl(options.root === undefined ? ['disable', '--now', options.name] : ['disable', options.name], options.root, steps, dryRun);
  if (dryRun) {
    steps.push({ what: `remove ${path}`, done: false });
  } else {
    unlinkSync(path);
    steps.push({ what: `remove ${path}`, done: true });
  }
  if (options.root === undefined) await systemctl(['daemon-reload'], undefined, steps, dryRun);
  return { path, file: 'removed', steps, dryRun };
}
