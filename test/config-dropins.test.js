// @ts-check
// The configuration's drop-in directory (conf.d/*.json merged in name order over the main
// file: objects merged, anything else replaced), problems naming their file and field, and
// `netheal config check`, which must judge exactly as the daemon does (same function).
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { mergeConfig, checkConfig, loadConfig, dropInFiles, validateConfig } = require('../lib/daemon/config');

const CLI = require.resolve('../lib/cli.js');
const DAEMON = require.resolve('../lib/daemon.js');

/** @returns {Promise<{ code: number, stdout: string, stderr: string }>} */
function run(file, args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: 60000 }, (error, stdout, stderr) =>
      resolve({ code: error ? /** @type {any} */ (error).code : 0, stdout, stderr }));
  });
}

/** A config directory: main file `netheal.json` and conf.d/ with `dropIns` (name -> JSON or text). */
function configDir(t, main, dropIns = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-conf-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'netheal.json');
  if (main !== undefined) fs.writeFileSync(file, JSON.stringify(main));
  fs.mkdirSync(path.join(dir, 'conf.d'));
  for (const [name, content] of Object.entries(dropIns)) {
    fs.writeFileSync(path.join(dir, 'conf.d', name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return file;
}

test('merge rule: objects merge key by key, arrays and scalars replace, inputs untouched', (t) => {
  const base = { interfaces: { eth0: { probe: { targets: ['gateway', '192.0.2.1'], intervalMs: 100 }, ladder: ['repair'] } }, log: { level: 'info' } };
  const over = { interfaces: { eth0: { probe: { targets: ['192.0.2.9'] } }, eth1: {} }, log: { level: 'debug', format: 'json' } };
  const before = JSON.stringify(base);
  t.deepEqual(mergeConfig(base, over), {
    interfaces: { eth0: { probe: { targets: ['192.0.2.9'], intervalMs: 100 }, ladder: ['repair'] }, eth1: {} },
    log: { level: 'debug', format: 'json' },
  });
  t.is(JSON.stringify(base), before, 'base not changed');
  // An object over a scalar (or the reverse) replaces it; null replaces too (and the schema judges it).
  t.deepEqual(mergeConfig({ a: 1, b: { c: 1 } }, { a: { x: 1 }, b: null }), { a: { x: 1 }, b: null });
  // A "__proto__" key stays a key (which the schema refuses), never the merged object's prototype.
  const sneaky = mergeConfig({}, JSON.parse('{"__proto__": {"polluted": true}}'));
  t.is(Object.getPrototypeOf(sneaky), Object.prototype);
  t.deepEqual(Object.keys(sneaky), ['__proto__']);
  t.throws(() => validateConfig(sneaky), { message: /\(top level\): unknown key "__proto__"/ });
  // Interface names the schema library would drop silently are refused, not ignored.
  for (const name of ['__proto__', 'constructor', 'prototype']) {
    t.throws(() => validateConfig(JSON.parse(`{"interfaces": {"${name}": {}}}`)), { code: 'NETHEAL_ERR_CONFIG', message: new RegExp(`interfaces: interface name "${name}" is not supported`) });
  }
});

test('drop-ins apply in name order (byte order), only *.json, over the main file', (t) => {
  const file = configDir(t, { interfaces: { eth0: { ladder: ['repair'] } }, killSockets: { pathDeadMs: 5000 } }, {
    '20-b.json': { killSockets: { pathDeadMs: 7000 } },
    '10-a.json': { killSockets: { pathDeadMs: 6000, includeTimeWait: true }, interfaces: { eth0: { ladder: ['kill-sockets', 'repair'] } } },
    'Z-upper.json': { carrierSyncIntervalMs: 200 },
    'README': 'not json, not read',
    '30-c.json.disabled': '{ broken',
  });
  const dir = path.join(path.dirname(file), 'conf.d');
  t.deepEqual(dropInFiles(file), ['Z-upper.json', '10-a.json', '20-b.json'].sort().map((n) => path.join(dir, n)));
  const check = checkConfig(file);
  t.deepEqual(check.problems, []);
  t.deepEqual(check.files, [file, ...dropInFiles(file)]);
  t.is(check.config.killSockets.pathDeadMs, 7000, 'the last drop-in wins');
  t.true(check.config.killSockets.includeTimeWait, 'keys of earlier files stay');
  t.deepEqual(check.config.interfaces.eth0.ladder, ['kill-sockets', 'repair'], 'arrays replaced, not concatenated');
  t.is(check.config.carrierSyncIntervalMs, 200);
});

test('problems name the drop-in that set the field, all at once; the daemon refuses the same (78)', async (t) => {
  const file = configDir(t, { interfaces: { eth0: { probe: { targets: ['gateway'] } }, 'eth0.100': {} } }, {
    '10-fast.json': { interfaces: { eth0: { probe: { intervalMs: 1, timeoutMs: 'soon' } } } },
    '20-typo.json': { interfaces: { eth0: { ladderr: ['repair'] } } },
  });
  const dir = path.join(path.dirname(file), 'conf.d');
  const check = checkConfig(file);
  t.deepEqual(check.problems.sort(), [
    `${dir}/10-fast.json: interfaces.eth0.probe.intervalMs: Invalid value: Expected >=10 but received 1`,
    `${dir}/10-fast.json: interfaces.eth0.probe.timeoutMs: Invalid type: Expected number but received "soon"`,
    `${dir}/20-typo.json: interfaces.eth0: unknown key "ladderr"`,
  ].sort());
  t.throws(() => loadConfig(file), { code: 'NETHEAL_ERR_CONFIG', message: /20-typo\.json: interfaces\.eth0: unknown key "ladderr"/ });
  const cli = await run(CLI, ['config', 'check', file]);
  t.is(cli.code, 78);
  t.deepEqual(cli.stderr.trim().split('\n').sort(), check.problems.map((p) => `netheal: ${p}`).sort(), 'the CLI prints what checkConfig found');
  const daemon = await run(DAEMON, ['--config', file, '--dry-run', '--netns', `nh-${process.pid}-none`]);
  t.is(daemon.code, 78);
  for (const problem of check.problems) t.true(daemon.stderr.includes(problem), problem);

  // Cross-field rules (after the schema holds) are attributed through the field path too,
  // interface names with dots included.
  const cross = configDir(t, { interfaces: { 'eth0.100': { ladder: ['repair'] } } }, { '50-x.json': { interfaces: { 'eth0.100': { ladder: ['hook'] } } } });
  t.deepEqual(checkConfig(cross).problems, [`${path.dirname(cross)}/conf.d/50-x.json: interfaces.eth0.100.ladder[0]: names "hook" but the interface has no hook configured`]);
  const broken = configDir(t, {}, { '10-bad.json': '{ "interfaces": ' });
  t.regex(checkConfig(broken).problems.join('\n'), /10-bad\.json: not valid JSON/);
  const notObject = configDir(t, {}, { '10-list.json': '[]' });
  t.regex(checkConfig(notObject).problems.join('\n'), /10-list\.json: \(top level\): must be a JSON object, got an array/);
});

test('netheal config check: 0 and the files read when valid; FILE or --config; --json; a missing explicit file is 78', async (t) => {
  const file = configDir(t, { interfaces: { eth0: {} } }, { '10-log.json': { log: { level: 'debug' } } });
  const ok = await run(CLI, ['config', 'check', '--config', file]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /configuration OK: .*netheal\.json, .*10-log\.json/);
  const json = await run(CLI, ['config', 'check', file, '--json']);
  t.is(json.code, 0);
  t.like(JSON.parse(json.stdout), { ok: true, config: file, problems: [] });
  const missing = await run(CLI, ['config', 'check', path.join(path.dirname(file), 'nope.json')]);
  t.is(missing.code, 78);
  t.regex(missing.stderr, /nope\.json: cannot read: ENOENT/);
  const both = await run(CLI, ['config', 'check', file, '--config', '/etc/other.json']);
  t.is(both.code, 2);
  // Only drop-ins (the main file absent): applied over the defaults when the file is optional,
  // as the daemon does for its default path; an explicit file must exist.
  const onlyDropIns = configDir(t, undefined, { '10-a.json': { log: { level: 'debug' } } });
  t.is(checkConfig(onlyDropIns, { optional: true }).config.log.level, 'debug');
  t.regex(checkConfig(onlyDropIns).problems.join(), /netheal\.json: cannot read: ENOENT/);
  // A namespace that does not exist is what a reload refuses: the check says so too.
  const netns = configDir(t, { netns: `nh-${process.pid}-gone` });
  const gone = await run(CLI, ['config', 'check', netns]);
  t.is(gone.code, 78);
  t.regex(gone.stderr, /netheal\.json: netns: no network namespace named nh-\d+-gone/);
});
