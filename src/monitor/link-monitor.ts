/**
 * LinkMonitor: a live table of links, addresses, default routes and the neighbour (ARP/NDP)
 * entries of the default routes' gateways, kept by rtnetlink notifications (no polling) and
 * never silently wrong:
 * - ENOBUFS or a truncated datagram triggers a resync (full re-dump on a separate socket)
 *   after which every link that differs from what was last emitted is emitted again;
 * - routes are re-dumped after a change that may have altered a default route without a
 *   notification (see mayCarryDefault: its devices, its source address, or any change while
 *   a dump is in flight) and after default-route notifications, because the kernel flushes
 *   IPv4 routes and flips their linkdown flag without sending RTM_DELROUTE (docs/kernel-facts.md);
 *   events elsewhere cost no dump;
 * - neighbour notifications of other addresses (hosts have thousands) are dropped after a
 *   look at the ndmsg header and NDA_DST in place; the gateways' entries are dumped at start,
 *   on resync and when a default route names a new gateway;
 * - carrier-sync: for devices whose carrier-down the kernel's linkwatch delays by up to 1 s
 *   (unstacked devices: NICs, tun/tap, bridges), a per-device RTM_GETLINK on a short interval
 *   flushes the pending change (Linux >= 6.8, linkwatch_sync_dev).
 * Events follow the `netheal watch` contract (docs/cli.md), plus `via` (which path saw it).
 *
 * The table itself, and every event it reports, is the NetworkTable (network-table.ts): this
 * module reads the kernel, decides when to dump and resync, and feeds the table.
 */
import { EventEmitter } from 'node:events';
import { NethealError, fromSystemError } from '../errors';
import {
  NETLINK_ROUTE, NLMSG_ERROR, NLMSG_HDRLEN, NetlinkMessage, align4, checkTrailing, messageLength, parseMessages,
} from '../kernel/netlink';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFF_LOOPBACK,
  LinkMessage,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK,
  RTNLGRP_NEIGH,
  decodeAddress,
  decodeLinkAt,
  decodeRoute,
  encodeGetAddresses,
  encodeGetLink,
  encodeGetLinks,
  encodeGetNeighbours,
  encodeGetRoutes,
  isDefaultRoute,
} from '../kernel/rtnetlink';
import { NativeBinding, NativeNetlinkSocket, monotonicNs, nativeBinding } from '../native';
import { resolveNetns } from '../netns';
import { NetlinkClient } from '../kernel/netlink-client';
import {
  DefaultRoute, GatewayNeighbour, Link, MonitorEvent, NetworkState, NetworkTable, RouteWatch, Via, defaultRoutesOf,
  gatewayNeighbours, gatewayStatesOf, networkStateOf, toDefaultRoute, watchOf,
} from './network-table';
import { warmUpCycle, warmUpDefaultRoute } from './warm-up';

export type {
  AddressEvent, DefaultRoute, DefaultRouteEvent, Link, LinkAddress, LinkEvent, LinkField, LinkRemovedEvent, MonitorEvent,
  NeighbourEvent, NetworkState, ResyncEvent, RouteWatch, Via,
} from './network-table';

/** Options of {@link LinkMonitor}. */
export interface LinkMonitorOptions {
  /** Namespace name under /run/netns or a path such as /proc/PID/ns/net. */
  netns?: string;
  /**
   * Carrier-sync for devices whose carrier loss the kernel reports late. `true` (default):
   * every unstacked device (NIC, tun/tap, bridge; not loopback, veth, macvlan, vlan) is
   * polled with a single-device RTM_GETLINK every `intervalMs` (default 100) while admin up
   * with carrier. `false`: none; zero wake-ups while nothing changes.
   */
  carrierSync?: boolean | { intervalMs?: number; devices?: string[] };
  /** Event socket receive buffer in bytes (default 8 MiB; SO_RCVBUFFORCE when permitted). */
  receiveBuffer?: number;
  /**
   * After start(), run the event path on synthetic notifications (src/monitor/warm-up.ts) in
   * ~5 ms slices until V8 has optimized it, once per process or worker (default true): the
   * first real events are then handled by optimized code (~2 us instead of ~15 us hot).
   */
  warmUp?: boolean;
  binding?: NativeBinding;
}

/** Warm-up cycles (11 notifications each): enough for V8 to optimize the event path. */
const WARM_UP_ROUNDS = 400;
/**
 * Route dump replies discarded in a row because links or addresses changed while they ran;
 * the next one is applied regardless (and is itself followed by another dump).
 */
const MAX_ROUTE_DUMPS_DISCARDED = 8;
/** Cycles per event-loop turn: a few milliseconds each, so an embedding service barely notices. */
const WARM_UP_ROUNDS_PER_SLICE = 50;
/** Compiled code is per isolate (process or worker) and shared by all monitors in it. */
let warmUpState: 'cold' | 'running' | 'done' = 'cold';

const EVENT_GROUPS = [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEIGH];

/**
 * The kernel's state (ndm_state) of each gateway of `gateways` that has a neighbour entry, by
 * key: one RTM_GETNEIGH dump per gateway device, filtered to it by the kernel.
 */
async function dumpGatewayNeighbours(client: NetlinkClient, gateways: Map<number, GatewayNeighbour[]>):
  Promise<{ states: Map<string, number>; monotonicNs: bigint | null }> {
  const states = new Map<string, number>();
  let stamp: bigint | null = null;
  for (const ifindex of gateways.keys()) {
    const reply = await client.dump(`RTM_GETNEIGH dump (ifindex ${ifindex})`, (seq) => encodeGetNeighbours(seq, AF_UNSPEC, ifindex));
    stamp = reply.monotonicNs;
    gatewayStatesOf(reply.messages, gateways, states);
  }
  return { states, monotonicNs: stamp };
}

/**
 * Netlink's "unstacked" devices: linkwatch treats their carrier-down as non-urgent (up to
 * 1 s late). Stacked devices (IFLA_LINK != ifindex: veth with a distinct peer, vlan,
 * macvlan) are reported at once.
 */
export function needsCarrierSync(raw: LinkMessage): boolean {
  if (raw.flags & IFF_LOOPBACK) return false;
  return raw.iflink === null || raw.iflink === raw.ifindex;
}

/** Dumps links, addresses and routes over `client` (each dump retried if interrupted). */
export async function dumpNetworkState(client: NetlinkClient): Promise<NetworkState> {
  const linkReply = await client.dump('RTM_GETLINK dump', encodeGetLinks);
  const addressReply = await client.dump('RTM_GETADDR dump', encodeGetAddresses);
  const routes = await dumpRoutes(client);
  return networkStateOf({ links: linkReply.messages, addresses: addressReply.messages, routes: routes.messages, monotonicNs: routes.monotonicNs });
}

/** Dumps the IPv4 and IPv6 routes. */
async function dumpRoutes(client: NetlinkClient): Promise<{ messages: NetlinkMessage[]; monotonicNs: bigint }> {
  const messages: NetlinkMessage[] = [];
  let stamp = 0n;
  for (const family of [AF_INET, AF_INET6]) {
    const reply = await client.dump(`RTM_GETROUTE dump (family ${family})`, (seq) => encodeGetRoutes(seq, family));
    stamp = reply.monotonicNs;
    messages.push(...reply.messages);
  }
  return { messages, monotonicNs: stamp };
}

async function dumpDefaultRoutes(client: NetlinkClient): Promise<{ routes: DefaultRoute[]; watch: RouteWatch; monotonicNs: bigint }> {
  const { messages, monotonicNs } = await dumpRoutes(client);
  return { ...defaultRoutesOf(messages), monotonicNs };
}

/** Typed events of a LinkMonitor. */
export interface LinkMonitorEvents {
  event: [MonitorEvent];
  error: [Error];
  close: [];
}

/**
 * Watches one network namespace. `await start()`, then listen to 'event' (or iterate with
 * `for await`), and `close()` when done: it leaves no fd, timer or handle behind.
 */
export class LinkMonitor extends EventEmitter<LinkMonitorEvents> {
  private readonly options: LinkMonitorOptions;
  private readonly netns: string | undefined;
  private readonly binding: NativeBinding;
  private warmUpSlice: NodeJS.Timeout | undefined;
  private readonly receiveBuffer: number;
  private readonly syncIntervalMs: number;
  private readonly syncMode: 'auto' | 'off' | 'named';
  private readonly syncNames: Set<string>;
  private events: NativeNetlinkSocket | undefined;
  private eventsPort = -1;
  private client: NetlinkClient | undefined;
  /** Links, addresses, default routes, gateway neighbours: what the events report on. */
  private readonly table = new NetworkTable((event) => this.emitEvent(event));
  private state: 'new' | 'starting' | 'running' | 'closed' = 'new';
  /** While a dump is running, notifications wait here, then are applied in order. */
  private held: Array<{ datagrams: Buffer[]; stamps: BigUint64Array }> | null = null;
  private resyncReason: string | null = null;
  /** A loss reported while a resync ran: another one follows it. */
  private resyncAgain: string | null = null;
  /** A loss (ENOBUFS, truncation) reported before start() finished: resync right after. */
  private lossDuringStart: string | null = null;
  private resyncRetry: NodeJS.Timeout | undefined;
  private routeDumpRunning = false;
  private routeDumpWanted = false;
  /**
   * Counts link and address changes read while a route dump runs (see mayCarryDefault). A
   * dump whose count moved may predate a silent flush that the change caused: its reply is
   * not applied (see refreshRoutes).
   */
  private routeChangeGen = 0;
  /** Route dumps discarded in a row for changes during them (bounded: see refreshRoutes). */
  private routeDumpsDiscarded = 0;
  private neighbourDumpRunning = false;
  private neighbourDumpWanted = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncSeq = 0;
  private readonly syncInFlight = new Map<number, number>();

  constructor(options: LinkMonitorOptions = {}) {
    super();
    this.options = options;
    this.netns = resolveNetns(options.netns);
    this.binding = options.binding ?? nativeBinding();
    const rb = options.receiveBuffer ?? 8 * 1024 * 1024;
    if (!Number.isInteger(rb) || rb < 4096 || rb > 1 << 30) {
      throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `receiveBuffer must be an integer between 4096 and 2^30 bytes, got ${rb}`);
    }
    this.receiveBuffer = rb;
    const sync = options.carrierSync ?? true;
    if (sync === false) {
      this.syncMode = 'off';
      this.syncIntervalMs = 0;
      this.syncNames = new Set();
    } else {
      const config = sync === true ? {} : sync;
      const interval = config.intervalMs ?? 100;
      if (!Number.isFinite(interval) || interval < 5 || interval > 60000) {
        throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `carrierSync.intervalMs must be between 5 and 60000, got ${interval}`);
      }
      this.syncIntervalMs = interval;
      this.syncMode = config.devices === undefined ? 'auto' : 'named';
      this.syncNames = new Set(config.devices ?? []);
    }
  }

  /** Where this process's (or worker's) JIT warm-up of the event path stands. */
  static get warmUpState(): 'cold' | 'running' | 'done' {
    return warmUpState;
  }

  /** Subscribes, dumps the initial state and resolves once the table is live. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `start() called on a ${this.state} monitor`);
    this.state = 'starting';
    try {
      // Subscribe first, then dump: nothing that happens in between is missed.
      // Arena delivery: no allocation in the addon per wake-up (see native/netlink_socket.cc).
      this.events = new this.binding.NetlinkSocket(
        { protocol: NETLINK_ROUTE, groups: EVENT_GROUPS, netns: this.netns, receiveBuffer: this.receiveBuffer, arena: true },
        (arena, layout, stamps, count) => this.onArena(arena, layout, stamps, count),
        (error) => this.onSocketError(error),
      );
      this.eventsPort = this.events.portId ?? -1;
      this.client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: this.netns, binding: this.binding });
      this.held = [];
      const snapshot = await dumpNetworkState(this.client);
      const { states } = await dumpGatewayNeighbours(this.client, gatewayNeighbours(snapshot.defaultRoutes));
      if ((this.state as string) === 'closed') return;
      this.table.load(snapshot, states);
      this.state = 'running';
      this.releaseHeld();
      this.scheduleCarrierSync();
      if (this.options.warmUp !== false) this.startWarmUp();
      // Notifications lost while the first dump ran: that dump may predate them.
      if (this.lossDuringStart !== null) this.startResync(this.lossDuringStart);
    } catch (error) {
      this.close();
      throw fromSystemError(error, 'start link monitor', this.netns);
    }
  }

  /** The links as they are now (copies). */
  linkTable(): Link[] {
    return this.table.linkTable();
  }

  /** One link by ifindex or name (a copy), or undefined. */
  getLink(key: number | string): Link | undefined {
    return this.table.getLink(key);
  }

  /** Default routes of the main table as last dumped (usable or not). */
  defaultRoutes(): DefaultRoute[] {
    return this.table.defaultRoutes();
  }

  /** The usable default route the kernel would pick for a family, or null. */
  activeDefaultRoute(family: 4 | 6): DefaultRoute | null {
    return this.table.activeDefaultRoute(family);
  }

  /**
   * The NUD state ('reachable', 'stale', 'failed', ...) of the neighbour entry of `address` on
   * device `ifindex`, when that is the gateway of a current default route; null when it is not
   * one, or the kernel has no entry for it.
   */
  neighbourState(ifindex: number, address: string): string | null {
    return this.table.neighbourState(ifindex, address);
  }

  /** Keeps / stops keeping the process alive while the monitor is open (default: keeps). */
  ref(): this {
    this.events?.ref();
    return this;
  }
  unref(): this {
    this.events?.unref();
    return this;
  }

  /** Closes both sockets and the carrier-sync timer. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    this.syncTimer = undefined;
    if (this.resyncRetry !== undefined) clearTimeout(this.resyncRetry);
    this.resyncRetry = undefined;
    if (this.warmUpSlice !== undefined) {
      clearTimeout(this.warmUpSlice);
      this.warmUpSlice = undefined;
      warmUpState = 'cold'; // another monitor may do it
    }
    this.events?.close();
    this.client?.close();
    this.events = undefined;
    this.client = undefined;
    this.held = null;
    this.emit('close');
  }

  /**
   * Every event from now until close(), as an async iterator. Events are buffered while the
   * consumer is busy, so none is lost.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<MonitorEvent> {
    const queue: MonitorEvent[] = [];
    let wake: (() => void) | null = null;
    let done = this.state === 'closed';
    const onEvent = (event: MonitorEvent): void => { queue.push(event); wake?.(); };
    const onClose = (): void => { done = true; wake?.(); };
    this.on('event', onEvent);
    this.once('close', onClose);
    const detach = (): void => { this.off('event', onEvent); this.off('close', onClose); };
    const iterator: AsyncIterableIterator<MonitorEvent> = {
      next: async () => {
        while (queue.length === 0 && !done) await new Promise<void>((resolve) => { wake = resolve; });
        wake = null;
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        detach();
        return { value: undefined, done: true };
      },
      return: async () => {
        done = true;
        detach();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  // ---- notifications ----

  /**
   * One wake-up of the event socket: `count` datagrams in `arena` at layout[2i] (offset) and
   * layout[2i+1] (length), received at stamps[i]. The addon reuses all three objects on the
   * next wake-up, so whatever outlives this call (held notifications) is copied.
   */
  private onArena(arena: Buffer, layout: Uint32Array, stamps: BigUint64Array, count: number): void {
    if (this.held !== null) {
      const datagrams: Buffer[] = [];
      for (let i = 0; i < count; i++) datagrams.push(Buffer.from(arena.subarray(layout[2 * i]!, layout[2 * i]! + layout[2 * i + 1]!)));
      this.held.push({ datagrams, stamps: stamps.slice(0, count) });
      return;
    }
    if (this.state !== 'running') return;
    let routesSuspect = false;
    for (let i = 0; i < count; i++) {
      const start = layout[2 * i]!;
      if (this.applyDatagram(arena, start, start + layout[2 * i + 1]!, stamps[i]!)) routesSuspect = true;
    }
    if (routesSuspect) this.refreshRoutes();
  }

  /** Applies held copies of notifications; stamps[i] belongs to datagrams[i]. */
  private onNotifications(datagrams: Buffer[], stamps: BigUint64Array): void {
    if (this.state !== 'running') return;
    let routesSuspect = false;
    for (let i = 0; i < datagrams.length; i++) {
      if (this.applyDatagram(datagrams[i]!, 0, datagrams[i]!.length, stamps[i]!)) routesSuspect = true;
    }
    if (routesSuspect) this.refreshRoutes();
  }

  /**
   * Applies the messages of the datagram at buffer[start, end) in order; true when default
   * routes must be re-read. Link messages, the hot path, are decoded in place (no message
   * object, no view); the rest go through applyMessage.
   */
  private applyDatagram(buffer: Buffer, start: number, end: number, stamp: bigint): boolean {
    let routesSuspect = false;
    let offset = start;
    while (offset + NLMSG_HDRLEN <= end) {
      let length: number;
      try {
        length = messageLength(buffer, offset, end);
      } catch (error) {
        this.undecodable(error as Error);
        return routesSuspect;
      }
      const type = buffer.readUInt16LE(offset + 4);
      if (type === RTM_NEWLINK || type === RTM_DELLINK) {
        if (this.applyLink(type, buffer, offset, length, stamp)) routesSuspect = true;
      } else if (type === RTM_NEWNEIGH || type === RTM_DELNEIGH) {
        if (this.table.hasGateways()) this.applyNeighbour(type, buffer, offset + NLMSG_HDRLEN, offset + length, stamp);
      } else if (this.applyMessage({
        type,
        flags: buffer.readUInt16LE(offset + 6),
        seq: buffer.readUInt32LE(offset + 8),
        pid: buffer.readUInt32LE(offset + 12),
        payload: buffer.subarray(offset + NLMSG_HDRLEN, offset + length),
      }, stamp)) {
        routesSuspect = true;
      }
      offset += align4(length);
    }
    try {
      checkTrailing(offset, end);
    } catch (error) {
      this.undecodable(error as Error);
    }
    return routesSuspect;
  }

  /** RTM_NEWLINK / RTM_DELLINK at buffer[offset, offset + length); see applyMessage. */
  private applyLink(type: number, buffer: Buffer, offset: number, length: number, stamp: bigint): boolean {
    let raw: LinkMessage;
    try {
      // The device as last decoded lends its strings when the bytes match (no new strings).
      const known = length >= NLMSG_HDRLEN + 8 ? this.table.linkMessage(buffer.readInt32LE(offset + NLMSG_HDRLEN + 4)) : undefined;
      raw = decodeLinkAt(buffer, offset + NLMSG_HDRLEN, offset + length, known);
    } catch (error) {
      this.undecodable(error as Error);
      return false;
    }
    if (raw.family !== AF_UNSPEC) return false; // AF_BRIDGE port info (and nomaster), not the device
    if (type === RTM_DELLINK) {
      this.table.removeLink(raw.ifindex, stamp, 'netlink');
      return this.mayCarryDefault(raw.ifindex);
    }
    // Our carrier-sync replies carry our port id; other processes' requests carry theirs.
    const pid = buffer.readUInt32LE(offset + 12);
    const seq = buffer.readUInt32LE(offset + 8);
    const sync = pid === this.eventsPort ? this.syncInFlight.get(seq) : undefined;
    if (sync !== undefined) this.syncInFlight.delete(seq);
    let syncPending = false;
    if (this.syncInFlight.size > 0) for (const ifindex of this.syncInFlight.values()) if (ifindex === raw.ifindex) syncPending = true;
    const via: Via = sync !== undefined || syncPending ? 'carrier-sync' : 'netlink';
    return this.updateLink(raw, stamp, via) && this.mayCarryDefault(raw.ifindex);
  }

  /**
   * RTM_NEWNEIGH / RTM_DELNEIGH with its ndmsg at buffer[start, end): a gateway's entry is
   * updated (and reported when its state changed); anything else costs a header look.
   */
  private applyNeighbour(type: number, buffer: Buffer, start: number, end: number, stamp: bigint): void {
    let entry: GatewayNeighbour | undefined;
    try {
      entry = this.table.gatewayAt(buffer, start, end);
    } catch (error) {
      this.undecodable(error as Error);
      return;
    }
    if (entry === undefined) return;
    this.table.updateNeighbour(entry, type === RTM_DELNEIGH ? null : buffer.readUInt16LE(start + 8), stamp, 'netlink');
  }

  private undecodable(error: Error): void {
    this.emitError(error);
    this.startResync('undecodable notification');
  }

  /**
   * Whether a change on this device (or the loss of this address) may have changed a default
   * route behind our back. The kernel flushes IPv4 routes on admin-down and address removal,
   * and flips RTNH_F_LINKDOWN on carrier changes, all without a notification; only routes
   * with a nexthop on the device, or using the address as their source, are touched. While a
   * route dump is in flight the table may be about to learn routes it does not know yet, so
   * then every change counts: the dump is repeated, and its reply, which may predate the
   * change, is not applied (routeChangeGen).
   */
  private mayCarryDefault(ifindex: number, address?: string): boolean {
    if (this.routeDumpRunning) {
      this.routeChangeGen++; // the running dump's reply may predate it
      return true;
    }
    return this.table.touchesDefaultRoute(ifindex, address);
  }

  /**
   * Applies one address or route notification (events are emitted first); true when default
   * routes must be re-read: a default route notification, or an address change that
   * mayCarryDefault says may have touched one. Link messages take applyLink.
   */
  private applyMessage(message: NetlinkMessage, stamp: bigint): boolean {
    try {
      switch (message.type) {
        case RTM_NEWADDR:
        case RTM_DELADDR: {
          const address = decodeAddress(message);
          if (address === null) return false;
          return this.table.updateAddress(address, message.type === RTM_NEWADDR, stamp, 'netlink') && this.mayCarryDefault(address.ifindex, address.address);
        }
        case RTM_NEWROUTE:
        case RTM_DELROUTE: {
          const route = decodeRoute(message);
          return route !== null && isDefaultRoute(route);
        }
        case NLMSG_ERROR:
          // A carrier-sync GETLINK for a device that vanished (ENODEV): forget it.
          if (message.pid === this.eventsPort) this.syncInFlight.delete(message.seq);
          return false;
        default:
          return false;
      }
    } catch (error) {
      this.emitError(error as Error);
      this.startResync('undecodable notification');
      return false;
    }
  }

  /** A link message for the table; carrier-sync follows a changed link. */
  private updateLink(raw: LinkMessage, stamp: bigint, via: Via): boolean {
    if (!this.table.updateLink(raw, stamp, via)) return false;
    this.scheduleCarrierSync();
    return true;
  }

  // ---- default routes ----

  /** Re-dumps routes; coalesces requests that arrive while a dump runs. */
  private refreshRoutes(): void {
    if (this.routeDumpRunning) {
      this.routeDumpWanted = true;
      return;
    }
    const client = this.client;
    if (client === undefined || this.state !== 'running') return;
    this.routeDumpRunning = true;
    this.routeDumpWanted = false;
    const gen = this.routeChangeGen;
    dumpDefaultRoutes(client).then(
      ({ routes, watch, monotonicNs }) => {
        this.routeDumpRunning = false;
        if (this.state !== 'running') return;
        // A link or address change read after the request went out (or while it waited for
        // the socket) may have flushed routes that this reply still holds: the kernel filled
        // the reply when it was asked, and the flush sends no RTM_DELROUTE. Applying it would
        // report a dead route as restored until the next dump; dump again instead. Bounded,
        // so that a storm of changes cannot keep the table from ever being updated (the dump
        // that follows an applied one still corrects it).
        if (gen !== this.routeChangeGen && this.routeDumpsDiscarded < MAX_ROUTE_DUMPS_DISCARDED) {
          this.routeDumpsDiscarded++;
          this.routeDumpWanted = false;
          this.refreshRoutes();
          return;
        }
        this.routeDumpsDiscarded = 0;
        const newGateway = this.table.setDefaultRoutes(routes, watch, monotonicNs, this.held !== null ? 'resync' : 'netlink');
        // Routes first: a neighbour dump waits for the routes to settle (see refreshNeighbours).
        if (this.routeDumpWanted) this.refreshRoutes();
        if (newGateway || this.neighbourDumpWanted) this.refreshNeighbours();
      },
      (error: unknown) => {
        this.routeDumpRunning = false;
        if (this.state !== 'running') return;
        this.emitError(error as Error);
        this.startResync('route dump failed');
      },
    );
  }

  // ---- gateway neighbours ----

  /**
   * Dumps the gateways' devices' neighbours (after a default route named a new gateway) and
   * reports the states that differ. Coalesces requests while one runs, and waits while a
   * route dump runs (the two share the request socket, and the routes decide which gateways
   * count) or a resync holds notifications back (the resync's own dump covers them). A
   * notification read after the dump began is at least as new as the dump, so that entry
   * keeps it.
   */
  private refreshNeighbours(): void {
    if (this.neighbourDumpRunning || this.routeDumpRunning || this.held !== null) {
      this.neighbourDumpWanted = true;
      return;
    }
    this.neighbourDumpWanted = false;
    const client = this.client;
    if (client === undefined || this.state !== 'running' || !this.table.hasGateways()) return;
    this.neighbourDumpRunning = true;
    const { gen, gateways } = this.table.beginNeighbourDump();
    dumpGatewayNeighbours(client, gateways).then(
      ({ states, monotonicNs: dumpedAt }) => {
        this.neighbourDumpRunning = false;
        if (this.state !== 'running') return;
        // The dump covered every entry of the devices it asked for.
        this.table.applyNeighbourDump(gen, gateways, states, dumpedAt ?? monotonicNs(), 'netlink');
        if (this.neighbourDumpWanted) this.refreshNeighbours();
      },
      (error: unknown) => {
        this.neighbourDumpRunning = false;
        if (this.state !== 'running') return;
        this.emitError(error as Error);
        this.startResync('neighbour dump failed');
      },
    );
  }

  // ---- resync ----

  private onSocketError(error: Error): void {
    const code = (error as { code?: string }).code;
    if (code === 'ENOBUFS' || code === 'EMSGSIZE') {
      const reason = code === 'ENOBUFS' ? 'ENOBUFS: the kernel dropped notifications' : 'truncated notification';
      if (this.state === 'starting') this.lossDuringStart = reason;
      else this.startResync(reason);
      return;
    }
    this.emitError(fromSystemError(error, 'link monitor event socket'));
  }

  /**
   * Re-dumps everything on the request socket while notifications are held back, then emits
   * the differences against what was last emitted, then applies the held notifications.
   */
  private startResync(reason: string): void {
    if (this.state !== 'running') return;
    if (this.resyncReason !== null) {
      // One at a time. The running one does not cover this loss: it may have dropped a
      // change that the running one's dumps have already passed.
      this.resyncAgain ??= reason;
      return;
    }
    this.resyncReason = reason;
    this.held ??= [];
    const client = this.client!;
    void (async () => {
      let attempt = 0;
      for (;;) {
        try {
          const snapshot = await dumpNetworkState(client);
          const neighbours = await dumpGatewayNeighbours(client, gatewayNeighbours(snapshot.defaultRoutes));
          if (this.state !== 'running') return;
          this.table.applySnapshot(snapshot, neighbours.states, neighbours.monotonicNs ?? snapshot.monotonicNs, reason);
          this.scheduleCarrierSync();
          break;
        } catch (error) {
          if (this.state !== 'running') return;
          if (++attempt >= 3) {
            this.emitError(fromSystemError(error, 'resync'));
            // The table may be wrong: try again in a second rather than trust it.
            this.resyncRetry = setTimeout(() => {
              this.resyncRetry = undefined;
              this.startResync(`${reason} (retry)`);
            }, 1000);
            this.resyncRetry.unref();
            break;
          }
        }
      }
      this.resyncReason = null;
      const again = this.resyncAgain;
      this.resyncAgain = null;
      if (again !== null && this.resyncRetry === undefined) {
        // The next dumps supersede what is held now (it was read before they were asked).
        this.held = [];
        this.startResync(again);
        return;
      }
      this.releaseHeld();
    })();
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = null;
    if (held === null) return;
    for (const batch of held) {
      if (this.held !== null || this.state !== 'running') {
        // A new resync started while replaying: keep the rest for after it.
        (this.held ??= []).push(batch);
        continue;
      }
      this.onNotifications(batch.datagrams, batch.stamps);
    }
    if (this.held !== null) return;
    if (held.length > 0) this.refreshRoutes();
    if (this.neighbourDumpWanted) this.refreshNeighbours();
  }

  // ---- carrier-sync ----

  private syncCandidates(): LinkMessage[] {
    if (this.syncMode === 'off') return [];
    const out: LinkMessage[] = [];
    for (const raw of this.table.linkMessages()) {
      const eligible = this.syncMode === 'named' ? this.syncNames.has(raw.name) : needsCarrierSync(raw);
      // Only carrier DOWN is delayed: poll devices that are up and have carrier.
      if (eligible && raw.adminUp && raw.carrier) out.push(raw);
    }
    return out;
  }

  /** Starts the timer while some device needs carrier-sync; stops it when none does. */
  private scheduleCarrierSync(): void {
    if (this.state !== 'running') return;
    const needed = this.syncCandidates().length > 0;
    if (needed && this.syncTimer === undefined) {
      this.syncTimer = setInterval(() => this.carrierSyncTick(), this.syncIntervalMs);
      this.syncTimer.unref();
    } else if (!needed && this.syncTimer !== undefined) {
      clearInterval(this.syncTimer);
      this.syncTimer = undefined;
    }
  }

  private carrierSyncTick(): void {
    const socket = this.events;
    if (socket === undefined || this.held !== null) return;
    const candidates = this.syncCandidates();
    if (candidates.length === 0) {
      this.scheduleCarrierSync();
      return;
    }
    // Requests still unanswered after a whole interval are dropped from the books.
    this.syncInFlight.clear();
    const parts = candidates.map((raw) => {
      this.syncSeq = (this.syncSeq + 1) % 0x7fffffff || 1;
      this.syncInFlight.set(this.syncSeq, raw.ifindex);
      return encodeGetLink(this.syncSeq, raw.ifindex);
    });
    try {
      // All single-device GETLINKs in one datagram: one syscall per tick.
      socket.send(Buffer.concat(parts));
    } catch (error) {
      this.emitError(fromSystemError(error, 'carrier-sync'));
    }
  }

  // ---- JIT warm-up ----

  /**
   * Runs a throwaway monitor's event path (the same prototype, so the same compiled code and
   * type feedback) on synthetic notifications, a slice per event-loop turn, until V8 has had
   * reason to optimize it. The throwaway monitor has no sockets and no listeners but a no-op
   * one; its options match ours so it takes the same branches (carrier-sync checks).
   */
  private startWarmUp(): void {
    if (warmUpState !== 'cold') return;
    warmUpState = 'running';
    const dummy = new LinkMonitor({ ...this.options, netns: undefined, warmUp: false, binding: this.binding });
    dummy.state = 'running';
    dummy.held = null;
    dummy.eventsPort = this.eventsPort;
    const [routeMessage] = parseMessages(warmUpDefaultRoute());
    // A default route elsewhere (another device, another source): the route checks run their
    // lookups and answer no, so no dump is attempted.
    const knownRoute = decodeRoute(routeMessage!)!;
    dummy.table.load({
      links: new Map(), addresses: new Map(), defaultRoutes: [toDefaultRoute(knownRoute)], routeWatch: watchOf([knownRoute]), monotonicNs: 0n,
    }, new Map());
    dummy.on('event', () => {});
    const cycle = warmUpCycle();
    const arena = Buffer.alloc(8192);
    const layout = new Uint32Array(2 * cycle.length);
    const stamps = new BigUint64Array(cycle.length);
    let rounds = WARM_UP_ROUNDS;
    const slice = (): void => {
      this.warmUpSlice = undefined;
      const stamp = monotonicNs();
      for (let n = 0; n < WARM_UP_ROUNDS_PER_SLICE && rounds > 0; n++, rounds--) {
        // The first two datagrams in one wake-up (as a carrier loss and its route change
        // often arrive), the rest one per wake-up.
        let start = 0;
        while (start < cycle.length) {
          const count = start === 0 ? 2 : 1;
          let offset = 0;
          for (let i = 0; i < count; i++) {
            const datagram = cycle[start + i]!;
            datagram.copy(arena, offset);
            layout[2 * i] = offset;
            layout[2 * i + 1] = datagram.length;
            stamps[i] = stamp;
            offset += (datagram.length + 7) & ~7;
          }
          dummy.onArena(arena, layout, stamps, count);
          start += count;
        }
      }
      if (rounds > 0 && this.state === 'running') {
        this.warmUpSlice = setTimeout(slice, 1).unref();
      } else {
        warmUpState = rounds > 0 ? 'cold' : 'done';
        dummy.close();
      }
    };
    // Timers, unref'd: the slices must not hold the process (an unref'd monitor may be all
    // there is), yet must run on time while the loop lives. An unref'd setImmediate would
    // not: the loop then blocks in epoll and the slices run only when real events wake it,
    // right where they would delay them. libuv wakes for unref'd timers.
    this.warmUpSlice = setTimeout(slice, 1).unref();
  }

  private emitEvent(event: MonitorEvent): void {
    this.emit('event', event);
  }

  private emitError(error: Error): void {
    // 'error' without a listener would throw; a monitor keeps running, so only emit if heard.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}
