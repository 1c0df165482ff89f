/** Running helper commands (nmcli, ifup, hooks) with a time limit, inside a namespace if asked. */
import { execFile } from 'node:child_process';

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
  durationMs: number;
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Namespace file: the command runs under `nsenter --net=PATH`. */
  netnsPath?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs `command args...`, killed (SIGKILL) after `timeoutMs` (default 30 s). */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, argv] = options.netnsPath !== undefined
    ? ['nsenter', [`--net=${options.netnsPath}`, '--', command, ...args]]
    : [command, args];
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    execFile(file, argv, { timeout: options.timeoutMs ?? 30000, killSignal: 'SIGKILL', env: options.env ?? process.env, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const e = error as { killed?: boolean; signal?: string; code?: unknown } | null;
        resolve({
          command: [command, ...args].join(' '),
          exitCode: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr),
          timedOut: e?.killed === true && e.signal === 'SIGKILL',
          // nsenter exits 127 when the command is not found inside.
          missing: e?.code === 'ENOENT' || (options.netnsPath !== undefined && e?.code === 127),
          durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        });
      });
  });
}

/** A short human description of a failed command. */
export function describeFailure(result: CommandResult): string {
  if (result.missing) return `${result.command}: not installed`;
  if (result.timedOut) return `${result.command}: killed after its time limit`;
  const why = result.stderr.trim().split('\n').slice(-1)[0] ?? '';
  return `${result.command}: exit ${result.exitCode ?? result.signal}${why ? `: ${why}` : ''}`;
}
