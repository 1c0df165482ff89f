// @ts-check
// `netheal ping` end to end in a lab: JSON lines, summary placement, exit codes 0/1/2/77.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { execFile } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { dualStackPair } = require('./helpers/lab');

const CLI = require.resolve('../lib/cli.js');

/**
 * @param {string[]} args
 * @param {{ ns?: string, lab?: unknown, noRaw?: boolean }} [options] with noRaw: run in `ns` without CAP_NET_RAW
 * @returns {Promise<{code: number, stdout: string, stderr: string}>}
 */
function cli(args, { ns, noRaw = false } = {}) {
  const argv = noRaw
    ? ['netns', 'exec', ns, 'setpriv', '--inh-caps=-net_raw', '--bounding-set=-net_raw', process.execPath, CLI, ...args]
    : [process.execPath, CLI, ...args];
  const [cmd, rest] = noRaw ? ['ip', argv] : [argv[0], argv.slice(1)];
  return new Promise((resolve) => {
    execFile(cmd, rest, { timeout: 20000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

async function topology(t) {
  const pair = await dualStackPair(t, { net: 6, noRateLimit: 'v4' });
  await pair.lab.ip(pair.r, 'route', 'add', 'unreachable', '198.51.100.0/24');
  return pair;
}

test.serial('--json: one JSON line per probe, then one summary line per target; the human summary on stderr', async (t) => {
  const { c } = await topology(t);
  const res = await cli(['ping', '--netns', c, '--json', '--count', '3', '--interval', '20', '--timeout', '1000', '10.6.0.1', 'fd06::1', '198.51.100.7']);
  t.is(res.code, 1, 'one target never answered');
  const all = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.is(all.length, 12);
  const lines = all.slice(0, 9);
  const summaries = all.slice(9);
  t.true(summaries.every((l) => l.summary === true), 'the summaries come last');
  t.deepEqual(summaries.map((l) => l.target), ['10.6.0.1', 'fd06::1', '198.51.100.7']);
  for (const l of summaries) t.deepEqual(Object.keys(l), ['summary', 'target', 'address', 'sent', 'received', 'lossPct', 'rttMs']);
  t.like(summaries[0], { address: '10.6.0.1', sent: 3, received: 3, lossPct: 0 });
  t.true(summaries[0].rttMs.min > 0 && summaries[0].rttMs.min <= summaries[0].rttMs.avg && summaries[0].rttMs.avg <= summaries[0].rttMs.max);
  t.deepEqual(Object.keys(summaries[0].rttMs), ['min', 'avg', 'max', 'p99', 'jitter']);
  t.like(summaries[2], { address: '198.51.100.7', sent: 3, received: 0, lossPct: 100, rttMs: null });
  for (const l of lines) t.deepEqual(Object.keys(l), ['target', 'seq', 'status', 'rttMs', 'code', 'from']);
  for (const target of ['10.6.0.1', 'fd06::1']) {
    const mine = lines.filter((l) => l.target === target);
    t.deepEqual(mine.map((l) => l.seq), [1, 2, 3]);
    t.true(mine.every((l) => l.status === 'reply' && l.rttMs > 0 && l.code === null && l.from === target));
  }
  const bad = lines.filter((l) => l.target === '198.51.100.7');
  t.true(bad.every((l) => l.status === 'unreachable' && l.code === 1 && l.from === '10.6.0.1' && l.rttMs === null));
  t.regex(res.stderr, /--- 10\.6\.0\.1 ping statistics ---\n3 transmitted, 3 received, 0% packet loss\nrtt min\/avg\/max\/p99\/jitter = /);
  t.regex(res.stderr, /3 transmitted, 0 received, 100% packet loss/);
});

test.serial('human output ends with the summary; all answered -> exit 0; timeouts reported', async (t) => {
  const { lab, c, r } = await topology(t);
  const ok = await cli(['ping', '--netns', c, '--count', '2', '--interval', '20', '10.6.0.1']);
  t.is(ok.code, 0);
  t.regex(ok.stdout, /^reply from 10\.6\.0\.1: seq=1 time=[\d.]+ ms\nreply from 10\.6\.0\.1: seq=2 time=[\d.]+ ms\n--- 10\.6\.0\.1 ping statistics ---\n2 transmitted, 2 received, 0% packet loss/);
  await lab.exec(r, '/usr/sbin/nft', ['add table inet lab; add chain inet lab in { type filter hook input priority 0; }; add rule inet lab in icmp type echo-request drop']);
  const lost = await cli(['ping', '--netns', c, '--json', '--count', '2', '--interval', '20', '--timeout', '50', '10.6.0.1']);
  t.is(lost.code, 1);
  t.deepEqual(lost.stdout.trim().split('\n').map((l) => JSON.parse(l).status), ['timeout', 'timeout', undefined], 'two probes, then the summary');
});

test.serial('--interface binds the probes to a device', async (t) => {
  const { c } = await topology(t);
  const bound = await cli(['ping', '--netns', c, '--json', '--count', '1', '--interface', 'lo', '--timeout', '100', '10.6.0.1']);
  t.is(bound.code, 1, 'out of lo the router is unreachable');
  const res = await cli(['ping', '--netns', c, '--json', '--count', '1', '--interface', 'eth0', '10.6.0.1']);
  t.is(res.code, 0);
  t.is(JSON.parse(res.stdout.split('\n')[0]).status, 'reply');
  const missing = await cli(['ping', '--netns', c, '--count', '1', '--interface', 'nope0', '10.6.0.1']);
  t.is(missing.code, 2, 'a usage error, as sockets --dev');
  t.is(missing.stderr, `netheal: --interface: no interface named "nope0" in /run/netns/${c}\n`);
});

test.serial('usage errors exit 2; missing privilege exits 77 naming both fixes; a ping socket works without CAP_NET_RAW', async (t) => {
  const { lab, c } = await topology(t);
  for (const args of [['ping'], ['ping', 'example.org'], ['ping', '--interval', '5', '10.6.0.1'], ['ping', '--count', 'x', '10.6.0.1'], ['ping', '10.6.0.1', '10.6.0.1']]) {
    const res = await cli(args);
    t.is(res.code, 2, args.join(' '));
    t.notRegex(res.stderr, /\n\s+at /, 'no stack trace');
  }
  const denied = await cli(['ping', '--count', '1', '10.6.0.1'], { ns: c, lab, noRaw: true });
  t.is(denied.code, 77);
  t.regex(denied.stderr, /CAP_NET_RAW/);
  t.regex(denied.stderr, /net\.ipv4\.ping_group_range/);
  await lab.exec(c, 'sysctl', ['-qw', 'net.ipv4.ping_group_range=0 2147483647']);
  const dgram = await cli(['ping', '--json', '--count', '2', '--interval', '20', '10.6.0.1', 'fd06::1'], { ns: c, lab, noRaw: true });
  t.is(dgram.code, 0, dgram.stderr);
  t.is(dgram.stdout.trim().split('\n').filter((l) => JSON.parse(l).status === 'reply').length, 4);
});

test.serial('gateway targets come from the namespace default routes; a missing one is reported, not waited for', async (t) => {
  const { c } = await topology(t);
  const res = await cli(['ping', '--netns', c, '--json', '--count', '2', '--interval', '20', 'gateway', 'gateway6']);
  t.is(res.code, 1, 'no IPv6 default route');
  const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.summary !== true);
  t.deepEqual(lines.filter((l) => l.target === 'gateway').map((l) => [l.seq, l.status, l.from]), [[1, 'reply', '10.6.0.1'], [2, 'reply', '10.6.0.1']]);
  t.deepEqual(lines.filter((l) => l.target === 'gateway6'), [{ target: 'gateway6', seq: 0, status: 'error', rttMs: null, code: null, from: null }]);
  t.regex(res.stderr, /--- gateway \(10\.6\.0\.1\) ping statistics ---/);
});
