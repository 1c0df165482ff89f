// @ts-check
'use strict';
// The daemon as its own process (`node lib/daemon.js --config FILE --log-format json`), for
// tests that kill it (-9), restart it or signal it: its JSON log records, and a wait for one.
const { spawn } = require('node:child_process');
const readline = require('node:readline');

const DAEMON = require.resolve('../../lib/daemon.js');

/**
 * Starts the daemon with `STATE_DIRECTORY=stateDir`; resolves once it logs that monitoring is
 * live. `next(match)` resolves with the first log record (seen or to come) that matches.
 * @param {any} t the ava test (the process is killed at its teardown)
 * @param {string} configFile
 * @param {string} stateDir
 */
async function startDaemonProcess(t, configFile, stateDir) {
  const child = spawn(process.execPath, [DAEMON, '--config', configFile, '--log-format', 'json'], {
    env: { ...process.env, STATE_DIRECTORY: stateDir }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  /** @type {any[]} */
  const logs = [];
  /** @type {{ match: (l: any) => boolean, resolve: (l: any) => void }[]} */
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const record = JSON.parse(line);
    logs.push(record);
    for (const w of [...waiters]) if (w.match(record)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(record); }
  });
  /** @param {(l: any) => boolean} match */
  const next = (match, timeoutMs = 15000) => new Promise((resolve, reject) => {
    const seen = logs.find(match);
    if (seen) return resolve(seen);
    waiters.push({ match, resolve });
    setTimeout(() => reject(new Error(`timed out; log: ${logs.map((l) => l.msg).join(' | ')}`)), timeoutMs).unref();
  });
  await next((l) => l.msg === 'monitoring is live');
  return { child, logs, next };
}

module.exports = { startDaemonProcess, DAEMON };
