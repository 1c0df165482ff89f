// @ts-check
// Real supervisord (Debian package `supervisor`) running the section `netheal supervisor`
// generates: a killed program comes back; a stop takes the whole process group with it.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile, execFileSync } = require('node:child_process');

const CLI = require.resolve('../lib/cli.js');

function run(file, args, options = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: 30000, ...options }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

async function until(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('supervisord keeps the generated program running and stops its whole group', async (t) => {
  let supervisord;
  try {
    supervisord = execFileSync('sh', ['-c', 'command -v supervisord'], { encoding: 'utf8' }).trim();
  } catch {
    t.fail('supervisord is not installed (Debian package supervisor; .ci/run installs it)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-supervisor-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The program: a shell whose child writes its pid (so we can check the group stop).
  const script = path.join(dir, 'prog.sh');
  fs.writeFileSync(script, `#!/bin/sh\nsleep 1000 &\necho $! > ${dir}/child.pid\nwait\n`, { mode: 0o755 });
  const section = await run(process.execPath, [CLI, 'supervisor', '--service', 'prog', '--exec', script, '--startsecs', '1', '--stopwaitsecs', '5']);
  t.is(section.code, 0, section.stderr);
  for (const line of ['autostart=true', 'autorestart=true', 'startsecs=1', 'startretries=1000', 'stopasgroup=true', 'killasgroup=true', 'stopsignal=TERM']) {
    t.true(section.stdout.split('\n').includes(line), line);
  }
  const sock = path.join(dir, 'supervisor.sock');
  const conf = path.join(dir, 'supervisord.conf');
  fs.writeFileSync(conf, [
    '[unix_http_server]', `file=${sock}`, '',
    '[supervisord]', 'nodaemon=true', `logfile=${dir}/supervisord.log`, `pidfile=${dir}/supervisord.pid`, `childlogdir=${dir}`, '',
    '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface', '',
    '[supervisorctl]', `serverurl=unix://${sock}`, '',
    section.stdout,
  ].join('\n'));
  const daemon = spawn(supervisord, ['-c', conf], { stdio: 'ignore' });
  t.teardown(() => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
  });
  const ctl = (...args) => run('supervisorctl', ['-c', conf, ...args]);
  const running = async () => {
    const s = await ctl('status', 'prog');
    const m = /RUNNING\s+pid (\d+)/.exec(s.stdout);
    return m ? Number(m[1]) : 0;
  };
  const first = await until('prog RUNNING', running, 15000);
  process.kill(first, 'SIGKILL');
  const second = await until('prog RUNNING again with a new pid', async () => {
    const pid = await running();
    return pid !== 0 && pid !== first ? pid : 0;
  }, 10000);
  t.not(second, first);
  t.true(alive(second));
  // Stop: the group goes, the background child included (stopasgroup).
  await until('child pid file', async () => fs.existsSync(`${dir}/child.pid`) && fs.readFileSync(`${dir}/child.pid`, 'utf8').trim() !== '', 5000);
  const child = Number(fs.readFileSync(`${dir}/child.pid`, 'utf8'));
  t.true(alive(child));
  const stop = await ctl('stop', 'prog');
  t.regex(stop.stdout, /stopped/);
  await until('the child to be gone', async () => !alive(child) || /^Z/.test(fs.readFileSync(`/proc/${child}/stat`, 'utf8').split(' ')[2]), 5000);
  t.pass();
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  daemon.kill('SIGTERM');
  await exited;
});
