/** `netheal links`: the links of a namespace with their addresses (the JSON contract in docs/cli.md). */
import { Command } from 'commander';
import { NETLINK_ROUTE } from '../kernel/netlink';
import { Link, dumpNetworkState } from '../monitor/link-monitor';
import { NetlinkClient } from '../kernel/netlink-client';
import { fromSystemError } from '../errors';
import { resolveNetns } from '../netns';
import { CommonOptions, action, out, printTable, withCommonOptions } from './common';

/** Reads every link with its addresses, sorted by ifindex. */
export async function readLinks(netns?: string): Promise<Link[]> {
  const path = resolveNetns(netns, '--netns');
  let client: NetlinkClient;
  try {
    client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: path });
  } catch (error) {
    throw fromSystemError(error, 'open rtnetlink socket', netns);
  }
  try {
    const state = await dumpNetworkState(client);
    return [...state.links.values()].map((r) => r.link).sort((a, b) => a.ifindex - b.ifindex);
  } finally {
    client.close();
  }
}

export function registerLinks(program: Command): void {
  withCommonOptions(program.command('links').description('list network interfaces with state and addresses'))
    .action(action(async (options: CommonOptions) => {
      const links = await readLinks(options.netns);
      if (options.json) {
        out(JSON.stringify(links));
        return;
      }
      printTable(['IFINDEX', 'NAME', 'KIND', 'ADMIN', 'CARRIER', 'OPERSTATE', 'MTU', 'MAC', 'MASTER', 'ADDRESSES'],
        links.map((l) => [l.ifindex, l.name, l.kind, l.adminUp ? 'up' : 'down', l.carrier ? 'yes' : 'no', l.operstate, l.mtu, l.mac, l.master,
          l.addresses.map((a) => `${a.address}/${a.prefixlen}`).join(' ') || '-']));
    }));
}
