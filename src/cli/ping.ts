/**
 * `netheal ping TARGET...`: probes targets with the Prober and prints one line per probe
 * (JSON lines with --json: {target, seq, status, rttMs, code, from}), then a summary like
 * ping's. With --json the summary is one JSON line per target on stdout
 * ({summary: true, target, address, sent, received, lossPct, rttMs}) and the human text on
 * stderr.
 */
import { Command } from 'commander';
import { isIP } from 'node:net';
import { NethealError } from '../errors';
import { LinkMonitor } from '../monitor/link-monitor';
import { GatewaySource, ProbeResult, Prober, TargetStats } from '../monitor/prober';
import { CommonOptions, action, intOption, numberOption, out, requireInterface, withCommonOptions } from './common';

interface PingOptions extends CommonOptions {
  interval: number;
  timeout?: number;
  count?: number;
  interface?: string;
}

function round(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 1000) / 1000;
}

function humanLine(r: ProbeResult): string {
  switch (r.status) {
    case 'reply': return `reply from ${r.from ?? r.address}: seq=${r.seq} time=${round(r.rttMs)} ms${r.target !== r.address ? ` (${r.target})` : ''}`;
    case 'timeout': return `timeout ${r.address}: seq=${r.seq}`;
    case 'unreachable': return `unreachable ${r.address}: seq=${r.seq} ${r.reason ?? ''} (type ${r.type} code ${r.code}) from ${r.from ?? '?'}`;
    default: return `error ${r.address}: seq=${r.seq} ${r.reason ?? ''}`;
  }
}

/** Percent of the finished probes that got no reply, one decimal. */
function lossPct(s: TargetStats, results: number): number {
  return results === 0 ? 0 : Math.round((1 - s.received / results) * 1000) / 10;
}

/**
 * The --json summary line of a target: {"summary":true, target, address, sent, received,
 * lossPct, rttMs: {min, avg, max, p99, jitter} | null}.
 */
function summaryJson(s: TargetStats, results: number): string {
  const rtt = s.rtt === null ? null : {
    min: round(s.rtt.min), avg: round(s.rtt.avg), max: round(s.rtt.max), p99: round(s.rtt.p99), jitter: round(s.rtt.jitter),
  };
  return JSON.stringify({ summary: true, target: s.target, address: s.address, sent: s.sent, received: s.received, lossPct: lossPct(s, results), rttMs: rtt });
}

function summary(s: TargetStats, results: number): string {
  const lines = [`--- ${s.target}${s.address !== null && s.address !== s.target ? ` (${s.address})` : ''} ping statistics ---`];
  const loss = lossPct(s, results);
  lines.push(`${s.sent} transmitted, ${s.received} received, ${loss}% packet loss`);
  if (s.rtt !== null) {
    const r = s.rtt;
    lines.push(`rtt min/avg/max/p99/jitter = ${[r.min, r.avg, r.max, r.p99, r.jitter].map((x) => x.toFixed(3)).join('/')} ms`);
  }
  return lines.join('\n');
}

/** Registers `netheal ping`. */
export function registerPing(program: Command): void {
  withCommonOptions(program.command('ping')
    .description('probe targets with ICMP/ICMPv6 echo (raw socket with CAP_NET_RAW, else a ping socket)')
    .argument('<target...>', 'IPv4/IPv6 addresses, or "gateway" / "gateway6" for the current default gateway')
    .option('--interval <ms>', 'milliseconds between probes per target (>= 10)', numberOption('--interval', 10, 3600000), 1000)
    .option('--timeout <ms>', 'milliseconds to wait for each reply (default 1000)', numberOption('--timeout', 1, 60000))
    .option('--count <n>', 'stop after N probes per target', intOption('--count', 1, 1e9))
    .option('--interface <if>', 'probe out of this interface (SO_BINDTODEVICE)'))
    .action(action(async (targets: string[], options: PingOptions) => {
      for (const t of targets) {
        if (t !== 'gateway' && t !== 'gateway6' && isIP(t) === 0) {
          throw new NethealError('NETHEAL_ERR_USAGE', `ping: ${JSON.stringify(t)} is not an IPv4/IPv6 address (nor "gateway"/"gateway6")`);
        }
      }
      if (new Set(targets).size !== targets.length) throw new NethealError('NETHEAL_ERR_USAGE', 'ping: a target is given twice');
      if (options.interface !== undefined) await requireInterface(options.interface, options.netns, '--interface');
      let monitor: (GatewaySource & { close(): void }) | undefined;
      if (targets.some((t) => t.startsWith('gateway'))) {
        const m = new LinkMonitor(options.netns === undefined ? {} : { netns: options.netns });
        await m.start();
        monitor = m as unknown as GatewaySource & { close(): void };
      }
      let prober: Prober;
      try {
        prober = new Prober({
        ...(options.netns === undefined ? {} : { netns: options.netns }),
        ...(options.interface === undefined ? {} : { device: options.interface }),
        ...(monitor === undefined ? {} : { gatewaySource: monitor }),
        interval: options.interval,
        timeout: options.timeout ?? 1000,
        window: 100000,
        });
      } catch (error) {
        monitor?.close();
        throw error;
      }
      const results = new Map<string, number>();
      const json = options.json === true;
      let finish: () => void = () => {};
      const done = new Promise<void>((resolve) => { finish = resolve; });
      prober.on('probe', (r: ProbeResult) => {
        const n = (results.get(r.target) ?? 0) + 1;
        results.set(r.target, n);
        out(json
          ? JSON.stringify({ target: r.target, seq: r.seq, status: r.status, rttMs: round(r.rttMs), code: r.code, from: r.from })
          : humanLine(r));
        if (options.count !== undefined && [...results.values()].length === targets.length &&
            [...results.values()].every((x) => x >= options.count!)) finish();
      });
      let exitCode = 1;
      const onSignal = (): void => finish();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        for (const t of targets) {
          if (t === 'gateway' || t === 'gateway6') prober.add('gateway', { name: t, family: t === 'gateway' ? 4 : 6, ...(options.count === undefined ? {} : { count: options.count }) });
          else prober.add(t, options.count === undefined ? {} : { count: options.count });
        }
        // A gateway target without a default route has nothing to probe: say so instead of
        // waiting (with --count) for results that cannot come.
        for (const t of targets) {
          if (prober.stats(t).address !== null) continue;
          out(json
            ? JSON.stringify({ target: t, seq: 0, status: 'error', rttMs: null, code: null, from: null })
            : `error ${t}: no IPv${t === 'gateway6' ? 6 : 4} default gateway`);
          if (options.count !== undefined) results.set(t, options.count);
        }
        if (options.count !== undefined && results.size === targets.length && [...results.values()].every((x) => x >= options.count!)) finish();
        await done;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        const stats = targets.filter((t) => prober.targetNames().includes(t)).map((t) => prober.stats(t));
        prober.close();
        monitor?.close();
        const text = stats.map((s) => summary(s, results.get(s.target) ?? 0)).join('\n');
        if (json) {
          // stdout stays JSON lines: one summary line per target after the probes; the
          // human summary goes to stderr.
          for (const s of stats) out(summaryJson(s, results.get(s.target) ?? 0));
          if (text !== '') process.stderr.write(`${text}\n`);
        } else if (text !== '') {
          out(text);
        }
        // Like ping: success when every target answered at least once.
        if (stats.length === targets.length && stats.every((s) => s.received > 0)) exitCode = 0;
      }
      return exitCode;
    }));
}
