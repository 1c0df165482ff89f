#!/usr/bin/env node
/** The `netheal` command. Each subcommand lives in src/cli/<name>.ts. */
import { Command, CommanderError } from 'commander';
import { ExitCode } from './errors';
import { registerLinks } from './cli/links';
import { registerWatch } from './cli/watch';
import { registerPing } from './cli/ping';
import { registerSockets } from './cli/sockets';
import { registerUnit } from './cli/unit';
import { registerDoctor } from './cli/doctor';
import { registerStatus } from './cli/status';

/** Builds the program; exported so tests can inspect the command tree. */
export function buildProgram(): Command {
  const program = new Command('netheal')
    .description('Network self-healing for Linux servers')
    .version(require('../package.json').version as string)
    .showHelpAfterError()
    .exitOverride();
  registerLinks(program);
  registerWatch(program);
  registerPing(program);
  registerSockets(program);
  registerUnit(program);
  registerDoctor(program);
  registerStatus(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
