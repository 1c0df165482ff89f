// @ts-check
// The `netheal watch` command end to end, and both commands without privileges.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { spawn, execFile } = require('node:child_process');
const readline = require('node:readline');
const { Lab } = require('../lib/lab/lab');

const CLI = require.resolve('../lib/cli.js');
const { NO_CAPS } = require('./helpers/unprivileged');

function runCli(args, prefix = []) {
  return new Promise((resolve) => {
    const [command, argv] = prefix.length ? ['setpriv', [...prefix, process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
    execFile(command, argv, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

let lab;
let ns;
let far;
test.before(async () => {
  lab = Lab.create();
  ns = await lab.addNamespace('cli');
  far = await lab.addNamespace('far');
  await lab.addVeth({ ns, name: 'veth0' }, { ns: far, name: 'veth1' });
  await lab.addAddress(ns, 'veth0', '192.0.2.2/24');
  await lab.addRoute(ns, 'default', 'via', '192.0.2.1');
});
test.after.always(() => lab?.destroy());

test.serial('watch --json prints contract events as JSON lines and exits 0 on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [CLI, 'watch', '--json', '--netns', ns], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = readline.createInterface({ input: child.stdout });
  const events = [];
  const wanted = new Promise((resolve) => {
    lines.on('line', (line) => {
      events.push(JSON.parse(line));
      if (events.some((e) => e.type === 'default-route' && e.action === 'lost')) resolve();
    });
  });
  // `watch` says on stderr when it is live (its initial dump done): then pull the carrier.
  await new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (/netheal: watching /.test(stderr)) resolve(undefined);
    });
    child.once('exit', (code) => reject(new Error(`watch exited ${code}: ${stderr}`)));
  });
  await lab.carrierLoss({ ns: far, name: 'veth1' });
  await Promise.race([wanted, new Promise((_, reject) => setTimeout(() => reject(new Error(`saw ${JSON.stringify(events)}`)), 5000))]);
  const exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exit, 0);
  const link = events.find((e) => e.type === 'link' && e.link.name === 'veth0' && !e.link.carrier);
  t.truthy(link);
  t.deepEqual(Object.keys(link.link).sort(), ['addresses', 'adminUp', 'carrier', 'ifindex', 'kind', 'mac', 'master', 'mtu', 'name', 'operstate']);
  t.regex(link.monotonicNs, /^\d+$/);
  t.true(link.changed.includes('carrier'));
  t.like(events.find((e) => e.type === 'default-route'), { action: 'lost', family: 4, gateway: '192.0.2.1' });
});

test.serial('watch --json prints the gateway neighbour events', async (t) => {
  const own = Lab.create();
  t.teardown(() => own.destroy());
  const client = await own.addNamespace('nclient');
  const gw = await own.addNamespace('ngw');
  await own.addVeth({ ns: client, name: 'veth0' }, { ns: gw, name: 'veth1' });
  await own.addAddress(client, 'veth0', '192.0.2.2/24');
  await own.addAddress(gw, 'veth1', '192.0.2.1/24');
  await own.addRoute(client, 'default', 'via', '192.0.2.1');
  const child = spawn(process.execPath, [CLI, 'watch', '--json', '--netns', client], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const events = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => events.push(JSON.parse(line)));
  const reachable = () => events.find((e) => e.type === 'neighbour' && e.state === 'reachable');
  // `watch` is live once its initial dump is done: until then a resolved entry goes unseen,
  // so flush and resolve again until it is printed.
  for (let i = 0; i < 40 && reachable() === undefined; i++) {
    await own.ip(client, 'neigh', 'flush', 'dev', 'veth0');
    await own.exec(client, 'ping', ['-c1', '-W1', '192.0.2.1']);
    const deadline = Date.now() + 250;
    while (reachable() === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const event = reachable();
  t.truthy(event, `saw ${JSON.stringify(events)}`);
  t.deepEqual(Object.keys(event), ['type', 'action', 'ifindex', 'family', 'address', 'state', 'monotonicNs', 'via']);
  t.like(event, { action: 'changed', family: 4, address: '192.0.2.1', via: 'netlink' });
  t.regex(event.monotonicNs, /^\d+$/);
  const exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.is(await exit, 0);
});

test('without capabilities: exit 77 naming the capability, no stack trace', async (t) => {
  for (const args of [['links', '--netns', ns], ['watch', '--netns', ns, '--json']]) {
    const result = await runCli(args, NO_CAPS);
    t.is(result.code, 77, args.join(' '));
    t.regex(result.stderr, /needs CAP_SYS_ADMIN/);
    t.notRegex(result.stderr, /\n\s+at /);
    t.is(result.stdout, '');
  }
});

test('usage errors exit 2 with the reason', async (t) => {
  const interval = await runCli(['watch', '--carrier-sync-interval', '2']);
  t.is(interval.code, 2);
  t.regex(interval.stderr, /--carrier-sync-interval must be between 5 and 60000, got 2/);
  const unknown = await runCli(['frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command 'frobnicate'/);
});

test('options before `sockets kill` count: --netns is honoured, never dropped to act here', async (t) => {
  // A namespace that does not exist: if --netns were dropped, kill would run in this one.
  const missing = await runCli(['sockets', '--netns', 'nh-no-such-ns', 'kill', '--all', '--dry-run']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no network namespace named nh-no-such-ns/);
  const dry = await runCli(['sockets', '--netns', ns, '--json', 'kill', '--sport', '1', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.like(JSON.parse(dry.stdout), { matched: 0, destroyed: 0 });
});
