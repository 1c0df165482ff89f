/**
 * The least disruptive repairs, by rtnetlink: set an interface administratively up, and put
 * back exactly the addresses and routes it lost (those of its last healthy state). Nothing
 * present is touched: a replay of what exists already is refused by the kernel with EEXIST
 * and left alone. No bounce, no manager, no socket disturbed.
 */
import { NETLINK_ROUTE, NetlinkMessage } from '../kernel/netlink';
import { encodeSetLinkAdmin } from '../kernel/rtnetlink';
import { NativeBinding } from '../native';
import { NetlinkClient } from '../kernel/netlink-client';
import { InterfaceConfiguration, ReplayResult, lookupIfindex, replayConfiguration } from './link-bounce';

/** Where to act. */
export interface RepairOptions {
  /** Namespace file path (resolved), or undefined for the current namespace. */
  netnsPath?: string;
  binding?: NativeBinding;
  /** Aborts between requests (the engine's time limit, a reload). */
  signal?: AbortSignal;
}

function client(options: RepairOptions): NetlinkClient {
  return new NetlinkClient({ protocol: NETLINK_ROUTE, netns: options.netnsPath, binding: options.binding });
}

/** Sets `iface` administratively up (RTM_NEWLINK with IFF_UP, like `ip link set IF up`). */
export async function setLinkUp(iface: string, options: RepairOptions = {}): Promise<void> {
  const nl = client(options);
  try {
    const ifindex = await lookupIfindex(nl, iface);
    options.signal?.throwIfAborted();
    await nl.request(`RTM_NEWLINK ${iface} up`, (seq) => encodeSetLinkAdmin(seq, ifindex, true));
  } finally {
    nl.close();
  }
}

/**
 * Replays the addresses and routes of `baseline` on `iface` (the device may have a new
 * ifindex since: the messages are re-addressed to the current one).
 */
export async function restoreBaseline(iface: string, baseline: InterfaceConfiguration, options: RepairOptions = {}): Promise<ReplayResult> {
  const nl = client(options);
  try {
    const ifindex = await lookupIfindex(nl, iface);
    options.signal?.throwIfAborted();
    const retarget = (m: NetlinkMessage): NetlinkMessage => (ifindex === baseline.ifindex ? m : { ...m, payload: withIfindex(m.type, m.payload, ifindex) });
    return await replayConfiguration(nl, baseline.addresses.map(retarget), baseline.routes.map(retarget));
  } finally {
    nl.close();
  }
}

/**
 * Rewrites the interface index inside a dumped RTM_NEWADDR (ifaddrmsg.ifa_index, offset 4)
 * or RTM_NEWROUTE (its RTA_OIF attribute) payload.
 */
function withIfindex(type: number, payload: Buffer, ifindex: number): Buffer {
  const out = Buffer.from(payload);
  const RTM_NEWADDR = 20;
  if (type === RTM_NEWADDR) {
    out.writeUInt32LE(ifindex, 4);
    return out;
  }
  // struct rtmsg is 12 bytes; then attributes {u16 len, u16 type}, 4-byte aligned. RTA_OIF = 4.
  let offset = 12;
  while (offset + 4 <= out.length) {
    const len = out.readUInt16LE(offset);
    if (len < 4 || offset + len > out.length) break;
    if (out.readUInt16LE(offset + 2) === 4 && len >= 8) out.writeUInt32LE(ifindex, offset + 4);
    offset += (len + 3) & ~3;
  }
  return out;
}
