/**
 * NetworkTable: the pure part of the LinkMonitor. It holds links, addresses, default routes
 * and the neighbour entries of the default routes' gateways, is fed decoded rtnetlink
 * messages (notifications one at a time, dumps as a whole), and reports every change as the
 * events of the `netheal watch` contract (docs/cli.md). No socket, no timer, no I/O: the
 * LinkMonitor (link-monitor.ts) reads the kernel, decides when to dump and resync, and
 * feeds what it read here.
 *
 * Events go to the `emit` callback synchronously, while the change is being made, in the
 * order the changes are made: a listener that looks something up in the table sees it as of
 * that event (the daemon names the interface of an address event by asking for its link,
 * which must still be there when a vanished device's addresses are reported removed).
 */
import { NetlinkMessage, ProtocolError } from '../kernel/netlink';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  AddressMessage,
  LinkMessage,
  NTF_PROXY,
  NUD_NONE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNH_F_DEAD,
  RTNH_F_LINKDOWN,
  RouteMessage,
  decodeAddress,
  decodeLink,
  decodeRoute,
  isDefaultRoute,
  neighbourDstAt,
  nudStateName,
  parseIp,
} from '../kernel/rtnetlink';

/** An address of a link, as in the `links` contract. */
export interface LinkAddress {
  family: 4 | 6;
  address: string;
  prefixlen: number;
}

/** A link as in the `netheal links` contract (docs/cli.md). */
export interface Link {
  ifindex: number;
  name: string;
  /** IFLA_INFO_KIND as `ip -d` names it (veth, bridge, tun, ...); null for plain devices. */
  kind: string | null;
  adminUp: boolean;
  carrier: boolean;
  /** Lower-case as the kernel names it: up, down, lowerlayerdown, dormant, unknown, ... */
  operstate: string;
  mtu: number | null;
  mac: string | null;
  /** ifindex of the master (bridge, bond), or null. */
  master: number | null;
  addresses: LinkAddress[];
}

/** The fields of a Link that `changed` may name. */
export type LinkField = Exclude<keyof Link, 'addresses' | 'ifindex'>;
const LINK_FIELDS: LinkField[] = ['name', 'kind', 'adminUp', 'carrier', 'operstate', 'mtu', 'mac', 'master'];

/** Which path saw an event. */
export type Via = 'netlink' | 'carrier-sync' | 'resync';

/** A default route of the main table. */
export interface DefaultRoute {
  family: 4 | 6;
  gateway: string | null;
  ifindex: number | null;
  metric: number;
  /** RTNH_F_LINKDOWN / RTNH_F_DEAD: present but unable to carry traffic. */
  linkdown: boolean;
}

interface EventBase {
  /** CLOCK_MONOTONIC (ns) at receipt of the datagram that revealed it, as a decimal string. */
  monotonicNs: string;
  via: Via;
}
export interface LinkEvent extends EventBase { type: 'link'; link: Link; changed: Array<LinkField | 'ifindex'> }
export interface LinkRemovedEvent extends EventBase { type: 'link-removed'; ifindex: number; name: string }
export interface AddressEvent extends EventBase {
  type: 'address'; action: 'added' | 'removed'; ifindex: number; family: 4 | 6; address: string; prefixlen: number;
}
export interface DefaultRouteEvent extends EventBase {
  type: 'default-route'; action: 'lost' | 'restored'; family: 4 | 6; gateway: string | null; ifindex: number | null;
  /**
   * On `lost`: the route is still there, only marked linkdown/dead because its device lost
   * carrier (the kernel flips the flag without a word). A consequence of a link fault, not a
   * lost configuration: nothing needs putting back.
   */
  linkdown?: boolean;
  /**
   * On `lost`: a route through the same gateway and device is still there, usable, only no
   * longer the preferred one (a better route appeared, e.g. netheal's own failover route): the
   * interface lost nothing. A `restored` for the new preferred route follows.
   */
  superseded?: boolean;
}
/**
 * The neighbour (ARP/NDP) entry of a default route's gateway changed state ('changed', with
 * the new state) or is gone ('removed', state 'none'). Emitted only for gateways of the
 * current default routes, and only when the state differs from the last one emitted.
 */
export interface NeighbourEvent extends EventBase {
  type: 'neighbour'; action: 'changed' | 'removed'; ifindex: number; family: 4 | 6; address: string;
  /**
   * NUD state, lower-case: incomplete, reachable, stale, delay, probe, failed, noarp,
   * permanent, none. (The kernel notifies no entry into incomplete or delay: those two are
   * seen only by a dump.)
   */
  state: string;
}
export interface ResyncEvent { type: 'resync'; reason: string; monotonicNs: string; via: 'resync' }
/** Everything a LinkMonitor emits, as `netheal watch` prints it. */
export type MonitorEvent = LinkEvent | LinkRemovedEvent | AddressEvent | DefaultRouteEvent | NeighbourEvent | ResyncEvent;

/** A link as the table keeps it: the public shape and the message it was decoded from. */
export interface LinkRecord {
  link: Link;
  raw: LinkMessage;
}

/** sizeof(struct ndmsg). */
const NDMSG_LEN = 12;

/** The neighbour entry of a default route's gateway, as tracked. */
export interface GatewayNeighbour {
  ifindex: number;
  family: 4 | 6;
  address: string;
  /** The address as NDA_DST carries it (4 or 16 bytes): compared in place. */
  bytes: Buffer;
  /** `${ifindex}|${address}`, for dump results. */
  key: string;
  /** ndm_state (NUD_*) of the kernel's entry; null while there is none (or none is known). */
  state: number | null;
  /** The neighbour dump generation current when a notification last named it. */
  notifiedGen: number;
}

/** The gateways of default routes (each device and address once), by ifindex, state unknown. */
export function gatewayNeighbours(routes: DefaultRoute[]): Map<number, GatewayNeighbour[]> {
  const table = new Map<number, GatewayNeighbour[]>();
  for (const route of routes) {
    if (route.gateway === null || route.ifindex === null) continue;
    const key = `${route.ifindex}|${route.gateway}`;
    let list = table.get(route.ifindex);
    if (list === undefined) table.set(route.ifindex, (list = []));
    if (list.some((entry) => entry.key === key)) continue;
    list.push({
      ifindex: route.ifindex, family: route.family, address: route.gateway, bytes: parseIp(route.gateway), key,
      state: null, notifiedGen: -1,
    });
  }
  return table;
}

/**
 * The gateway of `table` that the ndmsg at p[start, end) names, or undefined: proxy entries,
 * bridge FDB entries (family AF_BRIDGE), other devices and other addresses are turned away
 * from the header and NDA_DST, read in place. Allocates nothing; throws ProtocolError when a
 * message on a gateway's device does not decode.
 */
export function gatewayOf(p: Buffer, start: number, end: number, table: Map<number, GatewayNeighbour[]>): GatewayNeighbour | undefined {
  if (end - start < NDMSG_LEN) throw new ProtocolError(`ndmsg: payload of ${end - start} bytes, need ${NDMSG_LEN}`);
  const family = p[start]!;
  if ((family !== AF_INET && family !== AF_INET6) || (p[start + 10]! & NTF_PROXY) !== 0) return undefined;
  const entries = table.get(p.readInt32LE(start + 4));
  if (entries === undefined) return undefined;
  const at = neighbourDstAt(p, start, end);
  if (at < 0) return undefined;
  const size = (p[at]! | (p[at + 1]! << 8)) - 4;
  for (const entry of entries) {
    const bytes = entry.bytes;
    if (bytes.length !== size || entry.family !== (family === AF_INET ? 4 : 6)) continue;
    let i = 0;
    while (i < size && p[at + 4 + i] === bytes[i]) i++;
    if (i === size) return entry;
  }
  return undefined;
}

function addressKey(a: { ifindex: number; family: number; address: string; prefixlen: number }): string {
  return `${a.ifindex}|${a.family}|${a.address}/${a.prefixlen}`;
}

function routeKey(r: DefaultRoute | null): string {
  return r === null ? '' : `${r.gateway}|${r.ifindex}|${r.metric}`;
}

/** The route the kernel would use: the lowest metric among the usable default routes. */
function bestDefault(routes: DefaultRoute[], family: 4 | 6): DefaultRoute | null {
  let best: DefaultRoute | null = null;
  for (const r of routes) {
    if (r.family !== family || r.linkdown) continue;
    if (best === null || r.metric < best.metric) best = r;
  }
  return best;
}

export function toDefaultRoute(route: RouteMessage): DefaultRoute {
  return {
    family: route.family,
    gateway: route.gateway,
    ifindex: route.ifindex,
    metric: route.metric,
    linkdown: (route.flags & (RTNH_F_LINKDOWN | RTNH_F_DEAD)) !== 0,
  };
}

/**
 * What a change must touch to alter a default route without a notification (see
 * NetworkTable.touchesDefaultRoute and LinkMonitor.mayCarryDefault): the devices of the default routes' nexthops, their preferred
 * source addresses (removing one flushes the routes using it, on any device, silently before
 * Linux 6.7), and whether some route's devices are unknown (multipath, nexthop objects).
 */
export interface RouteWatch {
  devices: Set<number>;
  sources: Set<string>;
  anyDevice: boolean;
}

export function watchOf(routes: RouteMessage[]): RouteWatch {
  const watch: RouteWatch = { devices: new Set(), sources: new Set(), anyDevice: false };
  for (const route of routes) {
    if (route.ifindex === null || route.moreNexthops) watch.anyDevice = true;
    else watch.devices.add(route.ifindex);
    if (route.prefsrc !== null) watch.sources.add(route.prefsrc);
  }
  return watch;
}

/** Snapshot of a namespace: links (with addresses) and default routes. */
export interface NetworkState {
  links: Map<number, LinkRecord>;
  /** By addressKey: `${ifindex}|${family}|${address}/${prefixlen}`. */
  addresses: Map<string, AddressMessage>;
  defaultRoutes: DefaultRoute[];
  routeWatch: RouteWatch;
  monotonicNs: bigint;
}

function publicLink(raw: LinkMessage, addresses: LinkAddress[]): Link {
  return {
    ifindex: raw.ifindex,
    name: raw.name,
    kind: raw.kind,
    adminUp: raw.adminUp,
    carrier: raw.carrier,
    operstate: raw.operstate,
    mtu: raw.mtu,
    mac: raw.mac,
    master: raw.master,
    addresses,
  };
}

/**
 * The LINK_FIELDS that differ, in that order. Spelled out rather than looped over by key:
 * this runs on every link event, and fixed-name reads are what V8 compiles best.
 */
function changedFields(a: Link, b: Link): LinkField[] {
  const changed: LinkField[] = [];
  if (a.name !== b.name) changed.push('name');
  if (a.kind !== b.kind) changed.push('kind');
  if (a.adminUp !== b.adminUp) changed.push('adminUp');
  if (a.carrier !== b.carrier) changed.push('carrier');
  if (a.operstate !== b.operstate) changed.push('operstate');
  if (a.mtu !== b.mtu) changed.push('mtu');
  if (a.mac !== b.mac) changed.push('mac');
  if (a.master !== b.master) changed.push('master');
  return changed;
}

function cloneLink(link: Link): Link {
  return { ...link, addresses: link.addresses.map((a) => ({ ...a })) };
}

/** The default routes of the main table among dumped RTM_NEWROUTE messages, and what they watch. */
export function defaultRoutesOf(messages: Iterable<NetlinkMessage>): { routes: DefaultRoute[]; watch: RouteWatch } {
  const raw: RouteMessage[] = [];
  for (const message of messages) {
    if (message.type !== RTM_NEWROUTE) continue;
    const route = decodeRoute(message);
    if (route !== null && isDefaultRoute(route)) raw.push(route);
  }
  return { routes: raw.map(toDefaultRoute), watch: watchOf(raw) };
}

/** A snapshot from the replies of a link, an address and route dumps (other messages are skipped). */
export function networkStateOf(dumped: {
  links: Iterable<NetlinkMessage>;
  addresses: Iterable<NetlinkMessage>;
  routes: Iterable<NetlinkMessage>;
  monotonicNs: bigint;
}): NetworkState {
  const links = new Map<number, LinkRecord>();
  for (const message of dumped.links) {
    if (message.type !== RTM_NEWLINK) continue;
    const raw = decodeLink(message);
    if (raw.family !== AF_UNSPEC) continue;
    links.set(raw.ifindex, { raw, link: publicLink(raw, []) });
  }
  const addresses = new Map<string, AddressMessage>();
  for (const message of dumped.addresses) {
    if (message.type !== RTM_NEWADDR) continue;
    const address = decodeAddress(message);
    if (address !== null) addresses.set(addressKey(address), address);
  }
  for (const address of addresses.values()) {
    links.get(address.ifindex)?.link.addresses.push({ family: address.family, address: address.address, prefixlen: address.prefixlen });
  }
  const { routes, watch } = defaultRoutesOf(dumped.routes);
  return { links, addresses, defaultRoutes: routes, routeWatch: watch, monotonicNs: dumped.monotonicNs };
}

/**
 * The ndm_state of each gateway of `gateways` among dumped RTM_NEWNEIGH messages, by the
 * gateway's key, added to `into`.
 */
export function gatewayStatesOf(messages: Iterable<NetlinkMessage>, gateways: Map<number, GatewayNeighbour[]>,
  into: Map<string, number> = new Map()): Map<string, number> {
  for (const message of messages) {
    if (message.type !== RTM_NEWNEIGH) continue;
    const p = message.payload;
    const gateway = gatewayOf(p, 0, p.length, gateways);
    if (gateway !== undefined) into.set(gateway.key, p.readUInt16LE(8));
  }
  return into;
}

/**
 * The table. Changes report their events to `emit` as they are made (see the module's
 * comment); the methods that take a change return whether it changed anything the caller
 * may have to follow up (a route re-dump, a neighbour dump, carrier-sync).
 */
export class NetworkTable {
  private links = new Map<number, LinkRecord>();
  private addresses = new Map<string, AddressMessage>();
  private routes: DefaultRoute[] = [];
  private watch: RouteWatch = watchOf([]);
  private best: Record<4 | 6, DefaultRoute | null> = { 4: null, 6: null };
  /** The default routes' gateways' neighbour entries, by ifindex (see gatewayOf). */
  private gateways = new Map<number, GatewayNeighbour[]>();
  /** Counts neighbour dumps: a dump's result yields to notifications read since it began. */
  private neighbourGen = 0;

  constructor(private readonly emit: (event: MonitorEvent) => void) {}

  /** Takes a first snapshot (and its gateways' neighbour states, by key) without an event. */
  load(snapshot: NetworkState, neighbours: Map<string, number>): void {
    this.links = snapshot.links;
    this.addresses = snapshot.addresses;
    this.routes = snapshot.defaultRoutes;
    this.watch = snapshot.routeWatch;
    this.best = { 4: bestDefault(this.routes, 4), 6: bestDefault(this.routes, 6) };
    const gateways = gatewayNeighbours(this.routes);
    for (const list of gateways.values()) for (const entry of list) entry.state = neighbours.get(entry.key) ?? null;
    this.gateways = gateways;
  }

  // ---- queries ----

  /** The links as they are now (copies), by ifindex. */
  linkTable(): Link[] {
    return [...this.links.values()].map((r) => cloneLink(r.link)).sort((a, b) => a.ifindex - b.ifindex);
  }

  /** One link by ifindex or name (a copy), or undefined. */
  getLink(key: number | string): Link | undefined {
    for (const record of this.links.values()) {
      if (record.link.ifindex === key || record.link.name === key) return cloneLink(record.link);
    }
    return undefined;
  }

  /** The message a link was last decoded from (not a copy: read only), or undefined. */
  linkMessage(ifindex: number): LinkMessage | undefined {
    return this.links.get(ifindex)?.raw;
  }

  /** The messages of all links (not copies: read only). */
  linkMessages(): LinkMessage[] {
    const out: LinkMessage[] = [];
    for (const record of this.links.values()) out.push(record.raw);
    return out;
  }

  /** Default routes of the main table as last set (usable or not). */
  defaultRoutes(): DefaultRoute[] {
    return this.routes.map((r) => ({ ...r }));
  }

  /** The usable default route the kernel would pick for a family, or null. */
  activeDefaultRoute(family: 4 | 6): DefaultRoute | null {
    const best = this.best[family];
    return best === null ? null : { ...best };
  }

  /**
   * The NUD state of the neighbour entry of `address` on device `ifindex`, when that is the
   * gateway of a current default route; null when it is not one, or has no entry.
   */
  neighbourState(ifindex: number, address: string): string | null {
    const entries = this.gateways.get(ifindex);
    if (entries === undefined) return null;
    let bytes: Buffer;
    try {
      bytes = parseIp(address);
    } catch {
      return null;
    }
    for (const entry of entries) if (entry.bytes.equals(bytes)) return entry.state === null ? null : nudStateName(entry.state);
    return null;
  }

  /** Whether some default route names a gateway (whose neighbour notifications then count). */
  hasGateways(): boolean {
    return this.gateways.size !== 0;
  }

  /**
   * Whether a change on this device (or the loss of this address) may have changed a default
   * route without a notification: the kernel flushes IPv4 routes on admin-down and address
   * removal, and flips RTNH_F_LINKDOWN on carrier changes, all silently; only routes with a
   * nexthop on the device, or using the address as their source, are touched.
   */
  touchesDefaultRoute(ifindex: number, address?: string): boolean {
    const watch = this.watch;
    return watch.anyDevice || watch.devices.has(ifindex) || (address !== undefined && watch.sources.has(address));
  }

  // ---- links and addresses ----

  /** An RTM_NEWLINK (family AF_UNSPEC): true when a field changed or the link is new. */
  updateLink(raw: LinkMessage, stamp: bigint, via: Via): boolean {
    const previous = this.links.get(raw.ifindex);
    const addresses = previous?.link.addresses ?? [];
    const link = publicLink(raw, addresses);
    this.links.set(raw.ifindex, { raw, link });
    const changed: Array<LinkField | 'ifindex'> = previous === undefined ? ['ifindex', ...LINK_FIELDS] : changedFields(previous.link, link);
    if (changed.length === 0) return false;
    this.emit({ type: 'link', link: cloneLink(link), changed, monotonicNs: stamp.toString(), via });
    return true;
  }

  /** An RTM_DELLINK: the link's remaining addresses are reported removed, then the link. */
  removeLink(ifindex: number, stamp: bigint, via: Via): void {
    const previous = this.links.get(ifindex);
    if (previous === undefined) return;
    // Addresses still on the device are reported removed first. The kernel sends their
    // RTM_DELADDR before RTM_DELLINK, so this is for a resync after lost notifications:
    // nothing else would tell whoever holds sockets on them (issue #14).
    for (const address of this.addresses.values()) if (address.ifindex === ifindex) this.updateAddress(address, false, stamp, via);
    this.links.delete(ifindex);
    this.emit({ type: 'link-removed', ifindex, name: previous.link.name, monotonicNs: stamp.toString(), via });
  }

  /** An RTM_NEWADDR (`present`) or RTM_DELADDR: true when the table changed. */
  updateAddress(address: AddressMessage, present: boolean, stamp: bigint, via: Via): boolean {
    const key = addressKey(address);
    if (present === this.addresses.has(key)) return false;
    const record = this.links.get(address.ifindex);
    const entry = { family: address.family, address: address.address, prefixlen: address.prefixlen };
    if (present) {
      this.addresses.set(key, address);
      record?.link.addresses.push(entry);
    } else {
      this.addresses.delete(key);
      if (record !== undefined) {
        record.link.addresses = record.link.addresses.filter((a) => !(a.family === entry.family && a.address === entry.address && a.prefixlen === entry.prefixlen));
      }
    }
    this.emit({
      type: 'address', action: present ? 'added' : 'removed', ifindex: address.ifindex,
      family: address.family, address: address.address, prefixlen: address.prefixlen,
      monotonicNs: stamp.toString(), via,
    });
    return true;
  }

  // ---- default routes ----

  /**
   * A new set of default routes (from a dump): a changed best route per family is reported
   * as the old one lost and the new one restored. True when it names a gateway not tracked
   * before (whose neighbour entry is then unknown until a neighbour dump).
   */
  setDefaultRoutes(routes: DefaultRoute[], watch: RouteWatch, stamp: bigint, via: Via): boolean {
    this.routes = routes;
    this.watch = watch;
    const added = this.trackGateways(routes);
    for (const family of [4, 6] as const) {
      const before = this.best[family];
      const after = bestDefault(routes, family);
      if (routeKey(before) === routeKey(after)) continue;
      this.best[family] = after;
      const monotonicNs = stamp.toString();
      // A changed gateway is the old one lost and the new one restored.
      if (before !== null) {
        const linkdown = routes.some((r) => r.family === family && r.linkdown && r.ifindex === before.ifindex && r.gateway === before.gateway);
        const superseded = routes.some((r) => r.family === family && !r.linkdown && r.ifindex === before.ifindex && r.gateway === before.gateway);
        this.emit({ type: 'default-route', action: 'lost', family, gateway: before.gateway, ifindex: before.ifindex, monotonicNs, via, ...(linkdown ? { linkdown } : {}), ...(after !== null && superseded ? { superseded } : {}) });
      }
      if (after !== null) {
        this.emit({ type: 'default-route', action: 'restored', family, gateway: after.gateway, ifindex: after.ifindex, monotonicNs, via });
      }
    }
    return added;
  }

  /**
   * Follows the routes' gateways: entries still named keep their state, new ones start
   * unknown (null), the others are forgotten without an event. True when one is new.
   */
  private trackGateways(routes: DefaultRoute[]): boolean {
    const next = gatewayNeighbours(routes);
    let added = false;
    for (const [ifindex, list] of next) {
      const known = this.gateways.get(ifindex);
      for (let i = 0; i < list.length; i++) {
        const same = known?.find((entry) => entry.key === list[i]!.key);
        if (same !== undefined) list[i] = same;
        else added = true;
      }
    }
    this.gateways = next;
    return added;
  }

  // ---- gateway neighbours ----

  /**
   * The gateway entry that the RTM_NEWNEIGH / RTM_DELNEIGH with its ndmsg at buffer[start,
   * end) names, read in place, or undefined: anything but a gateway costs a look at the
   * header. Throws ProtocolError when a message on a gateway's device does not decode.
   */
  gatewayAt(buffer: Buffer, start: number, end: number): GatewayNeighbour | undefined {
    return gatewayOf(buffer, start, end, this.gateways);
  }

  /**
   * A notification about a gateway's entry (see gatewayAt): its ndm_state, or null when it
   * was deleted; reported when the state changed.
   */
  updateNeighbour(entry: GatewayNeighbour, state: number | null, stamp: bigint, via: Via): void {
    entry.notifiedGen = this.neighbourGen;
    this.setNeighbour(entry, state, stamp, via);
  }

  /**
   * A neighbour dump begins: the gateways to ask about (read only; their devices are what
   * to dump) and its generation, for {@link applyNeighbourDump}.
   */
  beginNeighbourDump(): { gen: number; gateways: Map<number, GatewayNeighbour[]> } {
    return { gen: ++this.neighbourGen, gateways: this.gateways };
  }

  /**
   * The result of the neighbour dump of generation `gen` over `gateways`' devices: the states
   * by key (see gatewayStatesOf). A notification read after the dump began is at least as
   * new as the dump, so that entry keeps it; entries of devices the dump did not cover too.
   */
  applyNeighbourDump(gen: number, gateways: Map<number, GatewayNeighbour[]>, states: Map<string, number>, stamp: bigint, via: Via): void {
    for (const list of this.gateways.values()) {
      for (const entry of list) {
        if (entry.notifiedGen >= gen || !gateways.has(entry.ifindex)) continue;
        this.setNeighbour(entry, states.get(entry.key) ?? null, stamp, via);
      }
    }
  }

  private setNeighbour(entry: GatewayNeighbour, state: number | null, stamp: bigint, via: Via): void {
    if (entry.state === state) return;
    entry.state = state;
    this.emit({
      type: 'neighbour', action: state === null ? 'removed' : 'changed', ifindex: entry.ifindex, family: entry.family,
      address: entry.address, state: nudStateName(state ?? NUD_NONE), monotonicNs: stamp.toString(), via,
    });
  }

  // ---- resync ----

  /**
   * A resync's snapshot: reports 'resync', then every difference against the table, as
   * events with via 'resync': vanished links (their addresses first), vanished addresses,
   * new or changed links, new addresses, default routes, and the gateways' neighbour states
   * (`neighbours`, by key, dumped at neighbourNs).
   */
  applySnapshot(snapshot: NetworkState, neighbours: Map<string, number>, neighbourNs: bigint, reason: string): void {
    const stamp = snapshot.monotonicNs;
    this.emit({ type: 'resync', reason, monotonicNs: stamp.toString(), via: 'resync' });
    for (const ifindex of [...this.links.keys()]) {
      if (!snapshot.links.has(ifindex)) this.removeLink(ifindex, stamp, 'resync');
    }
    for (const [key, address] of [...this.addresses]) {
      if (!snapshot.addresses.has(key)) this.updateAddress(address, false, stamp, 'resync');
    }
    for (const record of snapshot.links.values()) this.updateLink(record.raw, stamp, 'resync');
    for (const [key, address] of snapshot.addresses) {
      if (!this.addresses.has(key)) this.updateAddress(address, true, stamp, 'resync');
    }
    this.setDefaultRoutes(snapshot.defaultRoutes, snapshot.routeWatch, stamp, 'resync');
    for (const list of this.gateways.values()) {
      for (const entry of list) {
        entry.notifiedGen = this.neighbourGen; // newer than any neighbour dump in flight
        this.setNeighbour(entry, neighbours.get(entry.key) ?? null, neighbourNs, 'resync');
      }
    }
  }
}
