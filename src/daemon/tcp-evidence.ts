/**
 * Polls the established TCP sockets of each uplink (struct tcp_info over inet_diag, filtered
 * in the kernel by source address) and runs each uplink's {@link TcpStallDetector} on them.
 * Sub-second polling only while the uplink carries traffic; an idle uplink (no established
 * socket, or nothing moving) is looked at every `idleIntervalMs`. A socket belongs to the
 * uplink whose interface holds its source address; an address shared by uplinks (two
 * gateways on one interface) counts for the uplink in use, the one its traffic takes.
 */
import { Sockets, TcpSocketStats } from '../kernel/sockets';
import { NativeBinding } from '../native';
import { TcpEvidenceRule, TcpStallDetector, TcpVerdict } from '../policy/tcp-evidence';
import type { Logger } from './logger';

/** Settings of {@link TcpEvidence} (config `failover.tcpEvidence`). */
export interface TcpEvidenceOptions extends TcpEvidenceRule {
  fastIntervalMs: number;
  idleIntervalMs: number;
}

/** One uplink as the evidence sees it. */
export interface TcpEvidenceUplink {
  name: string;
  iface: string;
}

/** What the evidence knows about one uplink (status, tests). */
export interface TcpEvidenceStatus {
  polls: number;
  dead: boolean;
  last: TcpVerdict | null;
}

/** Per-uplink TCP polling; `onVerdict` hears each change of an uplink's dead verdict. */
export class TcpEvidence {
  private readonly sockets: Sockets;
  private readonly state = new Map<string, { detector: TcpStallDetector; timer: NodeJS.Timeout | null; status: TcpEvidenceStatus }>();
  private closed = false;

  constructor(private readonly options: {
    settings: TcpEvidenceOptions;
    uplinks: TcpEvidenceUplink[];
    netnsPath?: string;
    binding?: NativeBinding;
    logger: Logger;
    addressesOf(iface: string): { address: string }[];
    /** The uplink in use now (gets the sockets of shared addresses). */
    inUse(): string;
    onVerdict(name: string, dead: boolean, verdict: TcpVerdict): void;
  }) {
    this.sockets = new Sockets({ netns: options.netnsPath, binding: options.binding });
    for (const uplink of options.uplinks) {
      this.state.set(uplink.name, { detector: new TcpStallDetector(options.settings), timer: null, status: { polls: 0, dead: false, last: null } });
      this.schedule(uplink, 0);
    }
  }

  /** The evidence per uplink now. */
  status(): Record<string, TcpEvidenceStatus> {
    return Object.fromEntries([...this.state].map(([name, s]) => [name, { ...s.status }]));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.state.values()) if (s.timer !== null) clearTimeout(s.timer);
    this.sockets.close();
  }

  private schedule(uplink: TcpEvidenceUplink, ms: number): void {
    const s = this.state.get(uplink.name)!;
    s.timer = setTimeout(() => {
      s.timer = null;
      void this.poll(uplink);
    }, ms);
  }

  /** Source addresses whose sockets count for `uplink` (another uplink in use on its interface takes them). */
  private addressesFor(uplink: TcpEvidenceUplink): string[] {
    const inUse = this.options.uplinks.find((u) => u.name === this.options.inUse());
    if (inUse !== undefined && inUse.name !== uplink.name && inUse.iface === uplink.iface) return [];
    return this.options.addressesOf(uplink.iface).map((a) => a.address);
  }

  private async poll(uplink: TcpEvidenceUplink): Promise<void> {
    if (this.closed) return;
    const s = this.state.get(uplink.name)!;
    const { settings } = this.options;
    let verdict: TcpVerdict | null = null;
    try {
      const found: TcpSocketStats[] = [];
      for (const address of this.addressesFor(uplink)) found.push(...await this.sockets.tcpStats(address));
      if (this.closed) return;
      verdict = s.detector.observe(found.map(({ socket, info }) => ({
        cookie: socket.cookie, segsOut: info.segsOut, segsIn: info.segsIn, totalRetrans: info.totalRetrans,
        totalRto: info.totalRto, unacked: info.unacked, lastRecvMs: Math.min(info.lastAckRecvMs, info.lastDataRecvMs),
      })), performance.now());
      s.status.polls++;
      s.status.last = verdict;
      if (verdict.dead !== s.status.dead) {
        s.status.dead = verdict.dead;
        this.options.onVerdict(uplink.name, verdict.dead, verdict);
      }
    } catch (error) {
      if (this.closed) return;
      this.options.logger.warning(`uplink ${uplink.name}: TCP evidence: ${(error as Error).message}`);
    }
    if (!this.closed) this.schedule(uplink, verdict?.active === true ? settings.fastIntervalMs : settings.idleIntervalMs);
  }
}
