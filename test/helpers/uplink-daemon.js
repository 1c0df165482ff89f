// @ts-check
// The daemon of the two-uplink tests (src/lab/two-uplinks.ts): both uplinks probing the far
// server every 10 ms, the events it emits recorded, stopped when the test ends.
'use strict';
const { Lab } = require('../../lib/lab/lab');
const { FAR_SERVER } = require('../../lib/lab/two-uplinks');
const { Daemon } = require('../../lib/daemon/daemon');
const { validateConfig } = require('../../lib/daemon/config');
const { createLogger } = require('../../lib/daemon/logger');

/**
 * Starts the daemon for `client` with the uplinks up0 (preferred) and up1. UPLINK_DEBUG=1
 * shows its log. @param {any} t @param {string} client
 * @param {{ holdUpMs: number, events: string[] }} options
 */
async function startUplinkDaemon(t, client, { holdUpMs, events: types }) {
  const daemon = new Daemon({
    config: validateConfig({
      netns: Lab.path(client), policy: { graceMs: 600000 }, interfaces: { up0: {}, up1: {} },
      uplinks: [
        { iface: 'up0', gateway: '192.0.2.1', targets: [FAR_SERVER] },
        { iface: 'up1', gateway: '198.51.100.1', targets: [FAR_SERVER] },
      ],
      failover: { intervalMs: 10, multiplier: 3, recovery: 3, holdUpMs },
      managers: { networkScriptsDir: '/nonexistent' },
    }),
    logger: createLogger({ format: 'json', minLevel: process.env.UPLINK_DEBUG ? 'debug' : 'error', write: (l) => { if (process.env.UPLINK_DEBUG) process.stderr.write(l); } }),
  });
  /** @type {any[]} */
  const events = [];
  for (const type of types) daemon.on(/** @type {any} */ (type), (e) => events.push({ type, ...e }));
  t.teardown(() => daemon.stop());
  await daemon.start();
  return { daemon, events };
}

/**
 * Resolves with the first event of `type` that matches, seen (in `events`) or to come.
 * @param {any} daemon @param {any[]} events @param {string} type @param {(e: any) => boolean} match
 */
function nextEvent(daemon, events, type, match, timeoutMs = 15000) {
  const seen = events.find((e) => e.type === type && match(e));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${type}: ${JSON.stringify(events)}`)), timeoutMs);
    const on = (/** @type {any} */ e) => { if (match(e)) { clearTimeout(timer); daemon.off(type, on); resolve(e); } };
    daemon.on(type, on);
  });
}

module.exports = { startUplinkDaemon, nextEvent };
