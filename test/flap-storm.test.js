// @ts-check
// A real carrier storm for 60 s (the far end set down and up every ~12 ms, ~40 Hz) against
// the daemon with its default ladder, damping and budget, probing its gateway: every carrier
// loss the daemon sees counts as a flap, also while the probes keep the interface down;
// damping suppresses within the first flaps; nothing disruptive runs and the budget is
// untouched, so a real failure after the storm still has all of it. Once the storm stops
// the interface comes back healthy without an action.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const os = require('node:os');
const { clientRouter } = require('./helpers/lab');
const { Lab } = require('../lib/lab/lab');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');
const { LinkControl } = require('../lib/kernel/link-control');

const STORM_MS = 60000;

test('a 60 s carrier storm: every loss is a flap, suppressed at once, no action, the budget untouched', async (t) => {
  t.timeout(120000);
  const { client, router } = await clientRouter(t);
  const daemon = new Daemon({
    config: validateConfig({
      netns: Lab.path(client), policy: { graceMs: 0 },
      interfaces: { up0: { probe: { targets: ['gateway'], intervalMs: 100, timeoutMs: 100 } } },
      managers: { networkScriptsDir: os.tmpdir() },
    }),
    logger: createLogger({ format: 'json', minLevel: 'error', write: () => {} }),
  });
  t.teardown(() => daemon.stop());
  /** @type {any[]} */
  const events = [];
  for (const type of ['health', 'action', 'alert', 'recovered']) /** @type {import('node:events').EventEmitter} */ (daemon).on(type, (e) => events.push({ type, ...e }));
  let losses = 0;
  daemon.on('monitor', (e) => { if (e.type === 'link' && e.link.name === 'up0' && e.changed.includes('carrier') && !e.link.carrier) losses++; });
  await daemon.start();

  const control = new LinkControl({ netns: router });
  t.teardown(() => control.close());
  const stormEnd = Date.now() + STORM_MS;
  let cycles = 0;
  while (Date.now() < stormEnd) {
    await control.setAdmin('down0', false);
    await new Promise((resolve) => setTimeout(resolve, 12));
    await control.setAdmin('down0', true);
    await new Promise((resolve) => setTimeout(resolve, 12));
    cycles++;
  }
  const during = /** @type {any} */ (daemon.snapshot()).interfaces.up0;
  // (`losses`: carrier losses as the daemon saw them; the kernel's linkwatch may merge a few.)
  t.log(`${cycles} down/up cycles sent, ${losses} carrier losses seen, ${during.damping.flaps} flaps counted, penalty ${Math.round(during.damping.penalty)}`);
  t.true(losses > 100, `the storm reached the daemon (${losses} losses)`);
  t.true(during.damping.flaps >= losses, `every carrier loss counts (${during.damping.flaps} flaps for ${losses} losses)`);
  t.true(during.damping.suppressed, 'suppressed at the end of the storm');
  const suppressed = events.filter((e) => e.type === 'alert' && e.reason === 'suppressed');
  t.true(suppressed.length >= 1);
  const ran = events.filter((e) => e.type === 'action' && e.result.status !== 'skipped');
  t.deepEqual(ran.map((e) => `${e.kind}:${e.result.status}`), [], `nothing ran: ${JSON.stringify(ran.map((e) => [e.kind, e.result.detail, e.startedAtMs]))}; ${JSON.stringify(events.filter((e) => e.type === 'health').slice(0, 12).map((e) => [e.to, e.reasons.join(',')]))}`);
  t.is(during.budget.remaining, during.budget.maxActions, 'the whole budget is left for a real failure');

  // The storm is over and the link stays up: healthy again, nothing credited.
  await new Promise((resolve, reject) => {
    const deadline = Date.now() + 15000;
    const check = () => {
      if (daemon.snapshot()?.interfaces.up0?.state === 'healthy') return resolve(undefined);
      if (Date.now() > deadline) return reject(new Error(`not healthy after the storm: ${JSON.stringify(daemon.snapshot()?.interfaces.up0?.reasons)}`));
      setTimeout(check, 50);
    };
    check();
  });
  const recovered = events.filter((e) => e.type === 'recovered');
  t.true(recovered.every((e) => e.by === 'without-action'), JSON.stringify(recovered));
});
