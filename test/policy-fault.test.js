'use strict';
// Fault location and the address baseline: pure functions, every class and its precedence.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { locateFault } = require('../lib/policy/fault');
const { InterfaceEvidence } = require('../lib/policy/health');
const { DEFAULT_DOWN_ON } = require('../lib/policy/config');

const base = {
  removed: false, adminUp: true, carrier: true, configProblems: [], groupsDown: [], gatewayTargetsDown: [],
  gatewayTargetsUp: [], gatewayNeighbours: {}, localUnreachable: false,
};

test('locateFault: the most local evidence wins; nothing bad, no fault', (t) => {
  t.is(locateFault(base), null);
  t.deepEqual(locateFault({ ...base, removed: true, configProblems: ['address-missing:10.0.0.2'] }), { class: 'link', because: ['link-removed'] });
  t.deepEqual(locateFault({ ...base, adminUp: false, groupsDown: ['gw'] }), { class: 'link', because: ['admin-down'] });
  t.deepEqual(locateFault({ ...base, carrier: false }), { class: 'link', because: ['carrier-down'] });
  t.deepEqual(locateFault({ ...base, configProblems: ['default-route-lost:4'], groupsDown: ['gw'] }), { class: 'local-config', because: ['default-route-lost:4'] });
});

test('locateFault: first hop from the neighbour entry or the gateway probes; beyond when the gateway answers', (t) => {
  t.deepEqual(locateFault({ ...base, groupsDown: ['gw'], gatewayNeighbours: { '10.0.0.1': 'failed' } }),
    { class: 'first-hop', because: ['neighbour-failed:10.0.0.1'] });
  t.deepEqual(locateFault({ ...base, groupsDown: ['gw'], gatewayTargetsDown: ['eth0:gateway'] }),
    { class: 'first-hop', because: ['gateway-silent:eth0:gateway'] });
  t.deepEqual(locateFault({ ...base, groupsDown: ['gw'], gatewayTargetsUp: ['eth0:gateway'], gatewayNeighbours: { '10.0.0.1': 'incomplete' } }),
    { class: 'beyond-first-hop', because: ['gateway-answers:eth0:gateway', 'probe-group-down:gw'] }, 'an answering gateway outweighs a neighbour entry being re-learnt');
  // Nothing tells first hop from beyond: the class whose default is to alert, never to disrupt.
  t.deepEqual(locateFault({ ...base, groupsDown: ['gw'] }), { class: 'beyond-first-hop', because: ['path-unlocated', 'probe-group-down:gw'] });
  t.is(locateFault({ ...base, gatewayNeighbours: { '10.0.0.1': 'failed' } }), null, 'a neighbour entry alone is no fault');
});

test('baseline: losing any global address of the healthy state is evidence, link-local never counts, renumbering is no loss', (t) => {
  const ev = new InterfaceEvidence();
  const addr = (address, present) => ev.apply({ kind: 'address', iface: 'eth0', present, address });
  addr('10.0.0.2', true);
  addr('fe80::1', true);
  addr('2001:db8::2', true);
  ev.takeBaseline();
  t.deepEqual(ev.snapshot().baseline, ['10.0.0.2', '2001:db8::2']);
  addr('10.0.0.2', false);
  t.deepEqual(ev.problems(DEFAULT_DOWN_ON, []).hard, ['address-missing:10.0.0.2'], 'the IPv4 address lost while fe80 and v6 stay');
  t.is(ev.fault(ev.problems(DEFAULT_DOWN_ON, [])).class, 'local-config');
  addr('10.0.0.7', true); // a new lease of the same family: the baseline follows
  t.deepEqual(ev.problems(DEFAULT_DOWN_ON, []).hard, []);
  t.deepEqual(ev.snapshot().baseline, ['10.0.0.7', '2001:db8::2']);
  addr('fe80::1', false);
  t.deepEqual(ev.problems(DEFAULT_DOWN_ON, []).hard, [], 'link-local comes and goes with the link');
});

const { FakeClock } = require('../lib/policy/clock');
const { PolicyEngine } = require('../lib/policy/engine');

function engineWith(executors, policy = {}) {
  const clock = new FakeClock();
  const runs = [];
  const actions = executors.map((e) => ({
    ...e,
    async run(ctx) { runs.push([clock.now(), e.kind, ctx.fault.class]); return { status: 'ok' }; },
  }));
  const engine = new PolicyEngine({
    clock, random: () => 0, actions,
    config: { graceMs: 0, interfaces: { eth0: { ladder: executors.map((e) => e.kind), verifyTimeoutMs: 1000, ...policy } } },
  });
  const events = [];
  for (const type of ['action', 'verify', 'alert', 'recovered', 'health']) /** @type {import('node:events').EventEmitter} */ (/** @type {unknown} */ (engine)).on(type, (e) => events.push({ type, ...e }));
  engine.observe({ kind: 'intent', iface: 'eth0', intent: { owner: 'netheal', wantUp: true, source: 'test' } });
  return { clock, engine, runs, events };
}

test('a 100 ms carrier blip runs nothing: the bounce waits its hold-down; recovered without action', async (t) => {
  const s = engineWith([{ kind: 'bounce', fixes: ['link'], afterMs: { link: 3000 } }, { kind: 'kill', fixes: ['first-hop', 'beyond-first-hop'], verifiable: false, afterMs: { 'first-hop': 10000 } }]);
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: false, adminUp: true });
  await s.clock.advance(100);
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: true, adminUp: true });
  // The blip emptied the gateway's neighbour entry: the probes lose ~1 s. Same incident.
  s.engine.observe({ kind: 'neighbour', iface: 'eth0', address: '10.0.0.1', state: 'incomplete' });
  s.engine.observe({ kind: 'probe', target: 'eth0:gateway', group: 'gw', iface: 'eth0', ok: false, role: 'gateway' });
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: false });
  t.is(s.engine.snapshot().interfaces.eth0.fault.class, 'first-hop');
  await s.clock.advance(1000);
  s.engine.observe({ kind: 'probe', target: 'eth0:gateway', group: 'gw', iface: 'eth0', ok: true, role: 'gateway' });
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: true });
  await s.clock.advance(20000);
  t.deepEqual(s.runs, []);
  t.is(s.engine.snapshot().interfaces.eth0.damping.flaps, 1, 'one incident, one flap');
  t.deepEqual(s.events.filter((e) => e.type === 'recovered').map((e) => [e.fault, e.by]), [['link', 'without-action'], ['first-hop', 'without-action']]);
  t.is(s.engine.stateOf('eth0'), 'healthy');
});

test('a dead first hop: steps that cannot fix it are skipped with the reason; the socket killer runs once past its hold-down, never credited', async (t) => {
  const s = engineWith([{ kind: 'bounce', fixes: ['link'] }, { kind: 'kill', fixes: ['first-hop', 'beyond-first-hop'], verifiable: false, afterMs: { 'first-hop': 10000 } }]);
  s.engine.observe({ kind: 'probe', target: 'eth0:gateway', group: 'gw', iface: 'eth0', ok: false, role: 'gateway' });
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: false });
  await s.clock.advance(60000);
  t.deepEqual(s.runs, [[10000, 'kill', 'first-hop']], 'once, after 10 s of dead path');
  const skipped = s.events.filter((e) => e.type === 'action' && e.result.status === 'skipped');
  t.is(skipped[0].kind, 'bounce');
  t.is(skipped[0].result.detail, 'cannot fix a first-hop fault');
  t.deepEqual(s.events.filter((e) => e.type === 'verify'), [], 'nothing to verify');
  t.deepEqual(s.events.filter((e) => e.type === 'alert').map((e) => e.reason), ['cannot-fix']);
  s.engine.observe({ kind: 'probe', target: 'eth0:gateway', group: 'gw', iface: 'eth0', ok: true, role: 'gateway' });
  s.engine.observe({ kind: 'probe-group', group: 'gw', iface: 'eth0', up: true });
  await s.clock.advance(0);
  t.deepEqual(s.events.filter((e) => e.type === 'recovered').map((e) => [e.fault, e.by, e.action]), [['first-hop', 'without-action', null]]);
});

test('a maintenance hold: judged and reported, never acted on; released, the fault still there is acted on', async (t) => {
  const s = engineWith([{ kind: 'repair', fixes: ['local-config'] }]);
  s.engine.observe({ kind: 'address', iface: 'eth0', present: true, address: '10.0.0.2' });
  t.true(s.engine.hold('eth0', true));
  s.engine.observe({ kind: 'address', iface: 'eth0', present: false, address: '10.0.0.2' });
  await s.clock.advance(5000);
  t.deepEqual(s.runs, []);
  t.is(s.engine.stateOf('eth0'), 'down');
  t.true(s.engine.snapshot().interfaces.eth0.hold);
  t.true(s.events.some((e) => e.type === 'alert' && e.reason === 'held'));
  s.engine.hold('eth0', false);
  await s.clock.advance(0);
  t.deepEqual(s.runs, [[5000, 'repair', 'local-config']]);
});

test('a default route lost only to its linkdown flag is the carrier fault\'s consequence: once the carrier is back nothing is repaired', async (t) => {
  const s = engineWith([{ kind: 'repair', fixes: ['local-config'] }, { kind: 'bounce', fixes: ['link'], afterMs: { link: 3000 } }]);
  s.engine.observe({ kind: 'default-route', family: 4, present: true, iface: 'eth0' });
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: false, adminUp: true });
  // The re-dump after the carrier loss finds the route flagged linkdown: "lost", but still there.
  s.engine.observe({ kind: 'default-route', family: 4, present: false, iface: 'eth0', linkdown: true });
  t.deepEqual(s.engine.snapshot().interfaces.eth0.reasons, ['carrier-down']);
  await s.clock.advance(100);
  // The carrier is back; the route's flag is not re-read yet: no lost configuration meanwhile.
  s.engine.observe({ kind: 'carrier', iface: 'eth0', up: true, adminUp: true });
  await s.clock.advance(500);
  t.is(s.engine.stateOf('eth0'), 'healthy');
  s.engine.observe({ kind: 'default-route', family: 4, present: true, iface: 'eth0' });
  // A route really removed is still lost configuration.
  s.engine.observe({ kind: 'default-route', family: 4, present: false, iface: 'eth0' });
  t.deepEqual(s.engine.snapshot().interfaces.eth0.reasons, ['default-route-lost:4']);
  await s.clock.advance(100);
  t.deepEqual(s.runs.map((r) => r[1]), ['repair'], 'only the real loss was repaired');
});
