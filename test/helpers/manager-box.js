// A real network manager under a real systemd, for tests that heal toward what the manager
// declares. Boots `systemd-nspawn -D /` (the host's /usr, a tmpfs root, its own network
// namespace), sets up one manager inside it and wires the container to namespaces this helper
// creates:
//
//   container (IF, the managed address)  <-veth->  gw namespace (gw0 .2, forwards)
//                                                  gw namespace (gwf0 10.96.0.2) <-veth-> far namespace (10.96.0.1)
//
// Everything happens inside the container's namespaces and the two namespaces made here:
// nothing touches the host's own interfaces, routes or gateway, and the netheal daemon only
// ever runs inside the container.
//
// Managers: 'networkd' (systemd-networkd, a .network file), 'ifupdown' (Debian's layout: the
// stanza in /etc/network/interfaces.d, pulled in by `source`), 'networkmanager' (Debian's
// packages extracted into a cached directory and overlaid on the container's /usr: never
// installed on the host).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const readline = require('node:readline');
const { spawn, execFile, execFileSync } = require('node:child_process');
const { LinkControl } = require('../../lib/kernel/link-control');

const ROOT = path.resolve(__dirname, '..', '..');
/** Where the project is bound (read-only) and where the box's own directory is bound (rw). */
const NH = '/srv/nh';
const BOX = '/srv/box';
const NMX = '/srv/nmx';
const FAR_ADDRESS = '10.96.0.1';
const TCP_PORT = 7000;
const REAL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NFT = '/usr/sbin/nft';

/** Per manager: the interface and addresses (distinct so logs of different boxes never mix). */
const MANAGERS = {
  networkd: { iface: 'up0', net: '10.99.0' },
  ifupdown: { iface: 'up1', net: '10.98.0' },
  networkmanager: { iface: 'up2', net: '10.97.0' },
};

// Units that would stall or disturb the boot of a container made from the host's /usr: the
// wait-online services (no network at boot), and services installed on CI hosts that pull in
// network-online.target or touch the network.
const { BOOT_MASKS } = require('./boot-masks');
const { NODE, NODE_BIND_ARGS } = require('./box-node');

const hrMs = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function sh(file, args, options = {}) {
  return new Promise((resolve) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: 60000, maxBuffer: 16 * 1024 * 1024, ...options },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
    if (options.input !== undefined) child.stdin.end(options.input);
  });
}

async function must(file, args, options) {
  const r = await sh(file, args, options);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** The first child process of `pid` (from /proc: no procps needed), or 0. */
function childOf(pid) {
  try {
    const first = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    if (first) return Number(first);
  } catch {
    // kernel without CONFIG_PROC_CHILDREN: scan
  }
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // comm may hold spaces and parentheses: the fields after the last ')' are fixed.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(entry);
    } catch {
      // gone
    }
  }
  return 0;
}

function which(name) {
  for (const dir of REAL_PATH.split(':')) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * Cheap synchronous checks (milliseconds) of whether a box for `manager` can boot here, for
 * deciding test.skip at module load. { ok: true } or { ok: false, reason }.
 */
function availability(manager) {
  if (!(manager in MANAGERS)) return { ok: false, reason: `unknown manager ${manager}` };
  if (process.platform !== 'linux') return { ok: false, reason: 'not Linux' };
  if (process.getuid() !== 0) return { ok: false, reason: 'needs root (namespaces, systemd-nspawn)' };
  const need = { 'systemd-nspawn': 'systemd-container', nsenter: 'util-linux', ip: 'iproute2', nft: 'nftables' };
  if (manager === 'ifupdown') Object.assign(need, { ifup: 'ifupdown', ifquery: 'ifupdown' });
  if (manager === 'networkd') need.networkctl = 'systemd';
  for (const [bin, pkg] of Object.entries(need)) {
    if (which(bin) === null) return { ok: false, reason: `${bin} is not installed (Debian package ${pkg})` };
  }
  if (!fs.existsSync('/usr/lib/systemd/systemd') && !fs.existsSync('/lib/systemd/systemd')) return { ok: false, reason: 'no systemd to boot in the container' };
  if (manager === 'networkd' && !fs.existsSync('/usr/lib/systemd/systemd-networkd') && !fs.existsSync('/lib/systemd/systemd-networkd')) {
    return { ok: false, reason: 'systemd-networkd is not installed' };
  }
  if (manager === 'networkmanager' && which('apt-get') === null && which('dpkg-deb') === null) {
    return { ok: false, reason: 'NetworkManager is extracted from Debian packages: needs apt-get and dpkg-deb' };
  }
  try {
    // Namespaces and mounts allowed (an unprivileged container is root without them).
    execFileSync('unshare', ['--mount', '--net', '--pid', '--fork', 'true'], { stdio: 'ignore', timeout: 5000 });
  } catch {
    return { ok: false, reason: 'cannot create namespaces here (unshare --mount --net --pid failed)' };
  }
  return { ok: true };
}

/**
 * Debian's network-manager and the libraries the host lacks, extracted (not installed) into
 * a directory cached under the temp dir, keyed by the packages' versions. Returns the
 * directory that holds usr/ and etc/.
 */
async function networkManagerTree(log = (/** @type {string} */ _message) => {}) {
  const sim = await sh('apt-get', ['install', '-s', '--no-install-recommends', 'network-manager']);
  const pkgs = [];
  for (const line of sim.stdout.split('\n')) {
    const m = /^Inst (\S+) \((\S+) /.exec(line);
    // udev would be a second device manager in the container; NM runs without it.
    if (m && m[1] !== 'udev') pkgs.push(`${m[1]}=${m[2]}`);
  }
  if (!pkgs.some((p) => p.startsWith('network-manager='))) {
    throw new Error(`apt-get cannot provide network-manager (run apt-get update?): ${sim.stderr.trim() || sim.stdout.trim().slice(-300)}`);
  }
  const key = crypto.createHash('sha256').update(pkgs.sort().join('\n')).digest('hex').slice(0, 16);
  const cache = path.join(os.tmpdir(), `netheal-nm-${key}`);
  if (fs.existsSync(path.join(cache, 'usr/sbin/NetworkManager'))) return cache;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-nm-build-'));
  try {
    const debs = path.join(work, 'debs');
    const tree = path.join(work, 'tree');
    fs.mkdirSync(debs);
    fs.mkdirSync(tree);
    const started = hrMs();
    // Root downloads into a root-owned directory: no _apt sandbox user.
    await must('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', ...pkgs], { cwd: debs, timeout: 300000 });
    for (const deb of fs.readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
      await must('dpkg-deb', ['-x', path.join(debs, deb), tree]);
    }
    // Debian 12's packages still ship /lib; the overlay goes on /usr (merged /usr).
    if (fs.existsSync(path.join(tree, 'lib'))) {
      fs.cpSync(path.join(tree, 'lib'), path.join(tree, 'usr/lib'), { recursive: true, force: true, verbatimSymlinks: true });
      fs.rmSync(path.join(tree, 'lib'), { recursive: true, force: true });
    }
    try {
      fs.renameSync(tree, cache); // atomic: a concurrent run either sees all of it or none
    } catch (error) {
      if (!fs.existsSync(path.join(cache, 'usr/sbin/NetworkManager'))) throw error;
    }
    log(`NetworkManager extracted from ${pkgs.length} packages in ${(hrMs() - started).toFixed(0)} ms into ${cache}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return cache;
}

// Scripts run by the box: an echo server (in the gw namespace, on the host's filesystem) and
// a client inside the container bound to the managed address. The client speaks lines on
// stdio: `ping N` in, `echo N` / `connected` / `error CODE` / `close` out.
const ECHO_SERVER = `
const net = require('node:net');
const [host, port] = process.argv.slice(2);
let n = 0;
net.createServer((c) => { n++; console.log('accepted ' + n); c.on('error', () => {}); c.pipe(c); })
  .listen(Number(port), host, () => console.log('listening'));
`;
const TCP_CLIENT = `
const net = require('node:net');
const readline = require('node:readline');
const [local, host, port] = process.argv.slice(2);
const c = net.connect({ host, port: Number(port), localAddress: local });
c.setNoDelay(true);
c.on('connect', () => console.log('connected ' + c.localPort));
c.on('error', (e) => console.log('error ' + (e.code || e.message)));
c.on('close', () => { console.log('close'); process.exit(0); });
let buf = '';
c.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { console.log('echo ' + buf.slice(0, i)); buf = buf.slice(i + 1); } });
readline.createInterface({ input: process.stdin }).on('line', (l) => c.write(l + '\\n'));
`;

/** A long-lived TCP connection from inside the container to the gateway's echo server. */
class TcpConnection {
  constructor(proc) {
    this.proc = proc;
    this.events = [];
    this.waiters = [];
    this.seq = 0;
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      this.events.push({ at: hrMs(), line });
      for (const w of [...this.waiters]) w(line);
    });
    proc.once('exit', () => { this.exited = true; for (const w of [...this.waiters]) w('exit'); });
  }

  next(pred, timeoutMs) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (line) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(line);
      };
      const check = (line) => { if (pred(line)) done(line); };
      this.waiters.push(check);
      const old = this.events.find((e) => pred(e.line));
      if (old) done(old.line);
    });
  }

  /** Resolves once connected; throws if it could not connect. */
  async ready(timeoutMs = 5000) {
    const line = await this.next((l) => /^(connected|error|close|exit)/.test(l), timeoutMs);
    if (!line?.startsWith('connected')) throw new Error(`TCP client did not connect: ${line ?? 'timeout'}`);
  }

  /** True if the connection was reset or closed (by a socket destroy, for instance). */
  get broken() {
    return this.exited === true || this.events.some((e) => /^(error|close)/.test(e.line));
  }

  /** Sends one line and waits for its echo: { ok, ms, why }. */
  async exchange(timeoutMs = 5000) {
    if (this.broken) return { ok: false, ms: null, why: this.events.filter((e) => /^(error|close)/.test(e.line)).map((e) => e.line).join(', ') || 'exited' };
    const id = ++this.seq;
    const start = hrMs();
    const waiting = this.next((l) => l === `echo ping ${id}` || /^(error|close|exit)/.test(l), timeoutMs);
    this.proc.stdin.write(`ping ${id}\n`);
    const line = await waiting;
    return line === `echo ping ${id}` ? { ok: true, ms: hrMs() - start, why: null } : { ok: false, ms: null, why: line ?? `no echo in ${timeoutMs} ms` };
  }

  close() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

class ManagerBox {
  /** Boots a container with `manager` configured and the gateway/far namespaces wired to it. */
  static async boot(manager, { log = (/** @type {string} */ _message) => {} } = {}) {
    const box = new ManagerBox(manager, log);
    try {
      await box.start();
    } catch (error) {
      const tail = box.console.slice(-1500);
      await box.teardown();
      error.message += tail ? `\ncontainer console (tail):\n${tail}` : '';
      throw error;
    }
    return box;
  }

  constructor(manager, log) {
    const spec = MANAGERS[manager];
    if (spec === undefined) throw new Error(`unknown manager ${manager}`);
    this.manager = manager;
    this.log = log;
    this.iface = spec.iface;
    this.address = `${spec.net}.1`;
    this.prefixlen = 24;
    this.gateway = `${spec.net}.2`;
    this.far = FAR_ADDRESS;
    const tag = `${process.pid}${manager.slice(0, 2)}`;
    this.machine = `nhbox${tag}`;
    this.gwNs = `nhgw${tag}`;
    this.farNs = `nhfar${tag}`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `netheal-box-${manager}-`));
    fs.chmodSync(this.dir, 0o755);
    this.console = '';
    this.daemonRuns = 0;
    this.daemonLog = null;
    this.children = new Set();
    this.timings = {};
  }

  // ---- running things ----

  /** Runs a command inside the container (all its namespaces), with the real tools' PATH. */
  inBox(cmd, args = [], options = {}) {
    return sh('nsenter', ['-t', String(this.leader), '-a', '--', 'env', `PATH=${REAL_PATH}`, cmd, ...args], options);
  }

  /** Runs a command in the gateway namespace. */
  inGw(cmd, args = [], options = {}) {
    return sh('ip', ['netns', 'exec', this.gwNs, cmd, ...args], options);
  }

  async mustInBox(cmd, args = [], options) {
    const r = await this.inBox(cmd, args, options);
    if (r.code !== 0) throw new Error(`in the box: ${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  }

  /** Writes a file inside the container (through the shared directory). */
  async writeInBox(file, text, mode = '0644') {
    const name = `put-${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(path.join(this.dir, name), text);
    await this.mustInBox('install', ['-D', '-m', mode, `${BOX}/${name}`, file]);
    fs.rmSync(path.join(this.dir, name), { force: true });
  }

  spawnTracked(file, args, options = {}) {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.stderr?.on('data', () => {});
    return child;
  }

  // ---- boot ----

  async start() {
    const t0 = hrMs();
    for (const [name, text] of [['echo-server.js', ECHO_SERVER], ['tcp-client.js', TCP_CLIENT]]) fs.writeFileSync(path.join(this.dir, name), text);
    const args = ['-D', '/', '--volatile=yes', '--register=no', '--keep-unit', '--private-network',
      `--bind-ro=${ROOT}:${NH}`, `--bind=${this.dir}:${BOX}`];
    args.push(...NODE_BIND_ARGS);
    if (this.manager === 'networkmanager') {
      this.nmTree = await networkManagerTree(this.log);
      this.timings.nmTreeMs = hrMs() - t0;
      args.push(`--bind-ro=${this.nmTree}:${NMX}`, `--overlay-ro=/usr:${this.nmTree}/usr:/usr`);
    }
    const masks = [...BOOT_MASKS];
    if (this.manager !== 'networkd') masks.push('systemd-networkd.service', 'systemd-networkd.socket');
    if (this.manager !== 'networkmanager') masks.push('NetworkManager.service');
    args.push('-M', this.machine, '-b', '--console=pipe', ...masks.map((m) => `systemd.mask=${m}`));
    this.proc = spawn('systemd-nspawn', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.console += d; });
    this.proc.stderr.on('data', (d) => { this.console += d; });
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.leader = await this.until('the container init', async () => {
      if (this.proc.exitCode !== null) throw new Error(`systemd-nspawn exited ${this.proc.exitCode}`);
      const pid = childOf(this.proc.pid);
      try {
        return pid > 0 && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd' ? pid : 0;
      } catch {
        return 0;
      }
    }, 20000);
    await this.until('the boot to finish', async () => /running|degraded/.test((await this.inBox('systemctl', ['is-system-running'])).stdout), 60000);
    this.timings.bootMs = hrMs() - t0;
    await this.wire();
    await this.shims();
    const t1 = hrMs();
    await this[`setup_${this.manager}`]();
    await this.waitConfigured(20000, { orThrow: true });
    this.timings.managerMs = hrMs() - t1;
    await this.startEchoServer();
    this.timings.totalMs = hrMs() - t0;
    this.log(`${this.manager} box up in ${this.timings.totalMs.toFixed(0)} ms (boot ${this.timings.bootMs.toFixed(0)} ms, manager ${this.timings.managerMs.toFixed(0)} ms)`);
  }

  async until(what, fn, timeoutMs, intervalMs = 100) {
    const end = hrMs() + timeoutMs;
    while (hrMs() < end) {
      const value = await fn();
      if (value) return value;
      await sleep(intervalMs);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  /** The gateway and far namespaces. Both veth ends are made in gw, then one is moved: distinct ifindexes. */
  async wire() {
    const gw = this.gwNs;
    const far = this.farNs;
    await removeOrphanNamespaces();
    await must('ip', ['netns', 'add', gw]);
    this.nsMade = [gw];
    await must('ip', ['netns', 'add', far]);
    this.nsMade.push(far);
    const steps = [
      ['-n', gw, 'link', 'set', 'lo', 'up'], ['-n', far, 'link', 'set', 'lo', 'up'],
      ['-n', gw, 'link', 'add', this.iface, 'type', 'veth', 'peer', 'name', 'gw0'],
      ['-n', gw, 'addr', 'add', `${this.gateway}/${this.prefixlen}`, 'dev', 'gw0'], ['-n', gw, 'link', 'set', 'gw0', 'up'],
      ['-n', gw, 'link', 'add', 'gwf0', 'type', 'veth', 'peer', 'name', 'far0'], ['-n', gw, 'link', 'set', 'far0', 'netns', far],
      ['-n', gw, 'addr', 'add', '10.96.0.2/24', 'dev', 'gwf0'], ['-n', gw, 'link', 'set', 'gwf0', 'up'],
      ['-n', far, 'addr', 'add', `${FAR_ADDRESS}/24`, 'dev', 'far0'], ['-n', far, 'link', 'set', 'far0', 'up'],
      ['-n', far, 'route', 'add', 'default', 'via', '10.96.0.2'],
    ];
    for (const step of steps) await must('ip', step);
    await must('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }

  /** Moves the container's end of the veth in (done by each setup when its manager is ready for it). */
  async plugIn() {
    await must('ip', ['-n', this.gwNs, 'link', 'set', this.iface, 'netns', String(this.leader)]);
  }

  /**
   * PATH shims for the daemon: networkctl, nmcli, ifup, ifdown, ifquery append their argv to
   * /srv/box/shim-calls.log and exec the real binary. The record is the test's own evidence of
   * which manager commands ran, independent of what the daemon logs.
   */
  async shims() {
    const dir = path.join(this.dir, 'shims');
    fs.mkdirSync(dir, { mode: 0o755 });
    for (const name of ['networkctl', 'nmcli', 'ifup', 'ifdown', 'ifquery']) {
      const real = (await this.inBox('sh', ['-c', `command -v ${name}`])).stdout.trim();
      if (!real) continue;
      fs.writeFileSync(path.join(dir, name), `#!/bin/sh\nprintf '%s\\t%s\\n' "$(date +%s%N)" "${name} $*" >> ${BOX}/shim-calls.log\nexec ${real} "$@"\n`, { mode: 0o755 });
    }
    this.daemonPath = `${BOX}/shims:${REAL_PATH}`;
  }

  /** The commands the shims saw: [{ ns, atMs (CLOCK_REALTIME ms), line, argv }]. */
  shimCalls() {
    let text = '';
    try {
      text = fs.readFileSync(path.join(this.dir, 'shim-calls.log'), 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').filter(Boolean).map((l) => {
      const [ns, line] = l.split('\t');
      return { atMs: Number(BigInt(ns) / 1000000n), line, argv: line.split(' ') };
    });
  }

  /** Only the calls that change something (not status queries such as `networkctl status`, `ifquery`). */
  managerCommands() {
    return this.shimCalls().filter((c) => isMutating(c.argv));
  }

  /**
   * Waits until the shims have recorded nothing new for `quietMs` (at most `timeoutMs`);
   * resolves the number of calls recorded so far, a mark to count later calls from.
   */
  async shimsQuiet(quietMs, timeoutMs) {
    const start = hrMs();
    let count = this.shimCalls().length;
    let since = hrMs();
    while (hrMs() - since < quietMs && hrMs() - start < timeoutMs) {
      await sleep(25);
      const now = this.shimCalls().length;
      if (now !== count) {
        count = now;
        since = hrMs();
      }
    }
    return count;
  }

  clearShimCalls() {
    fs.rmSync(path.join(this.dir, 'shim-calls.log'), { force: true });
  }

  // ---- managers ----

  async setup_networkd() {
    await this.writeInBox(`/etc/systemd/network/${this.iface}.network`, [
      '[Match]', `Name=${this.iface}`, '', '[Network]', `Address=${this.address}/${this.prefixlen}`, `Gateway=${this.gateway}`,
      // Without it the link stays "configuring" waiting for a router advertisement.
      'IPv6AcceptRA=no', '',
    ].join('\n'));
    await this.mustInBox('systemctl', ['start', 'systemd-networkd.service']);
    await this.plugIn();
    await this.mustInBox('networkctl', ['reload']);
  }

  async setup_ifupdown() {
    await this.mustInBox('mkdir', ['-p', '/etc/network/if-pre-up.d', '/etc/network/if-up.d', '/etc/network/if-down.d',
      '/etc/network/if-post-down.d', '/etc/network/interfaces.d', '/run/network']);
    await this.writeInBox('/etc/network/interfaces', 'source /etc/network/interfaces.d/*\n');
    await this.writeInBox(`/etc/network/interfaces.d/${this.iface}`, [
      `auto ${this.iface}`, `iface ${this.iface} inet static`, `    address ${this.address}/${this.prefixlen}`, `    gateway ${this.gateway}`, '',
    ].join('\n'));
    await this.plugIn();
    await this.mustInBox('ifup', [this.iface]);
  }

  async setup_networkmanager() {
    await this.mustInBox('cp', ['-a', `${NMX}/etc/.`, '/etc/']);
    // No "Wired connection 1" for the device: only the profile below.
    await this.writeInBox('/etc/NetworkManager/conf.d/90-netheal-test.conf', '[main]\nno-auto-default=*\n');
    await this.mustInBox('systemctl', ['daemon-reload']);
    await this.mustInBox('systemctl', ['start', 'NetworkManager.service']);
    await this.until('NetworkManager on D-Bus', async () => (await this.inBox('nmcli', ['-t', 'general', 'status'])).code === 0, 15000);
    // The profile exists before the device does, so NetworkManager activates it on sight.
    await this.mustInBox('nmcli', ['connection', 'add', 'type', 'ethernet', 'ifname', this.iface, 'con-name', this.iface,
      'ipv4.method', 'manual', 'ipv4.addresses', `${this.address}/${this.prefixlen}`, 'ipv4.gateway', this.gateway, 'ipv6.method', 'disabled']);
    await this.plugIn();
    await this.until('the device to be managed', async () => {
      const r = await this.inBox('nmcli', ['-t', '-f', 'DEVICE,STATE', 'device']);
      return r.stdout.split('\n').some((l) => l.startsWith(`${this.iface}:`) && !/unmanaged|unavailable/.test(l));
    }, 15000);
    await this.mustInBox('nmcli', ['connection', 'up', this.iface]);
    // NetworkManager 1.42 still made an in-memory "Wired connection 1" (DHCP) for the device
    // despite no-auto-default=*; it would be activated after a `connection down`. Only ours stays.
    const profiles = (await this.mustInBox('nmcli', ['-t', '-f', 'NAME,TYPE', 'connection', 'show'])).stdout.split('\n');
    for (const line of profiles) {
      const name = line.replace(/:[^:]*$/, '').replace(/\\:/g, ':');
      if (/:802-3-ethernet$/.test(line) && name !== this.iface) await this.mustInBox('nmcli', ['connection', 'delete', name]);
    }
  }

  // ---- state ----

  /** The interface as the kernel has it: { adminUp, carrier, addresses: ['a/len'], defaultVia }. */
  async linkState() {
    const r = await this.inBox('sh', ['-c', `for c in 'link show' '-4 addr show' '-4 route show default'; do ip -j $c dev ${this.iface} 2>/dev/null || echo '[]'; echo; done`]);
    const [link, addr, route] = r.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    const flags = link?.[0]?.flags ?? [];
    return {
      adminUp: flags.includes('UP'),
      carrier: flags.includes('LOWER_UP'),
      addresses: (addr?.[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
      defaultVia: route?.[0]?.gateway ?? null,
    };
  }

  /** The configured (declared) state: admin up, the declared address, the default route via the gateway. */
  isConfigured(s) {
    return s.adminUp && s.addresses.includes(`${this.address}/${this.prefixlen}`) && s.defaultVia === this.gateway;
  }

  /**
   * Polls until the interface is in its configured state; resolves { ok, ms, state }.
   * `orThrow` turns a timeout into an exception (set-up, reset).
   */
  async waitConfigured(timeoutMs, { orThrow = false, intervalMs = 20 } = {}) {
    const start = hrMs();
    let state;
    for (;;) {
      const pollStart = hrMs();
      state = await this.linkState();
      if (this.isConfigured(state)) return { ok: true, ms: hrMs() - start, state, pollMs: hrMs() - pollStart };
      if (hrMs() - start > timeoutMs) break;
      await sleep(intervalMs);
    }
    if (orThrow) throw new Error(`${this.iface} not configured after ${timeoutMs} ms: ${JSON.stringify(state)}`);
    return { ok: false, ms: null, state };
  }

  /** True for `ms` while `pred(state)` holds on every poll; else the first state that broke it. */
  async holds(pred, ms, intervalMs = 50) {
    const end = hrMs() + ms;
    while (hrMs() < end) {
      const state = await this.linkState();
      if (!pred(state)) return { ok: false, state };
      await sleep(intervalMs);
    }
    return { ok: true };
  }

  // ---- the daemon ----

  /**
   * Starts netheal inside the container as a transient unit, with `config` (log.format json
   * and the status socket added), the shims first in its PATH and stdout+stderr to a file of
   * the shared directory. Resolves once it logged "monitoring is live".
   */
  async startDaemon(config) {
    await this.stopDaemon();
    const full = { ...config, log: { ...(config.log ?? {}), format: 'json' }, status: { socket: '/run/netheal/status.sock' } };
    await this.writeInBox('/etc/netheal/config.json', JSON.stringify(full, null, 2));
    const n = ++this.daemonRuns;
    this.unit = `netheal-test-${n}`;
    this.daemonLog = path.join(this.dir, `daemon-${n}.log`);
    const started = hrMs();
    await this.mustInBox('systemd-run', [`--unit=${this.unit}`, '--collect', '--quiet',
      `--property=StandardOutput=append:${BOX}/daemon-${n}.log`, `--property=StandardError=append:${BOX}/daemon-${n}.log`,
      // Each test's daemon starts afresh: a state directory of its own, so that the flaps and
      // actions of the previous test (same boot, same namespace) are not carried over.
      `--setenv=PATH=${this.daemonPath}`, `--setenv=STATE_DIRECTORY=/run/netheal-state-${n}`, NODE, `${NH}/lib/daemon.js`, '--config', '/etc/netheal/config.json']);
    await this.until('the daemon to be live', async () => {
      if (this.logLines().some((l) => l.msg === 'monitoring is live')) return true;
      const s = await this.inBox('systemctl', ['is-active', this.unit]);
      if (/failed|inactive/.test(s.stdout)) throw new Error(`the daemon exited: ${this.rawLog().slice(-2000)}`);
      return false;
    }, 20000, 50);
    this.log(`daemon ${n} live in ${(hrMs() - started).toFixed(0)} ms`);
  }

  async stopDaemon() {
    if (this.unit === undefined) return;
    await this.inBox('systemctl', ['stop', this.unit]);
    this.unit = undefined;
  }

  rawLog() {
    try {
      return this.daemonLog ? fs.readFileSync(this.daemonLog, 'utf8') : '';
    } catch {
      return '';
    }
  }

  /** The current daemon's JSON log lines (non-JSON lines as { raw }). */
  logLines() {
    return this.rawLog().split('\n').filter(Boolean).map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return { raw: line };
      }
    });
  }

  /** `netheal status --json` inside the container. */
  async status() {
    const r = await this.inBox(NODE, [`${NH}/lib/cli.js`, 'status', '--json', '--socket', '/run/netheal/status.sock']);
    // The exit code says the health (0 healthy, 1 degraded, 3 down); the document is printed in each case.
    if (![0, 1, 3].includes(r.code) || r.stdout.trim() === '') throw new Error(`netheal status: exit ${r.code}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /** The interface's entry of the status document (undefined if absent or unreadable). */
  async ifaceStatus() {
    try {
      return (await this.status()).interfaces?.[this.iface];
    } catch {
      return undefined;
    }
  }

  /** Polls status until the interface is healthy: { ok, ms, last }. */
  async waitHealthy(timeoutMs, intervalMs = 50) {
    const start = hrMs();
    let last;
    for (;;) {
      last = await this.ifaceStatus();
      if (last?.state === 'healthy') return { ok: true, ms: hrMs() - start, last };
      if (hrMs() - start > timeoutMs) return { ok: false, ms: null, last };
      await sleep(intervalMs);
    }
  }

  // ---- TCP ----

  async startEchoServer() {
    const server = this.spawnTracked('ip', ['netns', 'exec', this.gwNs, process.execPath, path.join(this.dir, 'echo-server.js'), this.gateway, String(TCP_PORT)]);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo server did not start')), 10000);
      readline.createInterface({ input: server.stdout }).on('line', (l) => {
        if (l === 'listening') { clearTimeout(timer); resolve(); }
      });
      server.once('exit', (code) => reject(new Error(`echo server exited ${code}`)));
    });
    this.echoServer = server;
  }

  /** A new long-lived connection from the managed address to the gateway's echo server. */
  async openTcp() {
    const proc = this.spawnTracked('nsenter', ['-t', String(this.leader), '-a', '--', NODE, `${BOX}/tcp-client.js`, this.address, this.gateway, String(TCP_PORT)]);
    const conn = new TcpConnection(proc);
    await conn.ready();
    const first = await conn.exchange(3000);
    if (!first.ok) throw new Error(`fresh TCP connection cannot exchange data: ${first.why}`);
    return conn;
  }

  // ---- faults ----

  delAddress() {
    return this.mustInBox('ip', ['addr', 'del', `${this.address}/${this.prefixlen}`, 'dev', this.iface]);
  }

  delDefaultRoute() {
    return this.mustInBox('ip', ['route', 'del', 'default', 'via', this.gateway, 'dev', this.iface]);
  }

  /** Admin-down by something other than the manager. */
  adminDown() {
    return this.mustInBox('ip', ['link', 'set', this.iface, 'down']);
  }

  adminUp() {
    return this.mustInBox('ip', ['link', 'set', this.iface, 'up']);
  }

  /**
   * The operator says "down" through the manager. networkd 252 records no intent for
   * `networkctl down` (it sets the link down over rtnetlink itself; networkd's state is the
   * same as after `ip link set down`), so the operator's word is ActivationPolicy=down in a
   * drop-in, applied by `networkctl reload` (networkd then sets the link down itself and
   * `networkctl status --json` shows "ActivationPolicy":"down").
   */
  async operatorDown() {
    switch (this.manager) {
      case 'networkd':
        await this.writeInBox(`/etc/systemd/network/${this.iface}.network.d/50-operator-down.conf`, '[Link]\nActivationPolicy=down\n');
        return this.mustInBox('networkctl', ['reload']);
      case 'ifupdown':
        return this.mustInBox('ifdown', [this.iface]);
      case 'networkmanager':
        return this.mustInBox('nmcli', ['device', 'disconnect', this.iface]);
    }
  }

  async operatorUp() {
    switch (this.manager) {
      case 'networkd':
        await this.mustInBox('rm', ['-f', `/etc/systemd/network/${this.iface}.network.d/50-operator-down.conf`]);
        return this.mustInBox('networkctl', ['reload']);
      case 'ifupdown':
        return this.mustInBox('ifup', [this.iface]);
      case 'networkmanager':
        return this.mustInBox('nmcli', ['device', 'connect', this.iface]);
    }
  }

  /** Takes the gateway's end down for `ms` (the container's end loses carrier): resolves the measured down time in ms. */
  async carrierBlip(ms) {
    // Over rtnetlink from this process (a socket in the gw namespace): no exec between down and up.
    const control = new LinkControl({ netns: this.gwNs });
    try {
      const { ifindex } = await control.getLink('gw0');
      const downAt = await control.setAdmin(ifindex, false);
      await sleep(ms);
      const upAt = await control.setAdmin(ifindex, true);
      return Number(upAt - downAt) / 1e6;
    } finally {
      control.close();
    }
  }

  /**
   * The manager re-applies the interface while it is healthy. networkd removes the static
   * address and route and adds them again (a few ms); NetworkManager's reapply leaves an
   * unchanged configuration alone; ifupdown has no re-apply: `ifup --force` re-runs the
   * stanza (its `ip addr add` finds the address present and changes nothing).
   */
  managerReconfigure() {
    switch (this.manager) {
      case 'networkd': return this.mustInBox('networkctl', ['reconfigure', this.iface]);
      case 'networkmanager': return this.mustInBox('nmcli', ['device', 'reapply', this.iface]);
      case 'ifupdown': return this.inBox('ifup', ['--force', this.iface]);
    }
  }

  /** The gateway goes silent, ARP included: everything arriving on its gw0 is dropped (netdev ingress). */
  async firstHopLoss(on) {
    if (on) {
      await must('ip', ['netns', 'exec', this.gwNs, NFT, '-f', '-'], {
        input: 'table netdev nhfirsthop {\n chain nhin {\n  type filter hook ingress device "gw0" priority -500; policy drop;\n }\n}\n',
      });
    } else {
      await sh('ip', ['netns', 'exec', this.gwNs, NFT, 'delete', 'table', 'netdev', 'nhfirsthop']);
    }
  }

  /** The gateway answers itself but forwards nothing (the far host is unreachable). */
  async beyondFirstHopLoss(on) {
    if (on) {
      await must('ip', ['netns', 'exec', this.gwNs, NFT, '-f', '-'], {
        input: 'table inet nhbeyond {\n chain nhfwd {\n  type filter hook forward priority 0; policy drop;\n }\n}\n',
      });
    } else {
      await sh('ip', ['netns', 'exec', this.gwNs, NFT, 'delete', 'table', 'inet', 'nhbeyond']);
    }
  }

  /** Can the container reach `address` (one ping, waiting `waitS` seconds for the reply)? */
  async reaches(address, waitS = 1) {
    return (await this.inBox('ping', ['-c', '1', '-W', String(waitS), '-I', this.iface, address])).code === 0;
  }

  // ---- reset and teardown ----

  /**
   * Back to the configured, healthy state between cases: daemon stopped, faults cleared, the
   * manager's own way of bringing the interface up, the path to the far host answering, the
   * shim record empty.
   */
  async reset() {
    const started = hrMs();
    await this.stopDaemon();
    await this.firstHopLoss(false);
    await this.beyondFirstHopLoss(false);
    await sh('ip', ['-n', this.gwNs, 'link', 'set', 'gw0', 'up']);
    switch (this.manager) {
      case 'networkd':
        if ((await this.inBox('test', ['-e', `/etc/systemd/network/${this.iface}.network.d/50-operator-down.conf`])).code === 0) {
          await this.inBox('rm', ['-f', `/etc/systemd/network/${this.iface}.network.d/50-operator-down.conf`]);
          await this.inBox('networkctl', ['reload']);
        }
        await this.inBox('ip', ['link', 'set', this.iface, 'up']);
        if (!this.isConfigured(await this.linkState())) await this.inBox('networkctl', ['reconfigure', this.iface]);
        break;
      case 'ifupdown':
        // `ifup --force` puts back a lost address (and its route) but stops at the address
        // it finds present, so a lost route alone needs the full cycle.
        if (!this.isConfigured(await this.linkState())) await this.inBox('ifdown', ['--force', this.iface]);
        if ((await this.inBox('ifquery', ['--state', this.iface])).stdout.trim() === '') await this.inBox('ifup', [this.iface]);
        break;
      case 'networkmanager': {
        await this.inBox('ip', ['link', 'set', this.iface, 'up']);
        const st = (await this.inBox('nmcli', ['-g', 'GENERAL.STATE', 'device', 'show', this.iface])).stdout;
        if (!/^100/.test(st.trim())) await this.inBox('nmcli', ['device', 'connect', this.iface]);
        else if (!this.isConfigured(await this.linkState())) await this.inBox('nmcli', ['device', 'reapply', this.iface]);
        break;
      }
    }
    await this.waitConfigured(15000, { orThrow: true });
    await this.until('the gateway and the far host to answer', async () => (await this.reaches(this.gateway)) && (await this.reaches(this.far)), 10000, 100);
    this.clearShimCalls();
    this.lastResetMs = hrMs() - started;
  }

  async teardown() {
    // Our nsenter processes first: systemd-shutdown SIGSTOPs every process of the container,
    // nsenter then stops itself too (it mirrors its child's stop) and never reaps the child,
    // and the container's init waits for that zombie forever.
    for (const child of [...this.children]) child.kill('SIGKILL');
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      // The root is a tmpfs: nothing to shut down cleanly. A graceful poweroff takes ~10 s;
      // killing the container's init ends its PID namespace at once and nspawn exits.
      try {
        if (this.leader) process.kill(this.leader, 'SIGKILL');
        else this.proc.kill('SIGTERM');
      } catch {
        // gone already
      }
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
    for (const ns of this.nsMade ?? []) await sh('ip', ['netns', 'del', ns]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Deletes the gateway/far namespaces of earlier boxes whose test process is gone (killed
 * before its teardown ran): their names carry that process's pid. A live pid, ours or
 * another's, is left alone, so a parallel run in this PID namespace never loses its
 * namespaces (one in another PID namespace sharing /run/netns would not be seen alive).
 */
async function removeOrphanNamespaces() {
  let names = [];
  try {
    names = fs.readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^nh(?:gw|far)(\d+)[a-z]{2}$/.exec(name)?.[1];
    if (pid === undefined || fs.existsSync(`/proc/${pid}`)) continue;
    await sh('ip', ['netns', 'del', name]);
  }
}

/** Whether a manager command line changes something (as opposed to a query). */
function isMutating(argv) {
  const [cmd, ...rest] = argv;
  const words = rest.filter((a) => !a.startsWith('-'));
  switch (cmd) {
    case 'ifup':
    case 'ifdown':
      return !rest.includes('-n') && !rest.includes('--no-act');
    case 'networkctl':
      return ['up', 'down', 'reconfigure', 'reload', 'renew', 'forcerenew', 'reconnect', 'delete'].includes(words[0]);
    case 'nmcli': {
      // nmcli [-t] [-f F] [-g F] OBJECT VERB ...: skip option values.
      const plain = [];
      for (let i = 0; i < rest.length; i++) {
        if (['-f', '--fields', '-g', '--get-values', '-m', '--mode', '-c', '--colors', '-w', '--wait'].includes(rest[i])) i++;
        else if (!rest[i].startsWith('-')) plain.push(rest[i]);
      }
      const [object = '', verb = ''] = plain;
      if (/^d/.test(object)) return /^(reapply|connect|disconnect|up|down|delete|modify|set)$/.test(verb);
      if (/^c/.test(object)) return /^(up|down|modify|reload|delete|add|load)$/.test(verb);
      if (/^n/.test(object)) return /^(on|off)$/.test(verb);
      return false;
    }
    default:
      return false;
  }
}

module.exports = { ManagerBox, MANAGERS, FAR_ADDRESS, availability, networkManagerTree, isMutating, hrMs, sleep };
