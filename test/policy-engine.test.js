// @ts-check
'use strict';
// PolicyEngine driven by a FakeClock: every time and order asserted exactly. Pure; no kernel.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { FakeClock } = require('../lib/policy/clock');
const { PolicyEngine } = require('../lib/policy/engine');

/**
 * An engine on a fake clock with a recorded event log. Actions named in `kinds` are
 * registered as fakes: each logs [time, kind, step, attempt], waits `ms` on the clock, runs
 * `effect(ctx)` and returns `status`.
 */
/**
 * @param {{ kinds?: string[], behaviour?: Record<string, any>, iface?: string, policy?: Record<string, any>, graceMs?: number, random?: () => number, [option: string]: any }} [options]
 */
function setup({ kinds = ['a', 'b', 'c'], behaviour = {}, iface = 'eth0', policy = {}, graceMs = 0, random = () => 0, ...rest } = {}) {
  const clock = new FakeClock();
  const runs = [];
  const actions = kinds.map((kind) => ({
    kind,
    async run(ctx) {
      const b = behaviour[kind] ?? {};
      runs.push([clock.now(), kind, ctx.step, ctx.attempt]);
      if (b.ms) await new Promise((r) => clock.setTimeout(() => r(undefined), b.ms));
      if (b.effect) b.effect(ctx);
      return { status: b.status ?? 'ok' };
    },
  }));
  const engine = new PolicyEngine({
    clock, random, actions,
    config: { graceMs, interfaces: { [iface]: { ladder: kinds, verifyTimeoutMs: 1000, ...policy } } },
    ...rest,
  });
  const events = [];
  for (const type of ['health', 'action', 'verify', 'alert']) /** @type {import('node:events').EventEmitter} */ (engine).on(type, (e) => events.push({ type, ...e }));
  const health = () => events.filter((e) => e.type === 'health' && e.subject === 'interface').map((e) => [e.atMs, e.from, e.to, e.cause]);
  const alerts = () => events.filter((e) => e.type === 'alert').map((e) => [e.atMs, e.reason, e.untilMs]);
  const acts = () => events.filter((e) => e.type === 'action').map((e) => [e.startedAtMs, e.kind, e.result.status, e.durationMs]);
  const verifies = () => events.filter((e) => e.type === 'verify').map((e) => [e.startedAtMs + e.durationMs, e.kind, e.verified, e.by]);
  const carrier = (up) => engine.observe({ kind: 'carrier', iface, up, adminUp: true });
  return { clock, engine, runs, events, health, alerts, acts, verifies, carrier };
}

test('ladder: steps run bottom first; an unverified step hands over after verifyTimeoutMs; a verified one stops the ladder', async (t) => {
  const s = setup({ behaviour: { a: { ms: 100 }, b: { ms: 100 }, c: { ms: 100 } } });
  await s.clock.advance(0);
  s.carrier(false);
  await s.clock.advance(1400); // a 0..100, verify 100..1100 fails, b 1100..1200, verifying
  s.carrier(true); // at 1400, inside b's window
  await s.clock.advance(10000);
  t.deepEqual(s.runs, [[0, 'a', 1, 1], [1100, 'b', 2, 1]], 'c never runs');
  t.deepEqual(s.acts(), [[0, 'a', 'ok', 100], [1100, 'b', 'ok', 100]]);
  t.deepEqual(s.verifies(), [[1100, 'a', false, 'timeout'], [1400, 'b', true, 'evidence']]);
  t.deepEqual(s.health(), [
    [0, 'healthy', 'down', 'evidence'],
    [0, 'down', 'recovering', 'action'],
    [1400, 'recovering', 'healthy', 'verified'],
  ]);
  t.deepEqual(s.alerts(), []);
  t.is(s.engine.stateOf('eth0'), 'healthy');
});

test('ladder: a step whose own effect restores health is verified at once; a failed step moves on without waiting', async (t) => {
  const s = setup({ behaviour: { a: { status: 'failed' }, b: { ms: 50, effect: () => s.carrier(true) } } });
  s.carrier(false);
  await s.clock.advance(5000);
  t.deepEqual(s.runs, [[0, 'a', 1, 1], [0, 'b', 2, 1]]);
  t.deepEqual(s.verifies(), [[50, 'b', true, 'evidence']]);
  t.deepEqual(s.health().at(-1), [50, 'recovering', 'healthy', 'verified']);
});

test('ladder exhausted: alert, then the next climb after full-jitter backoff (first climb at once), capped', async (t) => {
  const s = setup({
    kinds: ['a'], random: () => 0.5,
    policy: { backoff: { initialMs: 1000, multiplier: 2, maxMs: 3000, resetAfterMs: 60000 }, budget: { maxActions: 100, windowMs: 1000 } },
  });
  s.carrier(false);
  await s.clock.advance(10000);
  // climb 1 at 0; verify fails 1000; +0.5*1000 -> 1500; fails 2500; +0.5*2000 -> 3500; fails 4500;
  // +0.5*min(3000, 4000) -> 6000; fails 7000; +1500 -> 8500; fails 9500; +1500 -> 11000.
  t.deepEqual(s.runs.map((r) => r[0]), [0, 1500, 3500, 6000, 8500]);
  t.deepEqual(s.runs.map((r) => r[3]), [1, 2, 3, 4, 5], 'attempt numbers');
  t.deepEqual(s.alerts(), [1000, 2500, 4500, 7000, 9500].map((at) => [at, 'ladder-exhausted', null]));
  const snap = s.engine.snapshot();
  t.is(snap.interfaces.eth0.ladder.phase, 'waiting');
  t.is(snap.interfaces.eth0.ladder.waitingFor, 'backoff');
  t.is(snap.interfaces.eth0.ladder.waitUntilMs, 11000);
  t.is(snap.interfaces.eth0.attempts, 5);
  // Health went down -> recovering -> down (not verified) each climb.
  t.deepEqual(s.health().slice(0, 4), [
    [0, 'healthy', 'down', 'evidence'], [0, 'down', 'recovering', 'action'],
    [1000, 'recovering', 'down', 'not-verified'], [1500, 'down', 'recovering', 'action'],
  ]);
});

test('backoff jitter comes from the injected random source, within [0, ceiling)', async (t) => {
  const draws = [0.1, 0.9, 0.999];
  let i = 0;
  const s = setup({
    kinds: ['a'], random: () => draws[i++],
    policy: { backoff: { initialMs: 1000, multiplier: 2, maxMs: 100000, resetAfterMs: 60000 }, budget: { maxActions: 100, windowMs: 1000 } },
  });
  s.carrier(false);
  await s.clock.advance(20000);
  // 0; fail 1000 + floor(0.1*1000)=100 -> 1100; fail 2100 + floor(0.9*2000)=1800 -> 3900;
  // fail 4900 + floor(0.999*4000)=3996 -> 8896.
  t.deepEqual(s.runs.map((r) => r[0]).slice(0, 4), [0, 1100, 3900, 8896]);
});

test('backoff resets after resetAfterMs of continuous health, not before', async (t) => {
  const s = setup({
    kinds: ['a'], random: () => 0.5,
    behaviour: { a: { effect: () => s.carrier(true) } },
    policy: { backoff: { initialMs: 1000, multiplier: 2, maxMs: 8000, resetAfterMs: 10000 }, damping: { suppressThreshold: 1e9, reuseThreshold: 1 } },
  });
  s.carrier(false); // t=0: climb 1 at once, verified at once
  await s.clock.advance(5000);
  s.carrier(false); // t=5000: healthy only 5 s, so climb 2 waits 0.5*1000
  await s.clock.advance(5000);
  t.is(s.engine.snapshot().interfaces.eth0.attempts, 2);
  await s.clock.advance(9999); // t=19999: healthy since 5500 -> reset at 15500
  t.is(s.engine.snapshot().interfaces.eth0.attempts, 0);
  s.carrier(false); // t=19999: back to the first climb, at once
  await s.clock.advance(1000);
  t.deepEqual(s.runs.map((r) => [r[0], r[3]]), [[0, 1], [5500, 2], [19999, 1]]);
  // Health that does not last resetAfterMs does not reset.
  s.carrier(false); // t=20999: attempt 2 waits 500
  await s.clock.advance(600);
  t.deepEqual(s.runs.at(-1), [21499, 'a', 1, 2]);
});

test('flap damping: suppress at the threshold (alert, no action), act again exactly when the penalty decays to reuse', async (t) => {
  const damping = { penaltyPerFlap: 1000, halfLifeMs: 60000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 3600000 };
  const s = setup({
    kinds: ['a'], behaviour: { a: { effect: () => s.carrier(true) } },
    policy: { damping, backoff: { initialMs: 0, maxMs: 0, multiplier: 1, resetAfterMs: 1 } },
  });
  s.carrier(false); // flap 1 at 0 -> act
  await s.clock.advance(100);
  s.carrier(false); // flap 2 at 100 -> act
  await s.clock.advance(100);
  t.is(s.runs.length, 2);
  s.carrier(false); // flap 3 at 200 -> penalty just below 3000 >= 2500: suppressed
  await s.clock.flush();
  t.is(s.runs.length, 2, 'no action while suppressed');
  const h = 60000;
  const p = (1000 * 2 ** (-100 / h) + 1000) * 2 ** (-100 / h) + 1000;
  const until = Math.ceil(200 + h * Math.log2(p / 800));
  t.true(p > 2500 && p < 3000);
  t.deepEqual(s.alerts(), [[200, 'suppressed', until]]);
  const snap = s.engine.snapshot().interfaces.eth0;
  t.is(snap.damping.flaps, 3);
  t.true(snap.damping.suppressed);
  t.is(snap.damping.suppressedUntilMs, until);
  t.is(snap.ladder.waitingFor, 'suppressed');
  t.is(s.engine.stateOf('eth0'), 'down', 'still reported down while suppressed');
  await s.clock.advanceTo(until - 1);
  t.is(s.runs.length, 2);
  await s.clock.advance(1);
  t.deepEqual(s.runs.at(-1), [until, 'a', 1, 1]);
  t.true(s.engine.snapshot().interfaces.eth0.damping.penalty <= 800);
});

test('flap damping: below the threshold it acts on every flap; recovery during suppression ends the episode quietly', async (t) => {
  const damping = { penaltyPerFlap: 1000, halfLifeMs: 1000, suppressThreshold: 2000, reuseThreshold: 500, maxSuppressMs: 100000 };
  const s = setup({
    kinds: ['a'], behaviour: { a: { effect: () => s.carrier(true) } },
    policy: { damping, backoff: { initialMs: 0, maxMs: 0, multiplier: 1, resetAfterMs: 1 } },
  });
  s.carrier(false); // 1000
  await s.clock.advance(1000);
  s.carrier(false); // 500 + 1000 = 1500 < 2000: acts
  await s.clock.advance(1000);
  s.carrier(false); // 750 + 1000 = 1750: acts
  await s.clock.advance(0);
  t.deepEqual(s.runs.map((r) => r[0]), [0, 1000, 2000]);
  s.carrier(false); // at 2000 again: 1750 + 1000 = 2750 >= 2000: suppressed until ceil(2000 + 1000*log2(2750/500))
  await s.clock.advance(0);
  const until = Math.ceil(2000 + 1000 * Math.log2(2750 / 500));
  t.deepEqual(s.alerts(), [[2000, 'suppressed', until]]);
  s.carrier(true);
  await s.clock.advance(10000);
  t.is(s.runs.length, 3, 'no action after recovery');
  t.is(s.engine.stateOf('eth0'), 'healthy');
});

test('budget: at most maxActions per sliding window, then alert-only; resumes at the same rung when the window rolls over', async (t) => {
  const s = setup({ policy: { budget: { maxActions: 2, windowMs: 10000 }, backoff: { initialMs: 0, maxMs: 0, multiplier: 1, resetAfterMs: 1 } } });
  s.carrier(false);
  await s.clock.advance(9999);
  t.deepEqual(s.runs.map((r) => [r[0], r[1]]), [[0, 'a'], [1000, 'b']]);
  t.deepEqual(s.alerts(), [[2000, 'budget-exhausted', 10000]]);
  t.is(s.engine.snapshot().interfaces.eth0.budget.remaining, 0);
  t.is(s.engine.snapshot().interfaces.eth0.budget.nextFreeAtMs, 10000);
  t.deepEqual(s.health(), [
    [0, 'healthy', 'down', 'evidence'], [0, 'down', 'recovering', 'action'],
    [2000, 'recovering', 'down', 'not-verified'],
  ]);
  await s.clock.advance(1); // 10000: a's slot frees -> c runs
  t.deepEqual(s.runs.at(-1), [10000, 'c', 3, 1]);
  await s.clock.advance(9999); // c fails at 11000 -> climb 2 (delay 0): b's slot freed at 11000 -> a at 11000
  t.deepEqual(s.runs.map((r) => [r[0], r[1]]).slice(3), [[11000, 'a']]);
  t.deepEqual(s.alerts().slice(1), [[11000, 'ladder-exhausted', null], [12000, 'budget-exhausted', 20000]]);
  await s.clock.advance(1);
  t.deepEqual(s.runs.at(-1), [20000, 'b', 2, 2]);
});

test('budget 0: never acts, alerts once, and recovery clears the wait', async (t) => {
  const s = setup({ policy: { budget: { maxActions: 0, windowMs: 1000 } } });
  s.carrier(false);
  await s.clock.advance(100000);
  t.deepEqual(s.runs, []);
  t.deepEqual(s.alerts(), [[0, 'budget-exhausted', null]]);
  s.carrier(true);
  await s.clock.flush();
  t.is(s.engine.stateOf('eth0'), 'healthy');
  t.is(s.engine.snapshot().interfaces.eth0.ladder.phase, 'idle');
});

test('grace period: no action during it (one alert), the first action exactly when it ends', async (t) => {
  const s = setup({ graceMs: 5000 });
  await s.clock.advance(1000);
  s.carrier(false);
  await s.clock.advance(3999);
  t.deepEqual(s.runs, []);
  t.deepEqual(s.alerts(), [[1000, 'grace-period', 5000]]);
  t.true(s.engine.snapshot().inGrace);
  await s.clock.advance(1);
  t.deepEqual(s.runs, [[5000, 'a', 1, 1]]);
  t.false(s.engine.snapshot().inGrace);
});

test('grace period: a fault that heals during it causes nothing', async (t) => {
  const s = setup({ graceMs: 5000 });
  s.carrier(false);
  await s.clock.advance(3000);
  s.carrier(true);
  await s.clock.advance(10000);
  t.deepEqual(s.runs, []);
  t.deepEqual(s.health(), [[0, 'healthy', 'down', 'evidence'], [3000, 'down', 'healthy', 'evidence']]);
});

test('never acts on a single lost probe; a target down with quorum kept is suspect; quorum lost acts', async (t) => {
  const s = setup();
  s.engine.observe({ kind: 'probe', target: '192.0.2.1', ok: false, iface: 'eth0', group: 'gw' });
  await s.clock.advance(3600000);
  t.deepEqual(s.runs, []);
  t.deepEqual(s.health(), [[0, 'healthy', 'suspect', 'evidence']]);
  t.is(s.engine.groupStateOf('gw'), 'suspect');
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: true, targetsUp: 2, targetsTotal: 3 });
  await s.clock.advance(3600000);
  t.deepEqual(s.runs, [], 'target down, quorum kept: still no action');
  t.is(s.engine.stateOf('eth0'), 'suspect');
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: false, reason: 'quorum 1/3 < 2', targetsUp: 1, targetsTotal: 3 });
  await s.clock.flush();
  t.deepEqual(s.runs, [[7200000, 'a', 1, 1]]);
  const down = s.events.find((e) => e.type === 'health' && e.to === 'down' && e.subject === 'interface');
  t.deepEqual(down.reasons, ['probe-group-down:gw', 'probe-target-down:192.0.2.1']);
  t.is(down.evidence.kind, 'probe-group');
  const groupEvents = s.events.filter((e) => e.type === 'health' && e.subject === 'group').map((e) => [e.group, e.from, e.to]);
  t.deepEqual(groupEvents, [['gw', 'healthy', 'suspect'], ['gw', 'suspect', 'down']]);
});

test('probe groups bound to an interface by config; unwatched interfaces are ignored', async (t) => {
  const clock = new FakeClock();
  const runs = [];
  const engine = new PolicyEngine({
    clock,
    actions: [{ kind: 'a', run: async (ctx) => { runs.push([clock.now(), ctx.iface]); return { status: 'ok' }; } }],
    config: { graceMs: 0, groups: { gw: { iface: 'wan' } }, interfaces: { wan: { ladder: ['a'] } } },
  });
  engine.observe({ kind: 'carrier', iface: 'lan', up: false });
  engine.observe({ kind: 'probe-group', group: 'gw', up: false });
  await clock.advance(0);
  t.deepEqual(runs, [[0, 'wan']]);
  t.deepEqual(engine.interfaces, ['wan']);
  t.is(engine.stateOf('lan'), undefined);
});

test('dry-run: decides, counts and reports everything, runs nothing', async (t) => {
  const clock = new FakeClock();
  let ran = 0;
  let applied = 0;
  /** @param {string} kind @returns {import('../lib/policy/actions').ActionExecutor} */
  const exec = (kind) => ({ kind, run: async () => { ran++; return { status: 'ok' }; }, applies: () => { applied++; return true; } });
  const engine = new PolicyEngine({
    clock, dryRun: true, random: () => 0, actions: [exec('a'), exec('b')],
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['a', 'b'], verifyTimeoutMs: 1000, budget: { maxActions: 3, windowMs: 100000 } } } },
  });
  const acts = [];
  const alerts = [];
  engine.on('action', (e) => acts.push([e.startedAtMs, e.kind, e.dryRun, e.result.status, e.result.detail]));
  engine.on('alert', (e) => alerts.push([e.atMs, e.reason]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  await clock.advance(5000);
  t.is(ran, 0, 'no executor ran');
  // a, b, a, then b at 3000, which finds the budget spent (applies() is asked before the budget).
  t.is(applied, 4, 'applies() (side-effect free) is still asked');
  t.deepEqual(acts, [
    [0, 'a', true, 'dry-run', 'would run a on eth0'],
    [1000, 'b', true, 'dry-run', 'would run b on eth0'],
    [2000, 'a', true, 'dry-run', 'would run a on eth0'],
  ]);
  t.deepEqual(alerts, [[2000, 'ladder-exhausted'], [3000, 'budget-exhausted']]);
  const snap = engine.snapshot();
  t.true(snap.dryRun);
  t.is(snap.interfaces.eth0.totalActions, 3);
  t.is(snap.interfaces.eth0.lastActions.length, 3);
  // Evidence still verifies a (dry) step.
  engine.observe({ kind: 'carrier', iface: 'eth0', up: true });
  await clock.flush();
  t.is(engine.stateOf('eth0'), 'healthy');
});

test('an embedder-provided action runs in the ladder with the documented context', async (t) => {
  const clock = new FakeClock();
  const seen = [];
  const engine = new PolicyEngine({
    clock,
    actions: [{ kind: 'kill-sockets', run: async () => ({ status: 'ok', detail: 'destroyed 0' }) }],
    config: {
      graceMs: 0,
      interfaces: { eth0: { ladder: ['kill-sockets', { action: 'drain-pool', options: { pool: 'db' }, timeoutMs: 700 }], verifyTimeoutMs: 1000 } },
    },
  });
  engine.register({
    kind: 'drain-pool',
    async run(ctx) {
      seen.push({ at: clock.now(), ...ctx, signal: ctx.signal.aborted, evidence: ctx.evidence.probeGroups });
      await new Promise((r) => clock.setTimeout(() => r(undefined), 200));
      engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: true });
      return { status: 'ok', data: { drained: 12 } };
    },
  });
  const acts = [];
  engine.on('action', (e) => acts.push([e.startedAtMs, e.step, e.kind, e.result.status, e.durationMs, e.result.data]));
  engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: false });
  await clock.advance(5000);
  t.deepEqual(acts, [[0, 1, 'kill-sockets', 'ok', 0, undefined], [1000, 2, 'drain-pool', 'ok', 200, { drained: 12 }]]);
  t.deepEqual(seen, [{
    at: 1000, iface: 'eth0', step: 2, kind: 'drain-pool', attempt: 1, state: 'down', reasons: ['probe-group-down:gw'],
    fault: { class: 'beyond-first-hop', because: ['path-unlocated', 'probe-group-down:gw'] }, faultSinceMs: 0, episodeSinceMs: 0, evidence: { gw: false }, options: { pool: 'db' }, timeoutMs: 700, signal: false, dryRun: false, atMs: 1000,
  }]);
  t.is(engine.stateOf('eth0'), 'healthy');
});

test('action time limit: a hung action is aborted at exactly timeoutMs and the next rung runs', async (t) => {
  const clock = new FakeClock();
  /** @type {AbortSignal} */
  let signal;
  const engine = new PolicyEngine({
    clock,
    actions: [
      { kind: 'hang', run: (ctx) => { signal = ctx.signal; return new Promise(() => {}); } },
      { kind: 'b', run: async () => ({ status: 'ok' }) },
    ],
    config: { graceMs: 0, interfaces: { eth0: { ladder: [{ action: 'hang', timeoutMs: 250 }, 'b'], verifyTimeoutMs: 1000 } } },
  });
  const acts = [];
  engine.on('action', (e) => acts.push([e.startedAtMs, e.kind, e.result.status, e.durationMs]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  await clock.advance(249);
  t.false(signal.aborted);
  await clock.advance(1);
  t.true(signal.aborted);
  t.is(signal.reason.code, 'NETHEAL_ERR_TIMEOUT');
  t.deepEqual(acts, [[0, 'hang', 'timeout', 250], [250, 'b', 'ok', 0]]);
});

test('skipped steps cost no budget; unknown and throwing actions fail with an alert and the ladder goes on', async (t) => {
  const clock = new FakeClock();
  const engine = new PolicyEngine({
    clock,
    actions: [
      { kind: 'manager-reapply', run: async () => ({ status: 'skipped', detail: 'unmanaged' }) },
      { kind: 'not-here', applies: () => false, run: async () => { throw new Error('must not run'); } },
      { kind: 'boom', run: async () => { throw new Error('kaput'); } },
      { kind: 'fix', run: async () => { engine.observe({ kind: 'carrier', iface: 'eth0', up: true }); return { status: 'ok' }; } },
    ],
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['manager-reapply', 'not-here', 'ghost', 'boom', 'fix'], budget: { maxActions: 2, windowMs: 60000 } } } },
  });
  const acts = [];
  const alerts = [];
  engine.on('action', (e) => acts.push([e.kind, e.result.status, e.result.detail]));
  engine.on('alert', (e) => alerts.push([e.reason, e.detail]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  await clock.advance(100);
  t.deepEqual(acts, [
    ['manager-reapply', 'skipped', 'unmanaged'],
    ['not-here', 'skipped', 'does not apply'],
    ['ghost', 'failed', 'no executor registered for "ghost"'],
    ['boom', 'failed', 'kaput'],
    ['fix', 'ok', undefined],
  ]);
  t.deepEqual(alerts.map((a) => a[0]), ['unknown-action', 'action-error']);
  t.is(engine.stateOf('eth0'), 'healthy');
  t.is(engine.snapshot().interfaces.eth0.budget.remaining, 0, 'only boom and fix counted');
});

test('injected verifier decides verification; one that never answers times out at the window', async (t) => {
  const clock = new FakeClock();
  const answers = { a: new Promise(() => {}), b: Promise.resolve(false), c: Promise.resolve(true) };
  const engine = new PolicyEngine({
    clock,
    actions: ['a', 'b', 'c'].map((kind) => ({ kind, run: async () => ({ status: 'ok' }) })),
    verifier: (iface, ctx) => (ctx.kind === 'b'
      ? new Promise((r) => clock.setTimeout(() => r(false), 300))
      : answers[ctx.kind]),
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['a', 'b', 'c'], verifyTimeoutMs: 1000 } } },
  });
  const ver = [];
  engine.on('verify', (e) => ver.push([e.startedAtMs + e.durationMs, e.kind, e.verified, e.by]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  // The evidence stays down: the verifier alone decides, and c's word makes it healthy.
  await clock.advance(5000);
  t.deepEqual(ver, [[1000, 'a', false, 'timeout'], [1300, 'b', false, 'verifier'], [1300, 'c', true, 'verifier']]);
  t.is(engine.stateOf('eth0'), 'healthy');
});

test('administratively down: down but never acted on; acts once the admin brings it up without carrier', async (t) => {
  const s = setup();
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: false, adminUp: false });
  await s.clock.advance(1000);
  t.deepEqual(s.runs, [], 'nothing before the owner says what it wants');
  t.deepEqual(s.alerts(), [[0, 'intent-pending', null]]);
  s.engine.observe({ kind: 'intent', iface: 'eth0', intent: { owner: 'ifupdown', wantUp: false, source: 'ifquery --state' } });
  await s.clock.advance(9000);
  t.deepEqual(s.runs, [], 'down as its owner wants: respected');
  t.deepEqual(s.alerts(), [[0, 'intent-pending', null], [1000, 'admin-down', null]]);
  t.is(s.engine.stateOf('eth0'), 'down');
  t.deepEqual(s.engine.snapshot().interfaces.eth0.reasons, ['admin-down:intended']);
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: false, adminUp: true });
  await s.clock.advance(0);
  t.deepEqual(s.runs, [[10000, 'a', 1, 1]]);
});

test('admin-down against the owner\'s intent is a link fault: acted on at once, credited when the link comes back', async (t) => {
  const s = setup({ kinds: ['a'], behaviour: { a: { ms: 10, effect: () => s.engine.observe({ kind: 'carrier', iface: 'eth0', up: true, adminUp: true }) } } });
  const recovered = [];
  s.engine.on('recovered', (e) => recovered.push([e.atMs, e.fault, e.by, e.action]));
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: false, adminUp: false });
  // The daemon asks the owner after every admin-down (an old answer says nothing about it).
  s.engine.observe({ kind: 'intent', iface: 'eth0', intent: { owner: 'netheal', wantUp: true, source: 'config' } });
  await s.clock.advance(100);
  t.deepEqual(s.runs, [[0, 'a', 1, 1]]);
  t.deepEqual(s.verifies(), [[10, 'a', true, 'evidence']]);
  t.deepEqual(recovered, [[10, 'link', 'action', 'a']]);
  t.is(s.engine.stateOf('eth0'), 'healthy');
});

test('default route: lost on the interface takes it down; restored anywhere clears it', async (t) => {
  const s = setup({ kinds: ['a'], policy: { verifyTimeoutMs: 5000 } });
  s.engine.observe({ kind: 'default-route', family: 4, present: true, iface: 'eth0' });
  s.engine.observe({ kind: 'default-route', family: 4, present: false, iface: null });
  await s.clock.advance(100);
  t.deepEqual(s.runs, [[0, 'a', 1, 1]]);
  t.deepEqual(s.engine.snapshot().interfaces.eth0.reasons, ['default-route-lost:4']);
  s.engine.observe({ kind: 'default-route', family: 4, present: true, iface: 'eth9' });
  await s.clock.flush();
  t.is(s.engine.stateOf('eth0'), 'healthy');
  t.deepEqual(s.verifies(), [[100, 'a', true, 'evidence']]);
});

test('snapshot reports state, evidence, attempts, damping, budget and last actions; close() stops everything', async (t) => {
  const s = setup({ kinds: ['a'], keepActions: 2, policy: { budget: { maxActions: 5, windowMs: 100000 } } });
  s.engine.observe({ kind: 'address', iface: 'eth0', present: true, address: '10.0.0.2' });
  s.carrier(false);
  await s.clock.advance(2500); // climbs at 0, 1000, 2000 (random 0: no backoff delay); verifying the third
  const snap = JSON.parse(JSON.stringify(s.engine.snapshot()));
  const e = snap.interfaces.eth0;
  t.is(snap.atMs, 2500);
  t.is(e.state, 'recovering');
  t.is(e.ladder.phase, 'verifying');
  t.is(e.ladder.step, 1);
  t.is(e.ladder.action, 'a');
  t.deepEqual(e.reasons, ['carrier-down']);
  t.deepEqual(e.evidence.addresses, ['10.0.0.2']);
  t.is(e.evidence.carrier, false);
  t.is(e.attempts, 3);
  t.is(e.totalActions, 3);
  t.deepEqual(e.lastActions.map((a) => a.startedAtMs), [1000, 2000], 'keeps the last keepActions');
  t.is(e.damping.flaps, 1);
  t.is(e.budget.remaining, 2);
  t.deepEqual(e.ladder.steps, ['a']);
  const pending = s.clock.pendingTimers;
  t.true(pending > 0);
  s.engine.close();
  t.is(s.clock.pendingTimers, 0, 'no timer left behind');
  t.throws(() => s.carrier(true), { code: 'NETHEAL_ERR_CLOSED' });
  await s.clock.advance(100000);
  t.is(s.runs.length, 3);
});

test('malformed evidence is refused naming the fault', (t) => {
  const s = setup();
  t.throws(() => s.engine.observe(/** @type {any} */ ({ kind: 'carrier', iface: 'eth0' })), { code: 'NETHEAL_ERR_INVALID_OPTION', message: /carrier evidence: up must be a boolean/ });
  t.throws(() => s.engine.observe(/** @type {any} */ ({ kind: 'weather' })), { message: /unknown evidence kind "weather"/ });
  t.throws(() => new PolicyEngine({ config: { interfaces: { eth0: { backoff: { multiplier: 0.5 } } } } }),
    { message: /^policy\.interfaces\.eth0\.backoff\.multiplier:/ });
  s.engine.close();
});

test('close() during a running action aborts it and leaves no timer; unwatch() does the same for one interface', async (t) => {
  const clock = new FakeClock();
  const signals = [];
  const engine = new PolicyEngine({
    clock,
    actions: [{ kind: 'hang', run: (ctx) => { signals.push(ctx.signal); return new Promise(() => {}); } }],
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['hang'] }, eth1: { ladder: ['hang'] } } },
  });
  const acts = [];
  engine.on('action', (e) => acts.push([e.iface, e.startedAtMs, e.result.status, e.result.detail, e.durationMs]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  engine.observe({ kind: 'carrier', iface: 'eth1', up: false });
  await clock.advance(100);
  t.is(signals.length, 2);
  t.true(engine.unwatch('eth1'));
  t.true(signals[1].aborted);
  t.false(signals[0].aborted);
  engine.close();
  t.true(signals[0].aborted);
  t.is(signals[0].reason.code, 'NETHEAL_ERR_CLOSED');
  await clock.flush();
  t.is(clock.pendingTimers, 0);
  t.deepEqual(acts, [['eth1', 0, 'failed', 'cancelled', 100], ['eth0', 0, 'failed', 'cancelled', 100]]);
  t.notThrows(() => engine.close(), 'idempotent');
});

test('watch() adds interfaces at run time and re-watching applies a new policy', async (t) => {
  const clock = new FakeClock();
  const runs = [];
  const engine = new PolicyEngine({
    clock, random: () => 0,
    actions: ['a', 'b'].map((kind) => ({ kind, run: async (ctx) => { runs.push([clock.now(), ctx.iface, kind]); return { status: 'failed' }; } })),
    config: { graceMs: 0, defaults: { ladder: ['a'], budget: { maxActions: 1, windowMs: 1e6 } } },
  });
  t.deepEqual(engine.interfaces, []);
  engine.watch('wan');
  engine.observe({ kind: 'carrier', iface: 'wan', up: false });
  await clock.advance(0);
  t.deepEqual(runs, [[0, 'wan', 'a']]);
  t.is(engine.snapshot().interfaces.wan.budget.remaining, 0);
  engine.watch('wan', { ladder: ['b'], budget: { maxActions: 1, windowMs: 1000 } });
  t.is(engine.snapshot().interfaces.wan.budget.remaining, 1, 'changed budget starts afresh');
  engine.observe({ kind: 'carrier', iface: 'wan', up: true });
  engine.observe({ kind: 'carrier', iface: 'wan', up: false });
  await clock.advance(0);
  t.deepEqual(runs, [[0, 'wan', 'a'], [0, 'wan', 'b']]);
  engine.close();
});

test('a ladder where nothing applies is climbed once per episode, not in a loop', async (t) => {
  const clock = new FakeClock();
  let asked = 0;
  const engine = new PolicyEngine({
    clock, random: () => 0,
    actions: [{ kind: 'manager-reapply', applies: () => { asked++; return false; }, run: async () => ({ status: 'ok' }) }],
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['manager-reapply', 'not-registered'], backoff: { initialMs: 0, maxMs: 0, multiplier: 1, resetAfterMs: 1 } } } },
  });
  const alerts = [];
  engine.on('alert', (e) => alerts.push([e.atMs, e.reason]));
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  await clock.advance(10000);
  t.is(asked, 1);
  t.deepEqual(alerts, [[0, 'unknown-action'], [0, 'cannot-fix']]);
  t.is(engine.snapshot().interfaces.eth0.totalActions, 0);
  t.is(engine.stateOf('eth0'), 'down');
  engine.observe({ kind: 'sockets', iface: 'eth0', stuck: 2 }); // evidence that does not move the fault: parked
  await clock.advance(0);
  t.is(asked, 1);
  engine.observe({ kind: 'default-route', family: 4, present: true, iface: 'eth0' });
  engine.observe({ kind: 'default-route', family: 4, present: false, iface: 'eth0' });
  engine.observe({ kind: 'carrier', iface: 'eth0', up: true }); // the fault moves to local-config: a new look
  await clock.advance(0);
  t.is(asked, 2);
  engine.close();
});

test('a flap storm during recovery is damped: flaps count while the ladder is busy and stop the climb', async (t) => {
  const damping = { penaltyPerFlap: 1000, halfLifeMs: 60000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 3600000 };
  const clock = new FakeClock();
  const runs = [];
  const engine = new PolicyEngine({
    clock, random: () => 0,
    actions: ['a', 'b'].map((kind) => ({ kind, run: async () => { runs.push([clock.now(), kind]); return { status: 'ok' }; } })),
    verifier: (iface, ctx) => new Promise((r) => clock.setTimeout(() => r(false), ctx.windowMs)),
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['a', 'b'], verifyTimeoutMs: 1000, damping } } },
  });
  const alerts = [];
  engine.on('alert', (e) => alerts.push([e.atMs, e.reason, e.untilMs]));
  const carrier = (up) => engine.observe({ kind: 'carrier', iface: 'eth0', up });
  carrier(false); // flap 1 at 0; a runs, the verifier takes the whole window
  await clock.advance(100);
  carrier(true);
  carrier(false); // flap 2 at 100, while verifying
  await clock.advance(100);
  carrier(true);
  carrier(false); // flap 3 at 200: suppressed
  await clock.advance(5000);
  t.deepEqual(runs, [[0, 'a']], 'b is not tried once suppressed');
  t.is(engine.snapshot().interfaces.eth0.damping.flaps, 3);
  const h = 60000;
  const p = (1000 * 2 ** (-100 / h) + 1000) * 2 ** (-100 / h) + 1000;
  const until = Math.ceil(200 + h * Math.log2(p / 800));
  t.deepEqual(alerts, [[1000, 'suppressed', until]]);
  t.is(engine.stateOf('eth0'), 'down');
  await clock.advanceTo(until);
  t.deepEqual(runs, [[0, 'a'], [until, 'a']], 'after reuse a fresh climb starts at the bottom rung');
  engine.close();
});

test('carrier loss caused by a disruptive action (link bounce) is not a flap; the same from a plain action is', async (t) => {
  for (const [disruptive, flaps] of /** @type {Array<[boolean | undefined, number]>} */ ([[true, 1], [false, 2], [undefined, 2]])) {
    const clock = new FakeClock();
    let engine;
    /** @type {import('../lib/policy/actions').ActionExecutor} */
    const bounce = {
      kind: 'bounce', disruptive,
      async run() {
        engine.observe({ kind: 'carrier', iface: 'eth0', up: true });
        engine.observe({ kind: 'carrier', iface: 'eth0', up: false }); // the bounce takes it down...
        await new Promise((r) => clock.setTimeout(() => r(undefined), 50));
        engine.observe({ kind: 'carrier', iface: 'eth0', up: true }); // ...and up again
        return { status: 'ok' };
      },
    };
    engine = new PolicyEngine({ clock, actions: [bounce], config: { graceMs: 0, interfaces: { eth0: { ladder: ['bounce'] } } } });
    engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
    await clock.advance(1000);
    t.is(engine.stateOf('eth0'), 'healthy');
    t.is(engine.snapshot().interfaces.eth0.damping.flaps, flaps, `disruptive: ${disruptive}`);
    engine.close();
  }
  // The built-in link-bounce name is disruptive by default.
  const clock = new FakeClock();
  let engine;
  engine = new PolicyEngine({
    clock,
    actions: [{ kind: 'link-bounce', async run() { engine.observe({ kind: 'carrier', iface: 'eth0', up: true }); engine.observe({ kind: 'carrier', iface: 'eth0', up: false }); engine.observe({ kind: 'carrier', iface: 'eth0', up: true }); return { status: 'ok' }; } }],
    config: { graceMs: 0, interfaces: { eth0: { ladder: ['link-bounce'] } } },
  });
  engine.observe({ kind: 'carrier', iface: 'eth0', up: false });
  await clock.advance(10);
  t.is(engine.snapshot().interfaces.eth0.damping.flaps, 1);
  engine.close();
});

test('verified by evidence, then down again before the climb resumed: reported and a new episode starts', async (t) => {
  const s = setup({ kinds: ['a'], policy: { damping: { suppressThreshold: 1e9, reuseThreshold: 1 } } });
  s.carrier(false);
  await s.clock.advance(100); // a ran at 0, verifying
  s.carrier(true);
  s.carrier(false); // same tick: the verification already succeeded
  await s.clock.advance(0);
  t.deepEqual(s.health(), [
    [0, 'healthy', 'down', 'evidence'], [0, 'down', 'recovering', 'action'],
    [100, 'recovering', 'healthy', 'verified'], [100, 'healthy', 'down', 'evidence'], [100, 'down', 'recovering', 'action'],
  ]);
  t.deepEqual(s.runs, [[0, 'a', 1, 1], [100, 'a', 1, 2]]);
  t.is(s.engine.snapshot().interfaces.eth0.damping.flaps, 2);
});
