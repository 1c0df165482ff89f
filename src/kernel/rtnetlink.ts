/**
 * rtnetlink codecs: links (ifinfomsg), addresses (ifaddrmsg), routes (rtmsg) and neighbours
 * (ndmsg), as in linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/if.h and
 * linux/neighbour.h. Pure functions.
 */
import {
  Attributes,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NetlinkMessage,
  ProtocolError,
  attrU32,
  encodeAttribute,
  encodeMessage,
  NLA_TYPE_MASK,
  parseAttributes,
} from './netlink';

export { AF_INET, AF_INET6, formatIp, parseIp } from './ip-address';
import { AF_INET, AF_INET6, formatIp, parseIp } from './ip-address';

/** Message types (linux/rtnetlink.h). */
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

/** Multicast groups (enum rtnetlink_groups). */
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV6_ROUTE = 11;

/** Address families (linux/socket.h). */
export const AF_UNSPEC = 0;
export const AF_BRIDGE = 7;

/** Interface flags (linux/if.h). */
export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

/** Link attributes (linux/if_link.h). */
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_EXT_MASK = 29;
export const IFLA_CARRIER = 33;
export const IFLA_CARRIER_CHANGES = 35;
export const IFLA_LINK_NETNSID = 37;
export const IFLA_INFO_KIND = 1;
/** RTEXT_FILTER_SKIP_STATS: leave the bulky statistics out of link dumps. */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** Address attributes (linux/if_addr.h). */
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_FLAGS = 8;

/** Route attributes and values (linux/rtnetlink.h). */
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PREFSRC = 7;
export const RTA_PRIORITY = 6;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;
/** A nexthop object id (ip nexthop): the route's devices are not in the route itself. */
export const RTA_NH_ID = 30;
export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;
export const RTNH_F_DEAD = 1;
export const RTNH_F_LINKDOWN = 16;

/** IF_OPER_* (linux/if.h), lower-case as the kernel names them (RFC 2863). */
export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type Operstate = (typeof OPERSTATES)[number];

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;
const NDMSG_LEN = 12;

/** A link as decoded from RTM_NEWLINK (more than the public contract; see LinkMonitor). */
export interface LinkMessage {
  family: number;
  ifindex: number;
  /** ifi_flags: IFF_UP, IFF_RUNNING, IFF_LOWER_UP, ... */
  flags: number;
  name: string;
  /** IFLA_INFO_KIND as `ip -d` shows it (veth, bridge, tun, ...); null for plain devices. */
  kind: string | null;
  adminUp: boolean;
  /** IFF_LOWER_UP: the device is running and its carrier is on. */
  carrier: boolean;
  operstate: Operstate | string;
  mtu: number | null;
  mac: string | null;
  master: number | null;
  /** IFLA_LINK: the lower device; equals ifindex (or is absent) for unstacked devices. */
  iflink: number | null;
  /** IFLA_LINK_NETNSID: set when IFLA_LINK points into another namespace. */
  linkNetnsid: number | null;
  carrierChanges: number | null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** "aa:bb:..." from buffer[start, end), or null when empty. */
function formatMac(buffer: Buffer, start: number, end: number): string | null {
  if (end <= start) return null;
  let text = HEX[buffer[start]!]!;
  for (let i = start + 1; i < end; i++) text += `:${HEX[buffer[i]!]!}`;
  return text;
}

/** A NUL-terminated string in buffer[start, end). */
function readString(buffer: Buffer, start: number, end: number): string {
  let stop = start;
  while (stop < end && buffer[stop] !== 0) stop++;
  return buffer.toString('utf8', start, stop);
}

function need(payload: Buffer, length: number, what: string): void {
  if (payload.length < length) throw new ProtocolError(`${what}: payload of ${payload.length} bytes, need ${length}`);
}

/**
 * Decodes RTM_NEWLINK / RTM_DELLINK. This is the event hot path: one pass over the attributes
 * (a link message carries ~40), in plain loops without callbacks, reading only the ones
 * netheal uses. Bounds checks as in parseAttributes.
 */
export function decodeLink(message: NetlinkMessage): LinkMessage {
  return decodeLinkAt(message.payload, 0, message.payload.length);
}

/**
 * decodeLink on the ifinfomsg payload at buffer[start, end), without a view of it. With
 * `previous` (the same device as last decoded), its name, kind and MAC strings are reused
 * when the bytes are unchanged, as they nearly always are: no string is built per event.
 */
export function decodeLinkAt(p: Buffer, start: number, end: number, previous?: LinkMessage): LinkMessage {
  if (end - start < IFINFOMSG_LEN) throw new ProtocolError(`ifinfomsg: payload of ${end - start} bytes, need ${IFINFOMSG_LEN}`);
  const flags = p.readUInt32LE(start + 8);
  let name = '';
  let kind: string | null = null;
  let operstateCode: number | undefined;
  let mtu: number | null = null;
  let mac: string | null = null;
  let master: number | null = null;
  let iflink: number | null = null;
  let linkNetnsid: number | null = null;
  let carrierChanges: number | null = null;
  let offset = start + IFINFOMSG_LEN;
  while (offset + 4 <= end) {
    // Plain byte loads (less code than readUInt16LE, which matters when it runs cold): the
    // loop condition keeps them inside [start, end).
    const length = p[offset]! | (p[offset + 1]! << 8);
    const type = (p[offset + 2]! | (p[offset + 3]! << 8)) & NLA_TYPE_MASK;
    if (length < 4 || offset + length > end) badAttribute(type, offset - start, length, end - offset);
    const value = offset + 4;
    const stop = offset + length;
    const size = length - 4;
    switch (type) {
      case IFLA_IFNAME:
        name = previous !== undefined && sameString(p, value, stop, previous.name) ? previous.name : readString(p, value, stop);
        break;
      case IFLA_OPERSTATE: if (size >= 1) operstateCode = p[value]; break;
      case IFLA_MTU: if (size >= 4) mtu = p.readUInt32LE(value); break;
      case IFLA_ADDRESS:
        mac = previous !== undefined && sameMac(p, value, stop, previous.mac) ? previous.mac : formatMac(p, value, stop);
        break;
      case IFLA_MASTER: if (size >= 4) master = p.readUInt32LE(value) || null; break;
      case IFLA_LINK: if (size >= 4) iflink = p.readInt32LE(value); break;
      case IFLA_LINK_NETNSID: if (size >= 4) linkNetnsid = p.readInt32LE(value); break;
      case IFLA_CARRIER_CHANGES: if (size >= 4) carrierChanges = p.readUInt32LE(value); break;
      case IFLA_LINKINFO: {
        let inner = value;
        while (inner + 4 <= stop) {
          const innerLength = p.readUInt16LE(inner);
          const innerType = p.readUInt16LE(inner + 2) & NLA_TYPE_MASK;
          if (innerLength < 4 || inner + innerLength > stop) badAttribute(innerType, inner - start, innerLength, stop - inner);
          if (innerType === IFLA_INFO_KIND) {
            const known = previous?.kind;
            kind = known != null && sameString(p, inner + 4, inner + innerLength, known) ? known : readString(p, inner + 4, inner + innerLength);
          }
          inner += (innerLength + 3) & ~3;
        }
        break;
      }
      default:
        break;
    }
    offset += (length + 3) & ~3;
  }
  return {
    family: p.readUInt8(start),
    ifindex: p.readInt32LE(start + 4),
    flags,
    name,
    kind,
    adminUp: (flags & IFF_UP) !== 0,
    // IFF_LOWER_UP, what `ip` shows as LOWER_UP: carrier of a running device. (IFLA_CARRIER
    // stays 1 on an admin-down device that never lost carrier, which misleads.)
    carrier: (flags & IFF_LOWER_UP) !== 0,
    operstate: operstateCode === undefined ? 'unknown' : OPERSTATES[operstateCode] ?? `operstate-${operstateCode}`,
    mtu,
    mac,
    master,
    iflink,
    linkNetnsid,
    carrierChanges,
  };
}

/**
 * Whether the NUL-terminated string in buffer[start, end) equals `text`. ASCII only: any other
 * byte says no (and the caller decodes it as UTF-8).
 */
function sameString(buffer: Buffer, start: number, end: number, text: string): boolean {
  let i = 0;
  for (; start + i < end && buffer[start + i] !== 0; i++) {
    const byte = buffer[start + i]!;
    if (byte >= 0x80 || i >= text.length || byte !== text.charCodeAt(i)) return false;
  }
  return i === text.length;
}

const HEX_DIGITS = '0123456789abcdef';

/** Whether buffer[start, end) formats to `mac` ("aa:bb:..", as formatMac writes it). */
function sameMac(buffer: Buffer, start: number, end: number, mac: string | null): boolean {
  if (mac === null) return end <= start;
  if (mac.length !== 3 * (end - start) - 1) return false;
  for (let i = start, j = 0; i < end; i++, j += 3) {
    const byte = buffer[i]!;
    if (mac.charCodeAt(j) !== HEX_DIGITS.charCodeAt(byte >> 4) || mac.charCodeAt(j + 1) !== HEX_DIGITS.charCodeAt(byte & 15)) return false;
  }
  return true;
}

function badAttribute(type: number, offset: number, length: number, left: number): never {
  throw new ProtocolError(`attribute ${type} at offset ${offset} claims ${length} bytes, ${left} left`);
}

/** An address as decoded from RTM_NEWADDR / RTM_DELADDR. */
export interface AddressMessage {
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixlen: number;
  /** IFA_F_* flags (IFA_FLAGS when present). */
  flags: number;
  scope: number;
}

/** Decodes RTM_NEWADDR / RTM_DELADDR. The address is IFA_LOCAL when present (what `ip` shows). */
export function decodeAddress(message: NetlinkMessage): AddressMessage | null {
  const p = message.payload;
  need(p, IFADDRMSG_LEN, 'ifaddrmsg');
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return null;
  const attributes = parseAttributes(p, IFADDRMSG_LEN);
  const raw = attributes.get(IFA_LOCAL) ?? attributes.get(IFA_ADDRESS);
  if (raw === undefined) return null;
  const expected = family === AF_INET ? 4 : 16;
  if (raw.length !== expected) throw new ProtocolError(`ifaddrmsg family ${family} with a ${raw.length}-byte address`);
  return {
    ifindex: p.readUInt32LE(4),
    family: family === AF_INET ? 4 : 6,
    address: formatIp(raw),
    prefixlen: p.readUInt8(1),
    flags: attrU32(attributes, IFA_FLAGS) ?? p.readUInt8(2),
    scope: p.readUInt8(3),
  };
}

/** A route as decoded from RTM_NEWROUTE / RTM_DELROUTE (single path or the first hop of several). */
export interface RouteMessage {
  family: 4 | 6;
  dst: string | null;
  dstLen: number;
  table: number;
  type: number;
  protocol: number;
  scope: number;
  /** rtm_flags; RTNH_F_LINKDOWN / RTNH_F_DEAD mark a nexthop that cannot carry traffic. */
  flags: number;
  gateway: string | null;
  /** RTA_OIF, or the first hop's device of a multipath route. */
  ifindex: number | null;
  metric: number;
  /** RTA_PREFSRC: the preferred source address, when set. */
  prefsrc: string | null;
  /** Nexthops beyond `ifindex`: RTA_MULTIPATH or a nexthop object (RTA_NH_ID). */
  moreNexthops: boolean;
}

/** Decodes RTM_NEWROUTE / RTM_DELROUTE; null for families other than IPv4/IPv6. */
export function decodeRoute(message: NetlinkMessage): RouteMessage | null {
  const p = message.payload;
  need(p, RTMSG_LEN, 'rtmsg');
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return null;
  const attributes: Attributes = parseAttributes(p, RTMSG_LEN);
  const dst = attributes.get(RTA_DST);
  const gateway = attributes.get(RTA_GATEWAY);
  let ifindex = attrU32(attributes, RTA_OIF) ?? null;
  let gatewayText = gateway !== undefined ? formatIp(gateway) : null;
  let flags = p.readUInt32LE(8);
  const multipath = attributes.get(RTA_MULTIPATH);
  if (multipath !== undefined && multipath.length >= 8) {
    // struct rtnexthop { u16 len; u8 flags; u8 hops; int ifindex; } + attributes: first hop.
    const hopLength = multipath.readUInt16LE(0);
    if (hopLength < 8 || hopLength > multipath.length) throw new ProtocolError(`rtnexthop of ${hopLength} bytes`);
    flags |= multipath.readUInt8(2);
    ifindex = multipath.readInt32LE(4);
    const hopGateway = parseAttributes(multipath.subarray(8, hopLength)).get(RTA_GATEWAY);
    if (hopGateway !== undefined) gatewayText = formatIp(hopGateway);
  }
  return {
    family: family === AF_INET ? 4 : 6,
    dst: dst !== undefined ? formatIp(dst) : null,
    dstLen: p.readUInt8(1),
    table: attrU32(attributes, RTA_TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    flags,
    gateway: gatewayText,
    ifindex,
    metric: attrU32(attributes, RTA_PRIORITY) ?? 0,
    prefsrc: attributes.has(RTA_PREFSRC) ? formatIp(attributes.get(RTA_PREFSRC)!) : null,
    moreNexthops: multipath !== undefined || attributes.has(RTA_NH_ID),
  };
}

/** True for a unicast default route of the main table. */
export function isDefaultRoute(route: RouteMessage): boolean {
  return route.dstLen === 0 && route.table === RT_TABLE_MAIN && route.type === RTN_UNICAST;
}

function ifinfomsg(family: number, ifindex: number, flags: number, change: number): Buffer {
  const out = Buffer.alloc(IFINFOMSG_LEN);
  out.writeUInt8(family, 0);
  out.writeInt32LE(ifindex, 4);
  out.writeUInt32LE(flags >>> 0, 8);
  out.writeUInt32LE(change >>> 0, 12);
  return out;
}

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value >>> 0, 0);
  return out;
}

/** RTM_GETLINK dump of every link, statistics left out. */
export function encodeGetLinks(seq: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq,
    Buffer.concat([ifinfomsg(AF_UNSPEC, 0, 0, 0), encodeAttribute(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]));
}

/**
 * RTM_GETLINK for one device (not a dump). Since Linux 6.8 this also flushes a pending
 * linkwatch event for the device (linkwatch_sync_dev), so carrier and operstate are current.
 */
export function encodeGetLink(seq: number, ifindex: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST, seq,
    Buffer.concat([ifinfomsg(AF_UNSPEC, ifindex, 0, 0), encodeAttribute(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]));
}

/** RTM_GETLINK for one device by name (IFLA_IFNAME), acked. */
export function encodeGetLinkByName(seq: number, name: string): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq,
    Buffer.concat([ifinfomsg(AF_UNSPEC, 0, 0, 0), encodeAttribute(IFLA_IFNAME, Buffer.from(`${name}\0`)),
      encodeAttribute(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]));
}

/** RTM_GETADDR dump (AF_UNSPEC: IPv4 and IPv6). */
export function encodeGetAddresses(seq: number): Buffer {
  return encodeMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, Buffer.alloc(IFADDRMSG_LEN));
}

/** RTM_GETROUTE dump for one family. */
export function encodeGetRoutes(seq: number, family: number): Buffer {
  const rtmsg = Buffer.alloc(RTMSG_LEN);
  rtmsg.writeUInt8(family, 0);
  return encodeMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, rtmsg);
}

/** RTM_NEWLINK that sets a link administratively up or down (`ip link set IF up|down`). */
export function encodeSetLinkAdmin(seq: number, ifindex: number, up: boolean): Buffer {
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(AF_UNSPEC, ifindex, up ? IFF_UP : 0, IFF_UP));
}

/** NLM_F_CREATE / NLM_F_EXCL for new objects (linux/netlink.h). */
export const NLM_F_CREATE = 0x400;
export const NLM_F_EXCL = 0x200;
/** rtm_protocol RTPROT_KERNEL: routes the kernel adds for an address (they return with it). */
export const RTPROT_KERNEL = 2;
/** IFA_F_PERMANENT: configured, not learned (SLAAC/DHCP). */
export const IFA_F_PERMANENT = 0x80;

/**
 * Turns a dumped RTM_NEWROUTE / RTM_NEWADDR back into a creating request, the way
 * `ip route restore` / `ip addr restore` replay saved dumps. Route flags the kernel refuses
 * on input (RTNH_F_LINKDOWN, RTNH_F_DEAD) are cleared.
 */
export function encodeReplay(seq: number, message: NetlinkMessage): Buffer {
  const payload = Buffer.from(message.payload);
  if (message.type === RTM_NEWROUTE) {
    need(payload, RTMSG_LEN, 'rtmsg');
    payload.writeUInt32LE(payload.readUInt32LE(8) & ~(RTNH_F_LINKDOWN | RTNH_F_DEAD), 8);
  } else if (message.type !== RTM_NEWADDR) {
    throw new ProtocolError(`cannot replay message type ${message.type}`);
  }
  return encodeMessage(message.type, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, payload);
}

/** NLM_F_REPLACE: a new route replaces the one with the same destination and metric. */
export const NLM_F_REPLACE = 0x100;

/** A default route of the main table through one gateway, for {@link encodeDefaultRoute}. */
export interface DefaultRouteSpec {
  family: 4 | 6;
  gateway: string;
  ifindex: number;
  metric: number;
  /** rtm_protocol: who installed it (`ip route` shows it as `proto N`). */
  protocol: number;
}

/**
 * RTM_NEWROUTE (create or replace: the kernel replaces the route of the same destination,
 * TOS and metric, atomically) or RTM_DELROUTE for a unicast default route of the main table.
 */
export function encodeDefaultRoute(seq: number, spec: DefaultRouteSpec, op: 'replace' | 'delete'): Buffer {
  const rtmsg = Buffer.alloc(RTMSG_LEN);
  rtmsg.writeUInt8(spec.family === 4 ? AF_INET : AF_INET6, 0);
  rtmsg.writeUInt8(RT_TABLE_MAIN, 4);
  rtmsg.writeUInt8(spec.protocol, 5);
  rtmsg.writeUInt8(0, 6); // RT_SCOPE_UNIVERSE
  rtmsg.writeUInt8(RTN_UNICAST, 7);
  const payload = Buffer.concat([
    rtmsg,
    encodeAttribute(RTA_GATEWAY, parseIp(spec.gateway)),
    encodeAttribute(RTA_OIF, u32(spec.ifindex)),
    encodeAttribute(RTA_PRIORITY, u32(spec.metric)),
  ]);
  return op === 'replace'
    ? encodeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq, payload)
    : encodeMessage(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, payload);
}

/** Turns a dumped RTM_NEWROUTE / RTM_NEWADDR into the request that deletes that object. */
export function encodeDeletion(seq: number, message: NetlinkMessage): Buffer {
  const type = message.type === RTM_NEWROUTE ? RTM_DELROUTE : message.type === RTM_NEWADDR ? RTM_DELADDR : -1;
  if (type === -1) throw new ProtocolError(`cannot delete message type ${message.type}`);
  return encodeMessage(type, NLM_F_REQUEST | NLM_F_ACK, seq, Buffer.from(message.payload));
}


/** Neighbour attributes (linux/neighbour.h). */
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_IFINDEX = 8;

/** ndm_state: NUD_* (linux/neighbour.h). */
export const NUD_NONE = 0x00;
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** ndm_flags NTF_PROXY: a proxy-ARP/NDP entry (`ip neigh add proxy`), not a neighbour. */
export const NTF_PROXY = 0x08;

/** NUD state names, lower-case as `ip neigh` shows them upper-case, by ndm_state value. */
const NUD_NAMES: ReadonlyMap<number, string> = new Map([
  [NUD_NONE, 'none'], [NUD_INCOMPLETE, 'incomplete'], [NUD_REACHABLE, 'reachable'], [NUD_STALE, 'stale'],
  [NUD_DELAY, 'delay'], [NUD_PROBE, 'probe'], [NUD_FAILED, 'failed'], [NUD_NOARP, 'noarp'], [NUD_PERMANENT, 'permanent'],
]);

/**
 * The lower-case NUD name of an ndm_state ('reachable', 'stale', ...; 'none' for 0). A value
 * that is not exactly one state (the kernel sends one) reads `nud-0x..`.
 */
export function nudStateName(state: number): string {
  return NUD_NAMES.get(state) ?? `nud-0x${state.toString(16).padStart(2, '0')}`;
}

/** A neighbour entry as decoded from RTM_NEWNEIGH / RTM_DELNEIGH (ARP or NDP). */
export interface NeighbourMessage {
  family: 4 | 6;
  ifindex: number;
  /** NDA_DST: the neighbour's IP address. */
  address: string;
  /** ndm_state: one of the NUD_* values. */
  state: number;
  /** ndm_flags: NTF_* (NTF_ROUTER, NTF_PROXY, ...). */
  flags: number;
  /** ndm_type (an RTN_* route type). */
  type: number;
  /** NDA_LLADDR, "aa:bb:.."; null while unresolved. */
  lladdr: string | null;
}

/**
 * Offset of the NDA_DST attribute (its nlattr header) of the ndmsg payload at buffer[start,
 * end), or -1 when there is none; the value is buffer[offset + 4, offset + length). Reads the
 * attributes in place and allocates nothing: the LinkMonitor looks at every neighbour
 * notification of the namespace and wants only its gateways'. Bounds checks as in
 * parseAttributes; throws ProtocolError.
 */
export function neighbourDstAt(p: Buffer, start: number, end: number): number {
  if (end - start < NDMSG_LEN) throw new ProtocolError(`ndmsg: payload of ${end - start} bytes, need ${NDMSG_LEN}`);
  let offset = start + NDMSG_LEN;
  let found = -1;
  while (offset + 4 <= end) {
    const length = p[offset]! | (p[offset + 1]! << 8);
    const type = (p[offset + 2]! | (p[offset + 3]! << 8)) & NLA_TYPE_MASK;
    if (length < 4 || offset + length > end) badAttribute(type, offset - start, length, end - offset);
    if (type === NDA_DST) found = offset; // the last one wins, as in parseAttributes
    offset += (length + 3) & ~3;
  }
  return found;
}

/**
 * Decodes RTM_NEWNEIGH / RTM_DELNEIGH; null for families other than IPv4/IPv6 (bridge FDB
 * entries share the messages) and for messages without NDA_DST.
 */
export function decodeNeighbour(message: NetlinkMessage): NeighbourMessage | null {
  const p = message.payload;
  need(p, NDMSG_LEN, 'ndmsg');
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return null;
  const attributes = parseAttributes(p, NDMSG_LEN);
  const dst = attributes.get(NDA_DST);
  if (dst === undefined) return null;
  const expected = family === AF_INET ? 4 : 16;
  if (dst.length !== expected) throw new ProtocolError(`ndmsg family ${family} with a ${dst.length}-byte address`);
  const lladdr = attributes.get(NDA_LLADDR);
  return {
    family: family === AF_INET ? 4 : 6,
    ifindex: p.readInt32LE(4),
    address: formatIp(dst),
    state: p.readUInt16LE(8),
    flags: p.readUInt8(10),
    type: p.readUInt8(11),
    lladdr: lladdr === undefined ? null : formatMac(lladdr, 0, lladdr.length),
  };
}

/**
 * RTM_GETNEIGH dump of the ARP and NDP tables (AF_UNSPEC: both; or one family). With an
 * ifindex, NDA_IFINDEX makes the kernel return that device's entries only (a kernel that
 * predates the filter returns them all, so callers still check the ifindex).
 */
export function encodeGetNeighbours(seq: number, family: number = AF_UNSPEC, ifindex = 0): Buffer {
  const ndmsg = Buffer.alloc(NDMSG_LEN);
  ndmsg.writeUInt8(family, 0);
  const parts: Buffer[] = [ndmsg];
  if (ifindex !== 0) parts.push(encodeAttribute(NDA_IFINDEX, u32(ifindex)));
  return encodeMessage(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, Buffer.concat(parts));
}
