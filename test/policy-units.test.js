// @ts-check
'use strict';
// Unit tests of the policy building blocks: FakeClock, Backoff, FlapDamper, ActionBudget,
// config resolution and evidence mapping. Pure; no kernel.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const {
  FakeClock, seededRandom, systemClock,
} = require('../lib/policy/clock');
const { Backoff } = require('../lib/policy/backoff');
const { FlapDamper } = require('../lib/policy/damping');
const { ActionBudget } = require('../lib/policy/budget');
const config = require('../lib/policy/config');
const { evidenceFromMonitorEvent } = require('../lib/policy/evidence');
const { InterfaceEvidence, judge } = require('../lib/policy/health');
const { actionEnvironment } = require('../lib/policy/actions');
const policyIndex = require('../lib/index');

test('FakeClock fires timers in due order at their exact times, including timers set by timers', async (t) => {
  const clock = new FakeClock(100);
  const fired = [];
  clock.setTimeout(() => fired.push(['b', clock.now()]), 50);
  clock.setTimeout(() => {
    fired.push(['a', clock.now()]);
    clock.setTimeout(() => fired.push(['c', clock.now()]), 5);
  }, 20);
  clock.setTimeout(() => fired.push(['tie1', clock.now()]), 50);
  const cancelled = clock.setTimeout(() => fired.push(['never', clock.now()]), 10);
  clock.clearTimeout(cancelled);
  await clock.advance(40);
  t.deepEqual(fired, [['a', 120], ['c', 125]]);
  t.is(clock.now(), 140);
  await clock.advance(1000);
  t.deepEqual(fired, [['a', 120], ['c', 125], ['b', 150], ['tie1', 150]]);
  t.is(clock.now(), 1140);
  t.is(clock.pendingTimers, 0);
  await t.throwsAsync(() => clock.advanceTo(5), { instanceOf: RangeError });
});

test('FakeClock lets promise chains driven by timers progress between timers', async (t) => {
  const clock = new FakeClock();
  const sleep = (/** @type {number} */ ms) => new Promise((r) => clock.setTimeout(() => r(undefined), ms));
  const seen = [];
  (async () => {
    await sleep(10);
    seen.push(clock.now());
    await Promise.resolve();
    await sleep(10);
    seen.push(clock.now());
  })();
  await clock.advance(25);
  t.deepEqual(seen, [10, 20]);
});

test('systemClock is monotonic and its timers fire', async (t) => {
  const a = systemClock.now();
  await new Promise((r) => systemClock.setTimeout(() => r(undefined), 5));
  t.true(systemClock.now() - a >= 4);
  let fired = false;
  const h = systemClock.setTimeout(() => { fired = true; }, 1);
  systemClock.clearTimeout(h);
  await new Promise((r) => setTimeout(r, 10));
  t.false(fired);
});

test('seededRandom is deterministic and in [0, 1)', (t) => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  t.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
  t.true(xs.every((x) => x >= 0 && x < 1));
  t.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, seededRandom(43)));
});

test('Backoff: first attempt at once, then ceilings initial*multiplier^(n-1) capped at maxMs', (t) => {
  const b = new Backoff({ initialMs: 1000, maxMs: 5000, multiplier: 2, resetAfterMs: 0 }, () => 0.5);
  t.deepEqual([0, 1, 2, 3, 4, 5].map((n) => b.ceilingMs(n)), [0, 1000, 2000, 4000, 5000, 5000]);
  t.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [0, 500, 1000, 2000, 2500]);
  t.is(b.attempts, 5);
  b.reset();
  t.is(b.attempts, 0);
  t.is(b.next(), 0);
  t.is(b.next(), 500);
});

test('Backoff full jitter: delays are integers in [0, ceiling) and cover the range', (t) => {
  const random = seededRandom(7);
  const ceilings = [1000, 3000, 9000];
  const draws = ceilings.map(() => []);
  for (let i = 0; i < 2000; i++) {
    const b = new Backoff({ initialMs: 1000, maxMs: 9000, multiplier: 3, resetAfterMs: 0 }, random);
    t.is(b.next(), 0);
    for (let k = 0; k < 3; k++) draws[k].push(b.next());
  }
  draws.forEach((ds, k) => {
    t.true(ds.every((d) => Number.isInteger(d) && d >= 0 && d < ceilings[k]), `attempt ${k + 2}`);
    // Full jitter, not equal jitter: both the lowest and the highest tenth are hit.
    t.true(ds.some((d) => d < ceilings[k] * 0.1));
    t.true(ds.some((d) => d >= ceilings[k] * 0.9));
  });
  // Extremes of the random source.
  const lo = new Backoff({ initialMs: 1000, maxMs: 9000, multiplier: 2, resetAfterMs: 0 }, () => 0);
  lo.next();
  t.is(lo.next(), 0);
  const hi = new Backoff({ initialMs: 1000, maxMs: 9000, multiplier: 2, resetAfterMs: 0 }, () => 0.9999999999999999);
  hi.next();
  t.is(hi.next(), 999);
  const draw = new Backoff({ initialMs: 1000, maxMs: 9000, multiplier: 2, resetAfterMs: 0 }, () => 0.25);
  t.is(draw.draw(), 0);
  t.is(draw.attempts, 0, 'draw() does not count');
  draw.record();
  t.is(draw.draw(), 250);
});

const DAMP = { penaltyPerFlap: 1000, halfLifeMs: 1000, suppressThreshold: 2000, reuseThreshold: 500, maxSuppressMs: 10000 };

test('FlapDamper: penalty decays with the half-life', (t) => {
  const d = new FlapDamper(DAMP);
  t.is(d.penaltyAt(0), 0);
  t.is(d.flap(0).penalty, 1000);
  t.is(d.penaltyAt(1000), 500);
  t.is(d.penaltyAt(2000), 250);
  t.is(d.penaltyAt(3000), 125);
  const out = d.flap(1000);
  t.is(out.penalty, 1500);
  t.false(out.suppressed);
  t.is(out.suppressedUntilMs, null);
  t.is(d.flapCount, 2);
});

test('FlapDamper: suppress exactly at the threshold, reuse at the first ms at or below reuse', (t) => {
  const d = new FlapDamper(DAMP);
  d.flap(0);
  const at = d.flap(0); // 2000 >= 2000: suppressed
  t.is(at.penalty, 2000);
  t.true(at.suppressed);
  // 2000 -> 500 takes exactly two half-lives.
  t.is(at.suppressedUntilMs, 2000);
  t.true(d.isSuppressed(1999));
  t.false(d.isSuppressed(2000));
  t.is(d.suppressedUntil(2000), null);

  const below = new FlapDamper({ ...DAMP, suppressThreshold: 2000.001 });
  below.flap(0);
  t.false(below.flap(0).suppressed, 'just below the threshold is not suppressed');

  const e = new FlapDamper(DAMP);
  e.flap(0);
  e.flap(1000); // 1500
  const third = e.flap(1000); // 2500
  t.is(third.penalty, 2500);
  t.true(third.suppressed);
  const until = third.suppressedUntilMs;
  t.is(until, Math.ceil(1000 + 1000 * Math.log2(2500 / 500))); // 3322
  t.is(until, 3322);
  t.true(e.penaltyAt(until) <= 500);
  t.true(e.penaltyAt(until - 1) > 500);
  t.true(e.isSuppressed(3321));
  t.false(e.isSuppressed(3322));
});

test('FlapDamper: hysteresis (a flap while suppressed extends it) and the maxSuppressMs ceiling', (t) => {
  const d = new FlapDamper(DAMP);
  d.flap(0);
  d.flap(0);
  // At 1500 the penalty is 2000 * 2^-1.5 = 707 > reuse, still suppressed; a flap adds 1000.
  const again = d.flap(1500);
  t.true(again.suppressed);
  t.is(again.suppressedUntilMs, Math.ceil(1500 + 1000 * Math.log2((2000 * 2 ** -1.5 + 1000) / 500)));
  // Not suppressed, penalty between reuse and suppress: a flap that stays below suppress does not suppress.
  const h = new FlapDamper(DAMP);
  h.flap(0);
  t.false(h.flap(2000).suppressed); // 250 + 1000

  const c = new FlapDamper(DAMP);
  t.is(c.ceiling, 500 * 2 ** 10);
  let last;
  for (let i = 0; i < 1000; i++) last = c.flap(0);
  t.is(last.penalty, 512000);
  t.is(last.suppressedUntilMs, 10000, 'never longer than maxSuppressMs after the last flap');
});

test('ActionBudget: sliding window, exhaustion and roll-over at exact times', (t) => {
  const b = new ActionBudget({ maxActions: 3, windowMs: 1000 });
  t.is(b.remaining(0), 3);
  b.record(0);
  b.record(100);
  b.record(200);
  t.false(b.available(200));
  t.is(b.nextFreeAtMs(200), 1000);
  t.is(b.remaining(999), 0);
  t.is(b.remaining(1000), 1, 'the action at 0 leaves the window at 1000');
  t.is(b.nextFreeAtMs(1000), null);
  b.record(1000);
  t.is(b.nextFreeAtMs(1000), 1100);
  t.is(b.remaining(1199), 1, 'entries at 200 and 1000 in the window');
  t.is(b.remaining(1200), 2, 'the entry at 200 rolled out at 1200');
  b.refund(1000);
  t.is(b.remaining(1200), 3);
  const none = new ActionBudget({ maxActions: 0, windowMs: 1000 });
  t.is(none.nextFreeAtMs(0), Infinity);
});

test('config: defaults are exported and per-interface overrides merge field by field', (t) => {
  t.deepEqual(config.DEFAULT_BACKOFF, { initialMs: 1000, maxMs: 60000, multiplier: 2, resetAfterMs: 300000 });
  t.deepEqual(config.DEFAULT_DAMPING,
    { penaltyPerFlap: 1000, halfLifeMs: 300000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 1800000 });
  t.deepEqual(config.DEFAULT_BUDGET, { maxActions: 10, windowMs: 3600000 });
  t.is(config.DEFAULT_GRACE_MS, 30000);
  t.deepEqual([...config.DEFAULT_LADDER], ['link-up', 'repair', 'manager-reapply', 'kill-sockets', 'link-bounce', 'hook']);
  t.true(Object.isFrozen(config.DEFAULT_BACKOFF));
  const p = config.resolveInterfacePolicy({
    defaults: { backoff: { maxMs: 10000 }, verifyTimeoutMs: 2000 },
    interfaces: { eth0: { backoff: { initialMs: 50 }, ladder: ['kill-sockets', { action: 'hook', timeoutMs: 99 }] } },
  }, 'eth0');
  t.deepEqual(p.backoff, { initialMs: 50, maxMs: 10000, multiplier: 2, resetAfterMs: 300000 });
  t.deepEqual(p.ladder, [{ action: 'kill-sockets' }, { action: 'hook', timeoutMs: 99 }]);
  t.is(p.verifyTimeoutMs, 2000);
  t.deepEqual(p.downOn, ['carrier', 'address', 'default-route', 'probe-group']);
  const other = config.resolveInterfacePolicy({ interfaces: { eth0: { ladder: [] } } }, 'eth1');
  t.deepEqual(other.ladder.map((s) => s.action), ['link-up', 'repair', 'manager-reapply', 'kill-sockets', 'link-bounce', 'hook']);
});

test('config: invalid values are refused naming the field', (t) => {
  const e1 = /** @type {import('../lib/errors').NethealError} */ (t.throws(() => config.resolveInterfacePolicy({ interfaces: { eth0: { damping: { reuseThreshold: 3000 } } } }, 'eth0')));
  t.is(e1.code, 'NETHEAL_ERR_INVALID_OPTION');
  t.regex(e1.message, /^policy\.interfaces\.eth0\.damping\.reuseThreshold: must be below suppressThreshold/);
  const e2 = t.throws(() => config.validatePolicyConfig({ defaults: { budget: { maxActions: 1.5 } } }));
  t.regex(e2.message, /^policy\.defaults\.budget\.maxActions: must be a finite integer >= 0 \(got 1\.5\)/);
  const e3 = t.throws(() => config.validatePolicyConfig({ interfaces: { wan: { downOn: /** @type {any} */ (['carrier', 'probe']) } } }));
  t.regex(e3.message, /^policy\.interfaces\.wan\.downOn\[1\]: must be one of/);
  const e4 = t.throws(() => config.validatePolicyConfig({ graceMs: -1 }));
  t.regex(e4.message, /^policy\.graceMs:/);
  const e5 = t.throws(() => config.validatePolicyConfig({ interfaces: { x: { ladder: [{ action: '' }] } } }));
  t.regex(e5.message, /^policy\.interfaces\.x\.ladder\[0\]\.action:/);
  t.notThrows(() => config.validatePolicyConfig({ graceMs: 0 }));
});

test('health: a lost probe is only suspect; carrier, default route and group quorum are down', (t) => {
  const downOn = config.DEFAULT_DOWN_ON;
  const ev = new InterfaceEvidence();
  t.is(judge(ev.problems(downOn, [])), 'healthy');
  ev.apply({ kind: 'probe', target: '192.0.2.1', ok: false });
  t.deepEqual(ev.problems(downOn, []), { hard: [], soft: ['probe-target-down:192.0.2.1'] });
  t.is(judge(ev.problems(downOn, [])), 'suspect');
  ev.apply({ kind: 'probe-group', group: 'gw', up: false });
  t.is(judge(ev.problems(downOn, [])), 'down');
  t.deepEqual(ev.problems(['carrier'], []).hard, [], 'probe-group not in downOn: suspect only');
  ev.apply({ kind: 'probe-group', group: 'gw', up: true });
  ev.apply({ kind: 'probe', target: '192.0.2.1', ok: true });
  ev.apply({ kind: 'address', iface: 'x', present: true, address: '10.0.0.2' });
  ev.apply({ kind: 'address', iface: 'x', present: false, address: '10.0.0.2' });
  t.deepEqual(ev.problems(downOn, []).hard, ['address-missing']);
  ev.apply({ kind: 'address', iface: 'x', present: true, address: '10.0.0.3' });
  t.deepEqual(ev.problems(downOn, ['10.0.0.2']).hard, ['address-missing:10.0.0.2']);
  t.deepEqual(ev.problems(downOn, []).hard, []);
  ev.apply({ kind: 'sockets', iface: 'x', stuck: 3 });
  t.deepEqual(ev.problems(downOn, []), { hard: [], soft: ['sockets-stuck:3'] });
  t.deepEqual(ev.problems([...downOn, 'sockets'], []).hard, ['sockets-stuck:3']);
  ev.apply({ kind: 'carrier', iface: 'x', up: false, adminUp: false });
  t.deepEqual(ev.problems(downOn, []).hard, ['admin-down']);
  t.false(ev.disabled, 'admin-down with no known intent is not a decision to respect');
  t.true(ev.intentPending);
  ev.apply({ kind: 'intent', iface: 'x', intent: { owner: 'NetworkManager', wantUp: false, source: 'nmcli' } });
  t.deepEqual(ev.problems(downOn, []).hard, ['admin-down:intended']);
  t.true(ev.disabled);
  t.false(ev.intentPending);
});

test('evidenceFromMonitorEvent maps LinkMonitor events', (t) => {
  const names = new Map([[2, 'eth0']]);
  const nameOf = (i) => names.get(i);
  const link = { ifindex: 2, name: 'eth0', kind: null, adminUp: true, carrier: false, operstate: 'down', mtu: 1500, mac: null, master: null, addresses: [] };
  t.deepEqual(evidenceFromMonitorEvent({ type: 'link', link, changed: ['carrier'], monotonicNs: '1', via: 'netlink' }, nameOf),
    [{ kind: 'carrier', iface: 'eth0', up: false, adminUp: true }]);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'link-removed', ifindex: 2, name: 'eth0', monotonicNs: '1', via: 'netlink' }, nameOf),
    [{ kind: 'carrier', iface: 'eth0', up: false, removed: true }]);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'address', action: 'removed', ifindex: 2, family: 4, address: '10.0.0.1', prefixlen: 24, monotonicNs: '1', via: 'netlink' }, nameOf),
    [{ kind: 'address', iface: 'eth0', present: false, address: '10.0.0.1', family: 4, prefixlen: 24 }]);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'address', action: 'added', ifindex: 9, family: 4, address: '10.0.0.1', prefixlen: 24, monotonicNs: '1', via: 'netlink' }, nameOf), []);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'default-route', action: 'lost', family: 6, gateway: 'fe80::1', ifindex: 2, monotonicNs: '1', via: 'netlink' }, nameOf),
    [{ kind: 'default-route', family: 6, present: false, iface: 'eth0', gateway: 'fe80::1' }]);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'default-route', action: 'restored', family: 4, gateway: null, ifindex: null, monotonicNs: '1', via: 'netlink' }, nameOf),
    [{ kind: 'default-route', family: 4, present: true, iface: null, gateway: null }]);
  t.deepEqual(evidenceFromMonitorEvent({ type: 'resync', reason: 'ENOBUFS', monotonicNs: '1', via: 'resync' }, nameOf), []);
});

test('actionEnvironment describes the step for an operator hook', (t) => {
  const env = actionEnvironment({
    iface: 'eth0', step: 4, kind: 'hook', attempt: 2, state: 'down', reasons: ['carrier-down', 'default-route-lost:4'],
    fault: { class: 'link', because: ['carrier-down'] }, faultSinceMs: 0, episodeSinceMs: 0, evidence: /** @type {any} */ ({ carrier: false }), options: {}, timeoutMs: 5000, signal: new AbortController().signal, dryRun: false, atMs: 1,
  });
  t.deepEqual(env, {
    NETHEAL_IFACE: 'eth0', NETHEAL_ACTION: 'hook', NETHEAL_STEP: '4', NETHEAL_ATTEMPT: '2', NETHEAL_STATE: 'down',
    NETHEAL_FAULT: 'link', NETHEAL_REASONS: 'carrier-down,default-route-lost:4', NETHEAL_DRY_RUN: '0', NETHEAL_TIMEOUT_MS: '5000',
    NETHEAL_EVIDENCE: '{"carrier":false}',
  });
});

test('the library index exports the policy layer', (t) => {
  for (const name of ['PolicyEngine', 'FakeClock', 'systemClock', 'Backoff', 'FlapDamper', 'ActionBudget',
    'DEFAULT_BACKOFF', 'DEFAULT_DAMPING', 'DEFAULT_BUDGET', 'DEFAULT_GRACE_MS', 'resolveInterfacePolicy',
    'evidenceFromMonitorEvent', 'actionEnvironment', 'seededRandom', 'BUILTIN_ACTIONS']) {
    t.truthy(policyIndex[name], name);
  }
});
