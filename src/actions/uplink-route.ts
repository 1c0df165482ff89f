/**
 * The default route of the uplink in use, as netheal's own route: one route of the main
 * table at a metric below every other default route (`failover.metric`, default 1), marked
 * `proto 222` (free in iproute2's and FRR's tables), pointing through the chosen uplink's
 * gateway. A switch
 * is one RTM_NEWROUTE with NLM_F_REPLACE: the kernel swaps the route of that destination and
 * metric atomically, so there is never a moment without a default route. The managers' own
 * default routes (higher metrics) are never touched: they stay underneath, and take over
 * again when netheal removes its route (clean stop). This is the least disturbance of the
 * host's state: one route added, nothing a manager owns changed, nothing for it to fight.
 */
import { NETLINK_ROUTE } from '../kernel/netlink';
import { NetlinkClient } from '../kernel/netlink-client';
import { encodeDefaultRoute } from '../kernel/rtnetlink';
import { NativeBinding } from '../native';
import { lookupIfindex } from './link-bounce';

/** rtm_protocol of netheal's routes (`ip route` prints the number; RTPROT values >= 20 are free for daemons). */
export const RTPROT_NETHEAL = 222;

/** Where the route goes. */
export interface UplinkRouteTarget {
  iface: string;
  gateway: string;
}

/** Sets and removes netheal's default route (IPv4). */
export class UplinkRoute {
  private readonly client: NetlinkClient;
  private readonly metric: number;
  private installed: { gateway: string; ifindex: number } | null = null;

  constructor(options: { netnsPath?: string; binding?: NativeBinding; metric: number }) {
    this.client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: options.netnsPath, binding: options.binding });
    this.metric = options.metric;
  }

  /** Points the route through `target` (creates it, or replaces it atomically). */
  async set(target: UplinkRouteTarget): Promise<void> {
    const ifindex = await lookupIfindex(this.client, target.iface);
    await this.client.request(`default via ${target.gateway} dev ${target.iface} metric ${this.metric}`,
      (seq) => encodeDefaultRoute(seq, { family: 4, gateway: target.gateway, ifindex, metric: this.metric, protocol: RTPROT_NETHEAL }, 'replace'));
    this.installed = { gateway: target.gateway, ifindex };
  }

  /** Removes netheal's route (the managers' routes take over again). Errors are ignored: it may be gone. */
  async remove(): Promise<void> {
    const installed = this.installed;
    this.installed = null;
    if (installed === null) return;
    try {
      await this.client.request(`delete default metric ${this.metric}`,
        (seq) => encodeDefaultRoute(seq, { family: 4, gateway: installed.gateway, ifindex: installed.ifindex, metric: this.metric, protocol: RTPROT_NETHEAL }, 'delete'));
    } catch {
      // Already gone (removed by hand, or with its device).
    }
  }

  close(): void {
    this.client.close();
  }
}
