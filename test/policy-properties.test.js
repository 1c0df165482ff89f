// @ts-check
'use strict';
// Property tests: random evidence scripts on a FakeClock; the engine's promises must hold
// for every script (fast-check shrinks any counter-example). Pure; no kernel.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fc = require('fast-check');
const { FakeClock, seededRandom } = require('../lib/policy/clock');
const { PolicyEngine } = require('../lib/policy/engine');

const GRACE = 2000;
const BUDGET = { maxActions: 3, windowMs: 20000 };
const LADDER = ['a', 'b', 'c'];

const evidenceArb = fc.oneof(
  fc.record({ kind: fc.constant('carrier'), iface: fc.constant('eth0'), up: fc.boolean(), adminUp: fc.constant(true) }),
  fc.record({ kind: fc.constant('probe'), iface: fc.constant('eth0'), group: fc.constant('gw'), target: fc.constantFrom('192.0.2.1', '192.0.2.2'), ok: fc.boolean() }),
  fc.record({ kind: fc.constant('probe-group'), iface: fc.constant('eth0'), group: fc.constant('gw'), up: fc.boolean() }),
  fc.record({ kind: fc.constant('default-route'), family: fc.constant(4), iface: fc.constant('eth0'), present: fc.boolean() }),
  fc.record({ kind: fc.constant('sockets'), iface: fc.constant('eth0'), stuck: fc.nat(3) }),
);
const scriptArb = fc.array(fc.tuple(fc.nat(3000), evidenceArb), { maxLength: 40 });
const behaviourArb = fc.record({
  ms: fc.constantFrom(0, 10, 400),
  status: fc.constantFrom('ok', 'ok', 'failed', 'skipped'),
  heals: fc.boolean(),
});

async function play(script, behaviours, seed, dryRun = false) {
  const clock = new FakeClock();
  const log = [];
  let engine;
  /** @type {import('../lib/policy/actions').ActionExecutor[]} */
  const actions = LADDER.map((kind, i) => ({
    kind,
    /** @returns {Promise<import('../lib/policy/actions').ActionResult>} */
    async run(ctx) {
      const b = behaviours[i];
      if (b.ms) {
        // Honour the signal as the executor contract asks: stop (and clear the timer) on abort.
        const stopped = await new Promise((resolve) => {
          const timer = clock.setTimeout(() => resolve(false), b.ms);
          ctx.signal.addEventListener('abort', () => { clock.clearTimeout(timer); resolve(true); }, { once: true });
        });
        if (stopped) return { status: 'failed', detail: 'aborted' };
      }
      if (b.heals && !engine.isClosed) {
        engine.observe({ kind: 'carrier', iface: 'eth0', up: true, adminUp: true });
        engine.observe({ kind: 'probe-group', iface: 'eth0', group: 'gw', up: true });
        engine.observe({ kind: 'default-route', family: 4, iface: 'eth0', present: true });
      }
      return { status: b.status };
    },
  }));
  engine = new PolicyEngine({
    clock, random: seededRandom(seed), actions, dryRun,
    config: {
      graceMs: GRACE,
      interfaces: {
        eth0: {
          ladder: LADDER, verifyTimeoutMs: 500, actionTimeoutMs: 300, budget: BUDGET,
          backoff: { initialMs: 100, maxMs: 1000, multiplier: 2, resetAfterMs: 5000 },
          damping: { penaltyPerFlap: 1000, halfLifeMs: 3000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 20000 },
        },
      },
    },
  });
  engine.on('health', (e) => { if (e.subject === 'interface') log.push({ type: 'health', ...e }); });
  engine.on('action', (e) => {
    const snap = engine.snapshot().interfaces.eth0;
    log.push({ type: 'action', ...e, suppressedAtEnd: snap.damping.suppressed, suppressedUntil: snap.damping.suppressedUntilMs });
  });
  engine.on('verify', (e) => log.push({ type: 'verify', ...e }));
  engine.on('alert', (e) => log.push({ type: 'alert', ...e }));
  engine.on('error', (err) => { throw err; });
  for (const [dt, evidence] of script) {
    await clock.advance(dt);
    engine.observe(evidence);
  }
  await clock.advance(60000);
  const final = engine.snapshot().interfaces.eth0;
  engine.close();
  await clock.flush();
  return { log, final, pendingAfterClose: clock.pendingTimers };
}

const runs = (log) => log.filter((e) => e.type === 'action' && e.result.status !== 'skipped' && !/^no executor/.test(e.result.detail ?? ''));

test('invariants hold for any evidence script', async (t) => {
  await fc.assert(fc.asyncProperty(scriptArb, fc.array(behaviourArb, { minLength: 3, maxLength: 3 }), fc.nat(), fc.boolean(),
    async (script, behaviours, seed, dryRun) => {
      const { log, final, pendingAfterClose } = await play(script, behaviours, seed, dryRun);
      // At rest, the state agrees with the evidence: nothing is stuck 'healthy' while down.
      const hard = final.reasons.filter((r) => /^(carrier-down|default-route-lost|probe-group-down)/.test(r));
      if (hard.length > 0 && !['down', 'recovering'].includes(final.state)) return false;
      if (hard.length === 0 && final.reasons.length > 0 && final.state !== 'suspect') return false;
      if (final.reasons.length === 0 && final.state !== 'healthy') return false;
      const acts = runs(log);
      // No action during the grace period.
      for (const a of acts) if (a.startedAtMs < GRACE) return false;
      // Budget: at most maxActions starts in any window of windowMs.
      for (const a of acts) {
        const inWindow = acts.filter((b) => b.startedAtMs > a.startedAtMs - BUDGET.windowMs && b.startedAtMs <= a.startedAtMs);
        if (inWindow.length > BUDGET.maxActions) return false;
      }
      // Dry-run: nothing runs, every action says so.
      for (const a of log.filter((e) => e.type === 'action')) {
        if (a.dryRun !== dryRun) return false;
        if (dryRun && !['dry-run', 'skipped', 'failed'].includes(a.result.status)) return false;
      }
      // Within a climb, rungs go strictly upward.
      const lastStep = new Map();
      for (const a of log.filter((e) => e.type === 'action')) {
        const key = a.attempt;
        if (lastStep.has(key) && a.step <= lastStep.get(key) && a.startedAtMs === lastStep.get(`t${key}`)) return false;
        lastStep.set(key, a.step);
        lastStep.set(`t${key}`, a.startedAtMs);
      }
      // Health events form a chain from 'healthy' and never repeat a state.
      let state = 'healthy';
      for (const h of log.filter((e) => e.type === 'health')) {
        if (h.from !== state || h.to === h.from) return false;
        state = h.to;
      }
      // Every action is preceded by the interface going down (never on suspect alone).
      const firstDown = log.findIndex((e) => e.type === 'health' && e.to === 'down');
      const firstAct = log.findIndex((e) => e.type === 'action');
      if (firstAct !== -1 && (firstDown === -1 || firstDown > firstAct)) return false;
      // No timer survives close().
      return pendingAfterClose === 0;
    }), { numRuns: 200 });
  t.pass();
});

test('soft evidence alone (lost probes, target down, stuck sockets) never causes an action', async (t) => {
  const softArb = fc.array(fc.tuple(fc.nat(5000), fc.oneof(
    fc.record({ kind: fc.constant('probe'), iface: fc.constant('eth0'), group: fc.constant('gw'), target: fc.constantFrom('192.0.2.1', '192.0.2.2'), ok: fc.boolean() }),
    fc.record({ kind: fc.constant('sockets'), iface: fc.constant('eth0'), stuck: fc.nat(5) }),
    fc.record({ kind: fc.constant('probe-group'), iface: fc.constant('eth0'), group: fc.constant('gw'), up: fc.constant(true), targetsUp: fc.constant(1), targetsTotal: fc.constant(2) }),
  )), { maxLength: 40 });
  await fc.assert(fc.asyncProperty(softArb, fc.nat(), async (script, seed) => {
    const { log } = await play(script, [{ ms: 0, status: 'ok', heals: false }, { ms: 0, status: 'ok', heals: false }, { ms: 0, status: 'ok', heals: false }], seed);
    return log.every((e) => e.type !== 'action' && !(e.type === 'health' && e.to === 'down'));
  }), { numRuns: 200 });
  t.pass();
});

test('actions never start while suppressed: a flap storm is held back until reuse', async (t) => {
  // 10 flaps 100 ms apart after grace: the penalty crosses 2500 on the third flap.
  const script = [[GRACE, { kind: 'carrier', iface: 'eth0', up: true, adminUp: true }]];
  for (let i = 0; i < 10; i++) {
    script.push([50, { kind: 'carrier', iface: 'eth0', up: false, adminUp: true }]);
    script.push([50, { kind: 'carrier', iface: 'eth0', up: true, adminUp: true }]);
  }
  script.push([1, { kind: 'carrier', iface: 'eth0', up: false, adminUp: true }]);
  const { log } = await play(script, [{ ms: 0, status: 'ok', heals: false }, { ms: 0, status: 'ok', heals: false }, { ms: 0, status: 'ok', heals: false }], 1);
  const suppressed = log.find((e) => e.type === 'alert' && e.reason === 'suppressed');
  t.truthy(suppressed);
  const acts = runs(log);
  const during = acts.filter((a) => a.startedAtMs >= suppressed.atMs && a.startedAtMs < suppressed.untilMs);
  t.deepEqual(during, []);
  const after = acts.filter((a) => a.startedAtMs >= suppressed.untilMs);
  t.true(after.length > 0, 'acts again after reuse');
  t.true(after[0].startedAtMs >= suppressed.untilMs);
});
