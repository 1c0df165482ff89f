/**
 * A host with two ways out, for uplink failover (tests, benchmarks): the client's up0
 * (192.0.2.2/24) reaches router r1 (192.0.2.1), its up1 (198.51.100.2/24) router r2
 * (198.51.100.1); both routers forward to a far namespace that holds 203.0.113.10. Each
 * router drops what does not come from its own customers' addresses (rp_filter, BCP 38), so
 * a connection whose source belongs to one uplink cannot leave through the other. The
 * managers' default routes: via r1 at metric 100, via r2 at metric 200.
 */
import { Lab } from './lab';

/** The far server's address. */
export const FAR_SERVER = '203.0.113.10';

/** The namespaces of {@link addTwoUplinks}. */
export interface TwoUplinks {
  client: string;
  r1: string;
  r2: string;
  far: string;
}

/** Builds the two-uplink topology in `lab`. */
export async function addTwoUplinks(lab: Lab): Promise<TwoUplinks> {
  const client = await lab.addNamespace('client');
  const r1 = await lab.addNamespace('r1');
  const r2 = await lab.addNamespace('r2');
  const far = await lab.addNamespace('far');
  await lab.addVeth({ ns: client, name: 'up0' }, { ns: r1, name: 'down0' });
  await lab.addVeth({ ns: client, name: 'up1' }, { ns: r2, name: 'down1' });
  await lab.addVeth({ ns: r1, name: 'core1' }, { ns: far, name: 'f1' });
  await lab.addVeth({ ns: r2, name: 'core2' }, { ns: far, name: 'f2' });
  await lab.addAddress(client, 'up0', '192.0.2.2/24');
  await lab.addAddress(r1, 'down0', '192.0.2.1/24');
  await lab.addAddress(client, 'up1', '198.51.100.2/24');
  await lab.addAddress(r2, 'down1', '198.51.100.1/24');
  await lab.addAddress(r1, 'core1', '10.1.0.1/24');
  await lab.addAddress(far, 'f1', '10.1.0.2/24');
  await lab.addAddress(r2, 'core2', '10.2.0.1/24');
  await lab.addAddress(far, 'f2', '10.2.0.2/24');
  await lab.addAddress(far, 'lo', `${FAR_SERVER}/32`);
  for (const [ns, via, customers] of [[r1, '10.1.0.2', 'down0'], [r2, '10.2.0.2', 'down1']] as const) {
    await lab.enableForwarding(ns);
    await lab.addRoute(ns, `${FAR_SERVER}/32`, 'via', via);
    await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.default.rp_filter=1', `net.ipv4.conf.${customers}.rp_filter=1`]);
  }
  await lab.addRoute(far, '192.0.2.0/24', 'via', '10.1.0.1');
  await lab.addRoute(far, '198.51.100.0/24', 'via', '10.2.0.1');
  await lab.addRoute(client, 'default', 'via', '192.0.2.1', 'dev', 'up0', 'metric', '100');
  await lab.addRoute(client, 'default', 'via', '198.51.100.1', 'dev', 'up1', 'metric', '200');
  return { client, r1, r2, far };
}
