/**
 * Prometheus metrics (prom-client), served on an opt-in listen address (loopback by
 * default). Names follow the conventions: netheal_<what>_<unit>, counters end in _total; an
 * interface is labelled `device`, as node_exporter labels it. prom-client's process metrics
 * keep their stock names (`process_*`, `nodejs_*`), which the usual Node.js dashboards expect.
 */
import { isIP } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from './prom';
import type { LabelValues } from 'prom-client';
import { NethealError } from '../errors';
import { ADDON_NAPI_VERSION } from '../native';
import type { AlertReason } from '../policy/engine-events';

/** Label values as the daemon passes them: a network interface is `iface`, as in every netheal event. */
type ByIface<T extends string> = Partial<Record<T | 'iface', string | number>>;

/**
 * The exposition label of a network interface is `device`, node_exporter's name for it
 * (`node_network_up{device}`), so a netheal series joins the host's node_* series without
 * relabelling. Inside netheal the interface is `iface`; this is the one place that renames it.
 */
function byDevice<T extends string>(labels: ByIface<T>): LabelValues<T | 'device'> {
  const { iface, ...rest } = labels as Record<string, string | number | undefined>;
  return (iface === undefined ? rest : { device: iface, ...rest }) as LabelValues<T | 'device'>;
}

interface DeviceMetricConfig<T extends string> {
  name: string;
  help: string;
  /** Labels besides `device`. */
  labelNames?: T[];
  registers: Registry[];
  buckets?: number[];
}

/** A gauge labelled by `device` (set with `{ iface }`); `onNewDevice` hears of each device once. */
export class DeviceGauge<T extends string = never> {
  readonly metric: Gauge<T | 'device'>;
  private readonly seen = new Set<string>();
  constructor(config: DeviceMetricConfig<T>, private readonly onNewDevice?: (device: string) => void) {
    const { name, help, labelNames, registers } = config;
    this.metric = new Gauge<T | 'device'>({ name, help, registers, labelNames: ['device', ...(labelNames ?? [])] });
  }
  set(labels: ByIface<T>, value: number): void {
    const device = labels.iface;
    if (device !== undefined && this.onNewDevice !== undefined && !this.seen.has(String(device))) {
      this.seen.add(String(device));
      this.onNewDevice(String(device));
    }
    this.metric.set(byDevice(labels), value);
  }
}

/** A counter labelled by `device` (incremented with `{ iface }`). */
export class DeviceCounter<T extends string = never> {
  readonly metric: Counter<T | 'device'>;
  constructor(config: DeviceMetricConfig<T>) {
    this.metric = new Counter<T | 'device'>({ ...config, labelNames: ['device', ...(config.labelNames ?? [])] });
  }
  inc(labels: ByIface<T>, value?: number): void {
    this.metric.inc(byDevice(labels), value);
  }
}

/** A histogram labelled by `device` (observed with `{ iface }`). */
export class DeviceHistogram<T extends string = never> {
  readonly metric: Histogram<T | 'device'>;
  constructor(config: DeviceMetricConfig<T>) {
    this.metric = new Histogram<T | 'device'>({ ...config, labelNames: ['device', ...(config.labelNames ?? [])] });
  }
  observe(labels: ByIface<T>, value: number): void {
    this.metric.observe(byDevice(labels), value);
  }
}

/** What `netheal_build_info` says. */
export interface BuildInfo {
  version: string;
  node: string;
  /** The N-API version the addon is built against (binding.gyp NAPI_VERSION). */
  addonNapi: number;
}

/** This process's build: the package version, the Node version, the addon's N-API version. */
export function buildInfo(): BuildInfo {
  return { version: (require('../../package.json') as { version: string }).version, node: process.versions.node, addonNapi: ADDON_NAPI_VERSION };
}

/** Every alert reason (a Record, so that a new AlertReason fails to compile until listed here). */
const ALERT_REASONS: Record<AlertReason, true> = {
  'grace-period': true, suppressed: true, 'budget-exhausted': true, 'ladder-exhausted': true, 'admin-down': true, 'intent-pending': true,
  held: true, 'cannot-fix': true, 'no-ladder': true, 'unknown-action': true, 'action-error': true,
};

/** prom-client's default gauges whose names end in _total (see the constructor). */
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** The metrics one daemon exports. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly linkCarrier = new DeviceGauge({ name: 'netheal_link_carrier', help: 'Carrier (IFF_LOWER_UP) of a watched interface: 1 up, 0 down', registers: [this.registry] });
  readonly linkAdminUp = new DeviceGauge({ name: 'netheal_link_admin_up', help: 'Administrative state (IFF_UP) of a watched interface', registers: [this.registry] });
  readonly carrierChanges = new DeviceCounter({ name: 'netheal_link_carrier_changes_total', help: 'Carrier changes seen on a watched interface', registers: [this.registry] });
  readonly health = new DeviceGauge({ name: 'netheal_interface_health', help: 'Health state of an interface: 1 for the current state, 0 for the others', labelNames: ['state'], registers: [this.registry] },
    (device) => this.initialiseDevice(device));
  readonly probeRtt = new Histogram({
    name: 'netheal_probe_rtt_seconds', help: 'ICMP echo round-trip time', labelNames: ['target'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [this.registry],
  });
  readonly probes = new Counter({ name: 'netheal_probes_total', help: 'ICMP probes by outcome', labelNames: ['target', 'status'], registers: [this.registry] });
  readonly probeLoss = new Gauge({ name: 'netheal_probe_loss_ratio', help: 'Fraction of recent probes of a target that got no reply', labelNames: ['target'], registers: [this.registry] });
  /** Called at scrape time to refresh gauges computed from live objects (probe loss). */
  private readonly collectors: Array<() => void> = [];
  readonly detection = new DeviceHistogram({
    name: 'netheal_detection_latency_seconds',
    help: 'From the first bad evidence of an episode (kernel event or first missed probe) to the interface being judged down',
    labelNames: ['evidence'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
  });
  readonly recovery = new DeviceHistogram({
    name: 'netheal_recovery_seconds', help: 'From an interface going down to healthy again',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900], registers: [this.registry],
  });
  readonly fault = new DeviceGauge({ name: 'netheal_interface_fault', help: 'Where the current fault of an interface is: 1 for its class, 0 for the others (all 0 when none)', labelNames: ['class'], registers: [this.registry] });
  readonly recoveries = new DeviceCounter({ name: 'netheal_recoveries_total', help: 'Faults that cleared, by class and by whether a step is credited (action) or not (without-action)', labelNames: ['fault', 'by'], registers: [this.registry] });
  readonly actions = new DeviceCounter({ name: 'netheal_actions_total', help: 'Ladder actions by kind and result', labelNames: ['action', 'result'], registers: [this.registry] });
  readonly alerts = new DeviceCounter({ name: 'netheal_alerts_total', help: 'Alerts (refusals to act and the like) by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly socketsDestroyed = new Counter({ name: 'netheal_sockets_destroyed_total', help: 'Sockets destroyed (SOCK_DESTROY) by netheal', labelNames: ['reason'], registers: [this.registry] });
  readonly resyncs = new Counter({ name: 'netheal_resyncs_total', help: 'Link table resyncs after lost netlink notifications', registers: [this.registry] });
  readonly events = new Counter({ name: 'netheal_kernel_events_total', help: 'rtnetlink events by type', labelNames: ['type'], registers: [this.registry] });

  readonly buildInfo = new Gauge({
    name: 'netheal_build_info', help: 'Always 1: the netheal version, the Node.js version and the N-API version of the addon',
    labelNames: ['version', 'node', 'addon_napi'], registers: [this.registry],
  });
  readonly reloadSuccess = new Gauge({
    name: 'netheal_config_last_reload_success', help: 'Whether the last configuration (re)load was applied (1) or refused (0)', registers: [this.registry],
  });
  readonly reloadSuccessTime = new Gauge({
    name: 'netheal_config_last_reload_success_timestamp_seconds', help: 'When the configuration was last loaded or reloaded successfully (Unix time)', registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean; build?: BuildInfo } = {}) {
    // Stock names, no prefix: process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...
    if (options.processMetrics !== false) {
      collectDefaultMetrics(this.registry);
      // prom-client names three gauges *_total, which `promtool check metrics` rejects (a
      // _total suffix is for counters); their per-type siblings (nodejs_active_handles{type},
      // ...) carry the same numbers, so these three are dropped.
      for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    }
    const build = options.build ?? buildInfo();
    this.buildInfo.set({ version: build.version, node: build.node, addon_napi: String(build.addonNapi) }, 1);
    // The configuration the daemon starts with was loaded successfully (or it would not start).
    this.configLoaded(true);
  }

  /**
   * A watched interface's alert counters start at 0 for every reason, so that the first alert
   * is an increase Prometheus can see (`increase()` cannot see a series that is born at 1).
   */
  private initialiseDevice(device: string): void {
    for (const reason of Object.keys(ALERT_REASONS)) this.alerts.inc({ iface: device, reason }, 0);
  }

  /** Records a configuration load or reload: applied (`ok`) or refused. */
  configLoaded(ok: boolean, at: Date = new Date()): void {
    this.reloadSuccess.set(ok ? 1 : 0);
    if (ok) this.reloadSuccessTime.set(at.getTime() / 1000);
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
