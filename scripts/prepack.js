#!/usr/bin/env node
// Before `npm pack` / `npm publish` (package.json "prepack"): a clean lib/ (no stale files,
// no source maps) and the addon built from native/ and copied to prebuilds/linux-x64/, where
// scripts/install.js and src/native.ts find it on hosts without a compiler. Built on this
// host: pack on the oldest glibc you support (the binary needs the glibc it was built on or newer).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
if (process.platform !== 'linux' || process.arch !== 'x64') {
  throw new Error(`netheal: the packed prebuilt addon is linux-x64; this is ${process.platform}-${process.arch}`);
}
const run = (file, args) => execFileSync(file, args, { cwd: root, stdio: 'inherit' });
fs.rmSync(path.join(root, 'lib'), { recursive: true, force: true });
run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json']);
run(process.execPath, [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '--', '-Dnetheal_werror=1']);
const target = path.join(root, 'prebuilds', 'linux-x64', 'netheal.node');
fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(path.join(root, 'build', 'Release', 'netheal.node'), target);
try {
  // Symbols are for debugging a local build; the shipped one need not carry them.
  execFileSync('strip', ['--strip-unneeded', target]);
} catch {
  // no binutils: ship it unstripped
}
const glibc = process.report.getReport().header.glibcVersionRuntime;
process.stdout.write(`netheal: prebuilt ${path.relative(root, target)} (${fs.statSync(target).size} bytes, N-API 8, built against glibc ${glibc})\n`);
