/**
 * The one place the C++ addon is loaded. Everything else takes a {@link NativeBinding}
 * (injectable, so policy tests can run on a kernel-shaped fake).
 */
import { join } from 'node:path';
import bindings from 'bindings';

/** Options of the native netlink socket. */
export interface NetlinkSocketOptions {
  /** NETLINK_ROUTE (0), NETLINK_SOCK_DIAG (4), ... (linux/netlink.h). */
  protocol: number;
  /** Multicast groups to join (RTNLGRP_* numbers, linux/rtnetlink.h). */
  groups?: number[];
  /** Path of a network namespace file; the socket lives there for life. */
  netns?: string;
  /** Receive buffer in bytes (SO_RCVBUFFORCE when permitted, else capped by rmem_max). */
  receiveBuffer?: number;
  /** Arena delivery (an {@link ArenaHandler}) instead of fresh Buffers per datagram. */
  arena?: boolean;
}

/** A netlink socket on the libuv loop (native/netlink_socket.cc). */
export interface NativeNetlinkSocket {
  /** Sends one datagram (which may hold many netlink messages); returns bytes sent. */
  send(datagram: Buffer): number;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  /** Stops polling and closes the fd. Idempotent. */
  close(): void;
  ref(): void;
  unref(): void;
  /** Our netlink port id (nl_pid), or null once closed. */
  readonly portId: number | null;
  /** The effective SO_RCVBUF, or null once closed. */
  readonly receiveBuffer: number | null;
  readonly fd: number;
}

/** Receives a wake-up's datagrams and their CLOCK_MONOTONIC receipt stamps (ns). */
export type DatagramHandler = (datagrams: Buffer[], stamps: BigUint64Array) => void;

/**
 * Arena delivery (`arena: true`), the allocation-free event path: `count` datagrams lie in
 * `arena` at offset layout[2i] with length layout[2i+1], received at stamps[i]. The same three
 * objects come back on every wake-up, overwritten: copy what must outlive the call.
 */
export type ArenaHandler = (arena: Buffer, layout: Uint32Array, stamps: BigUint64Array, count: number) => void;

/** Options of the native ICMP echo socket (native/icmp_socket.cc). */
export interface IcmpSocketOptions {
  /** 4 for ICMP (IPPROTO_ICMP), 6 for ICMPv6 (IPPROTO_ICMPV6). */
  family: 4 | 6;
  /** Path of a network namespace file; the socket lives there for life. */
  netns?: string;
  /** SO_BINDTODEVICE: probe out of this interface only. */
  device?: string;
  /** 'raw' (SOCK_RAW, needs CAP_NET_RAW), 'dgram' (ping socket, needs net.ipv4.ping_group_range), 'auto' (raw, else dgram). */
  mode?: 'auto' | 'raw' | 'dgram';
  /** SO_RCVBUF(FORCE) in bytes. */
  receiveBuffer?: number;
  /** IP_TTL / IPV6_UNICAST_HOPS of the probes (default: the system's). */
  ttl?: number;
  /** Kernel transmit stamps (SOF_TIMESTAMPING_TX_SOFTWARE) for kernel-to-kernel RTT (default true). */
  txTimestamps?: boolean;
}

/** An ICMP echo socket on the libuv loop (native/icmp_socket.cc). */
export interface NativeIcmpSocket {
  /**
   * Sends `count` probes described by 24-byte records (see src/kernel/icmp.ts) with as few
   * sendmmsg() calls as possible; errnos[i] receives 0 or the errno of probe i. Returns the
   * number of failed probes.
   */
  send(records: Buffer, count: number, errnos: Int32Array): number;
  /** Stops polling and closes the fds. Idempotent. */
  close(): void;
  ref(): void;
  unref(): void;
  /** 'raw' or 'dgram' (ping socket). */
  readonly kind: 'raw' | 'dgram';
  /** The echo identifier on the wire (a ping socket's port). */
  readonly ident: number;
  readonly fd: number;
}

/**
 * Receives a wake-up's outcomes: `count` 64-byte result records (see src/kernel/icmp.ts) at
 * the start of `records`. The socket reuses that Buffer for every wake-up: read it during the
 * call, copy what must outlive it.
 */
export type IcmpResultHandler = (records: Buffer, count: number) => void;

/** Options of the native bulk destroyer (native/sock_destroy.cc). */
export interface SockDestroyerOptions {
  /** NETLINK_SOCK_DIAG sockets to open, one per destroy thread (1-16), plus one for dumps. */
  sockets: number;
  /** Path of a network namespace file; the sockets live there for life. */
  netns?: string;
  /** Receive buffer per socket in bytes (SO_RCVBUFFORCE when permitted, else capped by rmem_max). */
  receiveBuffer?: number;
  /** Largest dump datagram to ask the kernel for, 8192-65536 bytes (default 65536; see Sockets). */
  dumpDatagram?: number;
}

/** What a {@link NativeSockDestroyer} call resolves with. */
export interface SockDestroyResult {
  /** One errno per socket (0 = destroyed), in request (or dump) order. */
  errnos: Int32Array;
  /** dumpDestroy: the 72-byte inet_diag_msg of each socket, back to back (empty for destroy). */
  messages: Buffer;
  /** dumpDestroy: how many sockets each dump returned, in order. */
  counts: number[];
  /** CLOCK_MONOTONIC (ns) when the last ack was read; 0n when nothing was sent. */
  lastAckNs: bigint;
  /** CLOCK_MONOTONIC (ns) when a threadpool thread picked the call up. */
  executeNs: bigint;
  /**
   * Every dump and destroy syscall the call made, flat [kind, startNs, endNs] triples (kind:
   * 0 dump sendmsg, 1 dump recvmsg that returned a datagram, 2 destroy window sendmsg,
   * 3 ack recvmmsg that returned acks): the kernel's own share of the call.
   */
  spans: BigUint64Array;
}

/**
 * Bulk SOCK_DESTROY on worker threads (native/sock_destroy.cc): each thread sends windows of
 * requests on its own netlink socket and collects the acks, off the event loop. One call at
 * a time. A call rejects with an Error whose `code` is an errno name (a syscall failed;
 * `kernel: true` when a dump was refused by NLMSG_ERROR), `ETIMEDOUT` (the kernel did not
 * answer within `timeoutMs`), `NETHEAL_ERR_CLOSED` (closed meanwhile) or `NETHEAL_ERR_PROTOCOL`.
 */
export interface NativeSockDestroyer {
  /**
   * Sends SOCK_DESTROY messages (SOCK_DESTROY_LEN bytes each, back to back in `requests`;
   * sequence numbers are overwritten), `window` per sendmsg(), on up to `threads` threads.
   */
  destroy(requests: Buffer, window: number, threads: number, timeoutMs: number): Promise<SockDestroyResult>;
  /**
   * Runs the SOCK_DIAG_BY_FAMILY dump requests one after another on a worker thread and
   * destroys every socket they return while they still stream, on up to `threads` threads.
   */
  dumpDestroy(dumps: Buffer[], window: number, threads: number, timeoutMs: number): Promise<SockDestroyResult>;
  /** Closes the sockets (once a call in flight lets go of them). Idempotent. */
  close(): void;
  /** Destroy sockets open (0 once closed). */
  readonly sockets: number;
  /** The effective SO_RCVBUF of each destroy socket, or null once closed. */
  readonly receiveBuffer: number | null;
}

/** What the dump thread makes of one datagram (native ScanDump, exposed for tests). */
export interface SockDiagScan {
  status: 'more' | 'done' | 'error' | 'malformed';
  errno: number;
  /** One SOCK_DESTROY per dumped socket. */
  requests: Buffer;
  /** The 72-byte inet_diag_msg of each. */
  messages: Buffer;
}

/** The addon's surface, as TypeScript sees it. */
export interface NativeBinding {
  NetlinkSocket: {
    new (options: NetlinkSocketOptions & { arena?: false }, onData: DatagramHandler, onError: (error: Error) => void): NativeNetlinkSocket;
    new (options: NetlinkSocketOptions & { arena: true }, onData: ArenaHandler, onError: (error: Error) => void): NativeNetlinkSocket;
  };
  IcmpSocket: new (options: IcmpSocketOptions, onResults: IcmpResultHandler, onError: (error: Error) => void) => NativeIcmpSocket;
  SockDestroyer: new (options: SockDestroyerOptions) => NativeSockDestroyer;
  /** The dump thread's datagram scanner, for the fuzz and fixture tests. */
  scanSockDiagDump?(datagram: Buffer, seq: number, portId: number, protocol: number): SockDiagScan;
  /** Sends one sd_notify datagram; '@name' addresses the abstract namespace. */
  sdNotify(address: string, message: string): void;
  /** One AF_UNIX datagram (a journal entry); dontWait: EAGAIN instead of blocking on a full queue. */
  sendDatagram(address: string, message: string | Buffer, dontWait?: boolean): void;
  /** Opens (creating if needed) tap device `name` in the namespace file `netns`; returns the fd. */
  openTap(name: string, netns?: string): number;
  /** TUNSETCARRIER on a tap fd: carrier on/off as a NIC driver would report it. */
  setTapCarrier(fd: number, on: boolean): void;
  /** close(2). */
  closeFd(fd: number): void;
  /**
   * A listening TCP socket with SO_REUSEADDR + SO_REUSEPORT bound to address:port (inside the
   * namespace file `netns` when given); returns the fd for `net.Server.listen({ fd })`.
   */
  reusePortListener?(address: string, port: number, backlog: number, netns?: string): number;
  /**
   * An unconnected non-blocking TCP socket in the namespace file `netns`, bound to `device`,
   * with SO_LINGER 0 (close sends RST, no TIME_WAIT); returns the fd for `new net.Socket({ fd })`.
   */
  tcpSocket(family: 4 | 6, netns?: string, device?: string): number;
}

/**
 * The N-API version the addon is compiled against (NAPI_VERSION in binding.gyp): one binary
 * serves every Node.js release that offers at least this version (Node 20, 22, 24 offer 9+).
 */
export const ADDON_NAPI_VERSION = 8;

let loaded: NativeBinding | undefined;

/**
 * Where a published package keeps its prebuilt addon (scripts/prepack.js puts it there):
 * prebuilds/<platform>-<arch>/netheal.node beside lib/.
 */
export function prebuiltAddonPath(): string {
  return join(__dirname, '..', 'prebuilds', `${process.platform}-${process.arch}`, 'netheal.node');
}

/**
 * The real addon, loaded on first use: a local build first (build/Release through `bindings`,
 * what `npm ci` in a checkout and a from-source install make), else the prebuilt one the
 * package ships (what an install without a compiler, or with --ignore-scripts, has).
 */
export function nativeBinding(): NativeBinding {
  if (loaded !== undefined) return loaded;
  try {
    loaded = bindings('netheal') as NativeBinding;
  } catch (buildError) {
    const prebuilt = prebuiltAddonPath();
    try {
      loaded = require(prebuilt) as NativeBinding;
    } catch (prebuiltError) {
      const first = (error: unknown): string => String((error as Error).message ?? error).split('\n')[0]!;
      throw new Error(`cannot load netheal's native addon: no local build (build/Release/netheal.node: ${first(buildError)}) and the prebuilt ${prebuilt} does not load (${first(prebuiltError)}); build it with \`npm rebuild netheal\` (needs python3, make, a C++17 compiler)`);
    }
  }
  return loaded;
}

/** CLOCK_MONOTONIC now, in nanoseconds (libuv's hrtime uses the same clock as the addon). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}
