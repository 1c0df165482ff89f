/** `netheal status`: the running daemon's view, read from its root-only status socket. */
import { Command } from 'commander';
import { DEFAULT_STATUS_SOCKET, readStatus } from '../daemon/status';
import { action, out, printTable } from './common';

interface StatusOptions {
  json?: boolean;
  socket: string;
}

interface StatusDocument {
  pid: number;
  startedAt: string;
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
    .action(action(async (options: StatusOptions) => {
      const status = (await readStatus(options.socket)) as StatusDocument;
      if (options.json) {
        out(JSON.stringify(status));
        return;
      }
      out(`netheal daemon pid ${status.pid}, up since ${status.startedAt}${status.netns ? `, namespace ${status.netns}` : ''}${status.dryRun ? ' (dry run)' : ''}`);
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
    }));
}
