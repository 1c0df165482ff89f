/**
 * Passive evidence of a dead path from TCP itself, per uplink. Pure: fed, at each poll, the
 * counters of the uplink's established sockets (struct tcp_info), it keeps per-socket
 * deltas and decides, in the spirit of Android's data-stall detector:
 *
 * the path is dead when, across all of the uplink's sockets, not one segment has been
 * received for at least `stallMs` (dated by the kernel: the least tcpi_last_ack_recv /
 * tcpi_last_data_recv of the uplink's sockets), while at least `minSegments` segments were
 * sent and at least `minRetransmits` of them were retransmissions (tcpi_total_retrans, or the
 * 6.7 RTO count tcpi_total_rto when it rose more).
 *
 * One socket that receives anything clears the stall: the path works, whatever one peer
 * does. A dead verdict holds until a socket of the uplink receives again, or for `clearMs`
 * when nothing shows either way (its sockets were moved away by the failover). See
 * docs/design.md for why this rule.
 */

/** The counters of one socket the evidence reads (from struct tcp_info). */
export interface TcpSample {
  /** Socket cookie: identity across polls. */
  cookie: string;
  segsOut: number;
  segsIn: number;
  totalRetrans: number;
  /** Linux 6.7 and later. */
  totalRto?: number;
  /** Segments in flight now. */
  unacked: number;
  /** ms since this socket last received anything (min of tcpi_last_ack_recv, tcpi_last_data_recv). */
  lastRecvMs?: number;
}

/** The rule's thresholds. */
export interface TcpEvidenceRule {
  stallMs: number;
  minSegments: number;
  minRetransmits: number;
  clearMs: number;
}

/** What one poll showed. */
export interface TcpVerdict {
  sockets: number;
  /** Deltas since the previous poll, over sockets seen both times. */
  sent: number;
  received: number;
  retransmitted: number;
  /** Traffic on the path now (something sent, received or in flight, or a new connection): poll fast. */
  active: boolean;
  /** ms without a received segment while segments went out, null when not stalled. */
  stalledForMs: number | null;
  /** The rule holds (or held and has not been cleared). */
  dead: boolean;
  /** The rule began to hold at this poll. */
  declared: boolean;
}

/** Counter difference, u32 wrap-around included. */
const delta = (now: number, before: number): number => (now - before + 0x100000000) % 0x100000000;

/** Per-uplink TCP stall detection; see the module comment. */
export class TcpStallDetector {
  private previous = new Map<string, TcpSample>();
  private lastPollMs: number | null = null;
  private stallSinceMs: number | null = null;
  private sentInStall = 0;
  private retransInStall = 0;
  private deadSinceMs: number | null = null;

  constructor(private readonly rule: TcpEvidenceRule) {}

  /** Whether the path is declared dead now. */
  get dead(): boolean {
    return this.deadSinceMs !== null;
  }

  /** Feeds one poll's samples taken at `nowMs`. */
  observe(samples: readonly TcpSample[], nowMs: number): TcpVerdict {
    let sent = 0;
    let received = 0;
    let retransmitted = 0;
    let inFlight = false;
    let fresh = false;
    let lastRecvMs = Infinity;
    const next = new Map<string, TcpSample>();
    for (const sample of samples) {
      next.set(sample.cookie, sample);
      if (sample.unacked > 0) inFlight = true;
      if (sample.lastRecvMs !== undefined) lastRecvMs = Math.min(lastRecvMs, sample.lastRecvMs);
      const before = this.previous.get(sample.cookie);
      if (before === undefined) {
        fresh = true;
        continue;
      }
      sent += delta(sample.segsOut, before.segsOut);
      received += delta(sample.segsIn, before.segsIn);
      const retrans = delta(sample.totalRetrans, before.totalRetrans);
      const rto = sample.totalRto !== undefined && before.totalRto !== undefined ? (sample.totalRto - before.totalRto + 0x10000) % 0x10000 : 0;
      retransmitted += Math.max(retrans, rto);
    }
    this.previous = next;
    const since = this.lastPollMs ?? nowMs;
    this.lastPollMs = nowMs;

    if (received > 0) {
      // The path delivers: no stall, and any dead verdict is over.
      this.stallSinceMs = null;
      this.sentInStall = 0;
      this.retransInStall = 0;
      this.deadSinceMs = null;
    } else if (sent > 0 || inFlight) {
      // Segments wait for an answer and nothing came since the previous poll at least.
      if (this.stallSinceMs === null) this.stallSinceMs = since;
      this.sentInStall += sent;
      this.retransInStall += retransmitted;
    } else {
      // Nothing waits for an answer (no sockets, or idle ones): no stall to go on with, and
      // a verdict fades after clearMs.
      this.stallSinceMs = null;
      this.sentInStall = 0;
      this.retransInStall = 0;
    }
    if (this.deadSinceMs !== null && received === 0 && nowMs - this.deadSinceMs >= this.rule.clearMs && this.stallSinceMs === null) {
      this.deadSinceMs = null;
    }
    // The kernel dates the last receive to the ms; the polls only bound it (a fault between
    // two polls began before the later one).
    const stalledForMs = this.stallSinceMs === null ? null
      : Math.max(nowMs - this.stallSinceMs, Number.isFinite(lastRecvMs) ? lastRecvMs : 0);
    let declared = false;
    if (this.deadSinceMs === null && stalledForMs !== null && stalledForMs >= this.rule.stallMs
      && this.sentInStall >= this.rule.minSegments && this.retransInStall >= this.rule.minRetransmits) {
      this.deadSinceMs = nowMs;
      declared = true;
    }
    return {
      sockets: samples.length, sent, received, retransmitted,
      active: sent > 0 || received > 0 || inFlight || fresh,
      stalledForMs, dead: this.deadSinceMs !== null, declared,
    };
  }
}
