// @ts-check
'use strict';
// The choice of uplink on a FakeClock: failover at once, fail-back only after the hold-up and
// never to a flapping primary, no switch when nothing is healthy. Pure; no kernel.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fc = require('fast-check');
const { FakeClock } = require('../lib/policy/clock');
const { UplinkSelector } = require('../lib/policy/uplinks');

const DAMPING = { penaltyPerFlap: 1000, halfLifeMs: 60000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 600000 };

function selector(clock, names = ['a', 'b', 'c'], holdUpMs = 1000, initial = undefined) {
  /** @type {any[]} */
  const changes = [];
  const s = new UplinkSelector(names, { holdUpMs, damping: DAMPING, clock, onChange: (c) => changes.push(c) }, initial);
  return { s, changes };
}

test('starts on the preferred uplink, fails over at once to the next healthy one', (t) => {
  const clock = new FakeClock();
  const { s, changes } = selector(clock);
  t.is(s.inUse, 'a');
  s.setHealth('b', false);
  t.is(s.inUse, 'a', 'a backup failing changes nothing');
  s.setHealth('a', false);
  t.is(s.inUse, 'c', 'the most preferred healthy one');
  t.deepEqual(changes.map((c) => [c.from, c.to, c.reason]), [[null, 'a', 'start'], ['a', 'c', 'failover']]);
});

test('fails back only after the preferred uplink stayed healthy for the hold-up', async (t) => {
  const clock = new FakeClock();
  const { s, changes } = selector(clock);
  s.setHealth('a', false);
  t.is(s.inUse, 'b');
  await clock.advance(100);
  s.setHealth('a', true);
  await clock.advance(999);
  t.is(s.inUse, 'b');
  s.setHealth('a', false);
  s.setHealth('a', true);
  await clock.advance(999);
  t.is(s.inUse, 'b', 'a relapse restarts the hold-up');
  await clock.advance(1);
  t.is(s.inUse, 'a');
  t.is(changes.at(-1).reason, 'failback');
});

test('with nothing healthy the route stays where it is', (t) => {
  const clock = new FakeClock();
  const { s, changes } = selector(clock, ['a', 'b']);
  s.setHealth('a', false);
  s.setHealth('b', false);
  t.is(s.inUse, 'b');
  s.setHealth('a', true);
  t.is(s.inUse, 'a', 'the first to work again takes over at once (the one in use is dead)');
  t.is(changes.length, 3);
});

test('a flapping primary is not failed back to while its damping suppresses it', async (t) => {
  const clock = new FakeClock();
  const { s } = selector(clock, ['a', 'b'], 100);
  for (let i = 0; i < 3; i++) {
    s.setHealth('a', false);
    await clock.advance(10);
    s.setHealth('a', true);
    await clock.advance(10);
  }
  await clock.advance(5000);
  t.is(s.inUse, 'b', 'three failures in a minute: suppressed, traffic stays on the backup');
});

test('a reload begins on the uplink in use before it, and fails back after the hold-up', async (t) => {
  const clock = new FakeClock();
  const { s, changes } = selector(clock, ['a', 'b'], 1000, 'b');
  t.is(s.inUse, 'b');
  await clock.advance(1000);
  t.is(s.inUse, 'a');
  t.deepEqual(changes.map((c) => c.reason), ['start', 'failback']);
});

test('property: the uplink in use is healthy whenever any is, and no change ever goes to an unhealthy one', async (t) => {
  const step = fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.constantFrom('a', 'b', 'c'), fc.boolean());
  await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (script) => {
    const clock = new FakeClock();
    const health = { a: true, b: true, c: true };
    const { s, changes } = selector(clock);
    for (const [gap, name, up] of script) {
      await clock.advance(gap);
      s.setHealth(name, up);
      health[name] = up;
      if (Object.values(health).some(Boolean) && !health[s.inUse]) return false;
    }
    await clock.advance(10_000_000);
    if (Object.values(health).some(Boolean) && !health[s.inUse]) return false;
    s.close();
    return changes.every((c, i) => i === 0 || c.from === changes[i - 1].to);
  }), { numRuns: 300 });
  t.pass();
});
