// @ts-check
'use strict';
// The daemon's log formats: a kernel-supplied string (an interface name may hold ESC or a
// newline) is spelled out in text and journal lines, never passed to the terminal or
// allowed to forge a record; JSON escapes it by itself.
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const { createLogger, escapeControl } = require('../lib/daemon/logger');

const hostile = 'eth\x1b[2J0\nNOTICE forged';

for (const format of /** @type {const} */ (['text', 'journal'])) {
  test(`${format}: control characters in messages and fields are escaped, one record per line`, (t) => {
    /** @type {string[]} */
    const lines = [];
    const logger = createLogger({ format, write: (line) => lines.push(line) });
    logger.warning(`${hostile}: down`, { iface: hostile });
    t.is(lines.length, 1);
    const [line] = lines;
    t.is(line.indexOf('\n'), line.length - 1, 'only the terminating newline');
    t.false(/[\x00-\x09\x0b-\x1f\x7f]/.test(line), line);
    t.true(line.includes('eth\\x1b[2J0\\nNOTICE forged: down'), line);
    if (format === 'journal') t.true(line.startsWith('<4>'));
  });
}

test('json: control characters come out as JSON escapes and parse back', (t) => {
  /** @type {string[]} */
  const lines = [];
  createLogger({ format: 'json', write: (line) => lines.push(line) }).notice('x', { iface: hostile });
  t.is(lines.length, 1);
  t.false(/[\x00-\x09\x0b-\x1f\x7f]/.test(lines[0]));
  t.is(JSON.parse(lines[0]).iface, hostile);
});

test('escapeControl leaves printable text (also non-ASCII) alone', (t) => {
  t.is(escapeControl('eth0 ümlaut\ttab\x7f'), 'eth0 ümlaut\\ttab\\x7f');
});
