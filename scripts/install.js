#!/usr/bin/env node
// npm's install step for netheal (package.json "install"). A published package carries a
// prebuilt addon, prebuilds/linux-x64/netheal.node (N-API 8: one binary for Node 20, 22, 24):
// when it loads here, nothing is compiled, so hosts without python3/make/g++ install fine.
// Otherwise (another architecture, musl, or a checkout, which has no prebuilds/ and where
// the addon is built from native/ as before) it runs `node-gyp rebuild`. -Werror only in a
// checkout: a newer compiler's new warning must not break a user's install.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'netheal.node');
// A checkout has the TypeScript sources (never packed): developers build from source.
const checkout = fs.existsSync(path.join(root, 'src', 'native.ts'));
const fromSource = checkout || process.env.NETHEAL_BUILD_FROM_SOURCE === '1';

function tryPrebuilt() {
  if (!fs.existsSync(prebuilt)) return `no prebuilt addon for ${process.platform}-${process.arch} (${prebuilt})`;
  try {
    const binding = require(prebuilt);
    if (typeof binding.NetlinkSocket !== 'function') return `${prebuilt} loaded but is not netheal's addon`;
    return null;
  } catch (error) {
    return `${prebuilt} does not load here: ${error.message.split('\n')[0]}`;
  }
}

if (!fromSource) {
  const why = tryPrebuilt();
  if (why === null) {
    process.stdout.write(`netheal: using the prebuilt addon ${path.relative(root, prebuilt)}\n`);
    process.exit(0);
  }
  process.stdout.write(`netheal: ${why}; building from source (needs python3, make, a C++17 compiler)\n`);
}
/** node-gyp: the one npm runs scripts with (it says where), else a local one (a checkout's devDependency). */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    return null;
  }
}
const gyp = nodeGyp();
if (gyp === null) {
  process.stderr.write('netheal: no node-gyp to build the addon with (run this from npm, or install node-gyp)\n');
  process.exit(1);
}
const args = ['rebuild', ...(checkout ? ['--', '-Dnetheal_werror=1'] : [])];
const result = spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' });
if (result.error) {
  process.stderr.write(`netheal: cannot run node-gyp: ${result.error.message}\n`);
  process.exit(1);
}
process.exit(result.status ?? 1);
