/**
 * Sockets: list, filter and destroy TCP/UDP sockets over NETLINK_SOCK_DIAG (inet_diag,
 * SOCK_DESTROY), in the current namespace or the one named by `netns`. Filtering is pushed
 * into the kernel (state bitmask, inet_diag bytecode; filters are checked and compiled by
 * socket-filter.ts); destroys go out many per sendmsg() on worker threads, each with its own
 * netlink socket (native/sock_destroy.cc), off the event loop.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { NethealError, errnoName, fromSystemError } from '../errors';
import {
  AF_INET,
  AF_INET6,
  ALL_STATES,
  BytecodeCondition,
  INET_DIAG_MSG_LEN,
  INET_DIAG_INFO_EXT,
  IPPROTO_TCP,
  IPPROTO_UDP,
  InetDiagMessage,
  InetDiagSockId,
  SOCK_DIAG_BY_FAMILY,
  SocketState,
  TCP_ESTABLISHED,
  TCP_LISTEN,
  TCP_NEW_SYN_RECV,
  TCP_STATES,
  TCP_SYN_RECV,
  TCP_TIME_WAIT,
  compileBytecode,
  cookieString,
  decodeInetDiagMessage,
  encodeInetDiagDump,
  SOCK_DESTROY_LEN,
  writeSockDestroy,
  parseCookie,
  sockIdAddress,
} from './inet-diag';
import { NETLINK_SOCK_DIAG } from './netlink';
import { TcpInfo, decodeTcpInfo } from './tcp-info';
import { parseIp } from './ip-address';
import { NativeBinding, NativeSockDestroyer, SockDestroyResult, nativeBinding } from '../native';
import { resolveNetns } from '../netns';
import type { LinkControl as LinkControlType } from './link-control';
import {
  BIT, Plan, SocketFilter, SocketProtocol, invalidOption as invalid, isEmptyFilter, parsePrefix, stateMasks as masks, validateFilter,
} from './socket-filter';
import { NetlinkClient } from './netlink-client';
import { DestroyTiming, destroyTiming } from './destroy-timing';

export type { SocketState } from './inet-diag';

/** A process holding a socket's file descriptor. */
export interface SocketOwner {
  pid: number;
  /** /proc/PID/comm. */
  command: string;
}

/** One socket as `netheal sockets --json` prints it. */
export interface SocketInfo {
  protocol: SocketProtocol;
  family: 4 | 6;
  /** `ss`'s state name. Unconnected UDP sockets are "close" (ss prints UNCONN). */
  state: SocketState;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** SO_BINDTODEVICE ifindex (idiag_if), null when not bound to a device. */
  boundIfindex: number | null;
  /** Socket inode (what /proc/PID/fd links name); null when no file holds it (time-wait, request, orphan). */
  inode: number | null;
  /** Owner uid; null for time-wait and request sockets, which have none. */
  uid: number | null;
  /** The kernel's socket cookie (u64, decimal): part of the identity a destroy uses. */
  cookie: string;
  /** With `owners: true`: the processes holding it. */
  owners?: SocketOwner[];
}

/** An established TCP socket with its struct tcp_info (see {@link Sockets.tcpStats}). */
export interface TcpSocketStats {
  socket: SocketInfo;
  info: TcpInfo;
}

/** Options of {@link Sockets}. */
export interface SocketsOptions {
  /** Namespace name under /run/netns or a path such as /proc/PID/ns/net. */
  netns?: string;
  binding?: NativeBinding;
  /**
   * SOCK_DESTROY requests per sendmsg() (1-2048, default 512; smaller when the receive buffer
   * could not hold a window's answers). The kernel does a whole window inside sendmsg(), on
   * a destroy thread; threads take windows from one queue, so smaller windows share the work
   * out more evenly and larger ones make fewer syscalls.
   */
  window?: number;
  /**
   * Destroy threads, each with its own netlink socket, 1-16 (default: the machine's available
   * parallelism, at most 4). A batch of one window runs on one thread; further threads start
   * as windows queue up. They never run JavaScript: the event loop stays free meanwhile.
   */
  threads?: number;
  /** Per-request time limit in ms (default 10000). */
  timeoutMs?: number;
  /**
   * Bytes of the datagrams a destroy's dump asks the kernel for, 8192-65536 (default 65536,
   * which the kernel caps at 32 KiB). The destroys of a datagram's sockets start once the
   * next datagram is in (native/sock_destroy.cc), so small datagrams start them sooner: an
   * address-loss cleanup of a few hundred sockets (PathCleanup uses 8192) finishes earlier,
   * a bulk destroy of thousands takes longer (more syscalls).
   */
  dumpDatagram?: number;
}

/** One socket a destroy could not remove. */
export interface DestroyFailure extends SocketInfo {
  errno: number;
  /** Symbolic errno, e.g. "EOPNOTSUPP". */
  error: string;
}

/** What a destroy did. */
export interface DestroyResult {
  /** Sockets that matched the filter. */
  matched: number;
  /** Destroyed by this call. */
  destroyed: number;
  /** Already gone when the request arrived (ENOENT: closed meanwhile, or cookie reused). */
  gone: number;
  failed: DestroyFailure[];
  /** Said once when the kernel cannot destroy some sockets (EOPNOTSUPP). */
  unsupported?: string;
  /** With dryRun: nothing was destroyed; these would have been. */
  dryRun?: boolean;
  sockets?: SocketInfo[];
  /**
   * CLOCK_MONOTONIC (ns, decimal) at which a destroy thread read the last SOCK_DESTROY ack
   * (the promise settles on the event loop a little later). Absent when nothing was sent.
   */
  lastAckNs?: string;
  /** Where the time went: the kernel's share, from the destroy threads' syscall spans. */
  timing?: DestroyTiming;
}

/** Options of {@link Sockets.destroy}. */
export interface DestroyOptions {
  /** List what would be destroyed, destroy nothing. */
  dryRun?: boolean;
  /** Permit an empty filter (every socket but listeners). */
  all?: boolean;
}

const ENOENT = 2;
const EPERM = 1;
const EACCES = 13;
const EOPNOTSUPP = 95;
/**
 * Receive-buffer cost of one answer (skb truesize of a capped NLMSG_ERROR, rounded up). A
 * window gets one per failed request plus its final ack: all of them, at worst, must fit.
 */
const ACK_TRUESIZE = 1024;

function padAddress(family: 4 | 6, text: string): Buffer {
  const bytes = parseIp(text);
  if (family === 6) return bytes;
  const out = Buffer.alloc(16);
  bytes.copy(out, 0);
  return out;
}

/** A socket as the dump returned it: what a SOCK_DESTROY needs, no strings built. */
interface RawSocket {
  protocol: SocketProtocol;
  message: InetDiagMessage;
}

/**
 * The dumped identity behind each SocketInfo this module handed out, so a destroy sends the
 * kernel's own bytes. A copy or an edited object (different cookie) falls back to the fields.
 */
const dumped = new WeakMap<SocketInfo, RawSocket>();

function rawOf(socket: SocketInfo): RawSocket {
  const raw = dumped.get(socket);
  if (raw !== undefined && socket.cookie === cookieString(raw.message.id.cookie) && socket.sport === raw.message.id.sport
    && socket.dport === raw.message.id.dport) return raw;
  return {
    protocol: socket.protocol,
    message: {
      family: socket.family === 4 ? AF_INET : AF_INET6, state: 0, timer: 0, retrans: 0, id: socketId(socket),
      expires: 0, rqueue: 0, wqueue: 0, uid: 0, inode: 0,
    },
  };
}

function infoOf(raw: RawSocket): SocketInfo {
  const info = toSocketInfo(raw.protocol, raw.message);
  dumped.set(info, raw);
  return info;
}

/** Converts a decoded reply into the public shape. */
export function toSocketInfo(protocol: SocketProtocol, message: InetDiagMessage): SocketInfo {
  const family: 4 | 6 = message.family === AF_INET ? 4 : 6;
  const state = message.state === TCP_NEW_SYN_RECV ? TCP_SYN_RECV : message.state;
  const noOwner = state === TCP_TIME_WAIT || (state === TCP_SYN_RECV && message.inode === 0);
  return {
    protocol,
    family,
    state: (TCP_STATES[state] ?? 'unknown') as SocketState,
    src: sockIdAddress(message.family, message.id.src),
    sport: message.id.sport,
    dst: sockIdAddress(message.family, message.id.dst),
    dport: message.id.dport,
    boundIfindex: message.id.ifindex === 0 ? null : message.id.ifindex,
    inode: message.inode === 0 ? null : message.inode,
    uid: noOwner ? null : message.uid,
    cookie: cookieString(message.id.cookie),
  };
}

/** The inet_diag identity of a socket, rebuilt from what {@link Sockets.query} returned. */
export function socketId(socket: SocketInfo): InetDiagSockId {
  return {
    sport: socket.sport,
    dport: socket.dport,
    src: padAddress(socket.family, socket.src),
    dst: padAddress(socket.family, socket.dst),
    ifindex: socket.boundIfindex ?? 0,
    cookie: parseCookie(socket.cookie),
  };
}

/**
 * Finds the processes holding the given socket inodes by walking /proc/PID/fd. Inodes are
 * global, so this works for sockets of any namespace. Processes we may not inspect are
 * skipped (their sockets show no owners).
 */
export async function findSocketOwners(inodes: Iterable<number>): Promise<Map<number, SocketOwner[]>> {
  const wanted = new Set(inodes);
  const owners = new Map<number, SocketOwner[]>();
  if (wanted.size === 0) return owners;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return owners;
  }
  let sinceYield = 0;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    let command: string | undefined;
    const seen = new Set<number>();
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.startsWith('socket:[')) continue;
      const inode = Number(target.slice(8, -1));
      if (!wanted.has(inode) || seen.has(inode)) continue;
      seen.add(inode);
      if (command === undefined) {
        try {
          command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          command = '?';
        }
      }
      let list = owners.get(inode);
      if (list === undefined) owners.set(inode, (list = []));
      list.push({ pid: Number(pid), command });
    }
    // Let the loop breathe on a host with many processes and descriptors.
    sinceYield += fds.length + 1;
    if (sinceYield > 2000) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return owners;
}


/** One errno per socket into a DestroyResult; `info(i)` describes socket i (failures only). */
function summarize(done: SockDestroyResult, info: (index: number) => SocketInfo): DestroyResult {
  const { errnos, lastAckNs } = done;
  const result: DestroyResult = { matched: errnos.length, destroyed: 0, gone: 0, failed: [] };
  let denied = 0;
  errnos.forEach((errno, i) => {
    if (errno === 0) result.destroyed++;
    else if (errno === ENOENT) result.gone++;
    else {
      if (errno === EPERM || errno === EACCES) denied++;
      result.failed.push({ ...info(i), errno, error: errnoName(errno) });
    }
  });
  if (denied > 0 && result.destroyed === 0) {
    throw new NethealError('NETHEAL_ERR_PRIVILEGE',
      `SOCK_DESTROY: kernel answered EPERM for ${denied} socket(s): destroying sockets needs CAP_NET_ADMIN in the namespace's owning user namespace`,
      { errno: EPERM, syscall: 'SOCK_DESTROY' });
  }
  const unsupported = result.failed.filter((f) => f.errno === EOPNOTSUPP);
  if (unsupported.length > 0) {
    const tw = unsupported.every((f) => f.state === 'time-wait');
    result.unsupported = `SOCK_DESTROY: kernel answered EOPNOTSUPP for ${unsupported.length} socket(s): ` +
      (tw ? 'destroying TIME_WAIT sockets needs Linux 6.0 or later' : 'this kernel was built without CONFIG_INET_DIAG_DESTROY');
  }
  if (lastAckNs > 0n) result.lastAckNs = lastAckNs.toString();
  if (done.spans !== undefined) result.timing = destroyTiming(done.executeNs, done.spans);
  return result;
}

/** One dump of a plan: what SOCK_DIAG_BY_FAMILY request to send for a protocol and family. */
interface DumpSpec {
  protocol: SocketProtocol;
  name: string;
  encode(seq: number): Buffer;
}

/**
 * Encodes one SOCK_DESTROY per socket, back to back, for the native destroyer (which numbers
 * them). The identity is the one the dump returned, cookie included.
 */
function encodeDestroys(sockets: RawSocket[]): Buffer {
  const requests = Buffer.alloc(sockets.length * SOCK_DESTROY_LEN);
  for (let i = 0; i < sockets.length; i++) {
    const { protocol, message } = sockets[i]!;
    writeSockDestroy(requests, i * SOCK_DESTROY_LEN, 0, message.family, protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP, message.id);
  }
  return requests;
}

/**
 * sock_diag access in one namespace: a netlink socket on the event loop for queries, and,
 * from the first destroy (or prepare()) on, the native destroyer's sockets (one per destroy
 * thread, one for its dumps). Operations run one at a time (the kernel allows a single dump
 * per netlink socket). Call close() when done.
 */
export class Sockets {
  private readonly client: NetlinkClient;
  private readonly netns: string | undefined;
  private readonly binding: NativeBinding | undefined;
  private readonly window: number;
  private readonly threads: number;
  private readonly timeoutMs: number;
  private readonly dumpDatagram: number | undefined;
  private destroyer: NativeSockDestroyer | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations queued or running: with none, the next one starts at once (see serial). */
  private inFlight = 0;
  private closed = false;

  constructor(options: SocketsOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalid('options', 'expected an object');
    const window = options.window ?? 512;
    if (!Number.isInteger(window) || window < 1 || window > 2048) {
      throw invalid('window', `expected an integer 1-2048, got ${JSON.stringify(options.window)}`);
    }
    const threads = options.threads ?? Math.min(availableParallelism(), 4);
    if (!Number.isInteger(threads) || threads < 1 || threads > 16) {
      throw invalid('threads', `expected an integer 1-16, got ${JSON.stringify(options.threads)}`);
    }
    const timeoutMs = options.timeoutMs ?? 10000;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw invalid('timeoutMs', `expected a positive number, got ${JSON.stringify(timeoutMs)}`);
    const dumpDatagram = options.dumpDatagram;
    if (dumpDatagram !== undefined && (!Number.isInteger(dumpDatagram) || dumpDatagram < 8192 || dumpDatagram > 65536)) {
      throw invalid('dumpDatagram', `expected an integer 8192-65536, got ${JSON.stringify(dumpDatagram)}`);
    }
    this.dumpDatagram = dumpDatagram;
    this.netns = resolveNetns(options.netns);
    this.binding = options.binding;
    this.client = new NetlinkClient({
      protocol: NETLINK_SOCK_DIAG, netns: this.netns, timeoutMs, receiveBuffer: 8 * 1024 * 1024, binding: options.binding,
    });
    this.window = window;
    this.threads = threads;
    this.timeoutMs = timeoutMs;
  }

  /** Lists the sockets matching `filter`, optionally with their owning processes. */
  async query(filter: SocketFilter = {}, options: { owners?: boolean } = {}): Promise<SocketInfo[]> {
    const plan = validateFilter(filter);
    return this.serial(async () => {
      const sockets = (await this.dumpPlan(plan, masks(plan, false))).map(infoOf);
      if (options.owners === true) await attachOwners(sockets);
      return sockets;
    });
  }

  /**
   * The established TCP sockets whose local address is in `src` (an address or prefix), each
   * with its struct tcp_info: one dump per family, filtered in the kernel by bytecode, the
   * tcp_info extension asked for (INET_DIAG_INFO). Passive path evidence reads these.
   */
  async tcpStats(src: string): Promise<TcpSocketStats[]> {
    const plan = validateFilter({ src, protocol: 'tcp', state: 'established' });
    return this.serial(async () => {
      const out: TcpSocketStats[] = [];
      for (const raw of await this.dumpPlan(plan, masks(plan, false), INET_DIAG_INFO_EXT)) {
        if (raw.message.info === undefined) continue;
        out.push({ socket: infoOf(raw), info: decodeTcpInfo(raw.message.info) });
      }
      return out;
    });
  }

  /**
   * Destroys the sockets matching `filter` (never listeners unless `state` names them).
   * An empty filter needs `all: true`. EPERM raises NETHEAL_ERR_PRIVILEGE (CAP_NET_ADMIN).
   */
  async destroy(filter: SocketFilter, options: DestroyOptions = {}): Promise<DestroyResult> {
    const plan = validateFilter(filter);
    if (isEmptyFilter(plan) && options.all !== true) {
      throw invalid('filter', 'refusing to destroy every socket: give a filter, or all: true');
    }
    return this.serial(async () => {
      if (options.dryRun !== true && plan.uid === undefined) return this.dumpDestroy(plan, masks(plan, true));
      // A dry run lists; a uid filter is applied to the dumped replies here (the kernel's
      // bytecode cannot match owners), so both dump first and destroy what is left.
      const raws = await this.dumpPlan(plan, masks(plan, true));
      if (options.dryRun === true) {
        return { matched: raws.length, destroyed: 0, gone: 0, failed: [], dryRun: true, sockets: raws.map(infoOf) };
      }
      return this.destroyList(raws);
    });
  }

  /** Destroys exactly these sockets (as a query returned them: identity and cookie). */
  async destroySockets(sockets: SocketInfo[]): Promise<DestroyResult> {
    if (!Array.isArray(sockets)) throw invalid('sockets', 'expected an array of sockets');
    return this.serial(() => this.destroyList(sockets.map(rawOf)));
  }

  /**
   * Path-failure cleanup: destroys every socket whose local address is `address` (TCP in all
   * states but LISTEN, TIME_WAIT only with includeTimeWait; connected UDP). Resolves when the
   * last ack is in.
   */
  async destroyBySourceAddress(address: string, options: { includeTimeWait?: boolean } = {}): Promise<DestroyResult> {
    const prefix = parsePrefix(address, 'address');
    if (prefix.prefixlen !== (prefix.family === 4 ? 32 : 128)) throw invalid('address', 'expected a single address, not a prefix');
    const plan: Plan = { src: prefix, protocols: ['tcp', 'udp'], families: prefix.family === 4 ? [4, 6] : [6] };
    let tcp = ALL_STATES & ~BIT(TCP_LISTEN);
    if (options.includeTimeWait !== true) tcp &= ~BIT(TCP_TIME_WAIT);
    return this.serial(async () => this.dumpDestroy(plan, { tcp, udp: BIT(TCP_ESTABLISHED) }));
  }

  /**
   * Opens the destroy sockets now (otherwise opened by the first destroy), so that a
   * latency-sensitive first destroy, e.g. on an address-removed event, pays no setup.
   */
  prepare(): void {
    this.openDestroyer();
  }

  /** Closes the netlink sockets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
    this.destroyer?.close();
  }

  /**
   * Runs operations one at a time. When none is queued or running, `fn` starts now, in the
   * caller's turn, not a microtask later: an address-loss cleanup called from an event
   * listener reaches the native destroyer before the listener's caller goes on with the rest
   * of its batch (a route re-dump, more events).
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new NethealError('NETHEAL_ERR_CLOSED', 'Sockets: used after close()'));
    const start = (): Promise<T> => {
      try {
        return fn();
      } catch (error) {
        return Promise.reject(error);
      }
    };
    const run = this.inFlight === 0 ? start() : this.queue.then(start, start);
    this.inFlight++;
    this.queue = run.catch(() => undefined).finally(() => {
      this.inFlight--;
    });
    return run;
  }

  private async resolveDev(dev: string | number): Promise<number> {
    if (typeof dev === 'number') return dev;
    // Loaded here: only a --dev name needs rtnetlink, and a one-shot `sockets kill` without
    // one should not pay for loading it.
    const { LinkControl } = require('./link-control') as { LinkControl: typeof LinkControlType };
    const control = new LinkControl({ netns: this.netns, binding: this.binding });
    try {
      return (await control.getLink(dev)).ifindex;
    } catch (error) {
      if (error instanceof NethealError && error.code === 'NETHEAL_ERR_NO_DEVICE') {
        throw invalid('dev', `no interface named ${JSON.stringify(dev)}${this.netns ? ` in ${this.netns}` : ''}`);
      }
      throw error;
    } finally {
      control.close();
    }
  }

  private openDestroyer(): NativeSockDestroyer {
    if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', 'Sockets: used after close()');
    if (this.destroyer !== undefined) return this.destroyer;
    const binding = this.binding ?? nativeBinding();
    try {
      // One socket per destroy thread plus one for dumps, each with 32 MiB of receive buffer:
      // every ack of a window must fit at once (the kernel drops the rest: ENOBUFS). That
      // needs SO_RCVBUFFORCE (CAP_NET_ADMIN in the initial namespace); without it the buffer
      // stays at rmem_max and windows shrink to fit (see windowFor).
      this.destroyer = new binding.SockDestroyer({
        sockets: this.threads, netns: this.netns, receiveBuffer: 32 * 1024 * 1024, dumpDatagram: this.dumpDatagram,
      });
    } catch (error) {
      throw fromSystemError(error, 'open sock_diag socket', this.netns);
    }
    return this.destroyer;
  }

  /** The window, shrunk so that all of its acks fit one socket's receive buffer. */
  private windowFor(destroyer: NativeSockDestroyer): number {
    return Math.max(1, Math.min(this.window, Math.floor((destroyer.receiveBuffer ?? 212992) / ACK_TRUESIZE)));
  }

  /** What a plan dumps: one request per protocol and family it can match. */
  private async dumpSpecs(plan: Plan, mask: { tcp: number; udp: number }, ext = 0): Promise<DumpSpec[]> {
    return this.specsFor(plan, mask, ext, plan.dev === undefined ? undefined : await this.resolveDev(plan.dev));
  }

  /** dumpSpecs once the device (if any) is an ifindex: synchronous. */
  private specsFor(plan: Plan, mask: { tcp: number; udp: number }, ext: number, ifindex: number | undefined): DumpSpec[] {
    const specs: DumpSpec[] = [];
    for (const protocol of plan.protocols) {
      const states = protocol === 'tcp' ? mask.tcp : mask.udp;
      if (states === 0) continue;
      for (const family of plan.families) {
        // An IPv4 socket cannot have an IPv6 address (IPv6 sockets can have v4-mapped ones).
        if (family === 4 && (plan.src?.family === 6 || plan.dst?.family === 6)) continue;
        const conditions: BytecodeCondition[] = [];
        if (plan.sport !== undefined) conditions.push({ op: 'sport', port: plan.sport });
        if (plan.dport !== undefined) conditions.push({ op: 'dport', port: plan.dport });
        if (plan.src !== undefined) conditions.push({ op: 'src', ...plan.src });
        if (plan.dst !== undefined) conditions.push({ op: 'dst', ...plan.dst });
        if (ifindex !== undefined) conditions.push({ op: 'dev', ifindex });
        const bytecode = compileBytecode(conditions);
        const af = family === 4 ? AF_INET : AF_INET6;
        const proto = protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
        specs.push({
          protocol,
          name: `SOCK_DIAG_BY_FAMILY ${protocol}${family}`,
          encode: (seq) => encodeInetDiagDump(seq, af, proto, states, bytecode, ext),
        });
      }
    }
    return specs;
  }

  /** Dumps on the event loop and decodes every reply (queries, dry runs, uid filters). */
  private async dumpPlan(plan: Plan, mask: { tcp: number; udp: number }, ext = 0): Promise<RawSocket[]> {
    const sockets: RawSocket[] = [];
    for (const { protocol, name, encode } of await this.dumpSpecs(plan, mask, ext)) {
      const reply = await this.client.dump(name, encode);
      for (const message of reply.messages) {
        const decoded = decodeInetDiagMessage(message);
        if (plan.uid !== undefined) {
          // Time-wait and request sockets have no owner: a uid filter never matches them.
          const state = decoded.state === TCP_NEW_SYN_RECV ? TCP_SYN_RECV : decoded.state;
          const ownerless = state === TCP_TIME_WAIT || (state === TCP_SYN_RECV && decoded.inode === 0);
          if (ownerless || decoded.uid !== plan.uid) continue;
        }
        sockets.push({ protocol, message: decoded });
      }
    }
    return sockets;
  }

  /**
   * The bulk path: the native destroyer runs the plan's dumps on a worker thread and
   * destroys each socket they return while they still stream, on its destroy threads. Only
   * the sockets that failed are decoded here.
   */
  private async dumpDestroy(plan: Plan, mask: { tcp: number; udp: number }): Promise<DestroyResult> {
    // No await before the native call unless a device name must be resolved first: called
    // while idle, the dumps start in the caller's turn (see serial).
    const specs = plan.dev === undefined ? this.specsFor(plan, mask, 0, undefined) : await this.dumpSpecs(plan, mask);
    const destroyer = this.openDestroyer();
    let done: SockDestroyResult;
    try {
      done = await destroyer.dumpDestroy(specs.map((spec) => spec.encode(0)), this.windowFor(destroyer), this.threads, this.timeoutMs);
    } catch (error) {
      throw fromSystemError(error, 'SOCK_DESTROY');
    }
    if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', 'SOCK_DESTROY: Sockets closed');
    // Socket i came from the dump whose running count first exceeds i.
    const ends: number[] = [];
    done.counts.reduce((sum, count) => (ends.push(sum + count), sum + count), 0);
    return summarize(done, (i) => {
      const spec = specs[ends.findIndex((end) => i < end)]!;
      const payload = done.messages.subarray(i * INET_DIAG_MSG_LEN, (i + 1) * INET_DIAG_MSG_LEN);
      return toSocketInfo(spec.protocol, decodeInetDiagMessage({ type: SOCK_DIAG_BY_FAMILY, flags: 0, seq: 0, pid: 0, payload }));
    });
  }

  /** Destroys sockets this process already holds (destroySockets, dry-run-free uid filters). */
  private async destroyList(sockets: RawSocket[]): Promise<DestroyResult> {
    if (sockets.length === 0) return { matched: 0, destroyed: 0, gone: 0, failed: [] };
    // Opened on first use: a query-only user holds one socket, not more.
    const destroyer = this.openDestroyer();
    let done: SockDestroyResult;
    try {
      done = await destroyer.destroy(encodeDestroys(sockets), this.windowFor(destroyer), this.threads, this.timeoutMs);
    } catch (error) {
      throw fromSystemError(error, 'SOCK_DESTROY');
    }
    if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', 'SOCK_DESTROY: Sockets closed');
    return summarize(done, (i) => toSocketInfo(sockets[i]!.protocol, sockets[i]!.message));
  }
}

async function attachOwners(sockets: SocketInfo[]): Promise<void> {
  const owners = await findSocketOwners(sockets.flatMap((s) => (s.inode === null ? [] : [s.inode])));
  for (const socket of sockets) socket.owners = socket.inode === null ? [] : owners.get(socket.inode) ?? [];
}

