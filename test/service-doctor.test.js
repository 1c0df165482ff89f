// @ts-check
// doctor and tune in a lab namespace: each namespaced sysctl set to a bad value is found and
// explained; `tune --apply --netns NS --file TMP` fixes exactly that namespace; values outside
// the sane ranges are refused before anything is written. The host's sysctls are never touched.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { judgeSysctls, capabilitiesOf, parseSystemdVersion } = require('../lib/service');

const CLI = require.resolve('../lib/cli.js');

function run(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

const BAD = {
  'net.ipv4.tcp_tw_reuse': '0',
  'net.ipv4.tcp_fin_timeout': '110',
  'net.ipv4.tcp_max_tw_buckets': '100',
  'net.ipv4.ip_local_port_range': '40000 40999',
  'net.core.somaxconn': '128',
  'net.ipv4.ping_group_range': '1 0',
  'net.ipv4.tcp_migrate_req': '0',
};
const IDS = {
  'net.ipv4.tcp_tw_reuse': 'sysctl.tcp_tw_reuse',
  'net.ipv4.tcp_fin_timeout': 'sysctl.tcp_fin_timeout',
  'net.ipv4.tcp_max_tw_buckets': 'sysctl.tcp_max_tw_buckets',
  'net.ipv4.ip_local_port_range': 'sysctl.ip_local_port_range',
  'net.core.somaxconn': 'sysctl.somaxconn',
  'net.ipv4.ping_group_range': 'sysctl.ping_group_range',
  'net.ipv4.tcp_migrate_req': 'sysctl.tcp_migrate_req',
};

// 150 connections the server closes first: 150 would-be TIME_WAITs against a limit of 100.
const TIME_WAIT_STORM = `
const net = require('node:net');
const server = net.createServer((s) => s.end()).listen(9000, '127.0.0.1', async () => {
  for (let i = 0; i < 150; i += 1) {
    await new Promise((resolve) => net.connect(9000, '127.0.0.1').on('end', function () { this.end(); }).on('close', resolve).resume());
  }
  setTimeout(() => { server.close(); }, 200);
});
`;

const hostSysctl = (key) => fs.readFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').trim().replace(/\s+/g, ' ');

test('doctor finds every bad namespaced value with a true explanation; tune --apply fixes that namespace only', async (t) => {
  const hostBefore = Object.fromEntries(Object.keys(BAD).map((k) => [k, hostSysctl(k)]));
  const hostFile = '/etc/sysctl.d/90-netheal.conf';
  const hostFileBefore = fs.existsSync(hostFile) ? fs.readFileSync(hostFile, 'utf8') : null;
  const lab = await Lab.create();
  t.teardown(() => lab.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-doctor-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ns = await lab.addNamespace('doc');
  await lab.exec(ns, 'sysctl', ['-q', '-w', ...Object.entries(BAD).map(([k, v]) => `${k}=${v}`)]);
  fs.writeFileSync(path.join(dir, 'storm.js'), TIME_WAIT_STORM);
  await lab.exec(ns, process.execPath, [path.join(dir, 'storm.js')]);

  const doctor = await run(['doctor', '--json', '--netns', ns, '--no-journal']);
  t.is(doctor.code, 1, 'warnings: exit 1');
  const report = JSON.parse(doctor.stdout);
  const byId = new Map(report.findings.map((f) => [f.id, f]));
  for (const [key, value] of Object.entries(BAD)) {
    const f = byId.get(IDS[key]);
    t.truthy(f, key);
    t.is(String(f.value), value, `${key} read inside the namespace`);
    t.not(f.severity, 'ok', key);
    t.truthy(f.fix, `${key} has a fix`);
  }
  t.regex(byId.get('sysctl.tcp_fin_timeout').explanation, /FIN_WAIT_2/);
  t.regex(byId.get('sysctl.tcp_fin_timeout').explanation, /TIME_WAIT, which is fixed at 60 s/);
  t.regex(byId.get('sysctl.tcp_tw_reuse').explanation, /outgoing connect\(\)/);
  t.regex(byId.get('sysctl.tcp_tw_reuse').explanation, /nothing for a server/);
  // The TIME_WAIT overflow was real and counted in this namespace.
  const overflow = byId.get('netstat.TCPTimeWaitOverflow');
  // The kernel's own counter in the namespace (how many of the storm's TIME_WAITs overflowed
  // varies a little with timing under load; that the doctor reads the real one does not).
  const netstat = (await lab.exec(ns, 'cat', ['/proc/net/netstat'])).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const kernelOverflow = Number(netstat[1].split(/\s+/)[netstat[0].split(/\s+/).indexOf('TCPTimeWaitOverflow')]);
  t.true(kernelOverflow > 0, 'the storm really overflowed tcp_max_tw_buckets');
  t.is(overflow.value, kernelOverflow, `TCPTimeWaitOverflow ${overflow.value}`);
  t.is(overflow.severity, 'warning');
  t.true(report.sockets['time-wait'] <= 100 && report.sockets['time-wait'] >= 90, JSON.stringify(report.sockets));
  t.truthy(byId.get('capability.CAP_NET_ADMIN'));
  t.truthy(byId.get('limits.nofile'));

  // Text output explains and names the fix.
  const text = await run(['doctor', '--netns', ns, '--no-journal']);
  t.regex(text.stdout, /WARN net\.ipv4\.tcp_fin_timeout = 110 s/);
  t.regex(text.stdout, /fix: netheal tune --set net\.ipv4\.tcp_fin_timeout="30"/);

  // Dry run: plans, writes nothing.
  const file = path.join(dir, 'sysctl.d', '90-netheal.conf');
  const dry = await run(['tune', '--apply', '--dry-run', '--netns', ns, '--file', file]);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /net\.ipv4\.tcp_fin_timeout = 30/);
  t.false(fs.existsSync(file));
  t.is((await lab.exec(ns, 'sysctl', ['-n', 'net.ipv4.tcp_fin_timeout'])).trim(), '110');

  const applied = await run(['tune', '--apply', '--json', '--netns', ns, '--file', file]);
  t.is(applied.code, 0, applied.stderr);
  const tuneReport = JSON.parse(applied.stdout);
  t.true(tuneReport.applied);
  t.is(tuneReport.file, file);
  const content = fs.readFileSync(file, 'utf8');
  t.regex(content, /^# was: 110\nnet\.ipv4\.tcp_fin_timeout = 30$/m);
  t.regex(content, /^# .*FIN_WAIT_2/m, 'commented with the explanation');
  for (const key of Object.keys(BAD)) {
    const now = (await lab.exec(ns, 'sysctl', ['-n', key])).trim().replace(/\s+/g, ' ');
    t.not(now, BAD[key], `${key} fixed in the namespace`);
  }
  const after = JSON.parse((await run(['doctor', '--json', '--netns', ns, '--no-journal'])).stdout);
  for (const key of Object.keys(BAD)) {
    t.is(after.findings.find((f) => f.id === IDS[key]).fix, undefined, `${key} no longer needs a fix`);
  }
  // The file is what `sysctl -p` reads: applying it again inside the namespace works.
  await lab.exec(ns, 'sysctl', ['-q', '-p', file]);

  // The host was never touched.
  for (const key of Object.keys(BAD)) t.is(hostSysctl(key), hostBefore[key], `host ${key} unchanged`);
  t.is(fs.existsSync(hostFile) ? fs.readFileSync(hostFile, 'utf8') : null, hostFileBefore, 'host /etc/sysctl.d untouched');
});

test('tune refuses values outside the sane ranges before writing anything', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-tune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ns = await lab.addNamespace('tune');
  const file = path.join(dir, 'x.conf');
  const before = (await lab.exec(ns, 'sysctl', ['-n', 'net.ipv4.tcp_fin_timeout'])).trim();
  /** @type {Array<[string, RegExp]>} */
  const cases = [
    ['net.ipv4.tcp_fin_timeout=1', /tcp_fin_timeout = "1" refused: must be an integer in 5\.\.120/],
    ['net.ipv4.tcp_tw_reuse=3', /must be 0, 1 or 2/],
    ['net.ipv4.ip_local_port_range=40000 40002', /at least 4096 ports/],
    ['net.ipv4.ip_local_port_range=1000 60999', /1024\.\.65535/],
    ['net.ipv4.ip_local_port_range=20000 60000', /parity/],
    ['net.core.somaxconn=10', /128\.\.65535/],
    ['net.ipv4.ping_group_range=5 2', /LOW <= HIGH/],
    ['net.ipv4.tcp_tw_recycle=1', /not a sysctl netheal tunes/],
    ['fs.file-max=10', /not a sysctl netheal tunes/],
  ];
  for (const [set, message] of cases) {
    const r = await run(['tune', '--apply', '--netns', ns, '--file', file, '--set', set]);
    t.is(r.code, 2, set);
    t.regex(r.stderr, message, set);
    t.false(fs.existsSync(file), `${set}: nothing written`);
  }
  t.is((await lab.exec(ns, 'sysctl', ['-n', 'net.ipv4.tcp_fin_timeout'])).trim(), before);
  // With --netns and no --file, only the namespace changes: no file at all.
  const ok = await run(['tune', '--apply', '--json', '--netns', ns, '--set', 'net.ipv4.tcp_fin_timeout=45']);
  t.is(ok.code, 0, ok.stderr);
  t.is(JSON.parse(ok.stdout).file, null);
  t.is((await lab.exec(ns, 'sysctl', ['-n', 'net.ipv4.tcp_fin_timeout'])).trim(), '45');
});

test('pure pieces: judgeSysctls on a good set, CapEff decoding, systemctl --version parsing', (t) => {
  const good = new Map(Object.entries({
    'net.ipv4.tcp_tw_reuse': '2', 'net.ipv4.tcp_fin_timeout': '60', 'net.ipv4.tcp_max_tw_buckets': '262144',
    'net.ipv4.ip_local_port_range': '32768 60999', 'net.core.somaxconn': '4096', 'net.ipv4.ping_group_range': '0 2147483647',
    'net.ipv4.tcp_migrate_req': '1',
  }));
  const findings = judgeSysctls(good, new Map([['TcpExt.TCPTimeWaitOverflow', 0]]), 10);
  t.deepEqual(findings.filter((f) => f.severity !== 'ok').map((f) => f.id), []);
  t.deepEqual([...capabilitiesOf('CapEff:\t0000000000003000\n')], [12, 13]);
  t.is(parseSystemdVersion('systemd 252 (252.39-1~deb12u2)\n+PAM'), 252);
  t.is(parseSystemdVersion('nope'), null);
});
