// @ts-check
// Every registered error code is documented in the README, nothing documented is stale, and
// every NETHEAL_ERR_* code the native addon throws is registered.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { ErrorCodes, ExitCode } = require('../lib/errors');

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Every NETHEAL_ERR_* literal in the native sources, with the file it is in. */
function nativeCodes() {
  const dir = path.join(root, 'native');
  /** @type {Map<string, string[]>} */
  const codes = new Map();
  for (const file of fs.readdirSync(dir).filter((f) => /\.(cc|h)$/.test(f))) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const [, code] of text.matchAll(/"(NETHEAL_ERR_[A-Z_]+)"/g)) codes.set(code, [...(codes.get(code) ?? []), file]);
  }
  return codes;
}

test('every error code is documented in README.md', (t) => {
  for (const code of Object.keys(ErrorCodes)) t.true(readme.includes(`\`${code}\``), `${code} missing from README`);
});

test('the README documents no code that does not exist', (t) => {
  const documented = new Set(readme.match(/NETHEAL_ERR_[A-Z_]+/g));
  for (const code of documented) t.true(code in ErrorCodes, `${code} is documented but not registered`);
});

test('every NETHEAL_ERR_* code the native sources throw is registered', (t) => {
  const codes = nativeCodes();
  // The scan itself works: these are known to be thrown natively.
  t.true(codes.has('NETHEAL_ERR_CLOSED'));
  t.true(codes.has('NETHEAL_ERR_NOTIFY_ADDRESS'));
  for (const [code, files] of codes) t.true(code in ErrorCodes, `${code} (thrown in ${files.join(', ')}) is not in src/errors.ts`);
});

test('native errors are made by the common.h helpers only: no hand-set NETHEAL_ERR_CLOSED', (t) => {
  const codes = nativeCodes();
  t.deepEqual(codes.get('NETHEAL_ERR_CLOSED'), ['common.h'], 'ClosedError() is the one place');
});

test('the native helpers put the documented code, errno and syscall on what they throw', (t) => {
  const { nativeBinding } = require('../lib/native');
  const binding = nativeBinding();
  const notify = t.throws(() => binding.sdNotify('relative/path', 'READY=1'));
  t.is(/** @type {any} */ (notify).code, 'NETHEAL_ERR_NOTIFY_ADDRESS');
  const destroyer = new binding.SockDestroyer({ sockets: 1 });
  destroyer.close();
  const closed = t.throws(() => destroyer.destroy(Buffer.alloc(0), 1, 1, 100));
  t.is(/** @type {any} */ (closed).code, 'NETHEAL_ERR_CLOSED');
  t.is(closed.message, 'SockDestroyer is closed');
  const errno = t.throws(() => binding.sdNotify('/nonexistent/netheal-notify.sock', 'READY=1'));
  t.like(/** @type {any} */ (errno), { code: 'ENOENT', errno: -2, syscall: 'sendto' });
});

test('every exit code is documented', (t) => {
  for (const code of Object.values(ExitCode)) t.regex(readme, new RegExp(`^\\| ${code} \\|`, 'm'));
});
