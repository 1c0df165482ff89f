/**
 * The one place the C++ addon is loaded. Everything else takes a {@link NativeBinding}
 * (injectable, so policy tests can run on a kernel-shaped fake).
 */
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

/** The addon's surface, as TypeScript sees it. */
export interface NativeBinding {
  NetlinkSocket: new (options: NetlinkSocketOptions, onData: DatagramHandler, onError: (error: Error) => void) => NativeNetlinkSocket;
  /** Sends one sd_notify datagram; '@name' addresses the abstract namespace. */
  sdNotify(address: string, message: string): void;
  /** Opens (creating if needed) tap device `name` in the namespace file `netns`; returns the fd. */
  openTap(name: string, netns?: string): number;
  /** TUNSETCARRIER on a tap fd: carrier on/off as a NIC driver would report it. */
  setTapCarrier(fd: number, on: boolean): void;
  /** close(2). */
  closeFd(fd: number): void;
}

let loaded: NativeBinding | undefined;

/** The real addon, loaded on first use. */
export function nativeBinding(): NativeBinding {
  loaded ??= bindings('netheal') as NativeBinding;
  return loaded;
}

/** CLOCK_MONOTONIC now, in nanoseconds (libuv's hrtime uses the same clock as the addon). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}
