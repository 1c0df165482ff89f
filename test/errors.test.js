// @ts-check
// Every registered error code is documented in the README, nothing documented is stale, and
// every NETHEAL_ERR_* code the native addon throws is registered.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { ErrorCodes, ExitCode, KernelError, NethealError, ProtocolError, fromSystemError } = require('../lib/errors');

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

test('fromSystemError is the one mapping from native errors to library errors', (t) => {
  const { nativeBinding } = require('../lib/native');
  const binding = nativeBinding();
  // A failed syscall (ErrnoError): NETHEAL_ERR_KERNEL keeping errno and syscall.
  const sendto = fromSystemError(t.throws(() => binding.sdNotify('/nonexistent/netheal-notify.sock', 'READY=1')), 'notify');
  t.like(sendto, { code: 'NETHEAL_ERR_KERNEL', errno: 2, syscall: 'sendto' });
  t.regex(sendto.message, /^notify: sendto failed/);
  // Missing privilege names the capability; setns needs CAP_SYS_ADMIN.
  const eperm = { message: 'socket failed', code: 'EPERM', errno: -1, syscall: 'socket' };
  t.like(fromSystemError(eperm, 'open'), { code: 'NETHEAL_ERR_PRIVILEGE', errno: 1, message: 'open: socket not permitted: needs CAP_NET_ADMIN' });
  t.regex(fromSystemError({ ...eperm, syscall: 'setns' }, 'enter').message, /CAP_SYS_ADMIN/);
  const enoent = { message: 'open failed', code: 'ENOENT', errno: -2, syscall: 'open' };
  t.like(fromSystemError(enoent, 'monitor', '/run/netns/x'), { code: 'NETHEAL_ERR_NETNS', message: 'monitor: cannot enter network namespace /run/netns/x: ENOENT' });
  // A use after close (ClosedError): NETHEAL_ERR_CLOSED, not a kernel failure.
  const destroyer = new binding.SockDestroyer({ sockets: 1 });
  destroyer.close();
  const closed = fromSystemError(t.throws(() => destroyer.destroy(Buffer.alloc(0), 1, 1, 100)), 'SOCK_DESTROY');
  t.like(closed, { code: 'NETHEAL_ERR_CLOSED', message: 'SOCK_DESTROY: SockDestroyer is closed' });
  // Failures of a whole native call (CodedError): the message already names the operation.
  const timeout = fromSystemError(Object.assign(new Error('SOCK_DESTROY: no answer in 10 ms'), { code: 'ETIMEDOUT' }), 'SOCK_DESTROY');
  t.like(timeout, { code: 'NETHEAL_ERR_TIMEOUT', message: 'SOCK_DESTROY: no answer in 10 ms' });
  const protocol = fromSystemError(Object.assign(new Error('SOCK_DIAG: short message'), { code: 'NETHEAL_ERR_PROTOCOL' }), 'SOCK_DESTROY');
  t.true(protocol instanceof ProtocolError);
  t.is(protocol.message, 'SOCK_DIAG: short message');
  t.is(require('../lib/kernel/netlink').ProtocolError, ProtocolError, 'one class, reachable from the codec too');
  // The kernel refused a request (NLMSG_ERROR seen by the native destroyer): a KernelError.
  const refused = fromSystemError({ message: 'x', code: 'EINVAL', errno: -22, syscall: 'SOCK_DIAG_BY_FAMILY', kernel: true }, 'SOCK_DESTROY');
  t.true(refused instanceof KernelError);
  t.like(refused, { code: 'NETHEAL_ERR_KERNEL', errno: 22, errnoName: 'EINVAL', syscall: 'SOCK_DIAG_BY_FAMILY' });
  t.like(fromSystemError({ message: 'x', code: 'EPERM', errno: -1, syscall: 'SOCK_DIAG_BY_FAMILY', kernel: true }, 'SOCK_DESTROY'), { code: 'NETHEAL_ERR_PRIVILEGE' });
  // A NethealError passes through untouched; anything else is a kernel failure with its text.
  const own = new NethealError('NETHEAL_ERR_USAGE', 'mine');
  t.is(fromSystemError(own, 'x'), own);
  t.like(fromSystemError('weird', 'x'), { code: 'NETHEAL_ERR_KERNEL', message: 'x: weird' });
});

test('every exit code is documented', (t) => {
  for (const code of Object.values(ExitCode)) t.regex(readme, new RegExp(`^\\| ${code} \\|`, 'm'));
});
