/** `netheal watch`: link, address, default-route and gateway neighbour events as they happen (JSON lines). */
import { Command } from 'commander';
import { LinkMonitor, MonitorEvent } from '../monitor/link-monitor';
import { CommonOptions, action, intOption, out, withCommonOptions } from './common';

interface WatchOptions extends CommonOptions {
  carrierSync: boolean;
  carrierSyncInterval?: number;
}

/** One readable line per event. */
export function describeEvent(event: MonitorEvent): string {
  const at = (Number(BigInt(event.monotonicNs) / 1000n) / 1e6).toFixed(6);
  switch (event.type) {
    case 'link': {
      const l = event.link;
      return `${at} link ${l.name} (${l.ifindex}) ${l.adminUp ? 'up' : 'down'} carrier=${l.carrier ? 'yes' : 'no'} ${l.operstate} changed=${event.changed.join(',')} via ${event.via}`;
    }
    case 'link-removed':
      return `${at} link-removed ${event.name} (${event.ifindex}) via ${event.via}`;
    case 'address':
      return `${at} address ${event.action} ${event.address}/${event.prefixlen} ifindex ${event.ifindex} via ${event.via}`;
    case 'default-route':
      return `${at} default-route ${event.action} IPv${event.family} via ${event.gateway ?? '-'} ifindex ${event.ifindex ?? '-'} (${event.via})`;
    case 'neighbour':
      return `${at} neighbour ${event.address} ifindex ${event.ifindex} ${event.action === 'removed' ? 'removed' : event.state} (${event.via})`;
    case 'resync':
      return `${at} resync: ${event.reason}`;
  }
}

export function registerWatch(program: Command): void {
  withCommonOptions(program.command('watch').description('print link, address, default-route and gateway neighbour events as they happen'))
    .option('--no-carrier-sync', 'do not poll carrier of unstacked devices (NICs, taps, bridges)')
    .option('--carrier-sync-interval <ms>', 'carrier-sync interval in milliseconds', intOption('--carrier-sync-interval', 5, 60000))
    .action(action(async (options: WatchOptions) => {
      const monitor = new LinkMonitor({
        netns: options.netns,
        carrierSync: options.carrierSync ? { intervalMs: options.carrierSyncInterval ?? 100 } : false,
      });
      monitor.on('event', (event) => out(options.json ? JSON.stringify(event) : describeEvent(event)));
      monitor.on('error', (error) => process.stderr.write(`netheal: ${error.message}\n`));
      await monitor.start();
      // On stderr, so stdout stays events only: from here on every change is printed.
      process.stderr.write(`netheal: watching links, addresses and default routes${options.netns === undefined ? '' : ` in ${options.netns}`} (Ctrl-C to stop)\n`);
      // Run until a signal; close the monitor so nothing is left behind.
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          monitor.close();
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        process.stdout.once('error', stop); // reader went away (EPIPE)
      });
    }));
}
