/** `netheal unit`, `install`, `uninstall`, `supervisor` (issue #6). */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CONFIG_PATH, DaemonConfig, loadConfig, validateConfig } from '../daemon/config';
import { NethealError } from '../errors';
import { InstallReport, checkRoot, installUnit, uninstallUnit } from '../service/install';
import { supervisorSection } from '../service/supervisor';
import { systemdVersion } from '../service/systemd';
import { NETHEAL_UNIT_NAME, nethealUnit, serviceUnit } from '../service/unit';
import { action, intOption, numberOption, out } from './common';

interface UnitFlags {
  config?: string;
  watchdogSec?: number;
  restartSec?: number;
  service?: string;
  exec?: string;
  port?: number[];
  restart?: 'on-failure' | 'always';
  restartMaxDelaySec?: number;
  restartSteps?: number;
  portWait?: number;
  limitNofile?: number;
  user?: string;
  type?: 'simple' | 'exec' | 'notify';
  env?: Record<string, string>;
}

function collectPort(value: string, previous: number[] = []): number[] {
  return [...previous, intOption('--port', 1, 65535)(value)];
}

function collectEnv(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--env wants NAME=VALUE, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** --root: an absolute path to an existing directory, refused as a usage error otherwise. */
function rootOption(value: string): string {
  try {
    checkRoot(value, '--root');
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

function readConfig(path: string | undefined): { path: string; config: DaemonConfig } {
  const configPath = path ?? DEFAULT_CONFIG_PATH;
  const config = existsSync(configPath) || path !== undefined ? loadConfig(configPath) ?? validateConfig({}) : validateConfig({});
  return { path: configPath, config };
}

/** The unit text and file name for the flags: netheal's own, or the operator's --service. */
function unitFor(flags: UnitFlags): { name: string; text: string } {
  if (flags.service === undefined) {
    if (flags.exec !== undefined || flags.port !== undefined) throw new NethealError('NETHEAL_ERR_USAGE', '--exec and --port go with --service NAME');
    const { path, config } = readConfig(flags.config);
    return { name: NETHEAL_UNIT_NAME, text: nethealUnit({ configPath: path, config, watchdogSec: flags.watchdogSec, restartSec: flags.restartSec, environment: flags.env, systemdVersion: systemdVersion() }) };
  }
  if (flags.exec === undefined) throw new NethealError('NETHEAL_ERR_USAGE', '--service needs --exec CMD');
  const text = serviceUnit({
    name: flags.service, exec: flags.exec, ports: flags.port, restart: flags.restart, restartSec: flags.restartSec,
    restartMaxDelaySec: flags.restartMaxDelaySec, restartSteps: flags.restartSteps, portWaitSec: flags.portWait,
    limitNofile: flags.limitNofile, user: flags.user, type: flags.type, environment: flags.env, systemdVersion: systemdVersion(),
  });
  return { name: `${flags.service.replace(/\.service$/, '')}.service`, text };
}

function unitOptions(command: Command): Command {
  return command
    .option('--config <file>', `netheal's config; its actions decide the privileges (default ${DEFAULT_CONFIG_PATH})`)
    .option('--watchdog-sec <S>', 'WatchdogSec (default 30)', numberOption('--watchdog-sec', 1, 3600))
    .option('--restart-sec <S>', 'RestartSec (default 2 for netheal, 1 for --service)', numberOption('--restart-sec', 0, 3600))
    .option('--service <NAME>', "generate for the operator's own service instead")
    .option('--exec <CMD>', 'with --service: the ExecStart command line')
    .option('--port <P>', 'with --service: a TCP port it listens on (repeatable): freed before start, leftovers destroyed after stop', collectPort)
    .option('--restart <when>', 'with --service: on-failure (default) or always', (v: string) => {
      if (v !== 'on-failure' && v !== 'always') throw new InvalidArgumentError('--restart must be on-failure or always');
      return v;
    })
    .option('--restart-max-delay-sec <S>', 'with --service: RestartMaxDelaySec (systemd >= 254; default 30)', numberOption('--restart-max-delay-sec', 0, 86400))
    .option('--restart-steps <N>', 'with --service: RestartSteps (systemd >= 254; default 5)', intOption('--restart-steps', 1, 3600))
    .option('--port-wait <S>', 'with --service: how long ExecStartPre waits for the port (default 10)', numberOption('--port-wait', 0, 3600))
    .option('--limit-nofile <N>', 'with --service: LimitNOFILE (default 65536)', intOption('--limit-nofile', 1024, 1 << 30))
    .option('--user <NAME>', 'with --service: User=')
    .option('--type <type>', 'with --service: simple (default), exec or notify', (v: string) => {
      if (!['simple', 'exec', 'notify'].includes(v)) throw new InvalidArgumentError('--type must be simple, exec or notify');
      return v;
    })
    .option('--env <NAME=VALUE>', 'Environment= line (repeatable)', collectEnv);
}

function printReport(report: InstallReport, json: boolean): void {
  if (json) {
    out(JSON.stringify(report));
    return;
  }
  out(`${report.path}: ${report.file}${report.dryRun ? ' (dry run: nothing changed)' : ''}`);
  for (const step of report.steps) out(`  ${step.done ? 'done' : 'would run'}: ${step.what}${step.detail ? ` (${step.detail})` : ''}`);
}

/** Registers `unit`, `install`, `uninstall` and `supervisor`. */
export function registerUnit(program: Command): void {
  unitOptions(program.command('unit')
    .description("print the systemd unit for netheal (or, with --service, for your own service)"))
    .option('--json', 'machine-readable JSON output: {name, content}')
    .action(action((flags: UnitFlags & { json?: boolean }) => {
      const { name, text } = unitFor(flags);
      process.stdout.write(flags.json === true ? `${JSON.stringify({ name, content: text })}\n` : text);
    }));

  unitOptions(program.command('install')
    .description('write the unit, daemon-reload, enable --now; never overwrites a changed file without --force'))
    .option('--dry-run', 'say what would be done, do nothing')
    .option('--force', 'replace a unit file that differs')
    .option('--root <dir>', 'offline root (systemctl --root), an absolute existing directory: write ROOT/etc/systemd/system, enable without starting', rootOption)
    .option('--no-enable', 'only write the file (and daemon-reload)')
    .option('--json', 'machine-readable JSON output')
    .action(action(async (flags: UnitFlags & { dryRun?: boolean; force?: boolean; root?: string; enable?: boolean; json?: boolean }) => {
      const { name, text } = unitFor(flags);
      const report = await installUnit({ name, content: text, root: flags.root, dryRun: flags.dryRun, force: flags.force, enable: flags.enable });
      printReport(report, flags.json === true);
    }));

  program.command('uninstall')
    .description('disable --now and remove a unit netheal generated')
    .option('--service <NAME>', 'the service unit (default netheal)')
    .option('--dry-run', 'say what would be done, do nothing')
    .option('--force', 'remove a unit that netheal did not generate')
    .option('--root <dir>', 'offline root (systemctl --root), an absolute existing directory', rootOption)
    .option('--json', 'machine-readable JSON output')
    .action(action(async (flags: { service?: string; dryRun?: boolean; force?: boolean; root?: string; json?: boolean }) => {
      const name = flags.service === undefined ? NETHEAL_UNIT_NAME : `${flags.service.replace(/\.service$/, '')}.service`;
      printReport(await uninstallUnit({ name, root: flags.root, dryRun: flags.dryRun, force: flags.force }), flags.json === true);
    }));

  program.command('supervisor')
    .description('print a supervisord [program:x] section for hosts without systemd')
    .requiredOption('--service <NAME>', 'program name')
    .requiredOption('--exec <CMD>', 'command line')
    .option('--startsecs <S>', 'seconds it must stay up to count as started (default 2)', intOption('--startsecs', 0, 3600))
    .option('--startretries <N>', 'start attempts before FATAL (default 1000)', intOption('--startretries', 0, 1_000_000))
    .option('--stopwaitsecs <S>', 'seconds between stop signal and SIGKILL (default 30)', intOption('--stopwaitsecs', 1, 3600))
    .option('--user <NAME>', 'run as this user')
    .option('--directory <DIR>', 'working directory')
    .option('--env <NAME=VALUE>', 'environment (repeatable)', collectEnv)
    .option('--json', 'machine-readable JSON output: {name, content}')
    .action(action((flags: { service: string; exec: string; startsecs?: number; startretries?: number; stopwaitsecs?: number; user?: string; directory?: string; env?: Record<string, string>; json?: boolean }) => {
      const content = supervisorSection({
        name: flags.service, command: flags.exec, startsecs: flags.startsecs, startretries: flags.startretries,
        stopwaitsecs: flags.stopwaitsecs, user: flags.user, directory: flags.directory, environment: flags.env,
      });
      process.stdout.write(flags.json === true ? `${JSON.stringify({ name: flags.service, content })}\n` : content);
    }));
}
