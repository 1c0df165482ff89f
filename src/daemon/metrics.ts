/**
 * Prometheus metrics (prom-client), served on an opt-in listen address (loopback by
 * default). Names follow the conventions: netheal_<what>_<unit>, counters end in _total.
 */
import { Server } from 'node:http';
import { isIP } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from './prom';
import { NethealError } from '../errors';

/** The metrics one daemon exports. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly linkCarrier = new Gauge({ name: 'netheal_link_carrier', help: 'Carrier (IFF_LOWER_UP) of a watched interface: 1 up, 0 down', labelNames: ['iface'], registers: [this.registry] });
  readonly linkAdminUp = new Gauge({ name: 'netheal_link_admin_up', help: 'Administrative state (IFF_UP) of a watched interface', labelNames: ['iface'], registers: [this.registry] });
  readonly carrierChanges = new Counter({ name: 'netheal_link_carrier_changes_total', help: 'Carrier changes seen on a watched interface', labelNames: ['iface'], registers: [this.registry] });
  readonly health = new Gauge({ name: 'netheal_interface_health', help: 'Health state of an interface: 1 for the current state, 0 for the others', labelNames: ['iface', 'state'], registers: [this.registry] });
  readonly probeRtt = new Histogram({
    name: 'netheal_probe_rtt_seconds', help: 'ICMP echo round-trip time', labelNames: ['target'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry],
  });
  readonly probes = new Counter({ name: 'netheal_probes_total', help: 'ICMP probes by outcome', labelNames: ['target', 'status'], registers: [this.registry] });
  readonly probeLoss = new Gauge({ name: 'netheal_probe_loss_ratio', help: 'Fraction of recent probes of a target that got no reply', labelNames: ['target'], registers: [this.registry] });
  /** Called at scrape time to refresh gauges computed from live objects (probe loss). */
  private readonly collectors: Array<() => void> = [];
  readonly detection = new Histogram({
    name: 'netheal_detection_latency_seconds',
    help: 'From the first bad evidence of an episode (kernel event or first missed probe) to the interface being judged down',
    labelNames: ['iface', 'evidence'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  readonly recovery = new Histogram({
    name: 'netheal_recovery_seconds', help: 'From an interface going down to healthy again', labelNames: ['iface'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900], registers: [this.registry],
  });
  readonly fault = new Gauge({ name: 'netheal_interface_fault', help: 'Where the current fault of an interface is: 1 for its class, 0 for the others (all 0 when none)', labelNames: ['iface', 'class'], registers: [this.registry] });
  readonly recoveries = new Counter({ name: 'netheal_recoveries_total', help: 'Faults that cleared, by class and by whether a step is credited (action) or not (without-action)', labelNames: ['iface', 'fault', 'by'], registers: [this.registry] });
  readonly actions = new Counter({ name: 'netheal_actions_total', help: 'Ladder actions by kind and result', labelNames: ['iface', 'action', 'result'], registers: [this.registry] });
  readonly alerts = new Counter({ name: 'netheal_alerts_total', help: 'Alerts (refusals to act and the like) by reason', labelNames: ['iface', 'reason'], registers: [this.registry] });
  readonly socketsDestroyed = new Counter({ name: 'netheal_sockets_destroyed_total', help: 'Sockets destroyed (SOCK_DESTROY) by netheal', labelNames: ['reason'], registers: [this.registry] });
  readonly resyncs = new Counter({ name: 'netheal_resyncs_total', help: 'Link table resyncs after lost netlink notifications', registers: [this.registry] });
  readonly events = new Counter({ name: 'netheal_kernel_events_total', help: 'rtnetlink events by type', labelNames: ['type'], registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'netheal_' });
  }

  /** Registers a function run before each scrape (to refresh computed gauges). */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The exposition text. */
  text(): Promise<string> {
    for (const fn of this.collectors) fn();
    return this.registry.metrics();
  }
}

/** Parses "HOST:PORT" / "[V6]:PORT"; throws NETHEAL_ERR_CONFIG naming `field`. */
export function parseListen(listen: string, field = 'metrics.listen'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || port < 1 || port > 65535 || (isIP(host) === 0 && host !== 'localhost')) {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${field}: expected ADDRESS:PORT such as 127.0.0.1:9469 or [::1]:9469, got ${JSON.stringify(listen)}`);
  }
  return { host, port };
}

/**
 * The metrics endpoint's server: an `http.Server` whose `close()` also drops the connections
 * still open (an idle keep-alive, a scraper that hangs mid-request), so closing it never
 * waits on a client.
 */
export class MetricsServer extends Server {
  override close(callback?: (error?: Error) => void): this {
    super.close(callback);
    this.closeAllConnections();
    return this;
  }
}

/** Serves GET /metrics; resolves once listening. */
export async function serveMetrics(metrics: DaemonMetrics, listen: string): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server = new MetricsServer({ headersTimeout: 5000, requestTimeout: 10_000 }, (request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.text().then(
      (body) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new NethealError('NETHEAL_ERR_CONFIG', `metrics.listen: cannot listen on ${listen}: ${error.code ?? error.message}`)));
    server.listen(port, host, () => resolve());
  });
  return server;
}
