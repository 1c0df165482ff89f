/** `netheal doctor` and `netheal tune` (issue #6). */
import { Command, InvalidArgumentError } from 'commander';
import { ExitCode } from '../errors';
import { Finding, runDoctor } from '../service/doctor';
import { tune } from '../service/tune';
import { CommonOptions, action, out, withCommonOptions } from './common';

const MARK: Record<Finding['severity'], string> = { ok: 'ok  ', info: 'info', warning: 'WARN', error: 'ERR ' };

function collectSet(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--set wants KEY=VALUE, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, eq).trim()]: value.slice(eq + 1).trim() };
}

/** Registers `doctor` and `tune`. */
export function registerDoctor(program: Command): void {
  withCommonOptions(program.command('doctor')
    .description('check the TCP, file and manager settings that decide how services recover; explain each finding'))
    .option('--no-journal', 'skip the journal search for "too many open files"')
    .option('--all', 'also print the findings that are fine')
    .action(action(async (options: CommonOptions & { journal?: boolean; all?: boolean }) => {
      const report = await runDoctor({ netns: options.netns, journal: options.journal });
      if (options.json === true) {
        out(JSON.stringify(report));
      } else {
        for (const f of report.findings) {
          if (f.severity === 'ok' && options.all !== true) continue;
          out(`${MARK[f.severity]} ${f.title}`);
          out(`     ${f.explanation}`);
          if (f.fix !== undefined) out(`     fix: netheal tune --set ${f.fix.key}=${JSON.stringify(f.fix.value)}`);
        }
      }
      // Exit 1 when something needs attention, so scripts can gate on it.
      return report.findings.some((f) => f.severity === 'warning' || f.severity === 'error') ? ExitCode.FAILURE : ExitCode.OK;
    }));

  withCommonOptions(program.command('tune')
    .description('write a commented sysctl.d file with the fixes doctor found (or --set values) and, with --apply, apply it'))
    .option('--apply', 'write the file and apply the values (with --netns: only inside that namespace)')
    .option('--dry-run', 'print what would be written and applied, change nothing')
    .option('--file <path>', 'the file (default /etc/sysctl.d/90-netheal.conf; with --netns none unless given)')
    .option('--set <KEY=VALUE>', 'set this value (repeatable); refused outside its sane range', collectSet)
    .action(action(async (options: CommonOptions & { apply?: boolean; dryRun?: boolean; file?: string; set?: Record<string, string> }) => {
      const report = await tune({ netns: options.netns, file: options.file, set: options.set, apply: options.apply, dryRun: options.dryRun });
      if (options.json === true) {
        out(JSON.stringify(report));
        return;
      }
      process.stdout.write(report.content);
      const where = report.netns === null ? 'this host' : `namespace ${report.netns}`;
      if (report.applied) process.stderr.write(`netheal: applied ${report.settings.length} settings in ${where}${report.file ? `; wrote ${report.file}` : ''}\n`);
      else if (report.settings.length > 0) process.stderr.write(`netheal: nothing changed (${report.dryRun ? 'dry run' : 'use --apply'})${report.file ? `; would write ${report.file}` : ''}\n`);
    }));
}
