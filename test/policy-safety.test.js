// @ts-check
'use strict';
// The engine's safety state on a FakeClock: what exportSafety()/restoreSafety() carry from
// one engine to the next (a reload, a restart), and a property test that no flap pattern
// gets more ladder climbs than flap damping admits. Pure; no kernel.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fc = require('fast-check');
const { FakeClock } = require('../lib/policy/clock');
const { PolicyEngine } = require('../lib/policy/engine');

const DAMPING = { penaltyPerFlap: 1000, halfLifeMs: 3000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 20000 };

/** An engine watching eth0 with a ladder of actions that never heal. */
function engineOn(clock, overrides = {}, carried = undefined) {
  const ran = [];
  /** @type {import('../lib/policy/actions').ActionExecutor[]} */
  const actions = ['a', 'b'].map((kind) => ({ kind, async run() { ran.push({ kind, at: clock.now() }); return { status: 'ok' }; } }));
  const engine = new PolicyEngine({
    clock, actions, random: () => 0.999, carried,
    config: {
      graceMs: 0,
      interfaces: {
        eth0: {
          ladder: ['a', 'b'], verifyTimeoutMs: 200, budget: { maxActions: 1000, windowMs: 3_600_000 },
          backoff: { initialMs: 10000, maxMs: 60000, multiplier: 2, resetAfterMs: 60000 }, damping: DAMPING, ...overrides,
        },
      },
    },
  });
  return { engine, ran };
}

/** @param {boolean} up @returns {import('../lib/policy/evidence').Evidence} */
const carrier = (up) => ({ kind: 'carrier', iface: 'eth0', up, adminUp: true });
/** @param {boolean} up @returns {import('../lib/policy/evidence').Evidence} */
const group = (up) => ({ kind: 'probe-group', iface: 'eth0', group: 'gw', up });

test('the carried option carries the budget spent, a suppression and the backoff from one engine to the next', async (t) => {
  const clock = new FakeClock();
  const first = engineOn(clock, { budget: { maxActions: 5, windowMs: 60000 } });
  first.engine.observe(carrier(true));
  // Three quick flaps: two climbs, then suppressed.
  for (let i = 0; i < 3; i++) {
    first.engine.observe(carrier(false));
    await clock.advance(10);
    first.engine.observe(carrier(true));
    await clock.advance(10);
  }
  first.engine.observe(carrier(false));
  await clock.advance(1);
  const before = first.engine.snapshot().interfaces.eth0;
  t.true(before.damping.suppressed, 'the storm is suppressed');
  const spent = before.budget.maxActions - before.budget.remaining;
  t.true(spent > 0, 'actions were spent');
  const carried = JSON.parse(JSON.stringify(first.engine.exportSafety()));
  first.engine.close();

  // 500 ms later a new engine (a reload or restart) takes over.
  await clock.advance(400);
  const second = engineOn(clock, { budget: { maxActions: 5, windowMs: 60000 } }, { safety: carried, elapsedMs: 100 });
  second.engine.observe(carrier(false));
  second.engine.restoreBaselines(carried);
  await clock.advance(1);
  const after = second.engine.snapshot().interfaces.eth0;
  t.is(after.budget.remaining, before.budget.remaining, 'the budget spent still counts');
  t.true(after.damping.suppressed, 'still suppressed');
  // (The new engine's first evidence, the carrier down, is one more flap: never earlier.)
  t.true(/** @type {number} */ (after.damping.suppressedUntilMs) >= /** @type {number} */ (before.damping.suppressedUntilMs), 'until no earlier');
  t.true(after.damping.flaps >= before.damping.flaps);
  t.is(after.attempts, before.attempts, 'backoff attempts carried');
  t.is(second.ran.length, 0, 'the new engine does not act while the carried suppression lasts');
  // The budget's window rolls on from the original actions, not from the restore.
  await clock.advance(60000);
  t.is(second.engine.snapshot().interfaces.eth0.budget.remaining >= 5 - second.ran.length, true);
  second.engine.close();
});

test('restoreBaselines: a baseline address missing at the restart is a fault, not a flap; a renumbered family is no loss', async (t) => {
  const clock = new FakeClock();
  const { engine } = engineOn(clock);
  engine.observe(carrier(true));
  engine.observe({ kind: 'address', iface: 'eth0', present: true, address: '2001:db8::5', family: 6, prefixlen: 64 });
  engine.observe({ kind: 'address', iface: 'eth0', present: true, address: '192.0.2.99', family: 4, prefixlen: 24 });
  t.is(engine.stateOf('eth0'), 'healthy');
  engine.restoreBaselines({
    interfaces: {
      eth0: {
        budgetSpentAgoMs: [], damping: { penalty: 0, updatedAgoMs: 0, suppressedForMs: null, flaps: 0 }, backoffAttempts: 0, totalActions: 0,
        // 192.0.2.2 was renumbered to .99 meanwhile; 2001:db8::7 was lost.
        baselineAddresses: ['192.0.2.2', '2001:db8::5', '2001:db8::7'],
      },
    },
  });
  await clock.advance(1);
  const status = engine.snapshot().interfaces.eth0;
  t.is(status.state === 'down' || status.state === 'recovering', true, status.state);
  t.deepEqual(status.reasons.filter((r) => r.startsWith('address-missing')), ['address-missing:2001:db8::7']);
  t.is(status.fault?.class, 'local-config');
  t.is(status.damping.flaps, 0, 'the fault was there before the restart: no flap');
  engine.close();
});

// A storm script: carrier and probe-group transitions at random gaps. `down` periods are
// short (the storm's own pace), so backoff (10 s, jitter pinned near the ceiling) never
// allows a repeat climb inside one; every climb must come from a flap damping admitted.
const stormArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 1500 }), fc.constantFrom('carrier-down', 'carrier-up', 'group-down', 'group-up')), { minLength: 1, maxLength: 80 });

test('no flap pattern gets more climbs than damping admits; every carrier loss counts, also while already down', async (t) => {
  await fc.assert(fc.asyncProperty(stormArb, async (script) => {
    const clock = new FakeClock();
    const { engine } = engineOn(clock);
    const climbs = [];
    engine.on('action', (e) => { if (e.step === 1) climbs.push(e.startedAtMs); });
    engine.observe(carrier(true));
    engine.observe(group(true));
    let carrierUp = true;
    let groupUp = true;
    let carrierLosses = 0;
    let groupLosses = 0;
    let admitted = 0;
    let flaps = 0;
    let lastDown = 0;
    let longestDown = 0;
    let downSince = null;
    for (const [gap, what] of script) {
      await clock.advance(gap);
      if (what === 'carrier-down' && carrierUp) { carrierUp = false; carrierLosses++; }
      if (what === 'carrier-up') carrierUp = true;
      if (what === 'group-down' && groupUp) { groupUp = false; groupLosses++; }
      if (what === 'group-up') groupUp = true;
      engine.observe(what.startsWith('carrier') ? carrier(what === 'carrier-up') : group(what === 'group-up'));
      const bad = !carrierUp || !groupUp;
      if (bad && downSince === null) downSince = clock.now();
      if (!bad && downSince !== null) { longestDown = Math.max(longestDown, clock.now() - downSince); downSince = null; }
      const d = engine.snapshot().interfaces.eth0.damping;
      if (d.flaps > flaps) {
        flaps = d.flaps;
        if (!d.suppressed) admitted++;
      }
      lastDown = bad ? clock.now() : lastDown;
    }
    // End the storm healthy and let everything settle.
    engine.observe(carrier(true));
    engine.observe(group(true));
    await clock.advance(120000);
    const final = engine.snapshot().interfaces.eth0;
    engine.close();
    await clock.flush();
    // Every carrier loss is a flap, also one while a dead probe group kept the interface
    // down; one incident is never two (no more flaps than losses of either kind).
    if (final.damping.flaps < carrierLosses) return false;
    if (final.damping.flaps > carrierLosses + groupLosses) return false;
    // A repeat climb inside one down period needs the 10 s backoff: only long periods have one.
    const repeats = longestDown >= 9990 ? Math.ceil(longestDown / 9990) * script.length : 0;
    // An admitted flap starts one climb for its class, and at most one more for the class it
    // leaves behind (a probe group still dead once the carrier is back).
    return climbs.length <= 2 * admitted + repeats;
  }), { numRuns: 300 });
  t.pass();
});
