/**
 * The parts of prom-client the daemon uses, each from its own file.
 *
 * prom-client's index also loads its Pushgateway and cluster aggregator, and with them
 * node:http's client, https, tls, crypto and zlib, none of which the daemon uses: ~2.3 MiB of
 * resident memory (issue #15, benchmarks/memory.bench.js). The classes are the same objects
 * the index exports (the index requires these very files), typed by the package's own types.
 */
import type * as Prom from 'prom-client';

export const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = require('prom-client/lib/counter') as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

/**
 * prom-client's default metrics (process_*, nodejs_*), each from its own file, as its
 * collectDefaultMetrics() registers them, except the process_cpu_* counters: their file loads
 * @opentelemetry/api (51 modules, ~2 MiB resident) only to label exemplars, which the daemon
 * never enables. Those three counters are registered below with the same names, help and
 * values (process.cpuUsage() at each scrape).
 */
const DEFAULT_METRIC_FILES = [
  'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag',
  'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc',
];

export function collectDefaultMetrics(registry: Registry): void {
  const config = { register: registry, eventLoopMonitoringPrecision: 10 };
  for (const file of DEFAULT_METRIC_FILES) {
    const register = require(`prom-client/lib/metrics/${file}`) as (registry: Registry, config: object) => void;
    register(registry, config);
  }
  registerCpuMetrics(registry);
}

/** process_cpu_user_seconds_total, process_cpu_system_seconds_total and process_cpu_seconds_total. */
function registerCpuMetrics(registry: Registry): void {
  let last = process.cpuUsage();
  // Registered first, as prom-client does: a scrape reads metrics in registration order, and
  // this counter's collect() sets all three before the other two are read.
  new Counter({
    name: 'process_cpu_user_seconds_total', help: 'Total user CPU time spent in seconds.', registers: [registry],
    collect(this: Counter) {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const sys = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers: [registry] });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers: [registry] });
}
