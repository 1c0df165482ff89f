#!/usr/bin/env node
/**
 * `netheal-daemon [--config FILE] [--netns NAME|PATH] [--dry-run] [--lab] [--version]`
 * (the package's bin for `node lib/daemon.js`).
 * Runs under systemd (Type=notify, watchdog) or by hand; `--lab` runs the demo lab.
 */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, NethealError } from './errors';
import { reportError } from './cli/common';
import { DEFAULT_CONFIG_PATH, DaemonConfig, checkConfig, loadConfig, validateConfig } from './daemon/config';
import { Daemon } from './daemon/daemon';
import { journalSender } from './daemon/journal';
import { LogFormat, createLogger, defaultLogFormat } from './daemon/logger';
import { SystemdNotifier } from './daemon/notify';
import { DEFAULT_STATUS_SOCKET } from './daemon/status';
import { defaultStateDirectory } from './daemon/state-files';

interface DaemonFlags {
  config?: string;
  netns?: string;
  dryRun?: boolean;
  lab?: boolean;
  logFormat?: LogFormat;
  logLevel?: 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

async function runDaemon(flags: DaemonFlags): Promise<number> {
  const configPath = flags.config ?? DEFAULT_CONFIG_PATH;
  // An explicit --config must exist; the default file may be absent (then: defaults).
  const config: DaemonConfig = loadConfig(configPath, { optional: flags.config === undefined }) ?? validateConfig({});
  const format = flags.logFormat ?? config.log.format ?? defaultLogFormat();
  const logger = createLogger({ format, minLevel: flags.logLevel ?? config.log.level, journal: format === 'journal' ? journalSender() : undefined });
  const notifier = new SystemdNotifier();
  const daemon = new Daemon({
    config, netns: flags.netns, dryRun: flags.dryRun, logger, notifier, statusSocket: DEFAULT_STATUS_SOCKET, stateDirectory: defaultStateDirectory(),
  });
  // The signal handlers go in before start(): a SIGHUP that arrives while the daemon starts
  // is queued behind the start (Node's default for SIGHUP would kill us, exit 129), and a
  // SIGTERM stops it once started.
  const started = daemon.start();
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => { finish = resolve; });
  let reloading: Promise<void> = started.then(() => undefined, () => undefined);
  const onHup = (): void => {
    reloading = reloading.then(async () => {
      if (daemon.stopped) return;
      let next: DaemonConfig;
      try {
        // The same check as `netheal config check` (the unit's ExecReload= runs it first): the
        // file and its drop-ins, every problem; a namespace that does not exist (any more) is
        // refused here, not half-applied.
        const check = checkConfig(configPath, { optional: flags.config === undefined, netns: { override: flags.netns } });
        if (check.problems.length > 0) throw new NethealError('NETHEAL_ERR_CONFIG', check.problems.join('; '));
        next = check.config ?? validateConfig({});
      } catch (error) {
        // A bad file never replaces a good running config.
        logger.error(`reload refused, keeping the running configuration: ${(error as Error).message}`);
        // A whole reload cycle all the same: Type=notify-reload (systemd >= 253) signals before
        // any check and waits for RELOADING=1 then READY=1 (else it hangs until its timeout).
        notifier.reloading();
        notifier.ready(`reload refused: ${(error as Error).message}`);
        daemon.noteReload(false, (error as Error).message);
        return;
      }
      try {
        await daemon.reload(next);
        daemon.noteReload(true);
        logger.notice('configuration reloaded');
      } catch (error) {
        daemon.noteReload(false, (error as Error).message);
        logger.error(`reload failed: ${(error as Error).message}`);
        if (daemon.stopped) {
          // Nothing runs any more: exit non-zero so the service manager restarts us.
          process.off('SIGHUP', onHup);
          finish(ExitCode.FAILURE);
        }
      }
    });
  };
  const onStop = (signal: NodeJS.Signals): void => {
    process.off('SIGHUP', onHup);
    logger.notice(`${signal}: stopping`);
    void reloading.then(() => daemon.stop()).then(() => finish(ExitCode.OK), (error) => {
      logger.error(`stop failed: ${(error as Error).message}`);
      finish(ExitCode.FAILURE);
    });
  };
  process.on('SIGHUP', onHup);
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  try {
    await started;
  } catch (error) {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    throw error;
  }
  if (!daemon.stopped) logger.notice('monitoring is live', { pid: process.pid });
  if (process.env.NETHEAL_TEST_HANG_ON_SIGUSR2 === '1') {
    // Test-only (test/systemd.test.js): SIGUSR2 hangs the event loop, so WATCHDOG=1 stops and
    // systemd's watchdog must kill and restart us. Never set it in production.
    process.on('SIGUSR2', () => {
      for (;;) {
        // busy forever
      }
    });
  }
  return done;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('netheal-daemon')
    .description('netheal daemon: watch links, paths and sockets; recover within a bounded ladder')
    .version(require('../package.json').version as string)
    .option('--config <file>', `configuration file (default ${DEFAULT_CONFIG_PATH}, optional)`)
    .option('--netns <name|path>', 'network namespace to watch and act in (overrides the config)')
    .option('--dry-run', 'decide and log, change nothing')
    .option('--lab', 'demo: run the daemon against a throw-away namespace lab with injected faults')
    .addOption(new Option('--log-format <format>', 'log format').choices(['journal', 'text', 'json']))
    .addOption(new Option('--log-level <level>', 'lowest level logged').choices(['error', 'warning', 'notice', 'info', 'debug']))
    .exitOverride()
    .showHelpAfterError();
  try {
    program.parse(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    throw error;
  }
  const flags = program.opts<DaemonFlags>();
  try {
    if (flags.lab) {
      if (flags.config !== undefined || flags.netns !== undefined) {
        throw new NethealError('NETHEAL_ERR_USAGE', '--lab builds its own namespaces and config: do not combine it with --config or --netns');
      }
      const { runLabDemo } = require('./lab/demo') as typeof import('./lab/demo');
      return await runLabDemo({ logFormat: flags.logFormat });
    }
    return await runDaemon(flags);
  } catch (error) {
    return reportError(error);
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
