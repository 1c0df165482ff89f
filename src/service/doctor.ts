/**
 * `netheal doctor`: the TCP and service settings that decide how a server recovers, each
 * finding with an explanation that is true on this kernel (docs/kernel-facts.md, "TCP facts that
 * popular recipes get wrong").
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { detectManagers } from '../actions/manager';
import { Sockets } from '../kernel/sockets';
import { requireNetnsEntry, resolveNetns } from '../netns';
import { readNetstat, readSysctls, runIn } from './sysctl';

/** How much a finding matters. */
export type Severity = 'ok' | 'info' | 'warning' | 'error';

/** One finding. */
export interface Finding {
  /** Stable id, e.g. "sysctl.tcp_fin_timeout". */
  id: string;
  severity: Severity;
  /** One line. */
  title: string;
  /** The value looked at, as read. */
  value?: string | number | null;
  /** Why it matters, in plain words. */
  explanation: string;
  /** For a sysctl `tune` can fix: the key and the value it would set. */
  fix?: { key: string; value: string };
}

/** The sysctls the doctor reads; the net.* ones are per network namespace. */
export const DOCTOR_SYSCTLS = [
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_max_tw_buckets',
  'net.ipv4.ip_local_port_range',
  'net.core.somaxconn',
  'net.ipv4.ping_group_range',
  'net.ipv4.tcp_migrate_req',
  'net.ipv4.tcp_timestamps',
] as const;

/** A sysctl `tune` may set, with its sane range. */
export interface TunableRule {
  key: string;
  /** Per network namespace (false: host-wide). */
  namespaced: boolean;
  /** Returns an error message for a value outside the sane range. */
  check(value: string): string | undefined;
  describe: string;
}

const int = (v: string): number | undefined => (/^-?\d+$/.test(v.trim()) ? Number(v.trim()) : undefined);
const range = (min: number, max: number) => (v: string): string | undefined => {
  const n = int(v);
  return n === undefined || n < min || n > max ? `must be an integer in ${min}..${max}` : undefined;
};
const pair = (v: string): [number, number] | undefined => {
  const parts = v.trim().split(/\s+/);
  if (parts.length !== 2) return undefined;
  const a = int(parts[0]!);
  const b = int(parts[1]!);
  return a === undefined || b === undefined ? undefined : [a, b];
};

/** The sysctls `tune` writes, each refused outside its sane range. */
export const TUNABLES: Record<string, TunableRule> = Object.fromEntries([
  { key: 'net.ipv4.tcp_tw_reuse', namespaced: true, describe: '0, 1 or 2', check: (v: string) => (['0', '1', '2'].includes(v.trim()) ? undefined : 'must be 0, 1 or 2') },
  { key: 'net.ipv4.tcp_fin_timeout', namespaced: true, describe: '5..120 s', check: range(5, 120) },
  { key: 'net.ipv4.tcp_max_tw_buckets', namespaced: true, describe: '4096..16777216', check: range(4096, 1 << 24) },
  {
    key: 'net.ipv4.ip_local_port_range', namespaced: true, describe: '"LOW HIGH", 1024 <= LOW, HIGH <= 65535, at least 4096 ports, LOW and HIGH of different parity',
    check: (v: string) => {
      const p = pair(v);
      if (p === undefined) return 'must be two integers "LOW HIGH"';
      const [low, high] = p;
      if (low < 1024 || high > 65535) return 'must stay within 1024..65535 (below 1024 are privileged service ports)';
      if (high - low + 1 < 4096) return 'must span at least 4096 ports';
      if ((low & 1) === (high & 1)) return 'LOW and HIGH must differ in parity (the kernel splits the range by parity for connect and bind)';
      return undefined;
    },
  },
  { key: 'net.core.somaxconn', namespaced: true, describe: '128..65535', check: range(128, 65535) },
  {
    key: 'net.ipv4.ping_group_range', namespaced: true, describe: '"1 0" (off) or "LOW HIGH" within 0..2147483647',
    check: (v: string) => {
      const p = pair(v);
      if (p === undefined) return 'must be two integers "LOW HIGH"';
      if (p[0] === 1 && p[1] === 0) return undefined;
      return p[0] < 0 || p[1] > 2147483647 || p[0] > p[1] ? 'must be "1 0" or 0 <= LOW <= HIGH <= 2147483647' : undefined;
    },
  },
  { key: 'net.ipv4.tcp_migrate_req', namespaced: true, describe: '0 or 1', check: (v: string) => (['0', '1'].includes(v.trim()) ? undefined : 'must be 0 or 1') },
].map((r) => [r.key, r]));

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** Namespace name or path; the net.* sysctls and sockets are read there. */
  netns?: string;
  /** Skip the journal search (slow on big journals). */
  journal?: boolean;
}

/** The doctor's report. */
export interface DoctorReport {
  netns: string | null;
  findings: Finding[];
  sockets: Record<string, number>;
  sysctls: Record<string, string>;
}

const CAPS: Array<[number, string, string]> = [
  [12, 'CAP_NET_ADMIN', 'destroying sockets (SOCK_DESTROY), bouncing links, the large netlink receive buffer'],
  [13, 'CAP_NET_RAW', 'ICMP probes on raw sockets (without it: ping sockets, if ping_group_range admits our gid)'],
  [21, 'CAP_SYS_ADMIN', 'entering another network namespace (--netns, setns)'],
];

/** Decodes the CapEff hex mask of /proc/PID/status into capability numbers. */
export function capabilitiesOf(status: string): Set<number> {
  const match = /^CapEff:\s*([0-9a-f]+)/im.exec(status);
  const mask = match === null ? 0n : BigInt(`0x${match[1]}`);
  const out = new Set<number>();
  for (let bit = 0; bit < 64; bit += 1) if ((mask >> BigInt(bit)) & 1n) out.add(bit);
  return out;
}

/** Judges the net.* sysctls of one namespace. Pure: used by doctor and tune. */
export function judgeSysctls(values: Map<string, string>, counters: Map<string, number>, twCount: number | null): Finding[] {
  const f: Finding[] = [];
  const get = (k: string): string | undefined => values.get(k);

  const reuse = get('net.ipv4.tcp_tw_reuse');
  if (reuse !== undefined) {
    const ts = get('net.ipv4.tcp_timestamps');
    f.push({
      id: 'sysctl.tcp_tw_reuse', value: reuse,
      severity: reuse === '0' ? 'warning' : 'ok',
      title: `net.ipv4.tcp_tw_reuse = ${reuse} (${reuse === '0' ? 'off' : reuse === '1' ? 'on' : 'loopback only, the default'})`,
      explanation: 'Lets an outgoing connect() reuse a local port still in TIME_WAIT toward the same destination when TCP timestamps prove the new segments are newer. It helps clients only (a proxy opening many connections to one backend); it does nothing for a server\'s accepted connections or for bind().'
        + (ts === '0' ? ' TCP timestamps are off here (tcp_timestamps=0), so it cannot work at all.' : ''),
      fix: reuse === '0' ? { key: 'net.ipv4.tcp_tw_reuse', value: '1' } : undefined,
    });
  }

  const fin = get('net.ipv4.tcp_fin_timeout');
  if (fin !== undefined) {
    const n = Number(fin);
    const bad = n > 60 || n < 5;
    f.push({
      id: 'sysctl.tcp_fin_timeout', value: fin, severity: bad ? 'warning' : 'ok',
      title: `net.ipv4.tcp_fin_timeout = ${fin} s`,
      explanation: 'How long an ORPHANED socket (closed by its process) waits in FIN_WAIT_2 for the peer\'s FIN. It does not shorten TIME_WAIT, which is fixed at 60 s in the kernel (TCP_TIMEWAIT_LEN); recipes that lower it "to clear TIME_WAIT" change nothing there.'
        + (n > 60 ? ' Above 60 s, orphans of dead peers pile up longer than necessary.' : n < 5 ? ' Below 5 s, slow but healthy peers get cut off before they close.' : ''),
      fix: bad ? { key: 'net.ipv4.tcp_fin_timeout', value: '30' } : undefined,
    });
  }

  const buckets = get('net.ipv4.tcp_max_tw_buckets');
  const overflow = counters.get('TcpExt.TCPTimeWaitOverflow');
  if (buckets !== undefined) {
    const n = Number(buckets);
    const low = n < 4096;
    const near = twCount !== null && n > 0 && twCount >= 0.8 * n;
    f.push({
      id: 'sysctl.tcp_max_tw_buckets', value: buckets,
      severity: low || near || (overflow ?? 0) > 0 ? 'warning' : 'ok',
      title: `net.ipv4.tcp_max_tw_buckets = ${buckets}${twCount !== null ? ` (${twCount} in TIME_WAIT now)` : ''}`,
      explanation: 'Per network namespace. When this many sockets are in TIME_WAIT, the kernel closes further connections WITHOUT TIME_WAIT (counted as TCPTimeWaitOverflow); delayed segments of an old connection can then corrupt a new one on the same 4-tuple. TIME_WAIT itself costs little memory: a high limit is safe.',
      fix: low || near ? { key: 'net.ipv4.tcp_max_tw_buckets', value: String(Math.max(262144, n * 2 > 1 << 24 ? 1 << 24 : n * 2)) } : undefined,
    });
  }
  if (overflow !== undefined) {
    f.push({
      id: 'netstat.TCPTimeWaitOverflow', value: overflow, severity: overflow > 0 ? 'warning' : 'ok',
      title: `TCPTimeWaitOverflow = ${overflow}`,
      explanation: 'Connections that skipped TIME_WAIT because tcp_max_tw_buckets was full (since this namespace was created).',
    });
  }

  const ports = get('net.ipv4.ip_local_port_range');
  if (ports !== undefined) {
    const p = pair(ports);
    const span = p === undefined ? 0 : p[1] - p[0] + 1;
    const bad = span < 10000;
    f.push({
      id: 'sysctl.ip_local_port_range', value: ports, severity: bad ? 'warning' : 'ok',
      title: `net.ipv4.ip_local_port_range = ${ports} (${span} ports)`,
      explanation: 'Local ports for outgoing connections. Each (destination address, port) pair can have at most this many connections at once, TIME_WAIT included. Widening it down to 1024 (a popular recipe) lets outgoing connections take ports your own services want to bind after a restart; reserve those with ip_local_reserved_ports or keep the range above them.',
      fix: bad ? { key: 'net.ipv4.ip_local_port_range', value: '32768 60999' } : undefined,
    });
  }

  const somax = get('net.core.somaxconn');
  if (somax !== undefined) {
    const bad = Number(somax) < 1024;
    f.push({
      id: 'sysctl.somaxconn', value: somax, severity: bad ? 'warning' : 'ok',
      title: `net.core.somaxconn = ${somax}`,
      explanation: 'Caps every listen() backlog (Node asks for 511). While a restarted service starts, connections wait in this queue; when it is full, new SYNs are dropped and clients retry after 1 s, 3 s, 7 s.',
      fix: bad ? { key: 'net.core.somaxconn', value: '4096' } : undefined,
    });
  }

  const ping = get('net.ipv4.ping_group_range');
  if (ping !== undefined) {
    const off = ping === '1 0';
    f.push({
      id: 'sysctl.ping_group_range', value: ping, severity: off ? 'info' : 'ok',
      title: `net.ipv4.ping_group_range = ${ping}${off ? ' (ping sockets disabled)' : ''}`,
      explanation: 'Groups allowed to open ICMP "ping sockets" (SOCK_DGRAM, IPPROTO_ICMP), which need no CAP_NET_RAW. "1 0" is the kernel default and disables them; netheal\'s probes then need CAP_NET_RAW. systemd (>= 243) opens it to all groups on the host, but every new namespace starts at "1 0".',
      fix: off ? { key: 'net.ipv4.ping_group_range', value: '0 2147483647' } : undefined,
    });
  }

  const migrate = get('net.ipv4.tcp_migrate_req');
  if (migrate !== undefined) {
    f.push({
      id: 'sysctl.tcp_migrate_req', value: migrate, severity: migrate === '0' ? 'info' : 'ok',
      title: `net.ipv4.tcp_migrate_req = ${migrate}`,
      explanation: 'When a SO_REUSEPORT listener closes (the old instance of a service restarting side by side with the new one), connections still waiting in its accept queue are reset, unless this is 1: then the kernel moves them to another listener of the group.',
      fix: migrate === '0' ? { key: 'net.ipv4.tcp_migrate_req', value: '1' } : undefined,
    });
  }
  return f;
}

function parseLimit(limits: string, name: string): string | null {
  const line = limits.split('\n').find((l) => l.startsWith(name));
  if (line === undefined) return null;
  const parts = line.slice(name.length).trim().split(/\s+/);
  return `${parts[0]} (soft) / ${parts[1]} (hard)`;
}

/** Runs every check. Reads only; changes nothing. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const netnsPath = resolveNetns(options.netns, '--netns');
  requireNetnsEntry(netnsPath, '--netns');
  const findings: Finding[] = [];
  const sysctls = await readSysctls([...DOCTOR_SYSCTLS], netnsPath);
  if (!sysctls.has('net.ipv4.tcp_migrate_req')) sysctls.delete('net.ipv4.tcp_migrate_req');
  let counters = new Map<string, number>();
  try {
    counters = await readNetstat(netnsPath);
  } catch (error) {
    findings.push({ id: 'netstat', severity: 'info', title: 'cannot read /proc/net/netstat', explanation: (error as Error).message });
  }

  // Sockets per state.
  const states: Record<string, number> = {};
  let twCount: number | null = null;
  const sockets = new Sockets({ netns: netnsPath });
  try {
    for (const s of await sockets.query({ protocol: 'tcp' })) states[s.state] = (states[s.state] ?? 0) + 1;
    twCount = states['time-wait'] ?? 0;
  } catch (error) {
    findings.push({ id: 'sockets', severity: 'warning', title: 'cannot list sockets', explanation: (error as Error).message });
  } finally {
    sockets.close();
  }
  findings.push(...judgeSysctls(sysctls, counters, twCount));
  if (twCount !== null) {
    const cw = states['close-wait'] ?? 0;
    const fw2 = states['fin-wait-2'] ?? 0;
    findings.push({
      id: 'sockets.states', severity: 'info', value: JSON.stringify(states),
      title: `TCP sockets: ${Object.entries(states).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      explanation: 'TIME_WAIT belongs to the side that closed first and lasts 60 s; it blocks only a bind() without SO_REUSEADDR (Node always sets it) and outgoing connects to the same destination.',
    });
    if (cw > 0) {
      findings.push({
        id: 'sockets.close-wait', severity: 'warning', value: cw, title: `${cw} sockets in CLOSE_WAIT`,
        explanation: 'The peer closed and the owning process has not: the kernel never times CLOSE_WAIT out. This is an application that does not close its sockets (a leak); restarting it, or `netheal sockets kill --state close-wait`, clears them.',
      });
    }
    if (fw2 > 0) {
      findings.push({
        id: 'sockets.fin-wait-2', severity: 'info', value: fw2, title: `${fw2} sockets in FIN_WAIT_2`,
        explanation: 'We closed and the peer has not yet. Orphaned ones (no process) last tcp_fin_timeout; ones a process still holds (shutdown(SHUT_WR)) last until it closes them.',
      });
    }
  }
  if (existsSync('/proc/sys/net/ipv4/tcp_tw_recycle')) {
    findings.push({ id: 'sysctl.tcp_tw_recycle', severity: 'warning', title: 'net.ipv4.tcp_tw_recycle exists on this kernel', explanation: 'It drops connections from clients behind NAT; keep it 0. (Removed in Linux 4.12.)' });
  } else {
    const files = ['/etc/sysctl.conf', ...(() => {
      try {
        return readdirSync('/etc/sysctl.d').map((n) => `/etc/sysctl.d/${n}`);
      } catch {
        return [];
      }
    })()];
    const setting = files.filter((p) => {
      try {
        return /^\s*net\.ipv4\.tcp_tw_recycle\s*=/m.test(readFileSync(p, 'utf8'));
      } catch {
        return false;
      }
    });
    if (setting.length > 0) {
      findings.push({ id: 'sysctl.tcp_tw_recycle', severity: 'warning', value: setting.join(' '), title: `${setting.join(', ')} set net.ipv4.tcp_tw_recycle, which no longer exists`, explanation: 'tcp_tw_recycle was removed in Linux 4.12 (it broke clients behind NAT). The line only makes `sysctl --system` report an error at boot; remove it.' });
    }
  }

  // Files: the process's own limit, the system's, and the journal.
  const limits = (() => {
    try {
      return readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return '';
    }
  })();
  const nofile = parseLimit(limits, 'Max open files');
  const hostFs = await readSysctls(['fs.file-max', 'fs.file-nr', 'fs.nr_open']).catch(() => new Map<string, string>());
  const fileNr = hostFs.get('fs.file-nr')?.split(' ').map(Number);
  const fileMax = Number(hostFs.get('fs.file-max'));
  const used = fileNr?.[0];
  findings.push({
    id: 'limits.nofile', severity: used !== undefined && fileMax > 0 && used > 0.8 * fileMax ? 'warning' : 'ok',
    value: nofile, title: `RLIMIT_NOFILE ${nofile ?? '?'}; fs.file-max ${hostFs.get('fs.file-max') ?? '?'}${used !== undefined ? `, ${used} file handles in use` : ''}`,
    explanation: 'Each socket is a file descriptor. A service at its RLIMIT_NOFILE fails accept() with EMFILE ("too many open files") while the kernel keeps completing handshakes: clients connect and hang. Set LimitNOFILE= in the unit (systemd\'s default soft limit is 1024); fs.file-max is the system-wide ceiling.',
  });
  if (options.journal !== false) {
    const j = await runIn(undefined, 'journalctl', ['-q', '--no-pager', '-S', '-24h', '-g', 'too many open files', '-n', '20', '-o', 'short-iso'], 20_000);
    const lines = j.stdout.split('\n').filter((l) => l.trim() !== '');
    if (lines.length > 0) {
      findings.push({ id: 'journal.emfile', severity: 'warning', value: lines.length, title: `${lines.length} "too many open files" messages in the journal (24 h)`, explanation: `Latest: ${lines[lines.length - 1]}` });
    } else {
      const unreadable = /No journal files|Failed|permission/i.test(j.stderr) || j.code === 127;
      findings.push({ id: 'journal.emfile', severity: unreadable ? 'info' : 'ok', title: unreadable ? 'journal not readable: "too many open files" not checked' : 'no "too many open files" in the journal (24 h)', explanation: unreadable ? j.stderr.trim().split('\n')[0] ?? '' : 'journalctl -g "too many open files" -S -24h found nothing.' });
    }
  }

  // Managers per interface.
  const links = await runIn(netnsPath, 'ip', ['-j', 'link', 'show']);
  if (links.code === 0) {
    const list = JSON.parse(links.stdout) as Array<{ ifindex: number; ifname: string }>;
    for (const link of list) {
      if (link.ifname === 'lo') continue;
      const managers = await detectManagers(link.ifname, link.ifindex, { netnsPath });
      findings.push({
        id: `managers.${link.ifname}`, severity: managers.length > 1 ? 'warning' : 'ok', value: managers.join(',') || null,
        title: `${link.ifname}: ${managers.length === 0 ? 'no network manager' : managers.join(' + ')}`,
        explanation: managers.length > 1
          ? `${managers.join(' and ')} both claim ${link.ifname}: they will undo each other's changes; netheal re-applies through the first (${managers[0]}). Unmanage it in the other.`
          : managers.length === 1 ? `netheal's manager-reapply rung asks ${managers[0]} to re-apply it; link-bounce stays off so the two never fight.`
            : netnsPath !== undefined
              ? 'Inside a namespace, NetworkManager and systemd-networkd are not consulted (they know the host\'s devices by the same names); ifupdown only with its files named in the config. netheal may bounce the link itself.'
              : 'Unmanaged: netheal may bounce the link itself and restores the routes the kernel flushes.',
      });
    }
  }

  // Our own capabilities.
  const caps = capabilitiesOf(readFileSync('/proc/self/status', 'utf8'));
  for (const [bit, name, what] of CAPS) {
    findings.push({
      id: `capability.${name}`, severity: caps.has(bit) ? 'ok' : 'info', value: caps.has(bit) ? 'yes' : 'no',
      title: `${name}: ${caps.has(bit) ? 'present' : 'missing'}`, explanation: `Needed for ${what}.`,
    });
  }
  return { netns: netnsPath ?? null, findings, sockets: states, sysctls: Object.fromEntries(sysctls) };
}
