// @ts-check
// `netheal links --json` against `ip -j -d link show` and `ip -j addr` in the same namespace,
// for a mix of device kinds and states.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { Lab } = require('../lib/lab/lab');

const run = promisify(execFile);
const CLI = require.resolve('../lib/cli.js');

let lab;
let ns;
test.before(async () => {
  lab = Lab.create();
  ns = await lab.addNamespace('links');
  const far = await lab.addNamespace('far');
  await lab.addVeth({ ns, name: 'veth0' }, { ns: far, name: 'veth1' });
  await lab.addVeth({ ns, name: 'port0' }, { ns, name: 'port1' });
  await lab.ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
  await lab.ip(ns, 'link', 'set', 'port0', 'master', 'br0');
  await lab.ip(ns, 'link', 'set', 'br0', 'up');
  await lab.addAddress(ns, 'br0', '198.51.100.1/24');
  await lab.addAddress(ns, 'veth0', '192.0.2.1/24');
  await lab.addAddress(ns, 'veth0', '2001:db8:1::1/64');
  await lab.ip(ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'local', '192.0.2.1', 'dev', 'veth0');
  await lab.ip(ns, 'link', 'add', 'mv0', 'link', 'veth0', 'type', 'macvlan', 'mode', 'bridge');
  await lab.setLink(ns, 'mv0', true);
  await lab.addTap(ns, 'tap0');
  await lab.addTap(ns, 'tap1');
  // tap1 loses carrier like a NIC whose cable is pulled; vx0 stays admin down.
  (await lab.addTap(ns, 'tap2')).setCarrier(false);
  await lab.carrierLoss({ ns: far, name: 'veth1' });
  await lab.ip(ns, 'link', 'set', 'tap1', 'name', 'renamed1');
});
test.after.always(async () => {
  await lab?.destroy();
});

function ipView(links, addresses) {
  const byIndex = new Map(addresses.map((a) => [a.ifindex, a]));
  return links.map((l) => {
    const flags = new Set(l.flags);
    const addr = byIndex.get(l.ifindex);
    return {
      ifindex: l.ifindex,
      name: l.ifname,
      kind: l.linkinfo?.info_kind ?? null,
      adminUp: flags.has('UP'),
      carrier: flags.has('LOWER_UP'),
      operstate: l.operstate.toLowerCase(),
      mtu: l.mtu,
      mac: l.address ?? null,
      master: l.master === undefined ? null : links.find((m) => m.ifname === l.master).ifindex,
      addresses: (addr?.addr_info ?? []).map((a) => ({ family: a.family === 'inet' ? 4 : 6, address: a.local, prefixlen: a.prefixlen }))
        .sort((x, y) => `${x.family}${x.address}`.localeCompare(`${y.family}${y.address}`)),
    };
  });
}

test('links --json matches ip -j -d link and ip -j addr', async (t) => {
  const sortAddresses = (l) => ({
    ...l,
    addresses: [...l.addresses].sort((x, y) => `${x.family}${x.address}`.localeCompare(`${y.family}${y.address}`)),
  });
  // IPv6 link-local addresses appear asynchronously after a link comes up: while the
  // namespace settles the two reads may straddle a change, so compare a few times.
  let ours;
  let theirs;
  for (let attempt = 0; attempt < 10; attempt++) {
    const [{ stdout }, ipLinks, ipAddrs] = await Promise.all([
      run(process.execPath, [CLI, 'links', '--json', '--netns', ns]),
      lab.ipJson(ns, '-d', 'link', 'show'),
      lab.ipJson(ns, 'addr', 'show'),
    ]);
    ours = JSON.parse(stdout).map(sortAddresses);
    theirs = ipView(ipLinks, ipAddrs);
    if (JSON.stringify(ours) === JSON.stringify(theirs)) break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  t.deepEqual(ours, theirs);
  const names = ours.map((l) => l.name);
  for (const name of ['lo', 'veth0', 'port0', 'port1', 'br0', 'vx0', 'mv0', 'tap0', 'renamed1', 'tap2']) t.true(names.includes(name), name);
  const byName = Object.fromEntries(ours.map((l) => [l.name, l]));
  t.is(byName.veth0.carrier, false, 'far end down: no carrier');
  t.is(byName.veth0.operstate, 'down', 'veth reports down when its peer is down');
  t.is(byName.vx0.adminUp, false);
  t.is(byName.port0.master, byName.br0.ifindex);
  t.is(byName.tap2.carrier, false);
  t.is(byName.tap0.kind, 'tun', 'ip -d names a tap device "tun"');
  t.is(byName.mv0.kind, 'macvlan');
});

test('links without --json prints a table', async (t) => {
  const { stdout } = await run(process.execPath, [CLI, 'links', '--netns', ns]);
  const lines = stdout.trim().split('\n');
  t.regex(lines[0], /^IFINDEX\s+NAME\s+KIND/);
  t.true(lines.some((l) => /\bveth0\s+veth\s+up\s+no\s+down\b/.test(l)), stdout);
  t.true(lines.some((l) => l.includes('192.0.2.1/24')));
});

test('a missing namespace is a clear error with exit 1, a bad flag exit 2', async (t) => {
  const missing = await run(process.execPath, [CLI, 'links', '--netns', 'nh-no-such-ns']).catch((e) => e);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no network namespace named nh-no-such-ns/);
  t.notRegex(missing.stderr, /\n\s+at /, 'no stack trace');
  const bad = await run(process.execPath, [CLI, 'links', '--bogus']).catch((e) => e);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /unknown option '--bogus'/);
});
