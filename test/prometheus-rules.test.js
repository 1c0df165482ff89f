// @ts-check
// deploy/prometheus: the alert rules are valid (`promtool check rules`), behave as their unit
// tests say (`promtool test rules`), and ask only for metrics and label values the daemon
// exports. promtool comes from Debian's `prometheus` package (.ci/run installs it); without
// it the promtool tests are skipped, except under CI=true, where its absence fails.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { execFile, spawnSync } = require('node:child_process');
const { DaemonMetrics } = require('../lib/daemon/metrics');

const DIR = path.resolve(__dirname, '../deploy/prometheus');
const RULES = path.join(DIR, 'netheal.rules.yml');
const HAS_PROMTOOL = spawnSync('promtool', ['--version']).status === 0;
const CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');

/** @returns {Promise<{ code: number, output: string }>} */
function promtool(args) {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }));
  });
}

/** Declared with test.skip (and the reason) when promtool is missing. */
function promtoolTest(title, fn) {
  if (HAS_PROMTOOL) test(title, fn);
  else test.skip(`${title} [skipped: promtool is not installed (Debian package prometheus)]`, fn);
}
if (!HAS_PROMTOOL && CI) {
  test('promtool is installed (CI=true: the rule tests are required)', (t) => t.fail('promtool not found: .ci/run installs the prometheus package'));
}

promtoolTest('promtool check rules: the rule file is valid', async (t) => {
  const result = await promtool(['check', 'rules', RULES]);
  t.log(result.output.trim());
  t.is(result.code, 0, result.output);
  t.regex(result.output, /SUCCESS: \d+ rules found/);
});

promtoolTest('promtool test rules: every alert fires and stays quiet as its unit tests say', async (t) => {
  const result = await promtool(['test', 'rules', path.join(DIR, 'netheal.rules.test.yml')]);
  t.log(result.output.trim());
  t.is(result.code, 0, result.output);
  t.regex(result.output, /SUCCESS/);
});

test('the rules ask only for metrics and alert reasons the daemon exports', async (t) => {
  const text = fs.readFileSync(RULES, 'utf8');
  const metrics = new DaemonMetrics({ processMetrics: false });
  // A watched interface: its alert counters are created at 0 for every reason.
  metrics.health.set({ iface: 'eth0', state: 'down' }, 1);
  const exported = await metrics.registry.getMetricsAsJSON();
  const names = new Set(exported.map((m) => m.name));
  const used = [...new Set(text.match(/\bnetheal_[a-z_]+\b/g))];
  t.true(used.length >= 4);
  for (const name of used) t.true(names.has(name), `${name} is exported`);
  const alerts = exported.find((m) => m.name === 'netheal_alerts_total');
  const reasons = new Set(alerts.values.map((v) => v.labels.reason));
  for (const [, values] of text.matchAll(/reason=~?"([^"]+)"/g)) {
    for (const reason of values.split('|')) t.true(reasons.has(reason), `alert reason ${reason} exists`);
  }
  const labelNames = new Set(exported.filter((m) => m.name.startsWith('netheal_')).flatMap((m) => m.values.map((v) => Object.keys(v.labels))).flat());
  t.false(labelNames.has('iface'), 'no metric is labelled iface');
});
