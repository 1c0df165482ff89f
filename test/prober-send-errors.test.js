// @ts-check
// Prober send failures, on a fake addon: a send() that throws or fails some probes must not
// stop the prober, leave probes of a failed batch in their slot, or hide the failure.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { Prober } = require('../lib/monitor/prober');

/**
 * A fake IcmpSocket class: every send() is recorded as the list of probe tags it
 * carried, and answered by `behaviour(call)`: 'throw', or an array of errnos (one per probe).
 * @param {(call: number, count: number) => 'throw' | number[]} behaviour
 */
function fakeBinding(behaviour) {
  /** @type {number[][]} */
  const sends = [];
  class FakeIcmpSocket {
    kind = 'dgram';
    ident = 1;
    fd = -1;
    /** @param {Buffer} records @param {number} count @param {Int32Array} errnos */
    send(records, count, errnos) {
      // Record layout (src/kernel/icmp.ts writeSendRecord): the probe's tag is the u32 at 20.
      sends.push(Array.from({ length: count }, (_, i) => records.readUInt32LE(i * 24 + 20)));
      const outcome = behaviour(sends.length, count);
      if (outcome === 'throw') {
        const error = Object.assign(new Error('sendmmsg failed: Bad file descriptor'), { code: 'EBADF', errno: -9, syscall: 'sendmmsg' });
        throw error;
      }
      let failed = 0;
      for (let i = 0; i < count; i++) {
        errnos[i] = outcome[i] ?? 0;
        if (errnos[i] !== 0) failed++;
      }
      return failed;
    }
    close() {}
    ref() {}
    unref() {}
  }
  return { binding: /** @type {any} */ ({ IcmpSocket: FakeIcmpSocket }), sends };
}

/**
 * Resolves with the first `n` events named `name` the prober emits.
 * @param {import('events').EventEmitter} emitter
 * @param {string} name
 * @param {number} n
 */
function collect(emitter, name, n) {
  return new Promise((resolve) => {
    /** @type {unknown[]} */
    const seen = [];
    const on = (/** @type {unknown} */ e) => {
      seen.push(e);
      if (seen.length === n) {
        emitter.off(name, on);
        resolve(seen);
      }
    };
    emitter.on(name, on);
  });
}

test('a send() that throws: its probe is a send error, the error is emitted, probing goes on', async (t) => {
  const { binding, sends } = fakeBinding((call) => (call <= 3 ? 'throw' : []));
  const prober = new Prober({ binding, interval: 20, timeout: 1000, multiplier: 3 });
  t.teardown(() => prober.close());
  const errors = collect(prober, 'error', 1);
  const down = collect(prober, 'target-down', 1);
  /** @type {import('../lib/monitor/prober').ProbeResult[]} */
  const results = [];
  prober.on('probe', (r) => results.push(r));
  prober.add('192.0.2.1');
  const [error] = /** @type {Error[]} */ (await errors);
  t.is(/** @type {any} */ (error).code, 'NETHEAL_ERR_KERNEL');
  t.regex(error.message, /send ICMP probes: sendmmsg failed/);
  // Refused sends are early evidence: two in a row take the target down at once, not after
  // 3 x 20 ms of silence (let alone the 1000 ms timeout).
  const downCount = /** @type {any} */ (await down)[0].count;
  t.is(downCount, 2);
  const [event] = /** @type {import('../lib/monitor/prober').TargetStateEvent[]} */ (await down);
  t.is(event.reason?.kind, 'send-error');
  t.is(event.reason?.name, 'EBADF');
  t.is(event.reason?.errno, 9);
  // Still probing after the throws: the timer was re-armed.
  while (sends.length < 6) await new Promise((resolve) => setTimeout(resolve, 10));
  // No batch carries a probe of an earlier one, and none is sent twice.
  t.true(sends.every((batch) => batch.length === 1), `batches: ${JSON.stringify(sends)}`);
  const tags = sends.flat();
  t.is(new Set(tags).size, tags.length, 'no probe sent twice');
  const failed = results.filter((r) => r.status === 'error');
  t.is(failed.length, 3);
  t.true(failed.every((r) => r.reason === 'EBADF'));
  t.is(prober.stats('192.0.2.1').lost, 3);
});

test('a send() that fails a probe finishes it at once; the next goes out as usual', async (t) => {
  const { binding, sends } = fakeBinding((call) => (call === 1 ? [101] : [0]));
  const prober = new Prober({ binding, interval: 20, timeout: 5000 });
  t.teardown(() => prober.close());
  const results = collect(prober, 'probe', 1);
  prober.add('192.0.2.1');
  const [result] = /** @type {import('../lib/monitor/prober').ProbeResult[]} */ (await results);
  t.is(result.status, 'error');
  t.is(result.reason, 'ENETUNREACH');
  while (sends.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
  const stats = prober.stats('192.0.2.1');
  t.is(stats.lost, 1, 'the failed probe; the others wait for replies');
  t.true(stats.sent >= 3);
});

test('without an error listener a throwing send() is not fatal and still counts', async (t) => {
  const { binding, sends } = fakeBinding(() => 'throw');
  const prober = new Prober({ binding, interval: 20, timeout: 1000, multiplier: 2 });
  t.teardown(() => prober.close());
  const down = collect(prober, 'target-down', 1);
  prober.add('192.0.2.1');
  await down;
  t.true(sends.length >= 2);
});
