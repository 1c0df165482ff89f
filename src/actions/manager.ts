/**
 * Which network manager owns an interface, and how to ask it to re-apply the interface.
 * Detected, not configured (docs/kernel-facts.md, "The managers"):
 * - NetworkManager: `nmcli device reapply IF` (no bounce), then `nmcli device connect IF`
 *   (full reactivation). Never `nmcli device disconnect` (it blocks autoconnect).
 * - systemd-networkd: `networkctl reconfigure IF` (`renew` is DHCP only).
 * - Debian ifupdown: `ifup` on an interface already in the state file is a no-op, so
 *   `ifdown --force IF` then `ifup IF`.
 * - RHEL network-scripts: `ifdown IF; ifup IF` (on RHEL 8+ these are nmcli wrappers, and
 *   NetworkManager is then detected first anyway).
 */
import type { InterruptionJournal } from './interruption';
import { existsSync, readFileSync } from 'node:fs';
import { CommandResult, commandExists, describeFailure, runCommand } from './run';

/** A network manager netheal knows how to drive. */
export type ManagerKind = 'NetworkManager' | 'systemd-networkd' | 'ifupdown' | 'network-scripts';

/** Where to look; every path can be pointed elsewhere (tests, chroots). */
export interface ManagerEnvironment {
  /** Namespace file the interface lives in: commands run under nsenter --net. */
  netnsPath?: string;
  /** ifupdown's interfaces file (default /etc/network/interfaces) and state directory (default /run/network). */
  ifupdownInterfaces?: string;
  ifupdownStateDir?: string;
  /** Extra ifup/ifdown options, e.g. ['--no-scripts'] to skip /etc/network/if-*.d hooks. */
  ifupdownOptions?: string[];
  /** RHEL ifcfg directory (default /etc/sysconfig/network-scripts). */
  networkScriptsDir?: string;
  /** Per-command time limit in ms (default 30 s). */
  timeoutMs?: number;
  /** Kills a running command (its process group) and skips the rest when aborted. */
  signal?: AbortSignal;
  /** Where a down/up re-apply writes down the `ifup` it owes, should the daemon die between. */
  journal?: InterruptionJournal;
}

/** One manager's claim on an interface and its word on whether it wants it up. */
export interface OwnerClaim {
  owner: ManagerKind;
  /** true: the manager wants it up; false: taken down through the manager; null: unknown. */
  wantUp: boolean | null;
  /** The command whose answer this is, for logs and status. */
  source: string;
}

/**
 * The managers that claim an interface, each asked through its own tool (never by parsing
 * its private state files): `networkctl status --json=short` (ActivationPolicy=), `nmcli device` (STATE column),
 * `ifquery IF` / `ifquery --state IF` (stanzas in `source`d files included), and RHEL's
 * ifcfg file. More than one claim is a conflict worth a warning. The queries run at once.
 *
 * Hazard: NetworkManager and systemd-networkd run in the host's namespace and know devices
 * by the host's names and indexes; asked from inside another namespace (nsenter only changes
 * the network namespace, D-Bus and /run stay the host's) they would answer, and act, for a
 * host device of the same name. So inside a namespace (`netnsPath`) they are never
 * considered, and ifupdown / network-scripts only when their files are named explicitly.
 */
export async function queryOwners(iface: string, env: ManagerEnvironment = {}, known: readonly OwnerClaim[] = []): Promise<OwnerClaim[]> {
  const inNamespace = env.netnsPath !== undefined;
  const queries: Promise<OwnerClaim | null>[] = [];
  const networkdKnown = known.some((c) => c.owner === 'systemd-networkd');
  if (!inNamespace) queries.push(askNetworkManager(iface), askNetworkd(iface, networkdKnown));
  if (env.ifupdownInterfaces !== undefined || !inNamespace) queries.push(askIfupdown(iface, env));
  const scripts = env.networkScriptsDir ?? (inNamespace ? undefined : '/etc/sysconfig/network-scripts');
  if (scripts !== undefined) queries.push(Promise.resolve(askNetworkScripts(iface, scripts)));
  return (await Promise.all(queries)).filter((c): c is OwnerClaim => c !== null);
}

/** The kinds of {@link queryOwners}'s claims, in order. */
export async function detectManagers(iface: string, _ifindex: number | null, env: ManagerEnvironment = {}): Promise<ManagerKind[]> {
  return (await queryOwners(iface, env)).map((c) => c.owner);
}

const QUERY_TIMEOUT_MS = 5000;

async function askNetworkManager(iface: string): Promise<OwnerClaim | null> {
  if (!commandExists('nmcli')) return null;
  const nm = await runCommand('nmcli', ['-t', '-f', 'DEVICE,STATE', 'device'], { timeoutMs: QUERY_TIMEOUT_MS });
  if (nm.exitCode !== 0) return null;
  const line = nm.stdout.split('\n').find((l) => l.split(':')[0] === iface);
  if (line === undefined) return null;
  const state = line.slice(line.indexOf(':') + 1).trim();
  // "connected (externally)": NetworkManager watches a configuration it did not make.
  if (state === 'unmanaged' || state.includes('externally')) return null;
  // disconnected/deactivating: someone asked NetworkManager to take it down (it then blocks
  // autoconnect too). unavailable: no carrier or admin-down; NM activates it again once it can.
  const wantUp = state.startsWith('disconnected') || state.startsWith('deactivating') ? false : true;
  return { owner: 'NetworkManager', wantUp, source: `nmcli device: ${state}` };
}

/**
 * networkd 252 records no intent for `networkctl down` (networkctl sets the link down itself
 * over rtnetlink, exactly like `ip link set down`); the operator's word is the .network
 * file's ActivationPolicy=, which `networkctl status --json=short` reports: up / always-up
 * want the link up, down / always-down want it down, manual leaves the admin state to the
 * operator (respected). Older networkctl without --json: the SETUP column of `list`.
 */
async function askNetworkd(iface: string, knownOwner: boolean): Promise<OwnerClaim | null> {
  if (!commandExists('networkctl')) return null;
  // `list` reads networkd's state without a bus call (fast, also where networkd is not
  // running); only an interface it manages costs the `status --json` bus call. Where networkd
  // was the owner last time (it runs), both start at once: a fault's query is one
  // networkctl start-up shorter (~100 ms).
  const status = (): Promise<CommandResult> => runCommand('networkctl', ['status', '--json=short', '--no-pager', iface], { timeoutMs: QUERY_TIMEOUT_MS });
  const early = knownOwner ? status() : null;
  const nd = await runCommand('networkctl', ['list', '--no-legend', '--no-pager', iface], { timeoutMs: QUERY_TIMEOUT_MS });
  if (nd.exitCode !== 0) return null;
  // IDX LINK TYPE OPERATIONAL SETUP
  const fields = nd.stdout.trim().split(/\s+/);
  if (fields[1] !== iface || fields.length < 5) return null;
  const setup = fields[4]!;
  if (!NETWORKD_OWNED.includes(setup)) return null;
  const json = await (early ?? status());
  let link: { ActivationPolicy?: unknown } | null = null;
  if (json.exitCode === 0) {
    try {
      link = JSON.parse(json.stdout) as { ActivationPolicy?: unknown };
    } catch {
      link = null;
    }
  }
  if (link === null || typeof link.ActivationPolicy !== 'string') {
    // networkctl without --json (before 250): the SETUP column alone.
    return { owner: 'systemd-networkd', wantUp: setup === 'linger' ? null : true, source: `networkctl list: ${setup}` };
  }
  const policy = link.ActivationPolicy;
  const wantUp = policy === 'up' || policy === 'always-up' ? true : policy === 'bound' ? null : false;
  return { owner: 'systemd-networkd', wantUp, source: `networkctl: ${setup}, ActivationPolicy=${policy}` };
}

const NETWORKD_OWNED = ['configured', 'configuring', 'failed', 'pending', 'linger'];

async function askIfupdown(iface: string, env: ManagerEnvironment): Promise<OwnerClaim | null> {
  if (!commandExists('ifquery')) return null;
  const args = ifupdownQueryArgs(env);
  // ifquery --state lists the interface while ifupdown considers it up: `ifdown` removes it.
  const [declared, state] = await Promise.all([
    runCommand('ifquery', [...args, iface], { timeoutMs: QUERY_TIMEOUT_MS, netnsPath: env.netnsPath }),
    runCommand('ifquery', [...args, '--state', iface], { timeoutMs: QUERY_TIMEOUT_MS, netnsPath: env.netnsPath }),
  ]);
  if (declared.exitCode !== 0) return null;
  const up = state.exitCode === 0 && state.stdout.split('\n').some((l) => l.split('=')[0] === iface);
  return { owner: 'ifupdown', wantUp: up, source: `ifquery --state: ${up ? 'up' : 'down'}` };
}

function askNetworkScripts(iface: string, dir: string): OwnerClaim | null {
  const file = `${dir}/ifcfg-${iface}`;
  if (!existsSync(file)) return null;
  const onboot = /^\s*ONBOOT=["']?(yes|no)/mi.exec(readFileSync(file, 'utf8'))?.[1];
  return { owner: 'network-scripts', wantUp: onboot === undefined ? null : onboot.toLowerCase() === 'yes', source: `${file}: ONBOOT=${onboot ?? '?'}` };
}

function ifupdownQueryArgs(env: ManagerEnvironment): string[] {
  const args: string[] = [];
  if (env.ifupdownInterfaces !== undefined) args.push('-i', env.ifupdownInterfaces);
  if (env.ifupdownStateDir !== undefined) args.push(`--state-dir=${env.ifupdownStateDir}`);
  return args;
}

/** The outcome of a re-apply: every command run, in order. */
export interface ReapplyResult {
  manager: ManagerKind;
  ok: boolean;
  commands: CommandResult[];
  detail: string;
}

function ifupdownArgs(env: ManagerEnvironment): string[] {
  const args: string[] = [];
  if (env.ifupdownInterfaces !== undefined) args.push('-i', env.ifupdownInterfaces);
  if (env.ifupdownStateDir !== undefined) args.push(`--state-dir=${env.ifupdownStateDir}`);
  // Inside a namespace only the network is the namespace's: /etc/network/if-*.d hooks
  // would run against the host's files (resolv.conf, ...). Skip them unless asked for.
  const options = env.ifupdownOptions ?? (env.netnsPath !== undefined ? ['--no-scripts'] : []);
  return [...args, ...options];
}

/** Asks `manager` to re-apply `iface`. Never throws for a failing command. */
export async function reapply(manager: ManagerKind, iface: string, env: ManagerEnvironment = {}): Promise<ReapplyResult> {
  const options = { netnsPath: env.netnsPath, timeoutMs: env.timeoutMs ?? 30000, signal: env.signal };
  const commands: CommandResult[] = [];
  const step = async (command: string, args: string[]): Promise<boolean> => {
    if (env.signal?.aborted) return false;
    const result = await runCommand(command, args, options);
    commands.push(result);
    return result.exitCode === 0;
  };
  let ok: boolean;
  switch (manager) {
    case 'NetworkManager':
      ok = (await step('nmcli', ['device', 'reapply', iface])) || (await step('nmcli', ['device', 'connect', iface]));
      break;
    case 'systemd-networkd':
      ok = await step('networkctl', ['reconfigure', iface]);
      break;
    case 'ifupdown':
    case 'network-scripts': {
      // A down/up pair: once `ifdown` has run, `ifup` runs too, abort or not (an abort kills
      // a running command; it never leaves the interface down). The journal remembers the
      // `ifup` owed should the daemon die between the two.
      const common = manager === 'ifupdown' ? ifupdownArgs(env) : [];
      if (env.signal?.aborted) { ok = false; break; }
      const entry = env.journal?.begin(iface, 'manager-reapply', { kind: 'ifup', args: [...common, iface] });
      try {
        commands.push(await runCommand('ifdown', [...common, ...(manager === 'ifupdown' ? ['--force'] : []), iface], options));
        const up = await runCommand('ifup', [...common, iface], { ...options, signal: undefined });
        commands.push(up);
        ok = up.exitCode === 0;
      } finally {
        if (entry !== undefined) env.journal?.end(entry);
      }
      break;
    }
  }
  const last = commands[commands.length - 1];
  if (last === undefined) return { manager, ok: false, commands, detail: 'cancelled before any command ran' };
  return { manager, ok, commands, detail: ok ? commands.map((c) => c.command).join('; ') : describeFailure(last) };
}
