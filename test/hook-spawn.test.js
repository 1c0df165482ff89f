// @ts-check
// A hook that cannot be started is reported with the errno of the failed spawn, not as
// "exit null"; and a spawn that fails for want of file descriptors (EMFILE) neither rejects
// nor crashes the process with an unhandled 'error' event. The hooks here run in no
// namespace and touch nothing: they only fail to start.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { runCommand, describeFailure } = require('../lib/actions/run');

const EXECUTORS = require.resolve('../lib/daemon/executors');

/**
 * A directory with an executable hook whose `#!` names `interpreter`. Not under /tmp: a hook
 * in a directory others can write to is refused before it runs (it runs as root).
 */
function hookWith(t, interpreter) {
  const dir = fs.mkdtempSync('/run/netheal-hook-spawn-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hook = path.join(dir, 'hook.sh');
  fs.writeFileSync(hook, `#!${interpreter.replace('DIR', dir)}\nexit 0\n`, { mode: 0o755 });
  return { dir, hook };
}

/** Runs the daemon's hook executor (no namespace) on `hook`, in this process or the script's. */
const runHookSource = `
  const { builtinExecutors } = require(${JSON.stringify(EXECUTORS)});
  async function runHook(hook) {
    const host = { netnsPath: undefined, hookOf: () => ({ path: hook, timeoutMs: 5000 }) };
    const executor = builtinExecutors(host).find((e) => e.kind === 'hook');
    const ctx = {
      iface: 'eth0', kind: 'hook', step: 1, attempt: 1, state: 'down', fault: { class: 'link' }, reasons: [],
      dryRun: false, timeoutMs: 5000, evidence: {}, options: {}, signal: new AbortController().signal,
    };
    return executor.run(ctx);
  }
`;
/** @type {(hook: string) => Promise<{ status: string, detail: string }>} */
const runHook = new Function('require', `${runHookSource}; return runHook;`)(require);

test('a hook whose interpreter cannot be executed fails naming EACCES, not "exit null"', async (t) => {
  const { dir, hook } = hookWith(t, 'DIR/interpreter');
  fs.writeFileSync(path.join(dir, 'interpreter'), 'not a program\n', { mode: 0o644 });
  const result = await runCommand(hook, []);
  t.like(result, { exitCode: null, signal: null, spawnError: 'EACCES', missing: false });
  t.is(describeFailure(result), `${hook}: failed: spawn EACCES`);
  const action = await runHook(hook);
  t.is(action.status, 'failed');
  t.is(action.detail, `${hook}: failed: spawn EACCES`);
});

test('a hook whose interpreter is missing is reported as not installed, with the errno', async (t) => {
  const { hook } = hookWith(t, '/nonexistent/netheal-interpreter');
  const result = await runCommand(hook, []);
  t.like(result, { spawnError: 'ENOENT', missing: true });
  const action = await runHook(hook);
  t.is(action.detail, `${hook}: not installed (spawn ENOENT)`);
});

test('out of file descriptors (RLIMIT_NOFILE lowered by prlimit): the hook fails naming EMFILE, the process lives on', async (t) => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
  } catch {
    t.fail('prlimit (util-linux) is not installed');
    return;
  }
  const { hook } = hookWith(t, '/bin/sh');
  // The child waits until its limit is lowered below every free descriptor number (0-2 are
  // taken), then runs the hook: the spawn cannot create its pipes.
  const script = `${runHookSource}
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      runHook(${JSON.stringify(hook)}).then(
        (action) => { process.stdout.write(JSON.stringify(action) + '\\n'); process.exit(0); },
        (error) => { process.stdout.write(JSON.stringify({ rejected: String(error) }) + '\\n'); process.exit(1); },
      );
    });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const exit = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout === 'ready\n') {
        try {
          execFileSync('prlimit', ['--pid', String(child.pid), '--nofile=3:3']);
        } catch (error) {
          reject(error);
          return;
        }
        child.stdin.write('go\n');
        resolve(undefined);
      }
    });
  });
  const code = await exit;
  t.is(code, 0, `the child survived the failed spawn (stderr: ${stderr.trim()})`);
  const action = JSON.parse(stdout.split('\n')[1] ?? '{}');
  t.is(action.status, 'failed');
  t.is(action.detail, `${hook}: failed: spawn EMFILE`);
});

test('commandExists: an executable file on PATH or by path; not a directory, a plain file or a missing name', (t) => {
  const { commandExists } = require('../lib/actions/run');
  const dir = fs.mkdtempSync('/run/netheal-command-exists-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'data'), 'x', { mode: 0o644 });
  fs.mkdirSync(path.join(dir, 'sub'));
  t.true(commandExists('tool', `/nonexistent:${dir}`));
  t.true(commandExists(path.join(dir, 'tool'), ''));
  t.false(commandExists('data', dir), 'not executable');
  t.false(commandExists('sub', dir), 'a directory');
  t.false(commandExists('missing', dir));
  t.false(commandExists('tool', ''), 'an empty PATH finds nothing');
  // Unset PATH: the default spawn() would search, so a tool it would start is not "missing".
  const saved = process.env.PATH;
  delete process.env.PATH;
  t.teardown(() => { process.env.PATH = saved; });
  t.true(commandExists('sh'), 'found in the default search path');
});
