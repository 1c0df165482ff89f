/**
 * Link bounce by rtnetlink: admin down, pause, admin up, then put back what the kernel
 * flushed. Admin-down removes the device's IPv4 routes without a word (and its IPv6
 * addresses and routes); nobody restores them unless a manager reconfigures, so we snapshot
 * them first and replay them afterwards, like `ip route save` / `ip route restore`.
 */
import { KernelError } from '../errors';
import { NETLINK_ROUTE, NetlinkMessage } from '../kernel/netlink';
import {
  AF_INET,
  AF_INET6,
  IFA_F_PERMANENT,
  RTM_NEWADDR,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTPROT_KERNEL,
  RT_TABLE_MAIN,
  decodeAddress,
  decodeRoute,
  encodeGetAddresses,
  encodeGetLinkByName,
  encodeGetRoutes,
  encodeReplay,
  encodeSetLinkAdmin,
  decodeLink,
} from '../kernel/rtnetlink';
import { NativeBinding } from '../native';
import { NetlinkClient } from '../kernel/netlink-client';
import type { InterruptionJournal } from './interruption';

/** Options of {@link bounceLink}. */
export interface BounceOptions {
  /** Namespace file path (resolved), or undefined for the current namespace. */
  netnsPath?: string;
  /** How long the link stays down, in ms (default 200). */
  downMs?: number;
  /** A snapshot from when the interface was healthy: replayed too. */
  knownGood?: InterfaceConfiguration;
  binding?: NativeBinding;
  /** Where the bounce writes down how to undo its middle, should the process die there. */
  journal?: InterruptionJournal;
}

/** What a bounce did. */
export interface BounceResult {
  ifindex: number;
  /** Routes and addresses the kernel flushed that were put back. */
  restoredRoutes: number;
  restoredAddresses: number;
  /** Replays the kernel refused (other than "already exists"). */
  failures: string[];
}

const EEXIST = 17;

/** An interface's configuration as dumped messages, ready to replay. */
export interface InterfaceConfiguration {
  ifindex: number;
  /** Configured (non-kernel) unicast routes of the main table through the device. */
  routes: NetlinkMessage[];
  /** Its permanent global addresses (IPv4 and IPv6). */
  addresses: NetlinkMessage[];
}

function mergeMessages(a: NetlinkMessage[], b: NetlinkMessage[] | undefined): NetlinkMessage[] {
  const seen = new Set(a.map((m) => m.payload.toString('hex')));
  return [...a, ...(b ?? []).filter((m) => !seen.has(m.payload.toString('hex')))];
}

/** Dumps what a bounce or a lost address would take away from `ifindex`. */
export async function snapshotConfiguration(client: NetlinkClient, ifindex: number): Promise<InterfaceConfiguration> {
  const routes: NetlinkMessage[] = [];
  for (const family of [AF_INET, AF_INET6]) {
    const dump = await client.dump(`RTM_GETROUTE dump (family ${family})`, (seq) => encodeGetRoutes(seq, family));
    for (const message of dump.messages) {
      if (message.type !== RTM_NEWROUTE) continue;
      const route = decodeRoute(message);
      if (route === null || route.ifindex !== ifindex || route.table !== RT_TABLE_MAIN) continue;
      if (route.type !== RTN_UNICAST || route.protocol === RTPROT_KERNEL) continue;
      routes.push({ ...message, payload: Buffer.from(message.payload) });
    }
  }
  const addresses: NetlinkMessage[] = [];
  const addressDump = await client.dump('RTM_GETADDR dump', encodeGetAddresses);
  for (const message of addressDump.messages) {
    if (message.type !== RTM_NEWADDR) continue;
    const address = decodeAddress(message);
    if (address === null || address.ifindex !== ifindex || address.scope !== 0) continue;
    if ((address.flags & IFA_F_PERMANENT) === 0) continue;
    addresses.push({ ...message, payload: Buffer.from(message.payload) });
  }
  return { ifindex, routes, addresses };
}

/** Reads an interface's configuration by name (see {@link snapshotConfiguration}). */
export async function readConfiguration(iface: string, options: { netnsPath?: string; binding?: NativeBinding } = {}): Promise<InterfaceConfiguration> {
  const client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: options.netnsPath, binding: options.binding });
  try {
    const ifindex = await lookupIfindex(client, iface);
    return await snapshotConfiguration(client, ifindex);
  } finally {
    client.close();
  }
}

export async function lookupIfindex(client: NetlinkClient, iface: string): Promise<number> {
  const reply = await client.request(`RTM_GETLINK ${iface}`, (seq) => encodeGetLinkByName(seq, iface));
  const link = reply.messages.map(decodeLink).find((l) => l.name === iface);
  if (link === undefined) throw new KernelError(`RTM_GETLINK ${iface}`, 19, 0);
  return link.ifindex;
}

/** What {@link replayConfiguration} put back. */
export interface ReplayResult {
  restoredRoutes: number;
  restoredAddresses: number;
  /** Replays the kernel refused (other than "already exists"). */
  failures: string[];
}

/**
 * Replays dumped addresses, then routes (RTM_NEWADDR / RTM_NEWROUTE with NLM_F_CREATE);
 * what exists already (EEXIST) is left alone, so only what is missing comes back.
 */
export async function replayConfiguration(client: NetlinkClient, addresses: NetlinkMessage[], routes: NetlinkMessage[]): Promise<ReplayResult> {
  // Addresses first: their prefix routes are what gateways of the routes resolve through.
  const failures: string[] = [];
  let restoredAddresses = 0;
  let restoredRoutes = 0;
  const addressResults = await client.batch('restore addresses', addresses.map((m) => (seq: number) => encodeReplay(seq, m)));
  addressResults.forEach((errno) => {
    if (errno === 0) restoredAddresses++;
    else if (errno !== EEXIST) failures.push(`address: errno ${errno}`);
  });
  // Routes whose gateway sits behind another route need that one first: retry a few rounds.
  let pending = routes;
  for (let round = 0; round < 3 && pending.length > 0; round++) {
    const results = await client.batch('restore routes', pending.map((m) => (seq: number) => encodeReplay(seq, m)));
    const next: NetlinkMessage[] = [];
    results.forEach((errno, i) => {
      if (errno === 0) restoredRoutes++;
      else if (errno !== EEXIST) next.push(pending[i]!);
    });
    pending = next;
  }
  for (const message of pending) {
    const route = decodeRoute(message);
    failures.push(`route ${route?.dst ?? 'default'}/${route?.dstLen} via ${route?.gateway ?? '-'}: refused`);
  }
  return { restoredRoutes, restoredAddresses, failures };
}

/**
 * Bounces `iface` and restores its flushed routes and permanent addresses (those present
 * now, plus `knownGood`'s).
 */
export async function bounceLink(iface: string, options: BounceOptions = {}): Promise<BounceResult> {
  const client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: options.netnsPath, binding: options.binding });
  try {
    const ifindex = await lookupIfindex(client, iface);

    const now = await snapshotConfiguration(client, ifindex);
    // What the kernel flushed before we were called (a route deleted, an address lost) is
    // not in `now`: the caller's last known-good snapshot brings it back.
    const routes = mergeMessages(now.routes, options.knownGood?.routes);
    const addresses = mergeMessages(now.addresses, options.knownGood?.addresses);

    // From here to the replay the interface is worse than before: write down how to undo
    // it, so that a daemon killed in the middle repairs it when it starts again. An abort
    // (a time limit, a reload) never stops a bounce half-way: the link always comes back up.
    const journal = options.journal;
    const entry = journal?.begin(iface, 'link-bounce', { kind: 'link-up-and-replay', configuration: { ifindex, routes, addresses } });
    try {
      try {
        await client.request(`RTM_NEWLINK ${iface} down`, (seq) => encodeSetLinkAdmin(seq, ifindex, false));
        await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 200));
      } finally {
        await client.request(`RTM_NEWLINK ${iface} up`, (seq) => encodeSetLinkAdmin(seq, ifindex, true));
      }
      const restored = await replayConfiguration(client, addresses, routes);
      return { ifindex, ...restored };
    } finally {
      if (entry !== undefined) journal?.end(entry);
    }
  } finally {
    client.close();
  }
}
