/** The operator's hook: an executable run with the event in environment variables and a time limit. */
import { accessSync, constants, statSync } from 'node:fs';
import { NethealError } from '../errors';
import { CommandResult, runCommand } from './run';

/** What the hook is told, as NETHEAL_* environment variables. */
export interface HookEvent {
  iface: string;
  /** The health state that triggered the ladder, e.g. "down". */
  state: string;
  /** Why: the evidence, e.g. "carrier lost", "probe group gw down". */
  reason: string;
  /** Which rung of the ladder this is (1-based). */
  step: number;
  /** Namespace file the interface lives in, if any. */
  netns?: string;
  dryRun?: boolean;
}

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

/** The environment a hook sees: ours plus NETHEAL_IFACE, NETHEAL_STATE, NETHEAL_REASON, ... */
export function hookEnvironment(event: HookEvent, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    NETHEAL_IFACE: event.iface,
    NETHEAL_STATE: event.state,
    NETHEAL_REASON: event.reason,
    NETHEAL_STEP: String(event.step),
    NETHEAL_NETNS: event.netns ?? '',
    NETHEAL_DRY_RUN: event.dryRun ? '1' : '0',
  };
}

/** Runs the hook (in the current namespace: it is the operator's code, it decides). */
export function runHook(path: string, event: HookEvent, timeoutMs: number): Promise<CommandResult> {
  return runCommand(path, [], { timeoutMs, env: hookEnvironment(event) });
}
