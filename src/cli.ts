#!/usr/bin/env node
/** The `netheal` command. Each subcommand lives in src/cli/<name>.ts. */
import { Command, CommanderError } from 'commander';
import { ExitCode } from './errors';

type Register = (program: Command) => void;

/**
 * The module that registers each subcommand, loaded only when needed: a one-shot command
 * such as `sockets kill` runs in a fresh process, where loading every subcommand (the config
 * schema and the daemon modules behind `unit` and `config`) would cost more than the work itself.
 */
const GROUPS: Array<{ commands: string[]; load: () => Register }> = [
  { commands: ['links'], load: () => (require('./cli/links') as typeof import('./cli/links')).registerLinks },
  { commands: ['watch'], load: () => (require('./cli/watch') as typeof import('./cli/watch')).registerWatch },
  { commands: ['ping'], load: () => (require('./cli/ping') as typeof import('./cli/ping')).registerPing },
  { commands: ['sockets', 'port-free'], load: () => (require('./cli/sockets') as typeof import('./cli/sockets')).registerSockets },
  { commands: ['unit', 'install', 'uninstall', 'supervisor'], load: () => (require('./cli/unit') as typeof import('./cli/unit')).registerUnit },
  { commands: ['doctor', 'tune'], load: () => (require('./cli/doctor') as typeof import('./cli/doctor')).registerDoctor },
  { commands: ['status'], load: () => (require('./cli/status') as typeof import('./cli/status')).registerStatus },
  { commands: ['hold', 'release'], load: () => (require('./cli/hold') as typeof import('./cli/hold')).registerHold },
  { commands: ['config'], load: () => (require('./cli/config') as typeof import('./cli/config')).registerConfig },
];

/**
 * Builds the program; exported so tests can inspect the command tree. With `command` (the
 * first argument) naming a known subcommand, only its group is registered; otherwise (help,
 * --version, a typo) all of them are.
 */
export function buildProgram(command?: string): Command {
  const program = new Command('netheal')
    .description('Network self-healing for Linux servers')
    .version(require('../package.json').version as string)
    .exitOverride();
  const only = GROUPS.find((group) => command !== undefined && group.commands.includes(command));
  for (const group of only === undefined ? GROUPS : [only]) group.load()(program);
  addHelpHints(program, 'netheal');
  return program;
}

/**
 * A usage error prints commander's one line ("error: unknown option '--x'") and a pointer
 * to the command's help, not the whole help.
 */
function addHelpHints(command: Command, path: string): void {
  command.showHelpAfterError(`see '${path} --help'`);
  for (const sub of command.commands) addHelpHints(sub, `${path} ${sub.name()}`);
}

/**
 * `netheal links | head -1`: once the reader is gone, stop quietly with 0 (what the user
 * asked for was printed), instead of an unhandled EPIPE with a stack trace.
 */
export function exitOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(ExitCode.OK);
    throw error;
  });
}

async function main(argv: string[]): Promise<void> {
  exitOnBrokenPipe();
  const program = buildProgram(argv[2]);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; every other parse failure is a usage error.
      process.exitCode = error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
      return;
    }
    throw error;
  }
}

if (require.main === module) void main(process.argv);
