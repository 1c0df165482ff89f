// @ts-check
// Observability: the status socket during a lab run (shows the injected fault and the
// action; refuses other users), and the Prometheus scrape after a carrier loss.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, spawnSync, execFile } = require('node:child_process');
const parsePrometheusTextFormat = require('parse-prometheus-text-format');
const { Lab } = require('../lib/lab/lab');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');
const { clientRouter } = require('./helpers/lab');
const { NOBODY, otherUserCli } = require('./helpers/unprivileged');
const { statusVerdict } = require('../lib/cli/status');

const CLI = require.resolve('../lib/cli.js');
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const quiet = () => createLogger({ format: 'json', minLevel: 'error', write: () => {} });

function cli(args, prefix = []) {
  return new Promise((resolve) => {
    const [command, argv] = prefix.length ? ['setpriv', [...prefix, process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
    execFile(command, argv, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

function scrape(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, type: response.headers['content-type'], body }));
    }).on('error', reject);
  });
}

const sample = (families, name, labels = {}) => {
  const family = families.find((f) => f.name === name);
  if (!family) return undefined;
  return family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
};

test('metrics: a carrier loss moves the counters and the histograms get samples', async (t) => {
  const { lab, client, router } = await clientRouter(t);
  // Port 0 is not allowed by the schema: pick a free loopback port ourselves.
  const port = await new Promise((resolve) => { const s = http.createServer().listen(0, '127.0.0.1', () => { const p = /** @type {import('node:net').AddressInfo} */ (s.address()).port; s.close(() => resolve(p)); }); });
  const daemon = new Daemon({
    config: validateConfig({
      netns: Lab.path(client),
      interfaces: { up0: { ladder: ['kill-sockets'], verifyTimeoutMs: 200, probe: { targets: ['gateway'], intervalMs: 20, timeoutMs: 20, multiplier: 3, recovery: 2 } } },
      policy: { graceMs: 0 },
      metrics: { listen: `127.0.0.1:${port}` },
    }),
    logger: quiet(),
  });
  t.teardown(() => daemon.stop());
  const health = [];
  daemon.on('health', (e) => health.push(e));
  await daemon.start();
  // Every gauge has a sample from the start, before anything changed: alerts can use them.
  const first = parsePrometheusTextFormat((await scrape(port)).body);
  t.is(sample(first, 'netheal_link_carrier', { device: 'up0' })?.value, '1');
  t.is(sample(first, 'netheal_link_admin_up', { device: 'up0' })?.value, '1');
  t.is(sample(first, 'netheal_interface_health', { device: 'up0', state: 'healthy' })?.value, '1');
  t.is(sample(first, 'netheal_interface_fault', { device: 'up0', class: 'link' })?.value, '0');
  // Alert counters exist at 0 from the start, so the first alert is an increase() can see.
  for (const reason of ['cannot-fix', 'budget-exhausted', 'ladder-exhausted']) t.is(sample(first, 'netheal_alerts_total', { device: 'up0', reason })?.value, '0', reason);
  /** The probe counter's value for one status. @param {string} status */
  const probes = async (status) => {
    const metric = /** @type {any} */ (daemon.metrics.registry.getSingleMetric('netheal_probes_total'));
    const { values } = await metric.get();
    return values.find((/** @type {any} */ v) => v.labels.target === 'up0:gateway' && v.labels.status === status)?.value ?? 0;
  };
  /** Waits for `predicate`, bounded only against a hang. @param {string} what @param {() => boolean | Promise<boolean>} predicate */
  const until = async (what, predicate) => {
    for (const end = Date.now() + 20_000; !(await predicate());) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  // Replies before the fault, lost probes and a detection during it, health after it: each
  // waited for, not slept on.
  await until('ten probe replies', async () => (await probes('reply')) >= 10);
  // Only the interface's transitions after each step count (start-up has its own, before
  // the fault; the probe group named after the interface has its own too).
  const lossMark = health.length;
  await lab.carrierLoss({ ns: router, name: 'down0' });
  await until('the carrier loss detected and a probe lost', async () => health.slice(lossMark).some((e) => e.subject === 'interface' && e.iface === 'up0' && e.from === 'healthy') && (await probes('timeout')) >= 1);
  const restoreMark = health.length;
  await lab.carrierRestore({ ns: router, name: 'down0' });
  // Healthy again, and the scrape says so. After the carrier returns the interface can dip
  // once more (seen: suspect -> down on probe-group-down) while the probes to the gateway
  // recover, so the first 'healthy' event is not the end of it.
  /** @type {{status: number | undefined, type: string | undefined, body: string}} */
  let response = { status: undefined, type: undefined, body: '' };
  await until('up0 healthy again, in the scrape too', async () => {
    if (!health.slice(restoreMark).some((e) => e.subject === 'interface' && e.iface === 'up0' && e.to === 'healthy')) return false;
    response = /** @type {typeof response} */ (await scrape(port));
    return /^netheal_interface_health\{device="up0",state="healthy"\} 1$/m.test(response.body);
  });
  t.is(response.status, 200);
  t.regex(response.type, /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(response.body);
  t.is(sample(families, 'netheal_link_carrier', { device: 'up0' }).value, '1', 'carrier back');
  t.true(Number(sample(families, 'netheal_link_carrier_changes_total', { device: 'up0' }).value) >= 2, 'down and up counted');
  t.is(sample(families, 'netheal_interface_health', { device: 'up0', state: 'healthy' }).value, '1');
  // parse-prometheus-text-format folds labelled histograms into one unlabelled entry, so the
  // histograms are read from the exposition lines and from prom-client's own JSON view.
  t.true(families.some((f) => f.name === 'netheal_detection_latency_seconds' && f.type === 'HISTOGRAM'));
  t.regex(response.body, /^netheal_detection_latency_seconds_count\{device="up0",evidence="carrier"\} 1$/m, 'one detection sample, by carrier');
  const json = await daemon.metrics.registry.getMetricsAsJSON();
  const detectionSum = json.find((m) => m.name === 'netheal_detection_latency_seconds').values
    .find((v) => /** @type {{metricName?: string}} */ (v).metricName === 'netheal_detection_latency_seconds_sum' && v.labels.device === 'up0');
  // In-process, from the netlink receipt to the decision: sub-millisecond when the machine
  // keeps up (the benchmarks measure it). Here only that it is a sane duration on one clock.
  t.log(`carrier detection took ${(detectionSum.value * 1000).toFixed(3)} ms`);
  t.true(detectionSum.value >= 0 && detectionSum.value < 1, `carrier detection took ${detectionSum.value} s`);
  t.regex(response.body, /^netheal_recovery_seconds_count\{device="up0"\} [1-9]/m);
  t.regex(response.body, /^netheal_probe_rtt_seconds_count\{target="up0:gateway"\} \d{2,}/m);
  // A 400 ms carrier loss is a blip: nothing runs (kill-sockets cannot fix a link fault), and
  // the recovery is counted as one that came without action.
  t.is(sample(families, 'netheal_actions_total', { device: 'up0', action: 'kill-sockets', result: 'ok' }), undefined);
  t.true(Number(sample(families, 'netheal_recoveries_total', { device: 'up0', by: 'without-action' })?.value ?? 0) >= 1);
  t.is(sample(families, 'netheal_interface_fault', { device: 'up0', class: 'link' }).value, '0', 'no fault now');
  t.true(Number(sample(families, 'netheal_probes_total', { target: 'up0:gateway', status: 'reply' }).value) > 5);
  t.true(Number(sample(families, 'netheal_probes_total', { target: 'up0:gateway', status: 'timeout' })?.value ?? 0) >= 1, 'probes lost while the carrier was gone');
  t.truthy(sample(families, 'netheal_resyncs_total'));
  // The build, the configuration's load, and prom-client's process metrics under their stock
  // names (the usual Node.js dashboards query process_* and nodejs_*).
  const build = sample(families, 'netheal_build_info');
  t.is(build?.value, '1');
  t.deepEqual(build?.labels, { version: require('../package.json').version, node: process.versions.node, addon_napi: '8' });
  t.is(sample(families, 'netheal_config_last_reload_success')?.value, '1');
  t.true(Math.abs(Number(sample(families, 'netheal_config_last_reload_success_timestamp_seconds')?.value) - Date.now() / 1000) < 120);
  t.truthy(sample(families, 'process_cpu_seconds_total'));
  t.truthy(sample(families, 'nodejs_heap_size_used_bytes'));
  t.false(families.some((f) => f.name.startsWith('netheal_process_') || f.name.startsWith('netheal_nodejs_')), 'no prefixed process metrics');
  t.false(/\biface=/.test(response.body), 'interfaces are labelled device, as node_exporter labels them');
  if (hasPromtool) {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: response.body, encoding: 'utf8' });
    t.is(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  } else {
    t.log('promtool not installed: `promtool check metrics` skipped');
  }
  const notFound = await new Promise((resolve) => http.get({ host: '127.0.0.1', port, path: '/' }, (r) => { r.resume(); resolve(r.statusCode); }));
  t.is(notFound, 404);
});

test('status: during a lab run it shows the injected fault and the action; other users are refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-status-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pointer = path.join(dir, 'socket-path');
  const lab = spawn(process.execPath, [require.resolve('../lib/daemon.js'), '--lab'], {
    env: { ...process.env, NETHEAL_LAB_STATUS_FILE: pointer }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => lab.once('exit', resolve));
  t.teardown(() => lab.kill('SIGINT'));
  let output = '';
  lab.stdout.setEncoding('utf8');
  const sawFault = new Promise((resolve) => lab.stdout.on('data', (chunk) => {
    output += chunk;
    if (/step \d kill-sockets: ok/.test(output)) resolve();
  }));
  await sawFault;
  const socketPath = fs.readFileSync(pointer, 'utf8');
  const { code, stdout } = await cli(['status', '--json', '--socket', socketPath]);
  const status = JSON.parse(stdout);
  t.is(code, statusVerdict(status).code, 'the exit code follows the health it printed');
  const uplink = status.interfaces.uplink0;
  t.truthy(uplink);
  t.true(uplink.lastActions.some((a) => a.kind === 'kill-sockets'), 'the action is listed');
  t.true(status.recentEvents.some((e) => /carrier down/.test(e.text)), 'the injected carrier loss is listed');
  t.truthy(status.targets['uplink0:gateway'].rtt, 'RTT per target');
  t.is(typeof uplink.budget.remaining, 'number');
  t.is(typeof uplink.damping.penalty, 'number');
  const human = await cli(['status', '--socket', socketPath]);
  t.regex(human.stdout, /INTERFACE\s+STATE/);
  t.regex(human.stdout, /uplink0:gateway/);
  t.is(fs.statSync(socketPath).mode & 0o777, 0o600, 'root-only socket');
  // Another user (a world-readable copy of the CLI: the checkout may be in a 0700 directory).
  const copy = otherUserCli(t);
  const other = await new Promise((resolve) => {
    execFile('setpriv', [...NOBODY, process.execPath, copy, 'status', '--socket', socketPath], (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
  t.is(other.code, 77);
  t.regex(other.stderr, /root-only/);
  lab.kill('SIGINT');
  await exited;
  // Interrupted, the lab still cleans up: its scratch directory goes, its daemon stops.
  const scratch = path.dirname(socketPath);
  /** @param {string} d @returns {string[]} */
  const left = (d) => { try { return fs.readdirSync(d).flatMap((f) => [`${d}/${f}`, ...left(`${d}/${f}`)]); } catch { return []; } };
  t.false(fs.existsSync(scratch), `${scratch} removed; left: ${left(scratch).join(', ')}`);
  const daemons = () => fs.readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(scratch);
    } catch {
      return false;
    }
  });
  for (const end = Date.now() + 20_000; daemons().length > 0 && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual(daemons(), [], 'the lab\'s daemon exited');
});

test('status without a daemon says so clearly, and exits 3 (nothing is watching)', async (t) => {
  const result = await cli(['status', '--socket', path.join(os.tmpdir(), `nh-none-${process.pid}.sock`)]);
  t.is(result.code, 3);
  t.regex(result.stderr, /no netheal daemon is running/);
});
