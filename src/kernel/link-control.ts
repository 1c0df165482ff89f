/** Setting links administratively up or down by rtnetlink (`ip link set IF up|down`). */
import { NethealError } from '../errors';
import { NETLINK_ROUTE } from './netlink';
import { decodeLink, encodeGetLinkByName, encodeSetLinkAdmin, LinkMessage } from './rtnetlink';
import { NativeBinding, monotonicNs } from '../native';
import { resolveNetns } from '../netns';
import { NetlinkClient } from './netlink-client';

/** Options of {@link LinkControl}. */
export interface LinkControlOptions {
  /** Namespace name under /run/netns or a path such as /proc/PID/ns/net. */
  netns?: string;
  binding?: NativeBinding;
}

/** Link changes in one namespace over one netlink socket. Call close() when done. */
export class LinkControl {
  private readonly client: NetlinkClient;

  constructor(options: LinkControlOptions = {}) {
    const netns = resolveNetns(options.netns);
    this.client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns, binding: options.binding });
  }

  /** Looks a link up by name (RTM_GETLINK with IFLA_IFNAME). */
  async getLink(name: string): Promise<LinkMessage> {
    try {
      const reply = await this.client.request(`RTM_GETLINK ${name}`, (seq) => encodeGetLinkByName(seq, name));
      const link = reply.messages.map(decodeLink).find((l) => l.name === name);
      if (link !== undefined) return link;
    } catch (error) {
      if ((error as { errno?: number }).errno !== 19) throw error;
    }
    throw new NethealError('NETHEAL_ERR_NO_DEVICE', `no interface named ${name}`);
  }

  /**
   * Sets the link admin up or down. Returns CLOCK_MONOTONIC (ns) taken just before the
   * request was sent, for latency measurements.
   */
  async setAdmin(link: string | number, up: boolean): Promise<bigint> {
    const ifindex = typeof link === 'number' ? link : (await this.getLink(link)).ifindex;
    let sentAt = 0n;
    await this.client.request(`RTM_NEWLINK ${link} ${up ? 'up' : 'down'}`, (seq) => {
      const message = encodeSetLinkAdmin(seq, ifindex, up);
      sentAt = monotonicNs();
      return message;
    });
    return sentAt;
  }

  close(): void {
    this.client.close();
  }
}
