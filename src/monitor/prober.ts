/**
 * Prober: BFD-style path probing with ICMP/ICMPv6 echo (issue #3).
 *
 * Each target is probed every `interval` ms, less 0-25% at random per probe (RFC 5880 6.8.7's
 * jitter; 10-25% with a multiplier of 1), so daemons on one network do not fall into step.
 * Down rule (BFD's, RFC 5880 6.8.4): a target is down when nothing was received from it for
 * `multiplier` x `interval` since its last reply (a per-target detection deadline, pushed on by
 * every reply), not after a count of timed-out probes. A prober knows what a BFD receiver does
 * not, when its own probes left: so the target is also down once `multiplier` probes were sent
 * since the last reply and the last of them is late, unanswered for max(1 ms, interval / 10,
 * SRTT + 4 RTTVAR) (RFC 6298's estimator). The jittered sends come 12.5 % early on average, so
 * this decides before the silence deadline, with the same `multiplier` probes lost, the
 * earlier ones each given at least an interval. Early evidence may take it down sooner:
 * ICMP errors (host/net unreachable, prohibited, TTL exceeded) or refused sends for
 * min(2, multiplier) probes in a row with no reply between, or the LinkMonitor reporting the
 * target's neighbour entry FAILED after it was silent for an interval. `recovery` consecutive
 * replies bring a down target back up. A probe without a reply within `timeout` ms is a
 * `timeout` result (statistics, `probe` events) but decides nothing by itself. Routers
 * rate-limit ICMP errors, so a missing error is silence and never a success. A group is down
 * when fewer than `quorum` of its targets are up. See docs/design.md, "Path-loss detection".
 *
 * One native socket per family (and device) serves every target; one timer drives them all
 * (a min-heap of due times), and probes due together leave in one sendmmsg().
 *
 * Targets written `tcp://A:P` or `http://A[:P]/path` are probed by a connection instead of an
 * echo (stream-probe.ts), on the same schedule, detection rule, groups and early evidence: a
 * SYN-ACK, a RST or the expected HTTP status is a reply; host/net unreachable is `unreachable`.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { errnoName, NethealError } from '../errors';
import { encodeAddress, icmpErrorName, RESULT_RECORD, ResultFlag, ResultKind, SEND_RECORD, decodeAddress } from '../kernel/icmp';
import { NativeBinding, nativeBinding, NativeIcmpSocket } from '../native';
import { resolveNetns } from '../netns';
import { ProbeTable } from './probe-table';
import { HttpTargetSpec, parseStreamTarget, startStreamProbe, StreamOutcome, StreamTarget, targetSpecName } from './stream-probe';

/**
 * What the prober reads of a gateway source's events: their type ('default-route', 'resync',
 * 'neighbour'...) and, for 'neighbour' events, the gateway's address, device and NUD state.
 */
export interface GatewaySourceEvent {
  type: string;
  address?: string;
  ifindex?: number | null;
  state?: string;
}

/** Where the `gateway` target learns the default gateway: a LinkMonitor, structurally. */
export interface GatewaySource {
  defaultRoutes(): Array<{ family: 4 | 6; gateway: string | null; ifindex: number | null }>;
  on(event: 'event', fn: (e: GatewaySourceEvent) => void): unknown;
  off(event: 'event', fn: (e: GatewaySourceEvent) => void): unknown;
}

/** Per-target timing and thresholds. */
export interface TargetOptions {
  /** Milliseconds between probes, 10 .. 3600000 (default 1000). */
  interval?: number;
  /**
   * Milliseconds to wait for a reply before a probe counts as a `timeout` (statistics and
   * `probe` events), 1 .. 60000 (default: the interval). It does not decide down: silence does.
   */
  timeout?: number;
  /**
   * Detect multiplier, 1 .. 255 (default 3): a target is down after `multiplier` x `interval`
   * ms without a reply (BFD's detection time), or sooner once `multiplier` probes sent since
   * the last reply went unanswered, the last one past its RTT-based allowance.
   */
  multiplier?: number;
  /** Consecutive replies that bring a down target up, 1 .. 255 (default 3). */
  recovery?: number;
  /** Probes kept for RTT statistics and loss, 1 .. 100000 (default 100). */
  window?: number;
}

/** Options of {@link Prober.add}. */
export interface AddTargetOptions extends TargetOptions {
  /** Name used in events and stats (default: the target string). */
  name?: string;
  /** For the `gateway` target: which default route, 4 or 6 (default 4). */
  family?: 4 | 6;
  /** Probe out of this interface (SO_BINDTODEVICE); default: the prober's device. */
  device?: string;
  /** Send this many probes, then stop (the target stays, with its stats). Default: no limit. */
  count?: number;
}

/** Options of the {@link Prober}. */
export interface ProberOptions extends TargetOptions {
  /** Network namespace name or path, like `ip -n`. */
  netns?: string;
  /** Default interface to probe out of (SO_BINDTODEVICE). */
  device?: string;
  /** 'auto' (default): raw socket with CAP_NET_RAW, else a ping socket; or force one. */
  mode?: 'auto' | 'raw' | 'dgram';
  /** Needed for `gateway` targets: a LinkMonitor or anything shaped like one. */
  gatewaySource?: GatewaySource;
  /** TTL (hop limit) of the probes, 1 .. 255; a router that runs it out answers ttl-exceeded. */
  ttl?: number;
  /**
   * Kernel transmit timestamps, so RTT is kernel-to-kernel (default true). Each costs the
   * kernel a packet clone and us an error-queue read; false times from just before sendmmsg().
   */
  txTimestamps?: boolean;
  /** Injected addon (tests). */
  binding?: NativeBinding;
}

/** Outcome of one probe. */
export type ProbeStatus = 'reply' | 'timeout' | 'unreachable' | 'error';

/** One probe's result, as `probe` events and `netheal ping --json` give it. */
export interface ProbeResult {
  target: string;
  address: string;
  seq: number;
  status: ProbeStatus;
  /** Round-trip time in ms (replies only); kernel-to-kernel when `kernelRtt`. */
  rttMs: number | null;
  /** ICMP code of an error (with `type`), or the errno of a send error. */
  code: number | null;
  type: number | null;
  /** Who answered: the target, or the router that sent the error. */
  from: string | null;
  /** 'host-unreachable', 'EHOSTUNREACH'... */
  reason: string | null;
  kernelRtt: boolean;
  /** performance.now() (ms) just before the probe's sendmmsg(): its send stamp. */
  sentMs: number;
}

/**
 * Why a target went down: `timeout` (silence: `multiplier` probes unanswered), `unreachable` (ICMP
 * errors), `send-error` (the kernel refused the sends), `neighbour-failed` (the target's
 * ARP/NDP entry went FAILED while it was silent) or `no-gateway`.
 */
export interface DownReason {
  kind: 'timeout' | 'unreachable' | 'send-error' | 'no-gateway' | 'neighbour-failed' | 'http-status';
  /** ICMP type and code (unreachable) or errno (send-error). */
  type?: number;
  code?: number;
  /** Name of the ICMP error or errno. */
  name?: string;
  /** The router that reported it. */
  from?: string | null;
  errno?: number;
}

/** Payload of `target-down` / `target-up`. */
export interface TargetStateEvent {
  target: string;
  address: string | null;
  family: 4 | 6;
  state: 'up' | 'down';
  /** Why it went down (target-down only). */
  reason: DownReason | null;
  /**
   * What decided it: for target-up the consecutive replies; for target-down the multiplier
   * (silence), the ICMP errors / refused sends in a row (early evidence), or 0.
   */
  count: number;
  /** target-down: ms without a reply when decided (since probing began if none ever came). */
  silentMs?: number;
  /** target-down: probes sent since the last reply (since probing began if none ever came). */
  unanswered?: number;
  /** CLOCK_MONOTONIC when decided (process.hrtime.bigint()). */
  monotonicNs: bigint;
}

/** Payload of `group-down` / `group-up`. */
export interface GroupStateEvent {
  group: string;
  state: 'up' | 'down';
  up: number;
  quorum: number;
  targets: string[];
  monotonicNs: bigint;
}

/** Payload of `gateway-changed`: a `gateway` target's address followed the default route. */
export interface GatewayChangedEvent {
  target: string;
  from: string | null;
  to: string | null;
}

/** The Prober's events and their arguments (as LinkMonitorEvents for the LinkMonitor). */
export interface ProberEvents {
  'target-down': [TargetStateEvent];
  'target-up': [TargetStateEvent];
  'group-down': [GroupStateEvent];
  'group-up': [GroupStateEvent];
  /** Every probe's outcome; only computed while someone listens. */
  probe: [ProbeResult];
  'gateway-changed': [GatewayChangedEvent];
  /** Socket errors and failed sends; emitted only while someone listens. */
  error: [Error];
}

/** Statistics of a target over its window. */
export interface TargetStats {
  target: string;
  address: string | null;
  family: 4 | 6;
  state: 'init' | 'up' | 'down';
  sent: number;
  received: number;
  lost: number;
  /** Fraction of the last `window` probes that missed (0..1), null before any. */
  loss: number | null;
  rtt: { min: number; avg: number; max: number; p99: number; jitter: number } | null;
  consecutiveMisses: number;
  consecutiveReplies: number;
  lastReason: DownReason | null;
}

interface Probe {
  tag: number;
  seq: number;
  sentAt: number;
  deadline: number;
  target: Target;
  done: boolean;
  /** A TCP/HTTP probe's connection: reset when the probe ends otherwise (timeout, cancel). */
  cancel: (() => void) | undefined;
}

interface SocketSlot {
  key: string;
  family: 4 | 6;
  socket: NativeIcmpSocket;
  records: Buffer;
  /** `records` as 32-bit words: a probe record is written as six of them (see queueProbe). */
  words: Uint32Array;
  errnos: Int32Array;
  probes: Probe[];
  count: number;
  users: number;
}

/**
 * The send schedule shared by the targets of one phase slot (see add()): each round follows
 * the previous round's send by the interval less 0-25% at random (RFC 5880 6.8.7), drawn once
 * per round so the slot's targets still leave in one sendmmsg().
 */
interface Cadence {
  interval: number;
  /** Fraction of the interval a round may be shortened by: at least `minJitter`, below 0.25. */
  minJitter: number;
  /** The scheduled time of the round the slot's targets fired last (NaN before any). */
  prev: number;
  /** The scheduled time of the next round. */
  round: number;
}

class Target {
  /** False once remove()d (cheaper than asking the targets Map on every visit). */
  live = true;
  heapIndex = -1;
  due = Infinity;
  nextSend = 0;
  cadence: Cadence | null = null;
  seq = 0;
  outstanding: Probe[] = [];
  state: 'init' | 'up' | 'down' = 'init';
  misses = 0;
  replies = 0;
  lastReason: DownReason | null = null;
  /**
   * performance.now() from which silence counts: the last reply, else the first probe to the
   * current address; moved on by a stall of the prober itself. NaN while nothing was sent.
   */
  silentSince = NaN;
  /** Probes sent since the last reply, and when the `multiplier`-th of them left (NaN before). */
  sentSinceReply = 0;
  lastChanceSentAt = NaN;
  /** RFC 6298's smoothed RTT and its variation (ms; NaN before the first reply). */
  srtt = NaN;
  rttvar = NaN;
  /** Seq of the newest probe that drew a reply (errors of older probes are stale). */
  lastReplySeq = 0;
  /** ICMP errors / refused sends since the last reply, and the latest one's reason. */
  errorRun = 0;
  silenceReason: DownReason | null = null;
  /** Waiting for the post-I/O check of an expired detection deadline (see confirmDown). */
  confirming = false;
  /** ifindex of the default route a `gateway` target follows (null: unknown or not one). */
  ifindex: number | null = null;
  sent = 0;
  received = 0;
  lost = 0;
  readonly rtts: Float64Array;
  rttCount = 0;
  readonly outcomes: Uint8Array;
  outcomeCount = 0;
  address: string | null = null;
  addressBytes: Buffer | null = null;
  /** addressBytes as four 32-bit words, in memory order. */
  addressWords = new Uint32Array(4);
  groups = new Set<Group>();
  count = Infinity;
  /** A TCP/HTTP target (no ICMP socket slot then), and the device its connections are bound to. */
  stream: StreamTarget | null = null;
  device: string | undefined = undefined;

  constructor(
    readonly name: string,
    readonly spec: string,
    readonly family: 4 | 6,
    readonly slot: SocketSlot | null,
    readonly interval: number,
    readonly timeout: number,
    readonly multiplier: number,
    readonly recovery: number,
    readonly window: number,
  ) {
    this.rtts = new Float64Array(window);
    this.outcomes = new Uint8Array(window);
  }

  setAddress(address: string | null): void {
    this.address = address;
    this.addressBytes = address === null ? null : encodeAddress(address);
    this.addressWords.fill(0);
    if (this.addressBytes !== null) this.addressWords.set(new Uint32Array(this.addressBytes.buffer.slice(this.addressBytes.byteOffset, this.addressBytes.byteOffset + 16)));
  }

  recordRtt(rtt: number): void {
    this.rtts[this.rttCount % this.window] = rtt;
    this.rttCount++;
    if (Number.isNaN(this.srtt)) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
  }

  /**
   * How long the last of `multiplier` unanswered probes may stay unanswered before the target
   * is down: RFC 6298's SRTT + 4 RTTVAR, at least 1 ms and a tenth of the interval (a busy
   * machine may defer the far end's softirq or our read by a scheduler tick); Infinity until
   * a reply gave an RTT (the silence deadline alone decides then).
   */
  lateAfter(): number {
    if (Number.isNaN(this.srtt)) return Infinity;
    return Math.max(1, this.interval / 10, this.srtt + 4 * this.rttvar);
  }

  /** A probe left: counted towards the `multiplier` sent since the last reply. */
  noteSent(now: number): void {
    this.sentSinceReply++;
    if (this.sentSinceReply === this.multiplier) this.lastChanceSentAt = now;
  }

  recordOutcome(lost: boolean): void {
    this.outcomes[this.outcomeCount % this.window] = lost ? 1 : 0;
    this.outcomeCount++;
  }

  /** When silence takes this target down: Infinity while down, unaddressed or not probing. */
  detectAt(): number {
    if (this.state === 'down' || this.addressBytes === null || Number.isNaN(this.silentSince) || this.nextSend === Infinity) return Infinity;
    const bySilence = this.silentSince + this.multiplier * this.interval;
    const byCount = this.lastChanceSentAt + this.lateAfter();
    return byCount < bySilence ? byCount : bySilence;
  }

  /** Starts the silence window afresh (new address, back up, or probing resumed). */
  resetSilence(now: number): void {
    this.silentSince = now;
    this.sentSinceReply = 0;
    this.lastChanceSentAt = NaN;
    this.errorRun = 0;
    this.silenceReason = null;
  }
}

/** A refused send's errno (0 when unknown) and name: the error's code, else the errno's name. */
function sendErrorOf(error: unknown): { errno: number; name: string } {
  const e = error as { errno?: unknown; code?: unknown };
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : 0;
  return { errno, name: typeof e.code === 'string' ? e.code : errno !== 0 ? errnoName(errno) : 'send-failed' };
}

/** The interval less a random 0-25% (at least `minJitter`), RFC 5880 6.8.7. */
function jittered(interval: number, minJitter: number, lead = 0): number {
  const gap = interval * (1 - (minJitter + Math.random() * (0.25 - minJitter)));
  // Aimed `lead` ms early, the timers' usual lateness, so that sends leave at the drawn gap
  // on average; never closer than 3/4 of the interval to the previous send.
  return Math.max(interval * 0.75, gap - lead);
}

/**
 * The next send time of a target that was due at `from` and fired at `now`, in cadence `c`:
 * the first target of a round draws the next round, `now` plus the jittered interval (from the
 * actual send, so a late timer never makes the following gap short); the round's other
 * targets take the same one. A target off the slot's schedule (probing at once after a
 * gateway change) draws its own. After a stall the lost rounds are skipped, not burst.
 */
function advance(c: Cadence, from: number, now: number, lead: number): number {
  if (from === c.prev) return c.round;
  if (from === c.round) {
    c.prev = from;
    c.round = now + jittered(c.interval, c.minJitter, lead);
    return c.round;
  }
  return now + jittered(c.interval, c.minJitter, lead);
}

interface Group {
  name: string;
  targets: Target[];
  quorum: number;
  state: 'init' | 'up' | 'down';
}

const MAX_TAG = 0x100000000;

function invalid(option: string, message: string): NethealError {
  return new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option}: ${message}`);
}

function checkNumber(option: string, value: unknown, min: number, max: number, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(option, `expected a number, got ${JSON.stringify(value)}`);
  if (integer && !Number.isInteger(value)) throw invalid(option, `expected an integer, got ${value}`);
  if (value < min || value > max) throw invalid(option, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function checkTiming(options: TargetOptions, prefix: string): TargetOptions {
  if (options === null || typeof options !== 'object') throw invalid(prefix || 'options', 'expected an object');
  return {
    interval: checkNumber(`${prefix}interval`, options.interval, 10, 3600000, false),
    timeout: checkNumber(`${prefix}timeout`, options.timeout, 1, 60000, false),
    multiplier: checkNumber(`${prefix}multiplier`, options.multiplier, 1, 255, true),
    recovery: checkNumber(`${prefix}recovery`, options.recovery, 1, 255, true),
    window: checkNumber(`${prefix}window`, options.window, 1, 100000, true),
  };
}

function checkDevice(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 15 || /[\s/\0]/.test(value)) {
    throw invalid(option, `expected an interface name (1-15 characters), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A record buffer as 32-bit words (Buffer.alloc() gives it its own, aligned ArrayBuffer). */
function wordsOf(records: Buffer): Uint32Array {
  return new Uint32Array(records.buffer, records.byteOffset, records.length >> 2);
}

function pingGroupRange(): string | null {
  try {
    return readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return null;
  }
}

/** Maps a failure to open the native socket to a NethealError that says how to fix it. */
function socketError(error: unknown, family: 4 | 6, mode: string, device: string | undefined, netns: string | undefined): NethealError {
  const e = error as { code?: string; errno?: number; syscall?: string; message?: string; rawErrno?: number };
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : undefined;
  const details = { errno, syscall: e.syscall, cause: error };
  const what = `open ICMP${family === 6 ? 'v6' : ''} socket`;
  if (e.syscall === 'setsockopt' && e.code === 'ENODEV') {
    return new NethealError('NETHEAL_ERR_NO_DEVICE', `${what}: no interface named ${device ?? '?'}${netns ? ` in ${netns}` : ''}`, details);
  }
  if (e.syscall === 'open' || e.syscall === 'setns') {
    if (e.code === 'EPERM') return new NethealError('NETHEAL_ERR_PRIVILEGE', `${what}: entering ${netns} needs CAP_SYS_ADMIN`, details);
    return new NethealError('NETHEAL_ERR_NETNS', `${what}: cannot enter network namespace ${netns}: ${e.code ?? e.message}`, details);
  }
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    const range = netns === undefined ? pingGroupRange() : null;
    const gid = typeof process.getgid === 'function' ? process.getgid() : undefined;
    const rawFix = 'a raw socket needs CAP_NET_RAW (run as root, `setcap cap_net_raw+ep`, or AmbientCapabilities=CAP_NET_RAW)';
    const dgramFix = `a ping socket needs the process's group id${gid === undefined ? '' : ` (${gid})`} inside net.ipv4.ping_group_range` +
      `${range === null ? '' : ` (now "${range}")`} (e.g. sysctl -w net.ipv4.ping_group_range="0 2147483647")`;
    const fix = mode === 'raw' ? rawFix : mode === 'dgram' ? dgramFix : `${rawFix}; ${dgramFix}`;
    return new NethealError('NETHEAL_ERR_PRIVILEGE', `${what}: permission denied: ${fix}`, details);
  }
  return new NethealError('NETHEAL_ERR_KERNEL', `${what}: ${e.message ?? String(error)}`, details);
}

/**
 * BFD-style ICMP prober. Events: `target-down` and `target-up` ({@link TargetStateEvent}),
 * `group-down` and `group-up` ({@link GroupStateEvent}), `probe` ({@link ProbeResult}, only
 * computed while someone listens), `gateway-changed` ({target, from, to}), `error`.
 */
export class Prober extends EventEmitter<ProberEvents> {
  private readonly binding: NativeBinding;
  private readonly netns: string | undefined;
  private readonly device: string | undefined;
  private readonly mode: 'auto' | 'raw' | 'dgram';
  private readonly txTimestamps: boolean;
  private readonly ttl: number | undefined;
  private readonly defaults: Required<Omit<TargetOptions, 'timeout'>> & { timeout: number | undefined };
  private readonly gatewaySource: GatewaySource | undefined;
  private readonly targets = new Map<string, Target>();
  private readonly groups = new Map<string, Group>();
  private readonly sockets = new Map<string, SocketSlot>();
  private readonly pending = new ProbeTable<Probe>();
  private readonly heap: Target[] = [];
  /**
   * The heap's due times, beside it by position: comparisons read unboxed doubles here
   * instead of each target's `due` (a boxed number behind the target).
   */
  private heapDue = new Float64Array(256);
  private readonly dirty = new Set<SocketSlot>();
  private readonly phases = new Map<number, { base: number; count: number }>();
  /** Send schedules by `${interval}|${minJitter}|${slot offset}` (see add()). */
  private readonly cadences = new Map<string, Cadence>();
  /** Targets whose detection deadline expired, to be confirmed after the next I/O poll. */
  private readonly suspects = new Set<Target>();
  private confirmTimer: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;
  /**
   * How late the timers fire sends, on average (ms; an EWMA of `now - nextSend`): libuv's
   * millisecond clock and the rounding up of each delay make ~1 ms. Sends are aimed that much
   * early (see jittered()), or every gap would be the drawn one plus it, and a silent
   * target's `multiplier` probes would take longer to go out than the jitter intends.
   */
  private sendLate = 0;
  /** Turn-by-turn wait for the last two milliseconds of a detection deadline (see arm()). */
  private spin: NodeJS.Immediate | null = null;
  private timerDue = Infinity;
  /** performance.now() of the last process() (see add(): an overdue round not yet sent). */
  private lastProcess = -Infinity;
  private nextTag: number;
  private closed = false;
  private refed = true;
  private readonly onGatewayEvent = (e: GatewaySourceEvent): void => {
    if (e?.type === 'default-route' || e?.type === 'resync') this.followGateways();
    else if (e?.type === 'neighbour' && e.state === 'failed' && typeof e.address === 'string') this.neighbourFailed(e.address, e.ifindex ?? null);
  };

  constructor(options: ProberOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw invalid('options', 'expected an object');
    const timing = checkTiming(options, '');
    if (options.mode !== undefined && !['auto', 'raw', 'dgram'].includes(options.mode)) {
      throw invalid('mode', `expected 'auto', 'raw' or 'dgram', got ${JSON.stringify(options.mode)}`);
    }
    const gs = options.gatewaySource;
    if (gs !== undefined && (gs === null || typeof gs.defaultRoutes !== 'function' || typeof gs.on !== 'function' || typeof gs.off !== 'function')) {
      throw invalid('gatewaySource', 'expected an object with defaultRoutes(), on() and off() (a LinkMonitor)');
    }
    if (options.txTimestamps !== undefined && typeof options.txTimestamps !== 'boolean') {
      throw invalid('txTimestamps', `expected a boolean, got ${JSON.stringify(options.txTimestamps)}`);
    }
    this.txTimestamps = options.txTimestamps ?? true;
    this.ttl = checkNumber('ttl', options.ttl, 1, 255, true);
    this.device = checkDevice('device', options.device);
    this.mode = options.mode ?? 'auto';
    this.netns = resolveNetns(options.netns, 'netns');
    this.binding = options.binding ?? nativeBinding();
    this.defaults = {
      interval: timing.interval ?? 1000,
      timeout: timing.timeout,
      multiplier: timing.multiplier ?? 3,
      recovery: timing.recovery ?? 3,
      window: timing.window ?? 100,
    };
    this.gatewaySource = gs;
    this.nextTag = Math.floor(Math.random() * MAX_TAG);
    if (gs !== undefined) gs.on('event', this.onGatewayEvent);
  }

  /**
   * Starts probing `target`: an IPv4/IPv6 address, or `gateway` (the current default gateway
   * of `family`, followed when it changes; needs `gatewaySource`). Returns the target's name.
   * Throws NETHEAL_ERR_PRIVILEGE when neither a raw nor a ping socket may be opened.
   */
  add(spec: string | HttpTargetSpec, options: AddTargetOptions = {}): string {
    this.assertOpen();
    const objectForm = spec !== null && typeof spec === 'object';
    if (!objectForm && (typeof spec !== 'string' || spec.length === 0)) throw invalid('target', `expected an IP address, "gateway", tcp://A:P or http://A/path, got ${JSON.stringify(spec)}`);
    let stream: StreamTarget | null;
    try {
      stream = parseStreamTarget(spec);
    } catch (error) {
      throw invalid('target', (error as Error).message);
    }
    const target = targetSpecName(spec);
    const timing = checkTiming(options, '');
    const name = options.name ?? target;
    if (typeof name !== 'string' || name.length === 0) throw invalid('name', `expected a non-empty string, got ${JSON.stringify(name)}`);
    if (this.targets.has(name)) throw invalid('name', `a target named ${JSON.stringify(name)} already exists`);
    const device = checkDevice('device', options.device) ?? this.device;
    let family: 4 | 6;
    const isGateway = target === 'gateway';
    if (stream !== null) {
      family = stream.family;
    } else if (isGateway) {
      if (options.family !== undefined && options.family !== 4 && options.family !== 6) throw invalid('family', `expected 4 or 6, got ${JSON.stringify(options.family)}`);
      if (this.gatewaySource === undefined) throw invalid('target', '"gateway" needs the gatewaySource option (a LinkMonitor)');
      family = options.family ?? 4;
    } else {
      const kind = isIP(target);
      if (kind === 0) throw invalid('target', `expected an IP address or "gateway", got ${JSON.stringify(target)}`);
      family = kind as 4 | 6;
      if (options.family !== undefined && options.family !== family) throw invalid('family', `${target} is an IPv${family} address, not IPv${options.family}`);
    }
    const count = checkNumber('count', options.count, 1, Number.MAX_SAFE_INTEGER, true);
    const interval = timing.interval ?? this.defaults.interval;
    const slot = stream === null ? this.socketFor(family, device) : null;
    const t = new Target(name, target, family, slot,
      interval,
      timing.timeout ?? this.defaults.timeout ?? interval,
      timing.multiplier ?? this.defaults.multiplier,
      timing.recovery ?? this.defaults.recovery,
      timing.window ?? this.defaults.window);
    if (slot !== null) slot.users++;
    t.stream = stream;
    t.device = device;
    if (count !== undefined) t.count = count;
    if (stream !== null) {
      t.setAddress(stream.address);
    } else if (isGateway) {
      const route = this.currentGateway(family);
      t.setAddress(route?.gateway ?? null);
      t.ifindex = route?.ifindex ?? null;
    } else {
      t.setAddress(target);
    }
    this.targets.set(name, t);
    // Phases: targets of one interval are spread over it in at most 20 slots (golden-ratio
    // order), so a thousand targets make 20 bursts of 50 (one sendmmsg each) instead of one
    // burst that would hold the event loop for milliseconds (measured: 10 slots of 100 added
    // ~1.3 ms to the loop's p99 delay, 20 of 50 ~0.7 ms), or a thousand wake-ups. The first
    // target of an interval probes at once. Slots sit on one grid per interval (anchored at the first target of that interval), so
    // targets added one by one still share their slot's wake-up and sendmmsg().
    const now = performance.now();
    let phase = this.phases.get(interval);
    if (phase === undefined) {
      phase = { base: now, count: 0 };
      this.phases.set(interval, phase);
    }
    const quantum = Math.max(1, interval / 20);
    const offset = Math.floor(((phase.count++ * 0.6180339887498949) % 1) * interval / quantum) * quantum;
    // Each slot keeps one jittered schedule (a Cadence) that its targets share; a slot whose
    // schedule went stale (its targets removed or stopped) restarts on the grid.
    const minJitter = t.multiplier === 1 ? 0.1 : 0;
    const key = `${interval}|${minJitter}|${offset}`;
    let cadence = this.cadences.get(key);
    if (cadence === undefined) {
      cadence = { interval, minJitter, prev: NaN, round: -Infinity };
      this.cadences.set(key, cadence);
    }
    // An overdue round that no process() has run since is still to be sent (a long add()
    // loop holds the event loop: 30-70 ms for 1000 targets, more on a busy machine): join
    // it, or the slot splits for good into targets that each draw their own schedule (one
    // wake-up and sendmmsg() each). A round that process() passed is stale (its targets
    // were removed or stopped): restart on the grid.
    if (cadence.round < now && this.lastProcess >= cadence.round) {
      let next = phase.base + offset;
      if (next < now) next += Math.ceil((now - next) / interval) * interval;
      cadence.round = next;
    }
    t.cadence = cadence;
    t.nextSend = cadence.round;
    this.reschedule(t);
    this.arm();
    return name;
  }

  /** Stops probing a target (and removes it from its groups). */
  remove(name: string): void {
    const t = this.targets.get(name);
    if (t === undefined) throw invalid('name', `no target named ${JSON.stringify(name)}`);
    this.cancelOutstanding(t);
    this.heapRemove(t);
    this.suspects.delete(t);
    this.targets.delete(name);
    t.live = false;
    for (const g of t.groups) {
      g.targets = g.targets.filter((x) => x !== t);
      this.evaluateGroup(g);
    }
    const slot = t.slot;
    if (slot === null) return;
    slot.users--;
    if (slot.users === 0) {
      slot.socket.close();
      this.sockets.delete(slot.key);
      this.dirty.delete(slot);
    }
  }

  /** Defines a group of existing targets; it is down when fewer than `quorum` of them are up. */
  addGroup(name: string, options: { targets: string[]; quorum?: number }): void {
    this.assertOpen();
    if (typeof name !== 'string' || name.length === 0) throw invalid('group', `expected a non-empty name, got ${JSON.stringify(name)}`);
    if (this.groups.has(name)) throw invalid('group', `a group named ${JSON.stringify(name)} already exists`);
    if (options === null || typeof options !== 'object' || !Array.isArray(options.targets) || options.targets.length === 0) {
      throw invalid('targets', 'expected a non-empty array of target names');
    }
    const members = options.targets.map((n) => {
      const t = this.targets.get(n);
      if (t === undefined) throw invalid('targets', `no target named ${JSON.stringify(n)}`);
      return t;
    });
    const quorum = checkNumber('quorum', options.quorum, 1, members.length, true) ?? 1;
    const group: Group = { name, targets: members, quorum, state: 'init' };
    for (const t of members) t.groups.add(group);
    this.groups.set(name, group);
    this.evaluateGroup(group);
  }

  /** Current state of a group: 'init' until decided, then 'up' or 'down'. */
  groupState(name: string): 'init' | 'up' | 'down' {
    const g = this.groups.get(name);
    if (g === undefined) throw invalid('group', `no group named ${JSON.stringify(name)}`);
    return g.state;
  }

  /** Names of the targets. */
  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  /** The kind of socket in use for a family: 'raw', 'dgram', or null if none is open. */
  socketKind(family: 4 | 6): 'raw' | 'dgram' | null {
    for (const slot of this.sockets.values()) if (slot.family === family) return slot.socket.kind;
    return null;
  }

  /** Statistics of a target: counts, loss and RTT (ms) over its window. */
  stats(name: string): TargetStats {
    const t = this.targets.get(name);
    if (t === undefined) throw invalid('name', `no target named ${JSON.stringify(name)}`);
    const n = Math.min(t.rttCount, t.window);
    let rtt: TargetStats['rtt'] = null;
    if (n > 0) {
      const ordered: number[] = [];
      for (let i = t.rttCount - n; i < t.rttCount; i++) ordered.push(t.rtts[i % t.window]!);
      const sorted = [...ordered].sort((a, b) => a - b);
      let jitter = 0;
      for (let i = 1; i < ordered.length; i++) jitter += Math.abs(ordered[i]! - ordered[i - 1]!);
      rtt = {
        min: sorted[0]!,
        avg: ordered.reduce((a, b) => a + b, 0) / n,
        max: sorted[n - 1]!,
        p99: sorted[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]!,
        jitter: n > 1 ? jitter / (n - 1) : 0,
      };
    }
    const m = Math.min(t.outcomeCount, t.window);
    let lostInWindow = 0;
    for (let i = 0; i < m; i++) lostInWindow += t.outcomes[i]!;
    return {
      target: t.name, address: t.address, family: t.family, state: t.state,
      sent: t.sent, received: t.received, lost: t.lost,
      loss: m === 0 ? null : lostInWindow / m,
      rtt, consecutiveMisses: t.misses, consecutiveReplies: t.replies, lastReason: t.lastReason,
    };
  }

  /** Lets the process exit while probing (sockets and timer stop holding the loop). */
  unref(): this {
    this.refed = false;
    for (const s of this.sockets.values()) s.socket.unref();
    this.timer?.unref();
    this.spin?.unref();
    this.confirmTimer?.unref();
    return this;
  }

  /** Undoes {@link unref}. */
  ref(): this {
    this.refed = true;
    for (const s of this.sockets.values()) s.socket.ref();
    this.timer?.ref();
    this.spin?.ref();
    this.confirmTimer?.ref();
    return this;
  }

  /** Stops every probe at once and closes the sockets (no fd left behind). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.confirmTimer !== null) clearImmediate(this.confirmTimer);
    this.confirmTimer = null;
    if (this.spin !== null) clearImmediate(this.spin);
    this.spin = null;
    this.suspects.clear();
    this.gatewaySource?.off('event', this.onGatewayEvent);
    for (const slot of this.sockets.values()) slot.socket.close();
    this.sockets.clear();
    for (const probe of this.pending.values()) probe.cancel?.();
    this.pending.clear();
    this.heap.length = 0;
    this.dirty.clear();
  }

  /** True once close() ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  // ---- sockets ------------------------------------------------------------------------

  private socketFor(family: 4 | 6, device: string | undefined): SocketSlot {
    const key = `${family}|${device ?? ''}`;
    let slot = this.sockets.get(key);
    if (slot !== undefined) return slot;
    let socket: NativeIcmpSocket;
    const options = { family, mode: this.mode, txTimestamps: this.txTimestamps, ...(this.ttl === undefined ? {} : { ttl: this.ttl }), ...(this.netns ? { netns: this.netns } : {}), ...(device ? { device } : {}) };
    const holder: { slot?: SocketSlot } = {};
    try {
      socket = new this.binding.IcmpSocket(options,
        (records, count) => { if (holder.slot !== undefined) this.onResults(holder.slot, records, count); },
        (error) => { if (this.listenerCount('error') > 0) this.emit('error', error); });
    } catch (error) {
      throw socketError(error, family, this.mode, device, this.netns);
    }
    if (!this.refed) socket.unref();
    const records = Buffer.alloc(SEND_RECORD * 64);
    slot = { key, family, socket, records, words: wordsOf(records), errnos: new Int32Array(64), probes: [], count: 0, users: 0 };
    holder.slot = slot;
    this.sockets.set(key, slot);
    return slot;
  }

  private queueProbe(t: Target, now: number): void {
    const slot = t.slot;
    if (slot === null) {
      this.startStream(t, now);
      return;
    }
    if (slot.count * SEND_RECORD >= slot.records.length) {
      const bigger = Buffer.alloc(slot.records.length * 2);
      slot.records.copy(bigger);
      slot.records = bigger;
      slot.words = wordsOf(bigger);
      slot.errnos = new Int32Array(slot.errnos.length * 2);
    }
    const probe = this.newProbe(t, now);
    // The record (address[16], u16 seq, u16 0, u32 tag) as six words, without Buffer calls:
    // the addon reads it in host byte order, as these typed arrays write it.
    const w = slot.words;
    const o = slot.count * (SEND_RECORD / 4);
    const a = t.addressWords;
    w[o] = a[0]!;
    w[o + 1] = a[1]!;
    w[o + 2] = a[2]!;
    w[o + 3] = a[3]!;
    w[o + 4] = probe.seq & 0xffff;
    w[o + 5] = probe.tag;
    slot.probes[slot.count] = probe;
    slot.count++;
    this.dirty.add(slot);
  }

  /** The next probe of `t`, sent at `now`: numbered, tagged, outstanding and pending. */
  private newProbe(t: Target, now: number): Probe {
    const tag = this.nextTag;
    this.nextTag = (this.nextTag + 1) % MAX_TAG;
    t.seq++;
    // Every field from the start (cancel too), so ICMP and stream probes share one shape.
    const probe: Probe = { tag, seq: t.seq, sentAt: now, deadline: now + t.timeout, target: t, done: false, cancel: undefined };
    if (Number.isNaN(t.silentSince)) t.resetSilence(now);
    t.noteSent(now);
    t.outstanding.push(probe);
    t.sent++;
    this.pending.set(probe);
    return probe;
  }

  /** One TCP/HTTP probe: a connection now; its outcome finishes the probe unless its timeout did. */
  private startStream(t: Target, now: number): void {
    const probe = this.newProbe(t, now);
    const onOutcome = (outcome: StreamOutcome): void => {
      if (this.closed || probe.done) return;
      if (outcome.status === 'reply') this.finish(probe, 'reply', null, outcome.rttMs, t.address, null, null, false);
      else this.finish(probe, outcome.status, { kind: outcome.kind, name: outcome.name, ...(outcome.errno === undefined ? {} : { errno: outcome.errno, code: outcome.errno }) }, null, null, null, outcome.errno ?? null, false);
      if (this.closed) return;
      this.flush();
      this.arm();
    };
    try {
      probe.cancel = startStreamProbe(t.stream!, { binding: this.binding, netns: this.netns, device: t.device }, onOutcome);
    } catch (error) {
      // No socket (the namespace or device went away): a refused send, as for ICMP.
      const { errno, name } = sendErrorOf(error);
      // Finished on the next turn: the caller (process()) is in the middle of this target.
      setImmediate(() => onOutcome({ status: 'error', kind: 'send-error', name, ...(errno !== 0 ? { errno } : {}) }));
    }
  }

  // Sends each dirty slot's batch. The batch is taken off its slot before send(), so whatever
  // send() does (fail some probes, or throw: the socket closed under us) the slot starts the
  // next batch empty and holds no probe of this one, and every other slot is still flushed.
  private flush(): void {
    const slots = [...this.dirty];
    this.dirty.clear();
    for (const slot of slots) {
      if (this.closed) return;
      const count = slot.count;
      const probes = slot.probes;
      slot.count = 0;
      slot.probes = [];
      if (count === 0) continue;
      let failed: number;
      try {
        failed = slot.socket.send(slot.records, count, slot.errnos);
      } catch (error) {
        this.batchFailed(probes.slice(0, count), error);
        continue;
      }
      if (failed === 0) continue;
      for (let i = 0; i < count && !this.closed; i++) {
        const errno = slot.errnos[i]!;
        if (errno === 0) continue;
        const probe = probes[i]!;
        if (probe.done) continue;
        const name = errnoName(errno);
        this.finish(probe, 'error', { kind: 'send-error', errno, code: errno, name }, null, null, null, errno, false);
      }
    }
  }

  // send() threw: none of the batch went out. Each probe is a send error now (not a timeout
  // later), and the error goes to 'error' listeners.
  private batchFailed(probes: Probe[], error: unknown): void {
    const { errno, name } = sendErrorOf(error);
    for (const probe of probes) {
      if (this.closed) return;
      if (probe.done) continue;
      this.finish(probe, 'error', { kind: 'send-error', errno, code: errno, name }, null, null, null, errno, false);
    }
    if (this.closed || this.listenerCount('error') === 0) return;
    const message = (error as { message?: unknown }).message;
    const text = typeof message === 'string' ? message : String(error);
    this.emit('error', error instanceof NethealError ? error : new NethealError('NETHEAL_ERR_KERNEL', `send ICMP probes: ${text}`, { cause: error, ...(errno !== 0 ? { errno } : {}) }));
  }

  // ---- results ------------------------------------------------------------------------

  private onResults(slot: SocketSlot, buf: Buffer, count: number): void {
    if (this.closed) return;
    const family = slot.family;
    // Asked once per batch: a 'probe' listener added from a handler meanwhile gets `from`
    // from the next batch on.
    const listening = this.listenerCount('probe') > 0;
    const now = performance.now();
    for (let i = 0; i < count && !this.closed; i++) {
      const o = i * RESULT_RECORD;
      const kind = buf[o]!;
      const flags = buf[o + 3]!;
      let probe: Probe | undefined;
      if (flags & ResultFlag.TAG_VALID) {
        probe = this.pending.get(buf.readUInt32LE(o + 8));
        if (probe !== undefined && probe.target.slot !== slot) probe = undefined;
      }
      if (kind === ResultKind.REPLY) {
        if (probe === undefined || probe.done) continue;  // late (already a timeout) or not ours
        const rtt = flags & ResultFlag.RTT_KNOWN ? buf.readDoubleLE(o + 48) / 1e6 : now - probe.sentAt;
        const from = listening ? decodeAddress(buf, o + 16, family) : null;
        this.finish(probe, 'reply', null, rtt, from, null, null, (flags & ResultFlag.KERNEL_RTT) !== 0);
      } else if (kind === ResultKind.ICMP_ERROR) {
        const seq = buf.readUInt16LE(o + 4);
        if (probe === undefined) {
          // The router quoted too little of our packet to hold the tag: match destination + seq.
          const dest = decodeAddress(buf, o + 32, family);
          probe = this.findBySeq(slot, dest, seq);
        }
        if (probe === undefined || probe.done) continue;
        const type = buf[o + 1]!;
        const code = buf[o + 2]!;
        const from = decodeAddress(buf, o + 16, family);
        const name = icmpErrorName(family, type, code);
        this.finish(probe, 'unreachable', { kind: 'unreachable', type, code, name, from, errno: buf.readInt32LE(o + 12) }, null, from, type, code, false);
      }
      // Local errors (EMSGSIZE) name no probe; the send itself reports them.
    }
    if (this.closed) return;
    this.flush();
    this.arm();
  }

  private findBySeq(slot: SocketSlot, dest: string | null, seq: number): Probe | undefined {
    if (dest === null) return undefined;
    for (const t of this.targets.values()) {
      if (t.slot !== slot || t.address !== dest) continue;
      for (const p of t.outstanding) if (!p.done && (p.seq & 0xffff) === seq) return p;
    }
    return undefined;
  }

  private finish(probe: Probe, status: ProbeStatus, reason: DownReason | null, rttMs: number | null,
    from: string | null, type: number | null, code: number | null, kernelRtt: boolean): void {
    probe.done = true;
    if (status === 'timeout') probe.cancel?.();
    this.pending.delete(probe.tag);
    const t = probe.target;
    // Drop finished probes at the head so the next deadline is the oldest live one.
    while (t.outstanding.length > 0 && t.outstanding[0]!.done) t.outstanding.shift();
    if (this.listenerCount('probe') > 0) {
      const result: ProbeResult = {
        target: t.name, address: t.address ?? '', seq: probe.seq, status, rttMs, code, type, from,
        reason: reason?.name ?? (status === 'timeout' ? 'timeout' : null), kernelRtt, sentMs: probe.sentAt,
      };
      this.emit('probe', result);
      if (this.closed) return;
    }
    if (status === 'reply') {
      t.received++;
      t.recordRtt(rttMs!);
      t.recordOutcome(false);
      t.misses = 0;
      t.replies++;
      // Heard from: the detection deadline moves to multiplier x interval from now, and the
      // count of unanswered probes starts again.
      if (probe.seq >= t.lastReplySeq) {
        t.lastReplySeq = probe.seq;
        t.resetSilence(performance.now());
      }
      const needed = t.state === 'init' ? 1 : t.recovery;
      if (t.state !== 'up' && t.replies >= needed) this.transition(t, 'up', null, t.replies);
    } else {
      t.lost++;
      t.recordOutcome(true);
      t.lastReason = reason;
      // A loss older than the last answered probe (one sent into the fault, timing out after
      // the path came back) is history: it breaks no run of replies.
      if (probe.seq > t.lastReplySeq) {
        t.replies = 0;
        t.misses++;
      }
      // Early evidence: an ICMP error or a refused send names this probe as lost for a
      // reason, not just late. min(2, multiplier) of them in a row, with no reply between (an
      // error of a probe older than the last reply is stale), take the target down before
      // its deadline; one alone may be a route changing under the router.
      if (status !== 'timeout' && reason !== null && probe.seq > t.lastReplySeq) {
        t.errorRun++;
        t.silenceReason = reason;
        if (t.state !== 'down' && t.errorRun >= Math.min(2, t.multiplier)) this.transition(t, 'down', reason, t.errorRun);
      }
    }
    this.reschedule(t);
  }

  private transition(t: Target, state: 'up' | 'down', reason: DownReason | null, count: number): void {
    t.state = state;
    const now = performance.now();
    if (state === 'up') t.resetSilence(now);
    // Replies before the silence say nothing about the way back: recovery counts afresh (a
    // silence decided before the lost probes' own timeouts fire would otherwise find the old
    // run of replies still standing).
    else t.replies = 0;
    const event: TargetStateEvent = { target: t.name, address: t.address, family: t.family, state, reason, count, monotonicNs: process.hrtime.bigint() };
    if (state === 'down') {
      event.silentMs = Number.isNaN(t.silentSince) ? 0 : Math.max(0, now - t.silentSince);
      event.unanswered = t.sentSinceReply;
    }
    this.emit(state === 'up' ? 'target-up' : 'target-down', event);
    for (const g of t.groups) this.evaluateGroup(g);
  }

  private evaluateGroup(g: Group): void {
    let up = 0, init = 0;
    for (const t of g.targets) {
      if (t.state === 'up') up++;
      else if (t.state === 'init') init++;
    }
    let state = g.state;
    if (up >= g.quorum) state = 'up';
    else if (up + init < g.quorum || init === 0) state = 'down';
    if (state === g.state || state === 'init') return;
    g.state = state;
    const event: GroupStateEvent = { group: g.name, state, up, quorum: g.quorum, targets: g.targets.map((t) => t.name), monotonicNs: process.hrtime.bigint() };
    this.emit(state === 'up' ? 'group-up' : 'group-down', event);
  }

  // ---- gateway ------------------------------------------------------------------------

  private currentGateway(family: 4 | 6): { gateway: string; ifindex: number | null } | null {
    const routes = this.gatewaySource!.defaultRoutes();
    for (const r of routes) if (r.family === family && typeof r.gateway === 'string' && isIP(r.gateway) === family) return { gateway: r.gateway, ifindex: r.ifindex };
    return null;
  }

  /**
   * Early evidence from the kernel: the neighbour (ARP/NDP) entry of `address` went FAILED,
   * i.e. its unicast and broadcast solicitations went unanswered, so nothing sent to it can
   * leave the host. A target at that address (a `gateway` target: on the same device) that
   * has been silent for at least one interval goes down at once; one that answered within
   * the last interval is left to its deadline (the entry may have failed and been re-learnt
   * between two of our probes).
   */
  private neighbourFailed(address: string, ifindex: number | null): void {
    if (this.closed) return;
    const now = performance.now();
    for (const t of this.targets.values()) {
      if (t.address !== address || t.state === 'down' || t.addressBytes === null) continue;
      if (t.spec === 'gateway' && t.ifindex !== null && ifindex !== null && t.ifindex !== ifindex) continue;
      if (Number.isNaN(t.silentSince) || now - t.silentSince < t.interval) continue;
      this.transition(t, 'down', { kind: 'neighbour-failed', name: 'neighbour-failed', from: null }, 0);
      if (this.closed) return;
      this.reschedule(t);
    }
    this.arm();
  }

  private followGateways(): void {
    if (this.closed) return;
    const now = performance.now();
    for (const t of this.targets.values()) {
      if (t.spec !== 'gateway') continue;
      const route = this.currentGateway(t.family);
      const gateway = route?.gateway ?? null;
      t.ifindex = route?.ifindex ?? null;
      if (gateway === t.address) continue;
      const previous = t.address;
      this.cancelOutstanding(t);
      t.setAddress(gateway);
      t.misses = 0;
      t.replies = 0;
      // Silence counts from the first probe to the new address.
      t.silentSince = NaN;
      t.errorRun = 0;
      t.silenceReason = null;
      this.emit('gateway-changed', { target: t.name, from: previous, to: gateway });
      if (gateway === null) {
        if (t.state !== 'down') this.transition(t, 'down', { kind: 'no-gateway' }, 0);
      } else {
        if (t.seq < t.count) t.nextSend = now;
      }
      this.reschedule(t);
    }
    this.arm();
  }

  private cancelOutstanding(t: Target): void {
    for (const p of t.outstanding) {
      p.done = true;
      p.cancel?.();
      this.pending.delete(p.tag);
    }
    t.outstanding.length = 0;
  }

  // ---- the one timer --------------------------------------------------------------------

  private onTimer = (): void => {
    this.timer = null;
    this.timerDue = Infinity;
    this.process();
  };

  private onSpin = (): void => {
    this.spin = null;
    this.process();
  };

  /** Handles every target whose due time passed: expired probes, sends, deadlines. */
  private process(): void {
    if (this.closed) return;
    const now = performance.now();
    this.lastProcess = now;
    const heap = this.heap;
    while (heap.length > 0 && this.heapDue[0]! <= now) {
      const t = heap[0]!;
      // Expire probes whose deadline passed: each is a miss (a missing ICMP error included).
      while (t.outstanding.length > 0) {
        const p = t.outstanding[0]!;
        if (p.done) { t.outstanding.shift(); continue; }
        if (p.deadline > now) break;
        t.outstanding.shift();
        this.finish(p, 'timeout', { kind: 'timeout' }, null, null, null, null, false);
        if (this.closed) return;
      }
      if (!t.live) continue;
      if (t.nextSend <= now) {
        // A send half an interval late means the prober itself stalled (a blocked event loop,
        // no CPU): it was not asking, so the stall is not the target's silence.
        const late = now - t.nextSend;
        if (late > t.interval / 2 && !Number.isNaN(t.silentSince)) t.silentSince = Math.min(now, t.silentSince + late);
        if (t.addressBytes !== null) this.queueProbe(t, now);
        // A stall is not the timers' usual lateness: capped at a quarter interval.
        this.sendLate += 0.05 * (Math.min(late, t.interval / 4) - this.sendLate);
        t.nextSend = t.cadence === null ? now + jittered(t.interval, 0, this.sendLate) : advance(t.cadence, t.nextSend, now, this.sendLate);
        if (t.seq >= t.count) t.nextSend = Infinity;
      }
      // Silent past the deadline: confirmed after this turn's I/O poll (see confirmDown).
      if (!t.confirming && t.detectAt() <= now) {
        t.confirming = true;
        this.suspects.add(t);
        if (this.confirmTimer === null) {
          this.confirmTimer = setImmediate(this.confirmDown);
          if (!this.refed) this.confirmTimer.unref();
        }
      }
      this.reschedule(t);
    }
    if (this.closed) return;
    this.flush();
    this.arm();
  }

  /**
   * Runs after the I/O poll that follows the timer which found a deadline passed: libuv runs
   * timers before it reads sockets, so a reply already queued when the deadline fired is
   * taken (and moves the deadline) before the target is declared down.
   */
  private confirmDown = (): void => {
    this.confirmTimer = null;
    if (this.closed) return;
    const now = performance.now();
    const suspects = [...this.suspects];
    this.suspects.clear();
    for (const t of suspects) {
      t.confirming = false;
      if (this.closed) return;
      if (!t.live) continue;
      if (t.detectAt() <= now) this.transition(t, 'down', t.silenceReason ?? { kind: 'timeout' }, t.multiplier);
      if (this.closed) return;
      this.reschedule(t);
    }
    this.arm();
  };

  private reschedule(t: Target): void {
    if (this.closed || !t.live) return;
    let due = t.addressBytes === null ? Infinity : t.nextSend;
    for (const p of t.outstanding) {
      if (p.done) continue;
      if (p.deadline < due) due = p.deadline;
      break;
    }
    if (!t.confirming) due = Math.min(due, t.detectAt());
    if (t.heapIndex < 0) {
      t.due = due;
      t.heapIndex = this.heap.length;
      this.heap.push(t);
      if (this.heapDue.length < this.heap.length) {
        const bigger = new Float64Array(this.heapDue.length * 2);
        bigger.set(this.heapDue);
        this.heapDue = bigger;
      }
      this.heapDue[t.heapIndex] = due;
      this.siftUp(t.heapIndex);
    } else if (due !== t.due) {
      const older = t.due;
      t.due = due;
      this.heapDue[t.heapIndex] = due;
      if (due < older) this.siftUp(t.heapIndex);
      else this.siftDown(t.heapIndex);
    }
  }

  private arm(): void {
    if (this.closed || this.heap.length === 0) return;
    const head = this.heap[0]!;
    const due = this.heapDue[0]!;
    if (due === Infinity) return;
    // A detection deadline is kept to a fraction of a millisecond (timers have a resolution
    // of one, and fire up to one or two late): the timer wakes us early and the last two
    // milliseconds are waited out turn by turn (setImmediate; I/O is still served between
    // turns). While replies come, a target's next send falls well before its deadline (with
    // a multiplier of 2 or more), so only a silent target's deadline is waited for this way.
    const precise = !head.confirming && due === head.detectAt();
    const left = due - performance.now();
    if (precise && left < 2) {
      if (this.spin === null) {
        this.spin = setImmediate(this.onSpin);
        if (!this.refed) this.spin.unref();
      }
      return;
    }
    if (this.timer !== null && this.timerDue <= due) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const delay = precise ? Math.max(1, Math.floor(left) - 1) : Math.max(1, Math.ceil(left));
    this.timer = setTimeout(this.onTimer, delay);
    if (!this.refed) this.timer.unref();
    this.timerDue = due;
  }

  private heapRemove(t: Target): void {
    const i = t.heapIndex;
    if (i < 0) return;
    const last = this.heap.pop()!;
    t.heapIndex = -1;
    if (last === t) return;
    this.heap[i] = last;
    last.heapIndex = i;
    this.heapDue[i] = last.due;
    this.siftDown(i);
    this.siftUp(last.heapIndex);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const dues = this.heapDue;
    const t = heap[i]!;
    const due = dues[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentDue = dues[parent]!;
      if (parentDue <= due) break;
      const p = heap[parent]!;
      heap[i] = p;
      dues[i] = parentDue;
      p.heapIndex = i;
      i = parent;
    }
    heap[i] = t;
    dues[i] = due;
    t.heapIndex = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const dues = this.heapDue;
    const n = heap.length;
    const t = heap[i]!;
    const due = dues[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let childDue = dues[child]!;
      if (child + 1 < n && dues[child + 1]! < childDue) childDue = dues[++child]!;
      if (childDue >= due) break;
      const c = heap[child]!;
      heap[i] = c;
      dues[i] = childDue;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = t;
    dues[i] = due;
    t.heapIndex = i;
  }

  private assertOpen(): void {
    if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', 'prober is closed');
  }
}
