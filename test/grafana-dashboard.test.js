// @ts-check
// deploy/grafana/netheal.json: an importable dashboard whose every query asks only for metrics
// the daemon exports (a histogram's _bucket/_sum/_count included), with label matchers and
// groupings that name labels those metrics carry. (test/prometheus-server.test.js also runs each
// query through a real Prometheus scraping a real daemon.)
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { DaemonMetrics } = require('../lib/daemon/metrics');
const { dashboardQueries, metricSelectors } = require('./helpers/promql');

const DASHBOARD = path.resolve(__dirname, '../deploy/grafana/netheal.json');
/** Labels Prometheus adds to every scraped series, and its own series. */
const TARGET_LABELS = ['job', 'instance'];
const PROMETHEUS_SERIES = new Map([['up', []]]);

/** name -> label names, for every series the daemon can export. */
async function exportedSeries() {
  const metrics = new DaemonMetrics({});
  const series = new Map(PROMETHEUS_SERIES);
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const labels = /** @type {any} */ (metrics.registry.getSingleMetric(metric.name))?.labelNames ?? [];
    if (String(metric.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) series.set(metric.name + suffix, suffix === '_bucket' ? [...labels, 'le'] : labels);
    } else series.set(metric.name, labels);
  }
  return series;
}

test('the dashboard is an importable Grafana dashboard: unique panel ids, a Prometheus data source variable', (t) => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  t.is(dashboard.uid, 'netheal');
  t.true(Number.isInteger(dashboard.schemaVersion));
  const ids = dashboard.panels.map((/** @type {any} */ p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const panel of dashboard.panels) {
    t.truthy(panel.gridPos && panel.title, `panel ${panel.id} has a title and a place`);
    for (const target of panel.targets ?? []) t.is(target.datasource.uid, '${datasource}', `${panel.title}: queries the chosen data source`);
  }
  const variables = dashboard.templating.list.map((/** @type {any} */ v) => v.name);
  t.deepEqual(variables, ['datasource', 'job', 'instance']);
});

test('every query uses only metrics the daemon exports, and only labels they carry', async (t) => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  const series = await exportedSeries();
  const queries = dashboardQueries(dashboard);
  t.true(queries.length >= 20, `${queries.length} queries`);
  const used = new Set();
  for (const { title, expr } of queries) {
    const selectors = metricSelectors(expr);
    t.true(selectors.length > 0, `${title}: ${expr} names a metric`);
    for (const { name, labels } of selectors) {
      used.add(name);
      t.true(series.has(name), `${title}: ${name} is exported`);
      const known = [...(series.get(name) ?? []), ...TARGET_LABELS];
      for (const label of labels) t.true(known.includes(label), `${title}: ${name} has the label ${label}`);
    }
  }
  // The dashboard covers what an operator asks first: health, faults, probes, actions, the budget, reloads, memory.
  for (const name of ['netheal_interface_health', 'netheal_interface_fault', 'netheal_probe_loss_ratio', 'netheal_probe_rtt_seconds_bucket',
    'netheal_actions_total', 'netheal_alerts_total', 'netheal_config_last_reload_success', 'process_resident_memory_bytes']) {
    t.true(used.has(name), `a panel shows ${name}`);
  }
});

test('the PromQL reader finds names and labels, not functions, keywords, durations or label values', (t) => {
  t.deepEqual(metricSelectors('histogram_quantile(0.99, sum by (le, target) (rate(netheal_probe_rtt_seconds_bucket{job=~"$job", instance=~"a,b{c}"}[$__rate_interval])))'),
    [{ name: 'netheal_probe_rtt_seconds_bucket', labels: ['job', 'instance', 'le', 'target'] }]);
  t.deepEqual(metricSelectors('time() - netheal_config_last_reload_success_timestamp_seconds{job="x"} > bool 0 and on (instance) up'),
    [{ name: 'netheal_config_last_reload_success_timestamp_seconds', labels: ['job', 'instance'] }, { name: 'up', labels: ['instance'] }], 'grouping labels count for every metric of the expression');
  t.deepEqual(metricSelectors('label_values(netheal_build_info{job=~"$job"}, instance)'), [{ name: 'netheal_build_info', labels: ['job', 'instance'] }]);
});
