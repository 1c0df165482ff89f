/**
 * Synthetic rtnetlink notifications for warming up the LinkMonitor's event path.
 *
 * Why: V8 compiles a function with its optimizing tier (TurboFan) only after it has run a
 * few thousand times. Link events are rare, so without help the notification path of a
 * monitor runs in V8's baseline tier for its whole life: measured ~15 us per event against
 * ~2 us once optimized, on top of the cold caches every rare event meets anyway. A LinkMonitor
 * therefore feeds these datagrams through a throwaway monitor's event path (same prototype,
 * so the same compiled code and type feedback) in small slices after start().
 *
 * The messages are kernel-shaped (the same decoders, the same object shapes as real ones)
 * and cover every branch the live path takes (link change, link appearing and removed,
 * address added and removed, a non-default route, neighbour entries of the gateway and of
 * others) so the optimized code does not deoptimize on the first real event for lack of
 * feedback. They name a device index no kernel hands
 * out (ifindex 0x7ffffff0) and never leave the process.
 */
import { encodeAttribute, encodeMessage } from '../kernel/netlink';
import {
  AF_INET, AF_INET6, AF_UNSPEC, IFA_ADDRESS, IFA_FLAGS, IFA_F_PERMANENT, IFA_LOCAL, IFF_LOWER_UP, IFF_RUNNING, IFF_UP,
  IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINK, IFLA_LINKINFO, IFLA_MTU, IFLA_OPERSTATE, NDA_DST, NDA_LLADDR,
  NUD_REACHABLE, NUD_STALE, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTM_DELADDR, RTM_DELLINK,
  RTM_DELNEIGH, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, RTN_UNICAST, RT_TABLE_MAIN,
} from '../kernel/rtnetlink';

/** The device the synthetic messages describe: an index no kernel allocates in practice. */
export const WARM_UP_IFINDEX = 0x7ffffff0;
/** A second index, for the default route the throwaway monitor "knows" (so route checks loop). */
export const WARM_UP_ROUTE_IFINDEX = 0x7ffffff1;

const IF_OPER_UP = 6;
const IF_OPER_LOWERLAYERDOWN = 7;
const RT_SCOPE_UNIVERSE = 0;
const RTPROT_KERNEL = 2;
const RTPROT_STATIC = 4;

function u8(value: number): Buffer {
  return Buffer.from([value]);
}
function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
}
function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'latin1');
}

function link(type: number, carrier: boolean): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt8(AF_UNSPEC, 0);
  header.writeUInt16LE(1, 2); // ARPHRD_ETHER
  header.writeInt32LE(WARM_UP_IFINDEX, 4);
  header.writeUInt32LE(IFF_UP | 0x2 /* BROADCAST */ | 0x1000 /* MULTICAST */ | (carrier ? IFF_RUNNING | IFF_LOWER_UP : 0), 8);
  const payload = Buffer.concat([
    header,
    encodeAttribute(IFLA_IFNAME, cString('netheal-warm')),
    encodeAttribute(IFLA_MTU, u32(1500)),
    encodeAttribute(IFLA_OPERSTATE, u8(carrier ? IF_OPER_UP : IF_OPER_LOWERLAYERDOWN)),
    encodeAttribute(IFLA_LINK, u32(WARM_UP_IFINDEX + 2)),
    encodeAttribute(IFLA_ADDRESS, Buffer.from([0x02, 0x00, 0x5e, 0x00, 0x53, 0x01])),
    encodeAttribute(IFLA_LINKINFO, encodeAttribute(IFLA_INFO_KIND, cString('veth'))),
  ]);
  return encodeMessage(type, 0, 0, payload);
}

function address(type: number): Buffer {
  const header = Buffer.from([AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 0, 0, 0, 0]);
  header.writeUInt32LE(WARM_UP_IFINDEX, 4);
  const ip = Buffer.from([192, 0, 2, 7]); // TEST-NET-1, documentation only
  return encodeMessage(type, 0, 0, Buffer.concat([
    header, encodeAttribute(IFA_ADDRESS, ip), encodeAttribute(IFA_LOCAL, ip), encodeAttribute(IFA_FLAGS, u32(IFA_F_PERMANENT)),
  ]));
}

/** struct ndmsg + NDA_DST (+ NDA_LLADDR): an ARP entry as the kernel notifies it. */
function neighbour(type: number, ifindex: number, ip: Buffer, state: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt8(AF_INET, 0);
  header.writeInt32LE(ifindex, 4);
  header.writeUInt16LE(state, 8);
  header.writeUInt8(RTN_UNICAST, 11);
  return encodeMessage(type, 0, 0, Buffer.concat([
    header, encodeAttribute(NDA_DST, ip), encodeAttribute(NDA_LLADDR, Buffer.from([0x02, 0x00, 0x5e, 0x00, 0x53, 0x02])),
  ]));
}

/** struct rtmsg + attributes: a unicast route of the main table. */
function route(family: number, dst: Buffer | null, dstLen: number, gateway: Buffer | null, ifindex: number, protocol: number,
  prefsrc: Buffer | null = null): Buffer {
  const header = Buffer.from([family, dstLen, 0, 0, RT_TABLE_MAIN, protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0, 0, 0, 0]);
  const parts = [header, encodeAttribute(RTA_TABLE, u32(RT_TABLE_MAIN))];
  if (dst !== null) parts.push(encodeAttribute(RTA_DST, dst));
  if (gateway !== null) parts.push(encodeAttribute(RTA_GATEWAY, gateway));
  if (prefsrc !== null) parts.push(encodeAttribute(RTA_PREFSRC, prefsrc));
  parts.push(encodeAttribute(RTA_PRIORITY, u32(256)), encodeAttribute(RTA_OIF, u32(ifindex)));
  return encodeMessage(RTM_NEWROUTE, 0, 0, Buffer.concat(parts));
}

/**
 * A default route on {@link WARM_UP_ROUTE_IFINDEX}, as the kernel would send it, for the
 * throwaway monitor's route table.
 */
export function warmUpDefaultRoute(): Buffer {
  // With a preferred source (another documentation address than the cycle's), so the
  // source check looks into a non-empty set too.
  return route(AF_INET, null, 0, Buffer.from([192, 0, 2, 1]), WARM_UP_ROUTE_IFINDEX, RTPROT_STATIC, Buffer.from([192, 0, 2, 99]));
}

/**
 * One cycle of notifications, each its own datagram as the kernel sends them: carrier lost
 * (with an IPv6 route change riding along, as on a real carrier loss), carrier back, address
 * added, address removed, device removed, device back; then the neighbour entry of the
 * default route's gateway (see warmUpDefaultRoute) turning reachable and stale, and entries
 * the monitor passes over: another address on the gateway's device, another device.
 */
export function warmUpCycle(): Buffer[] {
  const fe80 = Buffer.alloc(16);
  fe80.writeUInt16BE(0xfe80, 0);
  const gateway = Buffer.from([192, 0, 2, 1]);
  const other = Buffer.from([192, 0, 2, 8]);
  return [
    link(RTM_NEWLINK, false),
    route(AF_INET6, fe80, 64, null, WARM_UP_IFINDEX, RTPROT_KERNEL),
    link(RTM_NEWLINK, true),
    address(RTM_NEWADDR),
    address(RTM_DELADDR),
    link(RTM_DELLINK, false),
    link(RTM_NEWLINK, true),
    neighbour(RTM_NEWNEIGH, WARM_UP_ROUTE_IFINDEX, gateway, NUD_REACHABLE),
    neighbour(RTM_NEWNEIGH, WARM_UP_ROUTE_IFINDEX, gateway, NUD_STALE),
    neighbour(RTM_NEWNEIGH, WARM_UP_ROUTE_IFINDEX, other, NUD_REACHABLE),
    neighbour(RTM_DELNEIGH, WARM_UP_IFINDEX, other, NUD_STALE),
  ];
}
