/** `netheal status`: the running daemon's view, read from its root-only status socket. */
import { Command } from 'commander';
import { DEFAULT_STATUS_SOCKET, readStatus } from '../daemon/status';
import { ExitCode, NethealError } from '../errors';
import { action, out, printTable, reportError } from './common';

interface StatusOptions {
  json?: boolean;
  check?: boolean;
  socket: string;
}

/**
 * `netheal status` exit codes, by health (documented in README "Exit codes"):
 * 0 every watched interface healthy; 1 degraded (one suspect or recovering, none down);
 * 3 one down, or no daemon answers / its answer cannot be read.
 */
export const STATUS_EXIT = { OK: ExitCode.OK, DEGRADED: ExitCode.FAILURE, DOWN: ExitCode.STATUS_DOWN } as const;

/** The verdict on a status document: the exit code and the one-line `--check` form. */
export function statusVerdict(status: Pick<StatusDocument, 'interfaces'>): { code: number; line: string } {
  const entries = Object.entries(status.interfaces ?? {});
  const down = entries.some(([, s]) => s.state === 'down');
  const degraded = entries.some(([, s]) => s.state !== 'healthy');
  const [level, code] = down ? ['CRITICAL', STATUS_EXIT.DOWN] : degraded ? ['WARNING', STATUS_EXIT.DEGRADED] : ['OK', STATUS_EXIT.OK];
  const what = entries.length === 0
    ? 'no interfaces watched'
    : entries.map(([name, s]) => `${name} ${s.state}${s.state !== 'healthy' && s.reasons.length > 0 ? ` (${s.reasons.join(', ')})` : ''}`).join(', ');
  return { code, line: `${level}: ${what}` };
}

interface StatusDocument {
  pid: number;
  startedAt: string;
  /** The last SIGHUP reload: refused (a bad file), failed, or applied; null before any. */
  lastReload?: { ok: boolean; time: string; error: string | null } | null;
  netns: string | null;
  dryRun: boolean;
  interfaces: Record<string, {
    state: string;
    reasons: string[];
    ladder: { phase: string; action: string | null; waitingFor: string | null };
    attempts: number;
    damping: { penalty: number; suppressed: boolean };
    budget: { remaining: number; maxActions: number };
    lastActions: Array<{ kind: string; result: { status: string; detail?: string } }>;
  }>;
  targets: Record<string, { address: string | null; state: string; loss: number | null; rtt: { avg: number; p99: number } | null }>;
  recentEvents: Array<{ time: string; kind: string; iface?: string; text: string }>;
}

export function registerStatus(program: Command): void {
  program.command('status')
    .description('show what the running daemon sees and did (health, evidence, probes, actions, damping, budget)')
    .option('--json', 'machine-readable JSON output')
    .option('--socket <path>', 'the daemon\'s status socket', DEFAULT_STATUS_SOCKET)
    .option('--check', 'print one line (OK: / WARNING: / CRITICAL: ...) for monitoring; the exit code says the same')
    .addHelpText('after', '\nExit codes: 0 all interfaces healthy, 1 degraded (suspect or recovering),\n3 an interface is down or no daemon answers, 2 usage, 77 not root.')
    .action(action(async (options: StatusOptions) => {
      let status: StatusDocument;
      try {
        status = (await readStatus(options.socket)) as StatusDocument;
      } catch (error) {
        // Nothing answers, or the answer cannot be read: nothing is watching, as bad as down.
        // A privilege problem stays 77: that is the caller's to fix, not the network's.
        if (!(error instanceof NethealError) || error.code === 'NETHEAL_ERR_PRIVILEGE') throw error;
        if (options.check === true) out(`CRITICAL: ${error.message}`);
        else reportError(error);
        return STATUS_EXIT.DOWN;
      }
      const verdict = statusVerdict(status);
      if (options.check === true) {
        out(verdict.line);
        return verdict.code;
      }
      if (options.json) {
        out(JSON.stringify(status));
        return verdict.code;
      }
      out(`netheal daemon pid ${status.pid}, up since ${status.startedAt}${status.netns ? `, namespace ${status.netns}` : ''}${status.dryRun ? ' (dry run)' : ''}`);
      const reload = status.lastReload;
      if (reload) out(reload.ok ? `last reload applied at ${reload.time}` : `LAST RELOAD REFUSED at ${reload.time}, running the previous configuration: ${reload.error}`);
      out('');
      printTable(['INTERFACE', 'STATE', 'LADDER', 'ATTEMPTS', 'DAMPING', 'BUDGET', 'EVIDENCE'],
        Object.entries(status.interfaces).map(([name, s]) => [
          name, s.state,
          s.ladder.phase + (s.ladder.action ? ` ${s.ladder.action}` : '') + (s.ladder.waitingFor ? ` (${s.ladder.waitingFor})` : ''),
          s.attempts, `${s.damping.penalty.toFixed(0)}${s.damping.suppressed ? ' suppressed' : ''}`,
          `${s.budget.remaining}/${s.budget.maxActions}`, s.reasons.join(', ') || '-',
        ]));
      const targets = Object.entries(status.targets);
      if (targets.length > 0) {
        out('');
        printTable(['TARGET', 'ADDRESS', 'STATE', 'RTT AVG', 'RTT P99', 'LOSS'], targets.map(([name, t]) => [
          name, t.address, t.state, t.rtt ? `${t.rtt.avg.toFixed(3)} ms` : '-', t.rtt ? `${t.rtt.p99.toFixed(3)} ms` : '-',
          t.loss === null ? '-' : `${(t.loss * 100).toFixed(1)}%`,
        ]));
      }
      const actions = Object.entries(status.interfaces).flatMap(([name, s]) => s.lastActions.map((a) => `${name}: ${a.kind}: ${a.result.status}${a.result.detail ? ` (${a.result.detail})` : ''}`));
      if (actions.length > 0) {
        out('');
        out('Last actions:');
        for (const line of actions) out(`  ${line}`);
      }
      out('');
      out('Recent events:');
      for (const e of status.recentEvents.slice(-15)) out(`  ${e.time} ${e.kind.padEnd(7)} ${e.text}`);
      return verdict.code;
    }));
}
