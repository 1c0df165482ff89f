'use strict';
// The probe benchmarks' lab: a client and a router joined by a veth (client eth0, router rt0),
// and many probe targets, each a /32 on the router's lo, routed from the client via the router.
const { ipBatch } = require('./processes');

/**
 * @param {import('../../lib/lab/lab').Lab} lab
 * @param {{ link: string, targetsRoute: string, targets: string[] }} options
 *   link: the veth's /24 as three octets (client .2, router .1); targetsRoute: the prefix that
 *   holds the targets.
 */
async function clientAndTargets(lab, { link, targetsRoute, targets }) {
  const client = await lab.addNamespace('client');
  const router = await lab.addNamespace('router');
  await lab.addVeth({ ns: client, name: 'eth0' }, { ns: router, name: 'rt0' });
  await lab.addAddress(client, 'eth0', `${link}.2/24`);
  await lab.addAddress(router, 'rt0', `${link}.1/24`);
  await lab.addRoute(client, targetsRoute, 'via', `${link}.1`);
  await ipBatch(router, targets.map((a) => `addr add ${a}/32 dev lo`));
  return { client, router };
}

module.exports = { clientAndTargets };
