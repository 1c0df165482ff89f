// @ts-check
// Shared test topology: a `client` namespace whose up0 (192.0.2.2/24, default route via
// 192.0.2.1) is joined by a veth to a `router` namespace's down0 (192.0.2.1/24). The lab is
// destroyed when the test ends.
'use strict';
const { Lab } = require('../../lib/lab/lab');

async function clientRouter(t, { extraRoutes = [] } = {}) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const client = await lab.addNamespace('client');
  const router = await lab.addNamespace('router');
  await lab.addVeth({ ns: client, name: 'up0' }, { ns: router, name: 'down0' });
  await lab.addAddress(client, 'up0', '192.0.2.2/24');
  await lab.addAddress(router, 'down0', '192.0.2.1/24');
  await lab.addRoute(client, 'default', 'via', '192.0.2.1');
  for (const route of extraRoutes) await lab.addRoute(client, ...route);
  return { lab, client, router };
}

module.exports = { clientRouter };

// A dual-stack client/router pair for the ICMP tests: client eth0 10.N.0.2/24 + fdNN::2/64,
// router rt0 10.N.0.1/24 + fdNN::1/64 with forwarding, IPv4 default route via the router.
// Options: v6Default (also an IPv6 default route), noRateLimit (router sends every ICMP
// error: 'v4' or 'both'), routerLo (extra addresses on the router's lo).
async function dualStackPair(t, { net, v6Default = false, noRateLimit = null, routerLo = [] }) {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const c = await lab.addNamespace('client');
  const r = await lab.addNamespace('router');
  const hex = String(net).padStart(2, '0');
  await lab.addVeth({ ns: c, name: 'eth0' }, { ns: r, name: 'rt0' });
  await lab.addAddress(c, 'eth0', `10.${net}.0.2/24`);
  await lab.addAddress(r, 'rt0', `10.${net}.0.1/24`);
  await lab.addAddress(c, 'eth0', `fd${hex}::2/64`);
  await lab.addAddress(r, 'rt0', `fd${hex}::1/64`);
  for (const cidr of routerLo) await lab.addAddress(r, 'lo', cidr);
  await lab.addRoute(c, 'default', 'via', `10.${net}.0.1`);
  if (v6Default) await lab.addRoute(c, 'default', 'via', `fd${hex}::1`);
  await lab.enableForwarding(r);
  if (noRateLimit !== null) {
    await lab.exec(r, 'sysctl', ['-qw', 'net.ipv4.icmp_ratelimit=0', ...(noRateLimit === 'both' ? ['net.ipv6.icmp.ratelimit=0'] : [])]);
  }
  return { lab, c, r, netns: Lab.path(c) };
}

module.exports.dualStackPair = dualStackPair;
