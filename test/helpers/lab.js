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
