// @ts-check
// Running the CLI without privileges, wherever the checkout is.
//
// The suite runs as root, often from a private directory (mode 0700, as /root or `mktemp -d`
// makes). Another uid cannot even reach lib/ there, so "without privileges" means:
// - NO_CAPS: still uid 0 (the owner, so it reads the checkout) but with every capability
//   dropped from the effective, permitted, inheritable and bounding sets. What the kernel
//   checks for netheal's privileged operations (setns, SOCK_DESTROY, raw sockets, ptrace
//   access to another process's namespace) is capabilities, not the uid.
// - otherUserCli(): for what uid 0 would pass as the owner (the root-only 0600 status socket),
//   a copy of the CLI in a world-readable temporary directory, run as nobody.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** setpriv arguments: uid 0 without any capability. */
const NO_CAPS = ['--inh-caps=-all', '--bounding-set=-all'];

/** setpriv arguments: uid/gid 65534 (nobody), no groups, no capabilities. */
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', ...NO_CAPS];

const ROOT = path.join(__dirname, '..', '..');

/**
 * Copies what `node lib/cli.js` needs without the addon (lib/, package.json, commander) to a
 * world-readable temporary directory and returns the copy's cli.js; the copy is removed when
 * the test ends. For commands that do not load the native addon (`status`).
 * @param {import('ava').ExecutionContext} t
 */
function otherUserCli(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-cli-copy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(ROOT, 'node_modules', 'commander'), path.join(dir, 'node_modules', 'commander'), { recursive: true });
  // mkdtemp makes 0700; open the copy to everyone (read and traverse only).
  const open = (/** @type {string} */ p) => {
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644);
    if (fs.statSync(p).isDirectory()) for (const entry of fs.readdirSync(p)) open(path.join(p, entry));
  };
  open(dir);
  return path.join(dir, 'lib', 'cli.js');
}

module.exports = { NO_CAPS, NOBODY, otherUserCli };
