// Helpers for the LinkMonitor tests: an event recorder, a binding that loses notifications
// on demand, and a wait for a condition.
'use strict';
const { nativeBinding } = require('../../lib/native');
const nl = require('../../lib/kernel/netlink');

// Collects events and waits for the first one matching a predicate.
function recorder(monitor) {
  const events = [];
  const waiters = [];
  monitor.on('event', (event) => {
    events.push(event);
    for (const w of [...waiters]) {
      if (w.predicate(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(event);
      }
    }
  });
  return {
    events,
    next(predicate, timeoutMs = 3000, what = 'event') {
      return new Promise((resolve, reject) => {
        const w = { predicate, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}; saw ${JSON.stringify(events.slice(-5))}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
  };
}

// The real binding, but the monitor's event socket (the arena one) can be made deaf, its
// datagrams dropped as when the kernel's receive queue overflows, and then be told that it
// lost notifications (the ENOBUFS the kernel reports then): a resync whose losses are known.
function lossyBinding() {
  const real = nativeBinding();
  const control = /** @type {any} */ ({
    deaf: false,
    dropped: [],
    lose() { throw new Error('no event socket yet'); },
  });
  class NetlinkSocket {
    constructor(options, onData, onError) {
      if (!options.arena) return new real.NetlinkSocket(options, onData, onError);
      control.lose = () => onError(Object.assign(new Error('No buffer space available'), { code: 'ENOBUFS' }));
      return new real.NetlinkSocket(options, (arena, layout, stamps, count) => {
        if (!control.deaf) return onData(arena, layout, stamps, count);
        for (let i = 0; i < count; i++) {
          const datagram = Buffer.from(arena.subarray(layout[2 * i], layout[2 * i] + layout[2 * i + 1]));
          control.dropped.push(...nl.parseMessages(datagram));
        }
      }, onError);
    }
  }
  return { binding: /** @type {import("../../lib/native").NativeBinding} */ (/** @type {unknown} */ ({ ...real, NetlinkSocket })), control };
}

/** Waits until check() (which may return a promise) holds, looking every `everyMs`; fails after timeoutMs. */
async function until(check, what, timeoutMs = 3000, everyMs = 5) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}


module.exports = { lossyBinding, recorder, until };
