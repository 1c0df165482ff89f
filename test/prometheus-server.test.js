// @ts-check
// A real Prometheus (Debian's `prometheus` package) scraping a real daemon, both inside a lab
// namespace: the repository's alert rules (deploy/prometheus/netheal.rules.yml, unchanged) are
// loaded, a path beyond the first hop is cut, and NethealCannotFix is seen firing through
// Prometheus's HTTP API (/api/v1/alerts), after being seen inactive with the daemon scraped.
// Every query of the Grafana dashboard is then evaluated by that server.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { clientRouter } = require('./helpers/lab');
const { dashboardQueries } = require('./helpers/promql');

const ROOT = path.resolve(__dirname, '..');
const PROMETHEUS = '/usr/bin/prometheus';
const RULES = path.join(ROOT, 'deploy/prometheus/netheal.rules.yml');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/netheal.json');
const DAEMON = path.join(ROOT, 'lib/daemon.js');
const METRICS = '127.0.0.1:9469';
const WEB = '127.0.0.1:9090';

/**
 * GET from Prometheus's API inside the namespace (the test process stays in its own): a Node
 * child in the namespace fetches and prints the JSON.
 * @param {string} ns @param {string} apiPath
 * @returns {Promise<any>}
 */
function api(ns, apiPath) {
  const script = 'fetch(process.argv[1]).then((r) => r.text()).then((b) => process.stdout.write(b), (e) => { process.stderr.write(String(e)); process.exit(1); })';
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script, `http://${WEB}${apiPath}`], { encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`GET ${apiPath}: ${stderr || error.message}`));
      else {
        try { resolve(JSON.parse(stdout)); } catch { reject(new Error(`GET ${apiPath}: not JSON: ${stdout.slice(0, 200)}`)); }
      }
    });
  });
}

/**
 * Polls `probe` until it returns a value that is not undefined; the deadline only guards a hang.
 * @template T @param {string} what @param {() => Promise<T | undefined>} probe @param {number} timeoutMs
 * @returns {Promise<T>}
 */
async function until(what, probe, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) { last = error; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${/** @type {Error} */ (last).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** @param {any} alerts @param {string} name */
const alertNamed = (alerts, name) => alerts.data.alerts.find((/** @type {any} */ a) => a.labels.alertname === name && a.labels.device === 'up0');

test('a real Prometheus loads the rules, scrapes the daemon, and NethealCannotFix fires when a path beyond the first hop dies', async (t) => {
  if (!fs.existsSync(PROMETHEUS)) {
    t.fail(`${PROMETHEUS} is missing: install Debian's prometheus package (.ci/run does)`);
    return;
  }
  const { lab, client, router } = await clientRouter(t);
  await lab.addAddress(router, 'lo', '198.51.100.1/32');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-prometheus-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  // The daemon, inside the client namespace: it watches up0 and serves metrics on that namespace's loopback.
  const config = path.join(dir, 'netheal.json');
  fs.writeFileSync(config, JSON.stringify({
    interfaces: { up0: { probe: { targets: ['gateway', '198.51.100.1'], intervalMs: 50, timeoutMs: 50, multiplier: 3, recovery: 2, quorum: 2 } } },
    policy: { graceMs: 0 },
    managers: { networkScriptsDir: dir },
    metrics: { listen: METRICS },
  }));
  const daemon = lab.spawn(client, process.execPath, [DAEMON, '--config', config, '--log-format', 'json'],
    { env: { ...process.env, STATE_DIRECTORY: path.join(dir, 'state') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let daemonLog = '';
  daemon.stdout?.on('data', (d) => { daemonLog += d; });
  daemon.stderr?.on('data', (d) => { daemonLog += d; });

  // Prometheus beside it: scrape and evaluate every 250 ms, the repository's rule file as it is.
  const promConfig = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(promConfig, [
    'global:', '  scrape_interval: 250ms', '  scrape_timeout: 200ms', '  evaluation_interval: 250ms',
    'rule_files:', `  - ${JSON.stringify(RULES)}`,
    'scrape_configs:', '  - job_name: netheal', '    static_configs:', `      - targets: ['${METRICS}']`, '',
  ].join('\n'));
  const prometheus = lab.spawn(client, PROMETHEUS, [`--config.file=${promConfig}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=${WEB}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let promLog = '';
  prometheus.stdout?.on('data', (d) => { promLog += d; });
  prometheus.stderr?.on('data', (d) => { promLog += d; });
  t.teardown(() => {
    for (const child of [prometheus, daemon]) if (child.exitCode === null) child.kill('SIGKILL');
  });
  const fail = (/** @type {Error} */ error) => { t.log(`daemon log:\n${daemonLog.slice(-3000)}\nprometheus log:\n${promLog.slice(-3000)}`); throw error; };

  // Before the fault: the rules are loaded, the target is up, the counter exists at 0, nothing fires.
  const rules = await until('the rules to load', async () => {
    const r = await api(client, '/api/v1/rules');
    return r.data.groups.some((/** @type {any} */ g) => g.name === 'netheal') ? r : undefined;
  }, 60_000).catch(fail);
  const names = rules.data.groups.flatMap((/** @type {any} */ g) => g.rules.map((/** @type {any} */ r) => r.name));
  t.true(names.includes('NethealCannotFix') && names.includes('NethealInterfaceDown'), names.join(', '));
  await until('netheal_alerts_total{reason="cannot-fix"} at 0 and the target up', async () => {
    const up = await api(client, `/api/v1/query?query=${encodeURIComponent('up{job="netheal"} == 1')}`);
    const counter = await api(client, `/api/v1/query?query=${encodeURIComponent('netheal_alerts_total{device="up0",reason="cannot-fix"}')}`);
    return up.data.result.length === 1 && counter.data.result.length === 1 && counter.data.result[0].value[1] === '0' ? true : undefined;
  }, 60_000).catch(fail);
  // Healthy probes first, so the fault is a change the daemon sees.
  await until('up0 healthy in Prometheus', async () => {
    const r = await api(client, `/api/v1/query?query=${encodeURIComponent('netheal_interface_health{device="up0",state="healthy"} == 1')}`);
    return r.data.result.length === 1 ? true : undefined;
  }, 30_000).catch(fail);
  t.is(alertNamed(await api(client, '/api/v1/alerts'), 'NethealCannotFix'), undefined, 'not firing before the fault');

  // The fault: the far target goes away; the gateway still answers (beyond the first hop).
  const faultAt = Date.now();
  await lab.ip(router, 'addr', 'del', '198.51.100.1/32', 'dev', 'lo');
  const firing = await until('NethealCannotFix firing', async () => {
    const alert = alertNamed(await api(client, '/api/v1/alerts'), 'NethealCannotFix');
    return alert?.state === 'firing' ? alert : undefined;
  }, 60_000).catch(fail);
  t.log(`fault -> NethealCannotFix firing in Prometheus: ${Date.now() - faultAt} ms`);
  if (process.env.DEBUG_LOG) t.log(daemonLog);
  t.is(firing.labels.severity, 'warning');
  t.is(firing.labels.job, 'netheal');
  t.is(alertNamed(await api(client, '/api/v1/alerts'), 'NethealRecoveryFailing'), undefined, 'a fault nothing can fix is not a failing recovery');
  const fault = await api(client, `/api/v1/query?query=${encodeURIComponent('netheal_interface_fault{device="up0"} == 1')}`);
  t.deepEqual(fault.data.result.map((/** @type {any} */ r) => r.metric.class), ['beyond-first-hop']);

  // The dashboard's queries, evaluated by this server over the run: each is valid PromQL.
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  let withData = 0;
  for (const { title, expr } of dashboardQueries(dashboard)) {
    const query = expr.replaceAll('$__rate_interval', '5s').replaceAll('$job', 'netheal').replaceAll('$instance', '.*');
    const isLabelValues = /^label_values\(/.test(query);
    const promql = isLabelValues ? query.replace(/^label_values\((.*),\s*[A-Za-z_]+\)$/, '$1') : query;
    const result = await api(client, `/api/v1/query?query=${encodeURIComponent(promql)}`);
    t.is(result.status, 'success', `${title}: ${promql}: ${result.error ?? ''}`);
    if (result.data.result.length > 0) withData++;
  }
  t.log(`${withData} dashboard queries returned series after the run`);
  t.true(withData >= 15, `${withData} queries with data`);
});
