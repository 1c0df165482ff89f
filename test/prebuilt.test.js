// @ts-check
// The published package: its tarball (what `files` lets in: the prebuilt addon, no source
// maps, no sources), and an install of it on a host without a compiler, with and without
// install scripts, the way `npm install netheal` runs for a user. The tarball is packed from a
// staging copy (lib/ compiled afresh, native/, the addon of this checkout's build copied to
// prebuilds/ as scripts/prepack.js does) so the test never rebuilds the build/ the other tests load.
// Installs run offline (npm's cache, filled by `npm ci`) inside `unshare -n`: no network.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFile, execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const pkg = require('../package.json');
const which = (tool) => execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
/** Absolute: the installs run with a PATH that holds node and npm only. */
const UNSHARE = which('unshare');

/** @returns {Promise<{ code: number, stdout: string, stderr: string }>} */
function run(file, args, options = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: 110_000, maxBuffer: 16 << 20, ...options }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr: typeof error?.code === 'string' ? `${error.message}\n${stderr}` : stderr }));
  });
}

/** The environment of a host with node and npm only: no python3, make, g++ on PATH, no npm_* of ours. */
function bareEnv(bin) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, PATH: bin };
}

let staged;
/** The scratch directory, removed after the tests even when packing failed. */
let scratch;
/** Packs the tarball once: { dir, tarball, files }. */
async function packed() {
  staged ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-pack-'));
    scratch = dir;
    const stage = path.join(dir, 'stage');
    fs.mkdirSync(stage);
    for (const entry of ['package.json', 'README.md', 'LICENSE', 'binding.gyp', 'native', 'scripts']) {
      fs.cpSync(path.join(ROOT, entry), path.join(stage, entry), { recursive: true });
    }
    // A clean lib/ from the project's tsconfig, as prepack makes it (not this checkout's lib/,
    // which may hold files of older builds).
    const tsc = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json'), '--outDir', path.join(stage, 'lib')]);
    if (tsc.code !== 0) throw new Error(`tsc: ${tsc.stdout}${tsc.stderr}`);
    fs.mkdirSync(path.join(stage, 'prebuilds', 'linux-x64'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'build', 'Release', 'netheal.node'), path.join(stage, 'prebuilds', 'linux-x64', 'netheal.node'));
    const npm = fs.realpathSync(which('npm'));
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(npm, path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    const pack = await run(UNSHARE, ['-n', process.execPath, npm, 'pack', '--ignore-scripts', '--offline', '--json', '--pack-destination', dir], { cwd: stage, env: bareEnv(bin) });
    if (pack.code !== 0) throw new Error(`npm pack (exit ${pack.code}): ${pack.stderr}${pack.stdout}`);
    const [info] = JSON.parse(pack.stdout);
    return { dir, bin, npm, tarball: path.join(dir, info.filename), files: info.files.map((f) => f.path), size: info.size, unpackedSize: info.unpackedSize };
  })();
  return staged;
}

test.after.always(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/**
 * A consumer project that depends on the tarball, with a lockfile naming the integrity of
 * every dependency (from this checkout's lock), so `npm ci --offline` takes them from npm's
 * cache: the registry's metadata is never needed.
 */
function consumer(t, pack, name) {
  const app = path.join(pack.dir, name);
  fs.mkdirSync(app);
  const spec = `file:${path.relative(app, pack.tarball)}`;
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(pack.tarball)).digest('base64')}`;
  /** @type {{ packages: Record<string, { dev?: boolean, devOptional?: boolean }> }} */
  const repoLock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const packages = {
    '': { name, version: '1.0.0', dependencies: { netheal: spec } },
    'node_modules/netheal': {
      version: pkg.version, resolved: spec, integrity, license: pkg.license, dependencies: pkg.dependencies, bin: pkg.bin, os: pkg.os, engines: pkg.engines, hasInstallScript: true,
    },
  };
  for (const [key, entry] of Object.entries(repoLock.packages)) if (key !== '' && !entry.dev && !entry.devOptional) packages[key] = entry;
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, dependencies: { netheal: spec } }));
  fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
  t.teardown(() => fs.rmSync(app, { recursive: true, force: true }));
  return app;
}

test('the tarball: prebuilt addon, LICENSE, the install script; no source maps, sources or build output', async (t) => {
  t.timeout(240_000, 'packing compiles lib/ afresh and installs twice: slow on a loaded machine');
  const pack = await packed();
  t.log(`tarball ${pack.size} bytes, unpacked ${pack.unpackedSize} bytes, ${pack.files.length} files`);
  for (const file of ['prebuilds/linux-x64/netheal.node', 'LICENSE', 'README.md', 'scripts/install.js', 'binding.gyp', 'lib/index.js', 'lib/index.d.ts', 'lib/daemon.js', 'lib/cli.js']) {
    t.true(pack.files.includes(file), file);
  }
  t.deepEqual(pack.files.filter((f) => f.endsWith('.map')), [], 'no source maps (they would point at src/, which is not shipped)');
  t.deepEqual(pack.files.filter((f) => /^(src|test|build|benchmarks|\.ci)\//.test(f) || f === 'scripts/prepack.js' || f.endsWith('.tgz')), []);
  t.deepEqual(pkg.exports['.'], { types: './lib/index.d.ts', require: './lib/index.js', import: './lib/index.js', default: './lib/index.js' });
  t.is(pkg.bin['netheal-daemon'], 'lib/daemon.js');
  t.regex(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /MIT License[\s\S]*Copyright \(c\) 2026 netheal contributors/);
});

test('installed with --ignore-scripts and no compiler: require, import and the addon work; internals are not exported', async (t) => {
  t.timeout(240_000, 'packing compiles lib/ afresh and installs twice: slow on a loaded machine');
  const pack = await packed();
  const app = consumer(t, pack, 'app-no-scripts');
  const env = bareEnv(pack.bin);
  const install = await run(UNSHARE, ['-n', process.execPath, pack.npm, 'ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, env });
  t.is(install.code, 0, install.stderr);
  t.false(fs.existsSync(path.join(app, 'node_modules/netheal/build')), 'nothing was built');
  for (const tool of ['g++', 'make', 'python3']) t.not((await run('/bin/sh', ['-c', `command -v ${tool}`], { env })).code, 0, `${tool} hidden`);
  // A harmless call into the addon (an rtnetlink socket) in a namespace of its own.
  const script = 'const { LinkControl } = require("netheal"); const c = new LinkControl(); c.getLink("lo").then((l) => { console.log(l.name, l.ifindex); c.close(); });';
  const cjs = await run(UNSHARE, ['-n', process.execPath, '-e', script], { cwd: app, env });
  t.is(cjs.code, 0, cjs.stderr);
  t.is(cjs.stdout.trim(), 'lo 1');
  const esm = await run(process.execPath, ['--input-type=module', '-e', 'import { LinkMonitor, validateConfig } from "netheal"; console.log(typeof LinkMonitor, typeof validateConfig);'], { cwd: app, env });
  t.is(esm.stdout.trim(), 'function function', esm.stderr);
  const internal = await run(process.execPath, ['-e', 'try { require("netheal/lib/native"); } catch (e) { console.log(e.code); }'], { cwd: app, env });
  t.is(internal.stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  const version = await run(path.join(app, 'node_modules/.bin/netheal-daemon'), ['--version'], { cwd: app, env });
  t.is(version.stdout.trim(), pkg.version, version.stderr);
  // Without the prebuilt binary (and no build), the error names both places it looked.
  fs.rmSync(path.join(app, 'node_modules/netheal/prebuilds'), { recursive: true });
  const missing = await run(UNSHARE, ['-n', process.execPath, '-e', script], { cwd: app, env });
  t.not(missing.code, 0);
  t.regex(missing.stderr, /cannot load netheal's native addon: no local build \(build\/Release\/netheal\.node: .*\) and the prebuilt .*prebuilds\/linux-x64\/netheal\.node does not load/);
});

test('installed with its install script and no compiler: the prebuilt addon is used, nothing compiled', async (t) => {
  t.timeout(240_000, 'packing compiles lib/ afresh and installs twice: slow on a loaded machine');
  const pack = await packed();
  const app = consumer(t, pack, 'app-scripts');
  const env = bareEnv(pack.bin);
  const install = await run(UNSHARE, ['-n', process.execPath, pack.npm, 'ci', '--offline', '--foreground-scripts', '--no-audit', '--no-fund'], { cwd: app, env });
  t.is(install.code, 0, install.stdout + install.stderr);
  t.regex(install.stdout, /netheal: using the prebuilt addon prebuilds\/linux-x64\/netheal\.node/);
  t.false(fs.existsSync(path.join(app, 'node_modules/netheal/build')), 'nothing was built');
  const call = await run(UNSHARE, ['-n', process.execPath, '-e', 'const { LinkControl } = require("netheal"); const c = new LinkControl(); c.getLink("lo").then((l) => { console.log(l.name); c.close(); });'], { cwd: app, env });
  t.is(call.stdout.trim(), 'lo', call.stderr);
});
