/**
 * `netheal hold IF` / `netheal release IF`: the operator's maintenance hold, through the
 * running daemon's control socket (root-only, beside the status socket). Under a hold the
 * daemon watches and reports the interface but never acts on it; the hold is kept in the
 * state directory across reloads and restarts.
 */
import { Command } from 'commander';
import { sendControl, controlSocketPath } from '../daemon/control';
import { DEFAULT_STATUS_SOCKET } from '../daemon/status';
import { ExitCode } from '../errors';
import { action, out } from './common';

interface HoldOptions {
  socket: string;
  json?: boolean;
}

function register(program: Command, name: 'hold' | 'release', description: string): void {
  program.command(`${name} <interface>`)
    .description(description)
    .option('--socket <path>', 'the daemon\'s status socket (the control socket lies beside it)', DEFAULT_STATUS_SOCKET)
    .option('--json', 'print the daemon\'s answer as JSON')
    .addHelpText('after', '\nExit codes: 0 done, 1 the daemon refused (the interface is not watched) or is not running, 2 usage, 77 not root.')
    .action(action(async (iface: string, options: HoldOptions) => {
      const answer = await sendControl(controlSocketPath(options.socket), { command: name, iface });
      if (options.json) out(JSON.stringify(answer));
      if (!answer.ok) {
        if (!options.json) process.stderr.write(`netheal: ${answer.error}\n`);
        return ExitCode.FAILURE;
      }
      if (!options.json) {
        out(name === 'hold'
          ? `${iface}: held: netheal watches and reports it, and never acts on it, until \`netheal release ${iface}\`${answer.persisted ? '' : ' (not kept across a restart: the daemon has no state directory)'}`
          : `${iface}: released: netheal heals it again`);
      }
      return ExitCode.OK;
    }));
}

/** Registers `hold` and `release`. */
export function registerHold(program: Command): void {
  register(program, 'hold', 'maintenance hold: the daemon keeps watching the interface but never acts on it');
  register(program, 'release', 'end a maintenance hold');
}
