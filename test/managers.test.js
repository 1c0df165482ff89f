// Healing toward the declared intent, against the real managers under a booted systemd:
// systemd-networkd, ifupdown (stanza in /etc/network/interfaces.d) and NetworkManager (Debian's
// packages overlaid on the container's /usr), each in its own container with a gateway and a
// far host behind it (test/helpers/manager-box.js). For each manager, one fault after the
// other on the same box, reset in between: address removed, default route removed, admin-down
// by something other than the manager, admin-down by the operator through the manager, a
// 100 ms carrier blip, a manager re-apply while healthy, a silent gateway, a blackhole beyond
// the gateway. Asserted: the end state, the manager commands that ran (recorded by PATH shims
// in the container, not taken from the daemon's word), sockets destroyed, a long-lived TCP
// connection, the fault class, and how long healing took. Timings go to t.log (and, with
// NETHEAL_TIMINGS_OUT=FILE, to a JSON file for the benchmark table).
//
// Nothing here touches the host's network: all of it happens in the container's namespace
// and the two namespaces the helper creates. Where the container cannot boot, the tests are
// skipped, decided at load time from cheap checks; under CI=true they fail instead.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const { ManagerBox, availability, hrMs, sleep } = require('./helpers/manager-box');

const CI = process.env.CI === 'true';
const MANAGERS = ['networkd', 'ifupdown', 'networkmanager'];
/** Spec limits. */
const HEAL_WITHIN_MS = 2000;
// The target is 300 ms (benchmarks/recovery measures it against that, in a quiet run); the
// test's bound is looser so that a busy machine cannot turn a healthy heal into a failure.
const DETECTION_TO_CONFIGURED_MS = 1000;
const RESPECT_MS = 3000;

/** The manager's re-apply, the one command the daemon may run for a lost address or route. */
const REAPPLY = {
  networkd: (i) => `networkctl reconfigure ${i}`,
  networkmanager: (i) => `nmcli device reapply ${i}`,
  ifupdown: null, // netheal puts the declared address/route back itself (action `repair`)
};

/** The first command of each daemon's owner query (src/actions/manager.ts), as the shims record it. */
const OWNER_QUERY = { networkd: 'networkctl list', networkmanager: 'nmcli -t -f DEVICE,STATE device' };

const timings = [];

function daemonConfig(box) {
  return {
    policy: { graceMs: 0 },
    interfaces: {
      [box.iface]: { probe: { targets: ['gateway', box.far], intervalMs: 100, timeoutMs: 100, multiplier: 3, quorum: 1 } },
    },
  };
}

// ---- reading the daemon's log ----

// A line's time on this process's CLOCK_MONOTONIC scale (the container shares the kernel's
// clocks): its monotonicNs, else its wall-clock `time` shifted by the offset between the two.
const WALL_MINUS_MONOTONIC = Date.now() - hrMs();
const nsOf = (line) => (line.monotonicNs !== undefined ? Number(BigInt(line.monotonicNs)) / 1e6
  : typeof line.time === 'string' ? Date.parse(line.time) - WALL_MINUS_MONOTONIC : null);
const faultClass = (fault) => (typeof fault === 'string' ? fault : fault?.class);
const forIface = (lines, iface) => lines.filter((l) => l.iface === iface);
const healthLines = (lines, iface) => forIface(lines, iface).filter((l) => typeof l.to === 'string' && l.group === undefined);
/** Action records (not verification records): they carry `result`. A skipped step is a decision not to act. */
const actionLines = (lines, iface) => forIface(lines, iface).filter((l) => typeof l.action === 'string' && l.result !== undefined && l.result !== 'skipped');
/** Sockets destroyed: cleanup lines carry `destroyed`; today's kill-sockets says it in its text. */
const destroyedLines = (lines) => lines.filter((l) => (typeof l.destroyed === 'number' && l.destroyed > 0)
  || /destroyed [1-9]\d* (of|sockets)/.test(l.msg ?? ''));
/** Credited verification: `credited: true`, or a `verified: true` record that predates `credited`. */
const creditedLines = (lines, iface) => forIface(lines, iface).filter((l) => l.credited === true
  || (l.verified === true && l.credited === undefined));

/** Milliseconds between the first health line leaving healthy at/after `sinceMs` (monotonic ms) and the next line back to healthy. */
function detectionToHealthy(lines, iface, sinceMs) {
  const health = healthLines(lines, iface).filter((l) => (nsOf(l) ?? 0) >= sinceMs - 5);
  const detected = health.find((l) => l.from === 'healthy' && l.to !== 'healthy');
  if (detected === undefined) return { detected: null, healthy: null, ms: null };
  const healthy = health.slice(health.indexOf(detected) + 1).find((l) => l.to === 'healthy');
  const ms = healthy === undefined ? null
    : healthy.monotonicNs !== undefined && detected.monotonicNs !== undefined ? nsOf(healthy) - nsOf(detected) : Date.parse(healthy.time) - Date.parse(detected.time);
  return { detected, healthy: healthy ?? null, ms };
}


function summarize(lines, iface) {
  return [...new Set([...healthLines(lines, iface), ...actionLines(lines, iface), ...destroyedLines(lines),
    ...forIface(lines, iface).filter((l) => l.verified !== undefined || l.recovery !== undefined)])]
    .sort((a, b) => (a.time < b.time ? -1 : 1)).map((l) => `  ${l.time?.slice(11)} ${l.msg}`).join('\n');
}

// ---- one box per manager, booted once, faults in sequence ----

const boxes = new Map(); // manager -> Promise<ManagerBox>
let current = null;

async function boxFor(t, manager) {
  if (!boxes.has(manager)) {
    // One container at a time: the previous manager's box is done.
    if (current !== null && current !== manager) {
      const previous = await boxes.get(current).catch(() => null);
      await previous?.teardown();
    }
    current = manager;
    const avail = availability(manager);
    boxes.set(manager, avail.ok ? ManagerBox.boot(manager, { log: (m) => t.log(m) })
      : Promise.reject(new Error(`cannot boot a ${manager} container here: ${avail.reason}`)));
  }
  return boxes.get(manager);
}

test.after.always(async () => {
  for (const promise of boxes.values()) {
    const box = await promise.catch(() => null);
    await box?.teardown();
  }
  if (process.env.NETHEAL_TIMINGS_OUT) fs.writeFileSync(process.env.NETHEAL_TIMINGS_OUT, JSON.stringify(timings, null, 2));
});

/** Reset, daemon started and healthy, a fresh TCP connection. */
async function begin(t, manager) {
  const box = await boxFor(t, manager);
  await box.reset();
  await box.startDaemon(daemonConfig(box));
  const healthy = await box.waitHealthy(5000);
  t.true(healthy.ok, `healthy before the fault: ${JSON.stringify(healthy.last?.reasons ?? healthy.last)}`);
  const conn = await box.openTcp();
  t.teardown(() => conn.close());
  t.teardown(() => box.stopDaemon());
  const record = { manager, case: t.title.replace(/^[^:]+: /, ''), resetMs: Math.round(box.lastResetMs) };
  const caseStart = hrMs();
  t.teardown(() => { record.caseMs = Math.round(hrMs() - caseStart); });
  timings.push(record);
  return { box, conn, record, iface: box.iface };
}

function report(t, box, record, extra = {}) {
  const lines = box.logLines();
  Object.assign(record, extra, {
    managerCommands: box.managerCommands().map((c) => c.line),
    actions: actionLines(lines, box.iface).map((l) => `${l.action}:${l.result}`),
    socketsDestroyed: destroyedLines(lines).reduce((n, l) => n + (typeof l.destroyed === 'number' ? l.destroyed : Number(/destroyed (\d+)/.exec(l.msg)?.[1] ?? 0)), 0),
  });
  t.log(`timings: ${JSON.stringify(extra)}`);
  t.log(`manager commands (shims): ${JSON.stringify(record.managerCommands)}`);
  t.log(`daemon log:\n${summarize(box.logLines(), box.iface)}`);
}

const availabilities = new Map();
function declare(manager, title, fn) {
  if (!availabilities.has(manager)) availabilities.set(manager, availability(manager));
  const avail = availabilities.get(manager);
  const runner = avail.ok || CI ? test.serial : test.serial.skip;
  runner(`${manager}: ${title}`, (t) => {
    t.timeout(180000); // the first test of a manager includes its boot (and NetworkManager's download)
    return fn(t, manager);
  });
}

// ---- the cases ----

/**
 * Injects a fault the daemon must heal itself, waits for the configured state and for
 * health, and records the timings: fault to detection, detection to configured (polled).
 */
async function injectAndHeal(t, manager, inject) {
  const { box, conn, record, iface } = await begin(t, manager);
  // The daemon's start-up queries of the owner are over: what the shims record from here on
  // was set off by the fault.
  const shimMark = await box.shimsQuiet(300, 5000);
  const faultAt = hrMs();
  await inject(box);
  const healed = await box.waitConfigured(HEAL_WITHIN_MS);
  const healthy = await box.waitHealthy(HEAL_WITHIN_MS);
  await sleep(200); // the last log lines
  const lines = box.logLines();
  const d2h = detectionToHealthy(lines, iface, faultAt);
  const tcp = await conn.exchange(5000);
  // On this process's monotonic scale: the daemon's detection, the configured state seen back
  // (polled), the manager command's start (its shim's stamp).
  const detectedAt = d2h.detected ? nsOf(d2h.detected) : null;
  const configuredAt = healed.ok ? faultAt + healed.ms : null;
  const command = box.managerCommands()[0];
  const commandAt = command ? command.atMs - WALL_MINUS_MONOTONIC : null;
  const healMs = configuredAt !== null && detectedAt !== null ? configuredAt - detectedAt : null;
  record.detectionToConfiguredMs = healMs === null ? null : Math.round(healMs);
  report(t, box, record, {
    faultToDetectionMs: detectedAt !== null ? +(detectedAt - faultAt).toFixed(1) : null,
    faultToConfiguredMs: healed.ms && Math.round(healed.ms), pollMs: healed.pollMs && Math.round(healed.pollMs),
    detectionToCommandMs: commandAt !== null && detectedAt !== null ? Math.round(commandAt - detectedAt) : null,
    commandToConfiguredMs: commandAt !== null && configuredAt !== null ? Math.round(configuredAt - commandAt) : null,
    detectionToHealthyMs: d2h.ms && Math.round(d2h.ms), tcpSurvived: tcp.ok,
  });
  return { box, iface, lines, healed, healthy, d2h, tcp, healMs, shimMark };
}

async function lostConfiguration(t, manager, what) {
  const { box, iface, lines, healed, healthy, d2h, tcp, healMs, shimMark } = await injectAndHeal(t, manager,
    (b) => (what === 'address' ? b.delAddress() : b.delDefaultRoute()));

  t.true(healed.ok, `configured state back within ${HEAL_WITHIN_MS} ms: ${JSON.stringify(healed.state)}`);
  t.true(healthy.ok, `healthy: ${JSON.stringify(healthy.last?.reasons)}`);
  t.truthy(d2h.detected, 'the daemon saw the fault');
  // Healed = the configured state is back (healthy follows once the probes have answered
  // `recovery` times, which alone takes 3 x 100 ms here).
  t.true(healMs !== null && healMs <= DETECTION_TO_CONFIGURED_MS, `detection -> configured ${healMs} ms (limit ${DETECTION_TO_CONFIGURED_MS})`);
  const commands = box.managerCommands().map((c) => c.line);
  if (REAPPLY[manager] !== null) {
    t.deepEqual(commands, [REAPPLY[manager](iface)], 'exactly the manager\'s re-apply ran');
    // The owner is asked once after the fault: the re-apply step reuses that answer instead of
    // paying the manager's tool's start-up again before it acts.
    const calls = box.shimCalls().slice(shimMark);
    const reapplyAt = calls.findIndex((c) => c.line === REAPPLY[manager](iface));
    t.true(reapplyAt >= 0, 'the re-apply is in the shims\' record');
    const asked = calls.slice(0, reapplyAt).filter((c) => c.line.startsWith(OWNER_QUERY[manager]));
    t.is(asked.length, 1, `owner queries between the fault and the re-apply: ${JSON.stringify(calls.map((c) => c.line))}`);
  } else {
    t.deepEqual(commands, [], 'no ifdown/ifup');
    t.true(actionLines(lines, iface).some((l) => l.action === 'repair' && l.result === 'ok'), 'netheal repaired the declared configuration itself');
  }
  t.deepEqual(actionLines(lines, iface).flatMap((l) => l.commands ?? []), commands, 'the commands the daemon reports are the ones that ran');
  t.deepEqual(destroyedLines(lines).map((l) => l.msg), [], 'no socket destroyed');
  t.true(tcp.ok, `the long-lived TCP connection survived: ${tcp.why}`);
}

async function adminDownByOther(t, manager) {
  const { healed, healthy, tcp, healMs } = await injectAndHeal(t, manager, (b) => b.adminDown());
  t.true(healed.ok, `admin up with the declared address and default route within ${HEAL_WITHIN_MS} ms: ${JSON.stringify(healed.state)}`);
  t.true(healMs !== null && healMs <= DETECTION_TO_CONFIGURED_MS, `detection -> configured ${healMs} ms (limit ${DETECTION_TO_CONFIGURED_MS})`);
  t.true(healthy.ok, `healthy: ${JSON.stringify(healthy.last?.reasons)}`);
  // networkd deletes the IPv4 address itself ~3 ms after admin-down; ifupdown (the kernel)
  // and NetworkManager (for ~6 s) keep it: there the connection must survive.
  if (manager !== 'networkd') t.true(tcp.ok, `the TCP connection on the kept address survived: ${tcp.why}`);
}

async function adminDownByOperator(t, manager) {
  const { box, record, iface } = await begin(t, manager);
  const downAt = hrMs();
  await box.operatorDown();
  // NetworkManager's disconnect leaves the link admin-up without addresses; the others take it down.
  const asLeft = (s) => !box.isConfigured(s) && (manager === 'networkmanager' || !s.adminUp);
  const settled = await box.until('the operator\'s down to take effect', async () => asLeft(await box.linkState()), 3000, 20).catch(() => false);
  const held = await box.holds(asLeft, RESPECT_MS - (hrMs() - downAt));
  const st = await box.ifaceStatus();
  const linesDown = box.logLines();
  const actionsWhileDown = actionLines(linesDown, iface);
  const commandsWhileDown = box.managerCommands().map((c) => c.line);
  const upAt = hrMs();
  await box.operatorUp();
  const back = await box.waitConfigured(5000);
  const healthy = await box.waitHealthy(3000);
  report(t, box, record, { operatorUpToConfiguredMs: back.ms && Math.round(back.ms), operatorUpToHealthyMs: healthy.ok ? Math.round(hrMs() - upAt) : null, intent: st?.intent });

  t.truthy(settled, 'the operator\'s down took effect');
  t.true(held.ok, `left as the operator left it for ${RESPECT_MS} ms: ${JSON.stringify(held.state)}`);
  t.deepEqual(actionsWhileDown.map((l) => l.msg), [], 'no netheal action');
  t.deepEqual(commandsWhileDown, [], 'no manager command');
  t.is(st?.intent?.wantUp, false, `status shows the intent as down: ${JSON.stringify(st?.intent)}`);
  t.true(back.ok, 'the operator\'s up configured it');
  t.true(healthy.ok, `healthy after the operator's up: ${JSON.stringify(healthy.last?.reasons)}`);
}

async function carrierBlip(t, manager) {
  const { box, conn, record, iface } = await begin(t, manager);
  const blipAt = hrMs();
  const downMs = await box.carrierBlip(100);
  // The gateway's neighbour entry empties with the blip: probes lose up to ~1 s until the
  // kernel resolves it again. Wait that out, then judge.
  await sleep(1500);
  const healthy = await box.waitHealthy(3000);
  const lines = box.logLines();
  const tcp = await conn.exchange(5000);
  const last = healthLines(lines, iface).at(-1);
  report(t, box, record, {
    blipMs: Math.round(downMs), tcpSurvived: tcp.ok,
    // When the last health change (back to healthy) happened, if the blip caused any.
    blipToLastHealthChangeMs: last && nsOf(last) >= blipAt ? Math.round(nsOf(last) - blipAt) : null,
  });

  t.deepEqual(destroyedLines(lines).map((l) => l.msg), [], 'no socket destroyed');
  t.true(tcp.ok, `the TCP connection survived the blip: ${tcp.why}`);
  t.deepEqual(box.managerCommands().map((c) => c.line), [], 'no manager command');
  t.true(healthy.ok, `healthy: ${JSON.stringify(healthy.last?.reasons)}`);
  t.is(actionLines(lines, iface).filter((l) => /manager-reapply|link-bounce/.test(l.action)).length, 0, 'no re-apply or bounce');
}

async function managerReconfigure(t, manager) {
  const { box, conn, record, iface } = await begin(t, manager);
  const r = await box.managerReconfigure();
  await sleep(1000);
  const healthy = await box.waitHealthy(2000);
  const lines = box.logLines();
  const tcp = await conn.exchange(5000);
  report(t, box, record, { tcpSurvived: tcp.ok, managerCommandExit: r.code });

  t.deepEqual(destroyedLines(lines).map((l) => l.msg), [], 'no socket destroyed');
  t.true(tcp.ok, `the TCP connection survived the re-apply: ${tcp.why}`);
  t.deepEqual(actionLines(lines, iface).map((l) => l.msg), [], 'no netheal action');
  t.deepEqual(box.managerCommands().map((c) => c.line), [], 'no manager command from netheal');
  t.true(healthy.ok, `healthy: ${JSON.stringify(healthy.last?.reasons)}`);
}

/** Polls status until the interface's fault class is `cls`: { ok, ms, last }. */
async function waitFaultClass(box, cls, timeoutMs) {
  const start = hrMs();
  let last;
  while (hrMs() - start < timeoutMs) {
    last = await box.ifaceStatus();
    if (faultClass(last?.fault) === cls) return { ok: true, ms: hrMs() - start, last };
    await sleep(50);
  }
  return { ok: false, ms: null, last };
}

async function firstHopLoss(t, manager) {
  const { box, record, iface } = await begin(t, manager);
  const lossAt = hrMs();
  await box.firstHopLoss(true);
  const classified = await waitFaultClass(box, 'first-hop', 3000);
  await sleep(Math.max(0, 2000 - (hrMs() - lossAt)));
  const endAt = hrMs();
  await box.firstHopLoss(false);
  const healthy = await box.waitHealthy(5000);
  await sleep(200);
  const lines = box.logLines();
  const inLog = forIface(lines, iface).some((l) => faultClass(l.fault) === 'first-hop');
  const withoutAction = forIface(lines, iface).some((l) => l.recovery === 'without-action');
  report(t, box, record, { classifiedAfterMs: classified.ms && Math.round(classified.ms), lossEndToHealthyMs: healthy.ok ? Math.round(hrMs() - endAt - 200) : null, classInLog: inLog, recoveryWithoutActionLogged: withoutAction });

  t.true(classified.ok, `status names the fault class first-hop: ${JSON.stringify(classified.last?.fault ?? classified.last?.reasons)}`);
  t.true(healthy.ok, `healthy after the loss ends: ${JSON.stringify(healthy.last?.reasons)}`);
  t.deepEqual(creditedLines(lines, iface).map((l) => l.msg), [], 'no action credited with the recovery');
}

async function beyondFirstHopLoss(t, manager) {
  const { box, conn, record, iface } = await begin(t, manager);
  await box.beyondFirstHopLoss(true);
  const classified = await waitFaultClass(box, 'beyond-first-hop', 3000);
  await sleep(Math.max(0, 4000 - (classified.ms ?? 3000)));
  const during = await conn.exchange(3000);
  const endAt = hrMs();
  await box.beyondFirstHopLoss(false);
  const healthy = await box.waitHealthy(5000);
  const lines = box.logLines();
  const tcp = await conn.exchange(5000);
  report(t, box, record, { classifiedAfterMs: classified.ms && Math.round(classified.ms), lossEndToHealthyMs: healthy.ok ? Math.round(hrMs() - endAt) : null, tcpSurvived: during.ok && tcp.ok });

  t.true(classified.ok, `status names the fault class beyond-first-hop: ${JSON.stringify(classified.last?.fault ?? classified.last?.reasons)}`);
  t.deepEqual(box.managerCommands().map((c) => c.line), [], 'no manager command');
  t.deepEqual(actionLines(lines, iface).filter((l) => /manager-reapply|link-bounce/.test(l.action)).map((l) => l.msg), [], 'no re-apply, no bounce');
  t.true(during.ok, `the TCP connection to the gateway works during the loss: ${during.why}`);
  t.true(tcp.ok, `and after it: ${tcp.why}`);
  t.true(healthy.ok, `healthy after the loss ends: ${JSON.stringify(healthy.last?.reasons)}`);
}

// What the owner's intent looks like through each manager's public interface (the facts
// the daemon's intent reading rests on), and that the box's fault injectors and shims do what
// they claim. Independent of the daemon.
async function boxFacts(t, manager) {
  const box = await boxFor(t, manager);
  await box.reset();
  const i = box.iface;
  const q = async (cmd, args) => (await box.inBox(cmd, args)).stdout.trim();
  if (manager === 'networkd') {
    const json = async () => JSON.parse(await q('networkctl', ['status', i, '--json=short']));
    const before = await json();
    t.regex(before.AdministrativeState, /^configur(ed|ing)$/);
    t.is(before.ActivationPolicy, 'up');
    await box.adminDown();
    await sleep(300);
    const afterIp = await json();
    await box.reset();
    await box.inBox('networkctl', ['down', i]);
    await sleep(300);
    const afterNetworkctl = await json();
    // networkctl 252 sets the link down over rtnetlink itself: networkd records nothing that
    // tells it from `ip link set down`.
    for (const s of [afterIp, afterNetworkctl]) {
      t.regex(s.AdministrativeState, /^configur(ed|ing)$/);
      t.is(s.ActivationPolicy, 'up');
      t.is(s.OperationalState, 'off');
    }
    await box.reset();
    await box.operatorDown();
    await sleep(300);
    const afterPolicy = await json();
    t.is(afterPolicy.ActivationPolicy, 'down', 'ActivationPolicy=down is the operator\'s word networkd shows');
    t.false((await box.linkState()).adminUp, 'and networkd takes the link down itself');
  } else if (manager === 'ifupdown') {
    t.is(await q('ifquery', ['--state', i]), `${i}=${i}`);
    t.regex(await q('ifquery', [i]), new RegExp(`address: ${box.address.replace(/\./g, '\\.')}[\\s\\S]*gateway: ${box.gateway.replace(/\./g, '\\.')}`));
    t.true((await q('ifquery', ['--list'])).split('\n').includes(i), 'the stanza in interfaces.d is found through source');
    await box.adminDown();
    t.is(await q('ifquery', ['--state', i]), `${i}=${i}`, 'ip link set down leaves ifupdown\'s intent up');
    await box.reset();
    await box.operatorDown();
    t.is(await q('ifquery', ['--state', i]), '', 'ifdown clears it');
  } else {
    const dev = async () => q('nmcli', ['-t', '-f', 'GENERAL.STATE,GENERAL.REASON,GENERAL.AUTOCONNECT', 'device', 'show', i]);
    t.regex(await dev(), /^GENERAL\.STATE:100 /m);
    t.is(await q('nmcli', ['-g', 'ipv4.addresses,ipv4.gateway', 'connection', 'show', i]), `${box.address}/${box.prefixlen}\n${box.gateway}`);
    await box.adminDown();
    await sleep(1000);
    t.regex(await dev(), /^GENERAL\.STATE:100 [\s\S]*GENERAL\.AUTOCONNECT:yes/m, 'for ~6 s after ip link set down NetworkManager still says connected');
    await box.reset();
    await box.operatorDown();
    t.regex(await dev(), /^GENERAL\.STATE:30 [\s\S]*GENERAL\.REASON:39 [\s\S]*GENERAL\.AUTOCONNECT:no/m, 'disconnect: disconnected by the user, autoconnect off');
    t.true((await box.linkState()).adminUp, 'the link itself stays admin-up');
  }
  await box.reset();
  // The shims record what runs through the daemon's PATH; queries are not counted as commands.
  const tool = { networkd: ['networkctl', 'list'], ifupdown: ['ifquery', '--list'], networkmanager: ['nmcli', '-t', 'device'] }[manager];
  await box.inBox('env', [`PATH=${box.daemonPath}`, ...tool]);
  t.deepEqual(box.shimCalls().map((c) => c.line), [tool.join(' ')]);
  t.deepEqual(box.managerCommands(), []);
  // Fault injectors: a silent gateway; a gateway that answers but forwards nothing.
  await box.firstHopLoss(true);
  await box.inBox('ip', ['neigh', 'flush', 'dev', i]);
  t.false(await box.reaches(box.gateway, 0.3), 'first-hop loss: the gateway is silent');
  await box.firstHopLoss(false);
  await box.beyondFirstHopLoss(true);
  t.true(await box.reaches(box.gateway), 'beyond-first-hop loss: the gateway answers');
  t.false(await box.reaches(box.far, 0.3), 'and the far host does not');
  await box.beyondFirstHopLoss(false);
  t.true(await box.reaches(box.far));
}

for (const manager of MANAGERS) {
  declare(manager, 'the box: the manager shows the owner\'s intent, faults and shims work', boxFacts);
  declare(manager, 'address removed: the declared address is back, by the least disruptive repair', (t, m) => lostConfiguration(t, m, 'address'));
  declare(manager, 'default route removed: the declared route is back, by the least disruptive repair', (t, m) => lostConfiguration(t, m, 'route'));
  declare(manager, 'admin-down by something else than the manager: healed', adminDownByOther);
  declare(manager, 'admin-down by the operator through the manager: respected', adminDownByOperator);
  declare(manager, '100 ms carrier blip: nothing destroyed, nothing run', carrierBlip);
  declare(manager, 'the manager re-applies while healthy: netheal stays out of it', managerReconfigure);
  declare(manager, 'first-hop loss: classified, recovery not credited to an action', firstHopLoss);
  declare(manager, 'beyond-first-hop loss: classified, alert only', beyondFirstHopLoss);
}
