/**
 * Throw-away network namespace labs: namespaces, veth and tap pairs, addresses, routes and
 * injected faults, for the `--lab` demo, the tests and the benchmarks.
 *
 * Everything a lab creates lives in namespaces it created (named `nh-<pid>-<n>-<role>`), so
 * deleting them removes every device, address and route with them. Cleanup runs on
 * destroy(), on process exit and on SIGINT/SIGTERM/SIGHUP; namespaces left by a process that
 * was killed outright are reaped by the next Lab.create().
 */
import { ChildProcess, execFile, execFileSync, spawn, SpawnOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { NethealError } from '../errors';
import { NativeBinding, nativeBinding } from '../native';
import type { LinkControl } from '../kernel/link-control';

const NETNS_DIR = '/run/netns';
const NAME_PATTERN = /^nh-(\d+)-\d+-/;

/** One end of a link: a device name in a lab namespace. */
export interface LinkEnd {
  ns: string;
  name: string;
}

/** A tap device whose file descriptor the lab holds: the carrier follows setCarrier(). */
export interface TapHandle {
  readonly ns: string;
  readonly name: string;
  /** TUNSETCARRIER: what a NIC driver's netif_carrier_on/off does. */
  setCarrier(on: boolean): void;
  /** Closes the fd (the device goes away unless persistent). */
  close(): void;
}

const liveLabs = new Set<Lab>();
let counter = 0;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes lab namespaces whose creating process is gone (it was killed before cleaning up). */
export function reapStaleNamespaces(): string[] {
  let entries: string[];
  try {
    entries = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const name of entries) {
    const match = NAME_PATTERN.exec(name);
    if (match === null || pidAlive(Number(match[1]))) continue;
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      reaped.push(name);
    } catch {
      // Someone else reaped it first.
    }
  }
  return reaped;
}

function onExit(): void {
  for (const lab of [...liveLabs]) lab.destroySync();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  removeHandlers();
  // Die of the same signal, as if we had not been here.
  process.kill(process.pid, signal);
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', onExit);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}
function removeHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', onExit);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** Runs a command; resolves with stdout, rejects with NETHEAL_ERR_LAB naming the command. */
export function run(command: string, args: string[], timeoutMs = 15000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new NethealError('NETHEAL_ERR_LAB', `${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * Fault: a paced flap storm, `flaps` down/up cycles `halfPeriodMs` apart, ending down, done
 * by netlink through `control` (in the far namespace). Unlike {@link Lab.flapStorm}, every
 * flap is slow enough for the near side to see it. Resolves with CLOCK_MONOTONIC (ns) taken
 * just before the first down.
 */
export async function pacedFlaps(control: LinkControl, link: string, flaps: number, halfPeriodMs: number): Promise<bigint> {
  const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, halfPeriodMs));
  const t0 = await control.setAdmin(link, false);
  for (let i = 1; i < flaps; i++) {
    await pause();
    await control.setAdmin(link, true);
    await pause();
    await control.setAdmin(link, false);
  }
  return t0;
}

/** A lab: create with Lab.create(), always destroy() (cleanup also runs on exit). */
export class Lab {
  /** Unique prefix of this lab's namespaces. */
  readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly taps = new Set<TapHandle>();
  private readonly children = new Set<ChildProcess>();
  private readonly cleanups: Array<() => void> = [];
  private readonly binding: NativeBinding;
  private destroyed = false;

  private constructor(binding: NativeBinding) {
    this.prefix = `nh-${process.pid}-${++counter}`;
    this.binding = binding;
  }

  /** Reaps stale lab namespaces, then starts a new lab. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN). */
  static create(options: { binding?: NativeBinding } = {}): Lab {
    reapStaleNamespaces();
    const lab = new Lab(options.binding ?? nativeBinding());
    liveLabs.add(lab);
    installHandlers();
    return lab;
  }

  /** Path of a lab namespace's file, for the `netns` options. */
  static path(ns: string): string {
    return `${NETNS_DIR}/${ns}`;
  }

  /** Creates a namespace (loopback up) and returns its full name, e.g. nh-123-1-client. */
  async addNamespace(role: string): Promise<string> {
    this.assertLive();
    const name = `${this.prefix}-${role}`;
    await run('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await this.ip(name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** `ip -n NS ARGS...`; resolves with stdout. */
  ip(ns: string, ...args: string[]): Promise<string> {
    this.assertOwned(ns);
    return run('ip', ['-n', ns, ...args]);
  }

  /** `ip -j -n NS ARGS...` parsed. */
  async ipJson<T = unknown>(ns: string, ...args: string[]): Promise<T> {
    const out = await this.ip(ns, '-j', ...args);
    return JSON.parse(out.trim() === '' ? '[]' : out) as T;
  }

  /**
   * A veth pair. Both ends are created in a.ns and b's end is moved: it keeps a distinct
   * ifindex, so the kernel treats it as stacked and reports carrier changes at once
   * (docs/kernel-facts.md, "Links and linkwatch": the same-ifindex trap makes them 1 s late). Both ends are set up.
   */
  async addVeth(a: LinkEnd, b: LinkEnd): Promise<void> {
    this.assertOwned(a.ns);
    this.assertOwned(b.ns);
    await this.ip(a.ns, 'link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name);
    if (b.ns !== a.ns) await this.ip(a.ns, 'link', 'set', b.name, 'netns', b.ns);
    await this.ip(a.ns, 'link', 'set', a.name, 'up');
    await this.ip(b.ns, 'link', 'set', b.name, 'up');
  }

  /** A tap device held open by this process (carrier up), set admin up. */
  async addTap(ns: string, name: string): Promise<TapHandle> {
    this.assertOwned(ns);
    const fd = this.binding.openTap(name, Lab.path(ns));
    const binding = this.binding;
    const taps = this.taps;
    let open = true;
    const handle: TapHandle = {
      ns,
      name,
      setCarrier(on: boolean) {
        if (!open) throw new NethealError('NETHEAL_ERR_CLOSED', `tap ${name} is closed`);
        binding.setTapCarrier(fd, on);
      },
      close() {
        if (!open) return;
        open = false;
        taps.delete(handle);
        binding.closeFd(fd);
      },
    };
    this.taps.add(handle);
    await this.ip(ns, 'link', 'set', name, 'up');
    return handle;
  }

  /** `ip addr add CIDR dev DEV` (nodad for IPv6, so the address is usable at once). */
  async addAddress(ns: string, dev: string, cidr: string): Promise<void> {
    const extra = cidr.includes(':') ? ['nodad'] : [];
    await this.ip(ns, 'addr', 'add', cidr, 'dev', dev, ...extra);
  }

  async removeAddress(ns: string, dev: string, cidr: string): Promise<void> {
    await this.ip(ns, 'addr', 'del', cidr, 'dev', dev);
  }

  /** `ip [-6] route add SPEC...`, e.g. addRoute(ns, 'default', 'via', '10.0.0.1'). */
  async addRoute(ns: string, ...spec: string[]): Promise<void> {
    await this.ip(ns, ...this.familyFlag(spec), 'route', 'add', ...spec);
  }

  async removeRoute(ns: string, ...spec: string[]): Promise<void> {
    await this.ip(ns, ...this.familyFlag(spec), 'route', 'del', ...spec);
  }

  async setLink(ns: string, dev: string, up: boolean): Promise<void> {
    await this.ip(ns, 'link', 'set', dev, up ? 'up' : 'down');
  }

  /** Enables forwarding in a router namespace. */
  async enableForwarding(ns: string): Promise<void> {
    await this.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  }

  /** Runs a command inside the namespace and resolves with its stdout. */
  exec(ns: string, command: string, args: string[] = [], timeoutMs = 15000): Promise<string> {
    this.assertOwned(ns);
    return run('ip', ['netns', 'exec', ns, command, ...args], timeoutMs);
  }

  /** Starts a long-running process in the namespace; it is killed when the lab is destroyed. */
  spawn(ns: string, command: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.assertOwned(ns);
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Fault: carrier loss seen by `near`'s peer, caused from the far side (far end admin down). */
  async carrierLoss(far: LinkEnd): Promise<void> {
    await this.setLink(far.ns, far.name, false);
  }

  async carrierRestore(far: LinkEnd): Promise<void> {
    await this.setLink(far.ns, far.name, true);
  }

  /** Fault: `count` down/up cycles of a link as fast as `ip -batch` issues them. */
  async flapStorm(ns: string, dev: string, count: number): Promise<void> {
    this.assertOwned(ns);
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(`link set ${dev} down`, `link set ${dev} up`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn('ip', ['-n', ns, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new NethealError('NETHEAL_ERR_LAB', `ip -batch flap storm failed: ${stderr.trim()}`))));
      child.stdin.end(`${lines.join('\n')}\n`);
    });
  }

  /** Namespaces this lab created, in creation order. */
  get namespaceNames(): readonly string[] {
    return this.namespaces;
  }

  /** Kills children, closes taps, deletes every namespace. Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  /**
   * Registers synchronous cleanup (scratch files, processes the lab's user started) to run
   * when the lab is destroyed, first thing: by destroy(), at exit, or on SIGINT/SIGTERM/SIGHUP,
   * when no finally block of the caller runs. Runs in reverse order of registration.
   */
  onDestroy(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** Synchronous cleanup, usable from an 'exit' handler. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const cleanup of this.cleanups.reverse()) {
      try {
        cleanup();
      } catch {
        // Best effort: the namespaces below must go whatever happened here.
      }
    }
    for (const child of this.children) child.kill('SIGKILL');
    for (const tap of [...this.taps]) tap.close();
    for (const ns of this.namespaces.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    }
    liveLabs.delete(this);
    if (liveLabs.size === 0) removeHandlers();
  }

  private familyFlag(spec: string[]): string[] {
    return spec.some((word) => word.includes(':')) ? ['-6'] : [];
  }

  private assertLive(): void {
    if (this.destroyed) throw new NethealError('NETHEAL_ERR_CLOSED', 'lab already destroyed');
  }

  /** Refuses to touch any namespace this lab did not create: the host's network is off limits. */
  private assertOwned(ns: string): void {
    this.assertLive();
    if (!this.namespaces.includes(ns)) {
      throw new NethealError('NETHEAL_ERR_LAB', `namespace ${ns} does not belong to lab ${this.prefix}; labs only change their own namespaces`);
    }
  }
}
