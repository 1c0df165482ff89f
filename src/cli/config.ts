/**
 * `netheal config check [FILE]`: validates the configuration exactly as the daemon does at
 * start and on reload (checkConfig: the file, its conf.d drop-ins merged in name order, every
 * problem at once, each naming its file and field). The unit's ExecReload= runs it before the
 * SIGHUP, so a bad file makes `systemctl reload` fail instead of being refused silently.
 */
import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH, checkConfig, dropInDirectory } from '../daemon/config';
import { ExitCode, NethealError } from '../errors';
import { action, out, withCommonOptions } from './common';

interface CheckOptions {
  config?: string;
  netns?: string;
  json?: boolean;
}

/** Registers `config check`. */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('the daemon\'s configuration file');
  withCommonOptions(config.command('check [file]'))
    .description(`validate the configuration as the daemon would (default ${DEFAULT_CONFIG_PATH}, optional; plus conf.d/*.json beside it)`)
    .option('--config <file>', 'the configuration file (same as the FILE argument)')
    .addHelpText('after', '\nExit codes: 0 valid, 78 invalid (every problem is printed, each naming its file and field), 2 usage.')
    .action(action((file: string | undefined, options: CheckOptions) => {
      if (file !== undefined && options.config !== undefined && file !== options.config) {
        throw new NethealError('NETHEAL_ERR_USAGE', 'give the file either as FILE or with --config, not both');
      }
      const explicit = file ?? options.config;
      const path = explicit ?? DEFAULT_CONFIG_PATH;
      // The daemon's own rule: an explicit file must exist; the default one may be absent.
      const check = checkConfig(path, { optional: explicit === undefined, netns: { override: options.netns } });
      const ok = check.problems.length === 0;
      if (options.json) {
        out(JSON.stringify({ ok, config: path, dropInDirectory: dropInDirectory(path), files: check.files, problems: check.problems }));
      } else if (ok) {
        out(check.files.length === 0
          ? `${path}: not present, no drop-ins: the daemon runs on the defaults`
          : `configuration OK: ${check.files.join(', ')}`);
      } else {
        for (const problem of check.problems) process.stderr.write(`netheal: ${problem}\n`);
      }
      return ok ? ExitCode.OK : ExitCode.CONFIG;
    }));
}
