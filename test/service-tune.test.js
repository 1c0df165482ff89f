// @ts-check
// tune() as a library call, in a lab namespace: a plan changes nothing, apply changes that
// namespace only (and writes a file only when given one), explicit values beat the doctor's,
// and the pure pieces (checkTunable, renderTuneFile) say what they refuse and why. The
// host's sysctls and /etc/sysctl.d are never touched.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Lab } = require('../lib/lab/lab');
const { tune, checkTunable, renderTuneFile, DEFAULT_TUNE_FILE } = require('../lib/service');

/** @param {string} key */
const hostSysctl = (key) => fs.readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim().replace(/\s+/g, ' ');

/** @param {import('ava').ExecutionContext} t */
async function namespace(t) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('tune');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-tune-lib-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** @param {string} key */
  const get = async (key) => (await lab.exec(ns, 'sysctl', ['-n', key])).trim().replace(/\s+/g, ' ');
  /** @param {string} key @param {string} value */
  const set = (key, value) => lab.exec(ns, 'sysctl', ['-qw', `${key}=${value}`]);
  return { lab, ns, netns: Lab.path(ns), dir, get, set };
}

test('a plan (no apply) reads the namespace, changes nothing and names no host file', async (t) => {
  const { netns, get, set } = await namespace(t);
  await set('net.ipv4.tcp_fin_timeout', '110');
  const report = await tune({ netns });
  t.is(report.netns, netns);
  t.false(report.applied);
  t.is(report.file, null, 'inside a namespace no file unless given');
  const fin = report.settings.find((s) => s.key === 'net.ipv4.tcp_fin_timeout');
  t.like(fin, { current: '110', value: '30' });
  t.regex(fin?.reason ?? '', /FIN_WAIT_2/);
  t.regex(report.content, /^net\.ipv4\.tcp_fin_timeout = 30$/m);
  t.regex(report.content, new RegExp(`nsenter --net=${netns} sysctl -p FILE`));
  t.is(await get('net.ipv4.tcp_fin_timeout'), '110', 'unchanged');
});

test('apply: the namespace changes, the file is written atomically, the host stays as it was', async (t) => {
  const { netns, dir, get, set } = await namespace(t);
  const keys = ['net.ipv4.tcp_fin_timeout', 'net.core.somaxconn', 'net.ipv4.tcp_tw_reuse'];
  const host = Object.fromEntries(keys.map((k) => [k, hostSysctl(k)]));
  const hostFile = fs.existsSync(DEFAULT_TUNE_FILE) ? fs.readFileSync(DEFAULT_TUNE_FILE, 'utf8') : null;
  await set('net.ipv4.tcp_fin_timeout', '110');
  await set('net.core.somaxconn', '128');
  const file = path.join(dir, 'sysctl.d', 'netheal.conf');
  // An explicit value beats the doctor's recommendation (30 for fin_timeout).
  const report = await tune({ netns, apply: true, file, set: { 'net.ipv4.tcp_fin_timeout': ' 45 ' } });
  t.true(report.applied);
  t.is(report.file, file);
  t.is(await get('net.ipv4.tcp_fin_timeout'), '45');
  t.not(await get('net.core.somaxconn'), '128', 'the doctor\'s fix applied too');
  const content = fs.readFileSync(file, 'utf8');
  t.is(content, report.content);
  t.regex(content, /^# was: 110\nnet\.ipv4\.tcp_fin_timeout = 45$/m);
  t.false(fs.existsSync(`${file}.netheal-tmp`), 'no temporary file left');
  for (const k of keys) t.is(hostSysctl(k), host[k], `host ${k} unchanged`);
  t.is(fs.existsSync(DEFAULT_TUNE_FILE) ? fs.readFileSync(DEFAULT_TUNE_FILE, 'utf8') : null, hostFile, `host ${DEFAULT_TUNE_FILE} untouched`);
  // Applied again: nothing left to change.
  const again = await tune({ netns, set: { 'net.ipv4.tcp_fin_timeout': '45' } });
  t.deepEqual(again.settings.map((s) => s.key), []);
});

test('dry run with apply: planned, printed, nothing written or changed', async (t) => {
  const { netns, dir, get, set } = await namespace(t);
  await set('net.ipv4.tcp_fin_timeout', '110');
  const file = path.join(dir, 'dry.conf');
  const report = await tune({ netns, apply: true, dryRun: true, file });
  t.like(report, { applied: false, dryRun: true, file });
  t.false(fs.existsSync(file));
  t.is(await get('net.ipv4.tcp_fin_timeout'), '110');
});

test('values outside the sane ranges are refused before anything is read or written', async (t) => {
  const { netns, dir, get } = await namespace(t);
  const before = await get('net.ipv4.tcp_fin_timeout');
  const file = path.join(dir, 'never.conf');
  await t.throwsAsync(tune({ netns, apply: true, file, set: { 'net.ipv4.tcp_fin_timeout': '1' } }), { code: 'NETHEAL_ERR_USAGE', message: /5\.\.120/ });
  await t.throwsAsync(tune({ netns, apply: true, file, set: { 'kernel.panic': '1' } }), { code: 'NETHEAL_ERR_USAGE', message: /not a sysctl netheal tunes/ });
  t.false(fs.existsSync(file));
  t.is(await get('net.ipv4.tcp_fin_timeout'), before);
  await t.throwsAsync(tune({ netns: 'nh-no-such-namespace' }), { code: 'NETHEAL_ERR_NETNS' });
});

test('pure pieces: checkTunable names the rule; renderTuneFile comments every value', (t) => {
  t.notThrows(() => checkTunable('net.ipv4.ip_local_port_range', '32768 60999', true));
  t.throws(() => checkTunable('net.ipv4.ip_local_port_range', '32768 32769', false), { message: /at least 4096 ports/ });
  t.throws(() => checkTunable('net.core.somaxconn', 'many', false), { code: 'NETHEAL_ERR_USAGE', message: /somaxconn = "many" refused/ });
  const text = renderTuneFile([{ key: 'net.core.somaxconn', current: null, value: '4096', reason: 'a reason long enough to be wrapped '.repeat(5) }], null);
  t.regex(text, /^net\.core\.somaxconn = 4096$/m);
  t.regex(text, /sysctl -p FILE/);
  t.true(text.split('\n').every((line) => line.length <= 100), 'comments wrapped');
  t.regex(text, /^# was: unset$/m, 'an unknown current value says so');
});
