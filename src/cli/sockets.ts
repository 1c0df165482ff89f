/** `netheal sockets`, `netheal sockets kill`, `netheal port-free` (issue #4). */
import { Command, InvalidArgumentError } from 'commander';
import { ExitCode, NethealError } from '../errors';
import { STATE_NAMES, SocketState } from '../kernel/inet-diag';
import { SocketFilter, SocketProtocol, parsePrefix } from '../kernel/socket-filter';
import { DestroyResult, SocketInfo, Sockets } from '../kernel/sockets';
import type { PortStatus } from '../service/port-status';
import { CommonOptions, action, intOption, numberOption, out, printTable, requireInterface, withCommonOptions } from './common';

interface FilterOptions extends CommonOptions {
  state?: SocketState[];
  sport?: number;
  dport?: number;
  src?: string;
  dst?: string;
  dev?: string;
  uid?: number;
  tcp?: boolean;
  udp?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
}

function stateList(value: string): SocketState[] {
  const states = value.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0);
  if (states.length === 0) throw new InvalidArgumentError('--state needs at least one state name');
  for (const state of states) {
    if (!STATE_NAMES.includes(state as SocketState)) {
      throw new InvalidArgumentError(`--state: unknown state ${JSON.stringify(state)} (known: ${STATE_NAMES.join(', ')})`);
    }
  }
  return states as SocketState[];
}

function prefixOption(flag: string): (value: string) => string {
  return (value: string) => {
    try {
      parsePrefix(value, flag);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    return value;
  };
}

function devOption(value: string): string {
  if (value.length === 0 || value.length > 15 || /[\s/\0]/.test(value)) {
    throw new InvalidArgumentError(`--dev: ${JSON.stringify(value)} is not an interface name`);
  }
  return value;
}

function withFilters(command: Command): Command {
  return command
    .option('--state <list>', `comma-separated states: ${STATE_NAMES.join(', ')}`, stateList)
    .option('--sport <N>', 'local port', intOption('--sport', 0, 65535))
    .option('--dport <N>', 'remote port', intOption('--dport', 0, 65535))
    .option('--src <ADDR[/LEN]>', 'local address or prefix', prefixOption('--src'))
    .option('--dst <ADDR[/LEN]>', 'remote address or prefix', prefixOption('--dst'))
    .option('--dev <IF>', 'bound device (SO_BINDTODEVICE), not the egress interface', devOption)
    .option('--uid <N>', 'owner uid', intOption('--uid', 0, 0xffffffff))
    .option('--tcp', 'TCP only')
    .option('--udp', 'UDP only')
    .option('-4, --ipv4', 'IPv4 only')
    .option('-6, --ipv6', 'IPv6 only');
}

function toFilter(options: FilterOptions): SocketFilter {
  const filter: SocketFilter = {};
  if (options.state !== undefined) filter.state = options.state;
  if (options.sport !== undefined) filter.sport = options.sport;
  if (options.dport !== undefined) filter.dport = options.dport;
  if (options.src !== undefined) filter.src = options.src;
  if (options.dst !== undefined) filter.dst = options.dst;
  if (options.dev !== undefined) filter.dev = /^\d+$/.test(options.dev) ? Number(options.dev) : options.dev;
  if (options.uid !== undefined) filter.uid = options.uid;
  const protocols: SocketProtocol[] = [];
  if (options.tcp === true) protocols.push('tcp');
  if (options.udp === true) protocols.push('udp');
  if (protocols.length > 0) filter.protocol = protocols;
  if (options.ipv4 === true && options.ipv6 !== true) filter.family = 4;
  if (options.ipv6 === true && options.ipv4 !== true) filter.family = 6;
  return filter;
}

function endpoint(family: 4 | 6, address: string, port: number): string {
  const host = family === 6 ? `[${address}]` : address;
  return `${host}:${port === 0 ? '*' : port}`;
}

function ownersText(socket: SocketInfo): string {
  if (socket.owners === undefined) return '';
  return socket.owners.map((o) => `${o.command}(${o.pid})`).join(',') || '-';
}

function printSockets(sockets: SocketInfo[], owners: boolean): void {
  const headers = ['Proto', 'State', 'Local', 'Peer', 'Dev', 'Uid', 'Inode'];
  if (owners) headers.push('Owners');
  printTable(headers, sockets.map((s) => {
    const row: Array<string | number | null> = [
      `${s.protocol}${s.family === 6 ? '6' : ''}`, s.state, endpoint(s.family, s.src, s.sport), endpoint(s.family, s.dst, s.dport),
      s.boundIfindex, s.uid, s.inode,
    ];
    if (owners) row.push(ownersText(s));
    return row;
  }));
}

function destroySummary(result: DestroyResult): Record<string, unknown> {
  const summary: Record<string, unknown> = {
    matched: result.matched, destroyed: result.destroyed, gone: result.gone, failed: result.failed,
  };
  if (result.dryRun === true) {
    summary.dryRun = true;
    summary.sockets = result.sockets ?? [];
  }
  return summary;
}

function printDestroy(result: DestroyResult, json: boolean): void {
  if (result.unsupported !== undefined) process.stderr.write(`netheal: ${result.unsupported}\n`);
  if (json) {
    out(JSON.stringify(destroySummary(result)));
    return;
  }
  if (result.dryRun === true) {
    out(`dry run: ${result.matched} socket(s) would be destroyed`);
    if ((result.sockets ?? []).length > 0) printSockets(result.sockets ?? [], false);
    return;
  }
  out(`matched ${result.matched}, destroyed ${result.destroyed}, gone ${result.gone}, failed ${result.failed.length}`);
  for (const f of result.failed) {
    out(`  ${f.protocol} ${f.state} ${endpoint(f.family, f.src, f.sport)} -> ${endpoint(f.family, f.dst, f.dport)}: ${f.error}`);
  }
}

function brief(socket: SocketInfo): Record<string, unknown> {
  return {
    protocol: socket.protocol, family: socket.family, state: socket.state, src: socket.src, sport: socket.sport,
    dst: socket.dst, dport: socket.dport, owners: socket.owners ?? [],
  };
}

function printPort(status: PortStatus, killed: DestroyResult | undefined, json: boolean): void {
  if (json) {
    const report: Record<string, unknown> = {
      port: status.port, free: status.free, holders: status.holders.map(brief), stale: status.stale.map(brief),
    };
    if (killed !== undefined) report.killed = destroySummary(killed);
    out(JSON.stringify(report));
    return;
  }
  if (killed !== undefined) out(`killed stale sockets: destroyed ${killed.destroyed}, gone ${killed.gone}, failed ${killed.failed.length}`);
  if (status.free) {
    out(`port ${status.port} is free`);
    return;
  }
  if (status.holders.length > 0) {
    out(`port ${status.port} is held by:`);
    for (const h of status.holders) {
      const who = (h.owners ?? []).map((o) => `pid ${o.pid} (${o.command})`).join(', ') || 'no process found';
      out(`  ${who}: ${h.protocol} ${h.state} ${endpoint(h.family, h.src, h.sport)}`);
    }
  } else {
    const counts = new Map<string, number>();
    for (const s of status.stale) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    out(`port ${status.port} has no listener but ${status.stale.length} stale socket(s) (${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}) ` +
      'that make bind() without SO_REUSEADDR fail; --kill-stale destroys them');
    for (const s of status.stale) {
      const who = (s.owners ?? []).map((o) => `pid ${o.pid} (${o.command})`).join(', ');
      out(`  ${s.protocol} ${s.state} ${endpoint(s.family, s.src, s.sport)} -> ${endpoint(s.family, s.dst, s.dport)}${who ? ` ${who}` : ''}`);
    }
  }
}

function mergeKilled(total: DestroyResult | undefined, next: DestroyResult): DestroyResult {
  if (total === undefined) return next;
  return {
    matched: total.matched + next.matched,
    destroyed: total.destroyed + next.destroyed,
    gone: total.gone + next.gone,
    failed: [...total.failed, ...next.failed],
    ...(total.unsupported ?? next.unsupported ? { unsupported: total.unsupported ?? next.unsupported } : {}),
  };
}

/** Registers `sockets`, `sockets kill` and `port-free`. */
export function registerSockets(program: Command): void {
  // Options after `sockets kill` must reach kill, not `sockets`: commander needs positional
  // options on every ancestor for that (the root has only --help/--version).
  program.enablePositionalOptions();
  const sockets = withFilters(withCommonOptions(program.command('sockets')
    .description('list TCP and UDP sockets (sock_diag), filtered in the kernel')))
    .option('--owners', 'add the processes holding each socket (pid, command)')
    // `sockets kill --sport N`: the options after `kill` belong to kill.
    .enablePositionalOptions()
    .action(action(async (options: FilterOptions & { owners?: boolean }) => {
      const filter = toFilter(options);
      if (typeof filter.dev === 'string') await requireInterface(filter.dev, options.netns, '--dev');
      const diag = new Sockets({ netns: options.netns });
      try {
        const list = await diag.query(filter, { owners: options.owners === true });
        if (options.json === true) out(JSON.stringify(list));
        else printSockets(list, options.owners === true);
      } finally {
        diag.close();
      }
    }));

  withFilters(withCommonOptions(sockets.command('kill')
    .description('destroy the matching sockets (SOCK_DESTROY); never listeners unless --state listen')))
    .option('--dry-run', 'list what would be destroyed, destroy nothing')
    .option('--all', 'permit an empty filter (every socket but listeners)')
    .action(action(async (own: FilterOptions & { dryRun?: boolean; all?: boolean }, command: Command) => {
      // `sockets --netns X kill ...`: options given before `kill` belong to `sockets`; they
      // count for kill too (else --netns would be dropped and kill would act on this namespace).
      const options = { ...(command.parent?.opts() as FilterOptions), ...own };
      const filter = toFilter(options);
      if (typeof filter.dev === 'string') await requireInterface(filter.dev, options.netns, '--dev');
      const narrowing = ['state', 'sport', 'dport', 'src', 'dst', 'dev', 'uid'].some((k) => k in filter);
      if (!narrowing && options.all !== true) {
        throw new NethealError('NETHEAL_ERR_USAGE',
          'sockets kill: refusing an empty filter (it would hit every socket); give --state/--sport/--dport/--src/--dst/--dev/--uid, or --all');
      }
      const diag = new Sockets({ netns: options.netns });
      try {
        const result = await diag.destroy(filter, { dryRun: options.dryRun === true, all: options.all === true });
        printDestroy(result, options.json === true);
        return result.failed.length > 0 ? ExitCode.FAILURE : ExitCode.OK;
      } finally {
        diag.close();
      }
    }));

  withCommonOptions(program.command('port-free')
    .description('exit 0 when local PORT can be bound; otherwise say who holds it and exit 1')
    .argument('<PORT>', 'local port', intOption('PORT', 1, 65535)))
    .option('--wait <SECONDS>', 'poll until the port is free or the time is up', numberOption('--wait', 0, 86400))
    .option('--kill-stale', 'destroy orphaned leftovers on the port (time-wait, fin-wait, closing, last-ack: no process holds them)')
    .option('--tcp', 'TCP only')
    .option('--udp', 'UDP only')
    .action(action(async (port: number, options: CommonOptions & { wait?: number; killStale?: boolean; tcp?: boolean; udp?: boolean }) => {
      // Loaded here: `sockets kill` (a fresh process, timed against `ss -K`) does not need it.
      const { portStatus } = require('../service/port-status') as typeof import('../service/port-status');
      const protocols: SocketProtocol[] = [];
      if (options.tcp === true) protocols.push('tcp');
      if (options.udp === true) protocols.push('udp');
      const diag = new Sockets({ netns: options.netns });
      try {
        const deadline = Date.now() + (options.wait ?? 0) * 1000;
        let killed: DestroyResult | undefined;
        for (;;) {
          let status = await portStatus(diag, port, protocols.length > 0 ? protocols : undefined);
          if (options.killStale === true && status.holders.length === 0 && status.stale.length > 0) {
            killed = mergeKilled(killed, await diag.destroySockets(status.stale));
            status = await portStatus(diag, port, protocols.length > 0 ? protocols : undefined);
          }
          if (status.free || Date.now() >= deadline) {
            if (killed?.unsupported !== undefined) process.stderr.write(`netheal: ${killed.unsupported}\n`);
            printPort(status, killed, options.json === true);
            return status.free ? ExitCode.OK : ExitCode.FAILURE;
          }
          await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
        }
      } finally {
        diag.close();
      }
    }));
}
