/** Running helper commands (nmcli, ifup, hooks) with a time limit, inside a namespace if asked. */
import { ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';

/** The outcome of a command; never throws for a failing command. */
export interface CommandResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The binary was not found (ENOENT). */
  missing: boolean;
  /**
   * Why the command could not be started, as an errno name (EMFILE, EACCES, ENOENT, ...);
   * null when it ran. Then exitCode and signal are null.
   */
  spawnError: string | null;
  durationMs: number;
}

/** What spawn() searches when PATH is unset (libuv falls back to the C library's default). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Whether `command` is an executable file on PATH (or, with a slash, at that path). Asking
 * costs a few stat calls; starting a missing tool costs a whole fork (~10 ms of a blocked
 * event loop on a VM) just to learn ENOENT.
 */
export function commandExists(command: string, searchPath = process.env.PATH ?? DEFAULT_PATH): boolean {
  const candidates = command.includes('/') ? [command] : searchPath.split(':').filter(Boolean).map((dir) => `${dir}/${command}`);
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Namespace file: the command runs under `nsenter --net=PATH`. */
  netnsPath?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Kills the command's process group when aborted (the engine's time limit, a reload). */
  signal?: AbortSignal;
}

/** What one stream may hold before the command is cut off. */
const OUTPUT_LIMIT = 4 * 1024 * 1024;

/**
 * Runs `command args...` in a process group of its own. After `timeoutMs` (default 30 s), or
 * when `signal` aborts, the whole group is killed (SIGKILL): a hook's children die with it
 * instead of living on under PID 1. Never throws for a failing command.
 */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, argv] = options.netnsPath !== undefined
    ? ['nsenter', [`--net=${options.netnsPath}`, '--', command, ...args]]
    : [command, args];
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => { timedOut = true; killGroup(); };
    const finish = (exitCode: number | null, signal: string | null, spawnError: NodeJS.ErrnoException | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        command: [command, ...args].join(' '),
        exitCode, signal, stdout, stderr, timedOut,
        // nsenter exits 127 when the command is not found inside.
        missing: spawnError?.code === 'ENOENT' || (options.netnsPath !== undefined && exitCode === 127),
        spawnError: spawnError === null ? null : spawnError.code ?? 'unknown error',
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      });
    };
    let child: ChildProcess;
    try {
      child = spawn(file, argv, { env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      // Node throws for some failures to start (E2BIG, ...) and emits 'error' for others.
      finish(null, null, error as NodeJS.ErrnoException);
      return;
    }
    // First: a failed start (EMFILE, EACCES, ENOENT) arrives as 'error' on the next tick,
    // and after EMFILE the child has no stdout or stderr at all.
    child.once('error', (error: NodeJS.ErrnoException) => finish(null, null, error));
    child.once('close', (code, signal) => finish(code, signal, null));
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    timer = setTimeout(() => { timedOut = true; killGroup(); }, options.timeoutMs ?? 30000);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { if (stdout.length < OUTPUT_LIMIT) stdout += chunk; else killGroup(); });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { if (stderr.length < OUTPUT_LIMIT) stderr += chunk; else killGroup(); });
  });
}

/** A short human description of a failed command. */
export function describeFailure(result: CommandResult): string {
  if (result.missing) return `${result.command}: not installed${result.spawnError === null ? '' : ` (spawn ${result.spawnError})`}`;
  if (result.spawnError !== null) return `${result.command}: failed: spawn ${result.spawnError}`;
  if (result.timedOut) return `${result.command}: killed after its time limit`;
  const why = result.stderr.trim().split('\n').slice(-1)[0] ?? '';
  return `${result.command}: exit ${result.exitCode ?? result.signal}${why ? `: ${why}` : ''}`;
}
