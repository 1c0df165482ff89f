/**
 * `netheal tune`: a commented sysctl.d file with the fixes the doctor found (or values given
 * with `set`), each checked against a sane range; applied on request, inside a namespace
 * when asked (and then ONLY there: the host's /etc/sysctl.d is written only if `file` says so).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { NethealError } from '../errors';
import { requireNetnsEntry, resolveNetns } from '../netns';
import { DOCTOR_SYSCTLS, Finding, TUNABLES, judgeSysctls } from './doctor';
import { readNetstat, readSysctls, writeSysctls } from './sysctl';

/** Where `tune --apply` writes by default (host only). */
export const DEFAULT_TUNE_FILE = '/etc/sysctl.d/90-netheal.conf';

/** Options of {@link tune}. */
export interface TuneOptions {
  netns?: string;
  /** The file to write (default /etc/sysctl.d/90-netheal.conf for the host; none inside a namespace). */
  file?: string;
  /** Values to set, overriding recommendations: key -> value. */
  set?: Record<string, string>;
  /** Write the file and apply the values. Without it, only plan. */
  apply?: boolean;
  /** Plan, print, change nothing (even with apply). */
  dryRun?: boolean;
}

/** One setting of a tune. */
export interface TuneSetting {
  key: string;
  current: string | null;
  value: string;
  /** Why (the doctor's title and explanation, or "set explicitly"). */
  reason: string;
}

/** What tune did or would do. */
export interface TuneReport {
  netns: string | null;
  settings: TuneSetting[];
  /** The file content. */
  content: string;
  /** The file written, or null. */
  file: string | null;
  applied: boolean;
  dryRun: boolean;
}

/** Checks one key=value against the sane ranges; throws NETHEAL_ERR_USAGE naming it. */
export function checkTunable(key: string, value: string, inNamespace: boolean): void {
  const rule = TUNABLES[key];
  if (rule === undefined) {
    throw new NethealError('NETHEAL_ERR_USAGE', `${key}: not a sysctl netheal tunes (known: ${Object.keys(TUNABLES).join(', ')})`);
  }
  const problem = rule.check(value);
  if (problem !== undefined) throw new NethealError('NETHEAL_ERR_USAGE', `${key} = ${JSON.stringify(value)} refused: ${problem} (sane: ${rule.describe})`);
  if (inNamespace && !rule.namespaced) throw new NethealError('NETHEAL_ERR_USAGE', `${key} is host-wide, not per namespace: refused with --netns`);
}

function comment(text: string, width = 96): string[] {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '#';
  for (const word of words) {
    if (line.length + word.length + 1 > width && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  if (line !== '#') lines.push(line);
  return lines;
}

/** Renders the sysctl.d file. */
export function renderTuneFile(settings: TuneSetting[], netns: string | null): string {
  const out = [
    '# Written by `netheal tune`. Each value was checked against a sane range; see `netheal doctor`.',
    netns === null ? '# Applied with `sysctl -p FILE` (and at boot by systemd-sysctl).' : `# For the network namespace ${netns}: apply with \`nsenter --net=${netns} sysctl -p FILE\`.`,
  ];
  for (const s of settings) {
    out.push('', ...comment(s.reason), `# was: ${s.current ?? 'unset'}`, `${s.key} = ${s.value}`);
  }
  return `${out.join('\n')}\n`;
}

/** Plans (and with apply, writes and applies) the settings. */
export async function tune(options: TuneOptions = {}): Promise<TuneReport> {
  const netnsPath = resolveNetns(options.netns, '--netns');
  requireNetnsEntry(netnsPath, '--netns');
  const inNamespace = netnsPath !== undefined;
  // Every explicit value is checked before anything is read or written.
  const explicit = Object.entries(options.set ?? {});
  for (const [k, v] of explicit) checkTunable(k, v, inNamespace);

  const current = await readSysctls([...DOCTOR_SYSCTLS], netnsPath);
  let counters = new Map<string, number>();
  try {
    counters = await readNetstat(netnsPath);
  } catch {
    // counters only sharpen the tw_buckets finding
  }
  const findings: Finding[] = judgeSysctls(current, counters, null);
  const settings = new Map<string, TuneSetting>();
  for (const f of findings) {
    if (f.fix === undefined) continue;
    checkTunable(f.fix.key, f.fix.value, inNamespace);
    settings.set(f.fix.key, { key: f.fix.key, current: current.get(f.fix.key) ?? null, value: f.fix.value, reason: `${f.title}: ${f.explanation}` });
  }
  for (const [k, v] of explicit) {
    const normalized = v.trim().replace(/\s+/g, ' ');
    settings.set(k, { key: k, current: current.get(k) ?? null, value: normalized, reason: `${k}: set explicitly (sane: ${TUNABLES[k]!.describe}).` });
  }
  const list = [...settings.values()].filter((s) => s.current !== s.value);
  const content = renderTuneFile(list, netnsPath ?? null);
  const dryRun = options.dryRun === true;
  const file = options.file ?? (inNamespace ? undefined : DEFAULT_TUNE_FILE);
  const report: TuneReport = { netns: netnsPath ?? null, settings: list, content, file: null, applied: false, dryRun };
  if (options.apply !== true || dryRun) return { ...report, file: file ?? null };
  if (file !== undefined) {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.netheal-tmp`;
    writeFileSync(tmp, content, { mode: 0o644 });
    renameSync(tmp, file);
    report.file = file;
  }
  await writeSysctls(list.map((s) => [s.key, s.value]), netnsPath);
  report.applied = true;
  return report;
}
