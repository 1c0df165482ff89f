// @ts-check
// The LinkMonitor's JIT warm-up (src/monitor/warm-up.ts) runs synthetic notifications through
// a throwaway monitor: nothing of it may reach a real monitor's listeners or table, close()
// cancels it without leaving a handle, and real events afterwards decode as before. A file of
// its own, because the warm-up happens once per process.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { Lab } = require('../lib/lab/lab');
const { LinkMonitor } = require('../lib/monitor/link-monitor');
const { WARM_UP_IFINDEX } = require('../lib/monitor/warm-up');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Lets the warm-up run `n` more slices if it is still scheduled. Each slice is a 1 ms timer,
 * and Node runs the timers of one duration in the order they were created: a 1 ms timer
 * made now fires after the pending slice, and before the slice that one schedules. So this
 * counts turns, not milliseconds, and holds however loaded the machine is.
 */
async function sliceTurns(n) {
  for (let i = 0; i < n; i++) await sleep(1);
}

/** Waits up to 5 s for the process-wide warm-up to finish; the caller asserts the state. */
async function warmUpDone() {
  const started = Date.now();
  while (LinkMonitor.warmUpState !== 'done' && Date.now() - started < 5000) await sleep(20);
}

test.serial('close() during the warm-up hands it to the next monitor', async (t) => {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('warm1');
  t.is(LinkMonitor.warmUpState, 'cold');
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false });
  await monitor.start();
  t.is(LinkMonitor.warmUpState, 'running', 'start() begins the warm-up');
  await sliceTurns(1); // the first slice has run: close() lands in the middle
  t.is(LinkMonitor.warmUpState, 'running', 'one slice does not finish it');
  monitor.close();
  t.is(LinkMonitor.warmUpState, 'cold', 'the next monitor warms up instead');
  // More turns than the whole warm-up has slices: had close() left a slice scheduled, it
  // would have finished by now.
  await sliceTurns(20);
  t.is(LinkMonitor.warmUpState, 'cold', 'and stays so: the closed monitor does not finish it');
  // The next monitor does it.
  const next = new LinkMonitor({ netns: ns, carrierSync: false });
  const events = [];
  next.on('event', (event) => events.push(event));
  await next.start();
  await warmUpDone();
  t.is(LinkMonitor.warmUpState, 'done', 'the next monitor warmed up, in well under 5 s');
  // Nothing of it reached the monitor's listeners or table (the namespace is still).
  t.deepEqual(events, [], 'no synthetic event reached a listener');
  t.false(next.linkTable().some((l) => l.ifindex === WARM_UP_IFINDEX || l.name === 'netheal-warm'), 'no synthetic device in the table');
  t.deepEqual(next.defaultRoutes(), [], 'no synthetic default route');
  next.close();
});

test.serial('the warm-up stays inside the throwaway monitor; real events follow unchanged', async (t) => {
  const lab = Lab.create();
  t.teardown(() => lab.destroy());
  const ns = await lab.addNamespace('warm2');
  const far = await lab.addNamespace('warm2far');
  await lab.addVeth({ ns, name: 'w0' }, { ns: far, name: 'w1' });
  // The pair's own carrier-up comes later (linkwatch): wait for it, so that the only carrier
  // change the monitor sees is the one this test makes.
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(10)) {
    const [w0] = /** @type {Array<{flags: string[]}>} */ (await lab.ipJson(ns, 'link', 'show', 'w0'));
    if (w0.flags.includes('LOWER_UP')) break;
  }
  const monitor = new LinkMonitor({ netns: ns, carrierSync: false });
  t.teardown(() => monitor.close());
  const events = [];
  monitor.on('event', (event) => events.push(event));
  await monitor.start();
  await warmUpDone();
  t.is(LinkMonitor.warmUpState, 'done', 'warm-up finished within 5 s');
  t.deepEqual(events.filter((e) => e.ifindex === WARM_UP_IFINDEX || e.link?.ifindex === WARM_UP_IFINDEX), [], 'no synthetic event reached a listener');
  t.false(monitor.linkTable().some((l) => l.ifindex === WARM_UP_IFINDEX || l.name === 'netheal-warm'), 'no synthetic device in the table');
  t.deepEqual(monitor.defaultRoutes(), [], 'no synthetic default route');

  // A real carrier loss and address change afterwards, with the fields `ip` shows.
  await lab.ip(far, 'link', 'set', 'w1', 'down');
  const deadline = Date.now() + 20_000; // against a hang only
  while (!events.some((e) => e.type === 'link' && e.link.name === 'w0' && e.link.carrier === false) && Date.now() < deadline) await sleep(10);
  const loss = events.find((e) => e.type === 'link' && e.link.name === 'w0' && e.link.carrier === false);
  t.truthy(loss, 'carrier loss seen');
  t.true(loss.changed.includes('carrier'));
  t.is(loss.link.kind, 'veth');
  t.is(loss.via, 'netlink');
  const [shown] = /** @type {Array<{ifindex: number, address: string, mtu: number}>} */ (await lab.ipJson(ns, '-d', 'link', 'show', 'w0'));
  t.is(loss.link.ifindex, shown.ifindex);
  t.is(loss.link.mac, shown.address);
  t.is(loss.link.mtu, shown.mtu);
  await lab.addAddress(ns, 'w0', '198.51.100.9/24');
  while (!events.some((e) => e.type === 'address' && e.address === '198.51.100.9') && Date.now() < deadline) await sleep(10);
  const added = events.find((e) => e.type === 'address' && e.address === '198.51.100.9');
  t.like(added, { action: 'added', ifindex: shown.ifindex, family: 4, prefixlen: 24 });
});
