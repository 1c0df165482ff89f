/**
 * Which network manager owns an interface, and how to ask it to re-apply the interface.
 * Detected, not configured (KERNEL-FACTS.md "Recovery back ends"):
 * - NetworkManager: `nmcli device reapply IF` (no bounce), then `nmcli device connect IF`
 *   (full reactivation). Never `nmcli device disconnect` (it blocks autoconnect).
 * - systemd-networkd: `networkctl reconfigure IF` (`renew` is DHCP only).
 * - Debian ifupdown: `ifup` on an interface already in the state file is a no-op, so
 *   `ifdown --force IF` then `ifup IF`.
 * - RHEL network-scripts: `ifdown IF; ifup IF` (on RHEL 8+ these are nmcli wrappers, and
 *   NetworkManager is then detected first anyway).
 */
import { existsSync, readFileSync } from 'node:fs';
import { CommandResult, describeFailure, runCommand } from './run';

/** A network manager netheal knows how to drive. */
export type ManagerKind = 'NetworkManager' | 'systemd-networkd' | 'ifupdown' | 'network-scripts';

/** Where to look; every path can be pointed elsewhere (tests, chroots). */
export interface ManagerEnvironment {
  /** Namespace file the interface lives in: commands run under nsenter --net. */
  netnsPath?: string;
  /** systemd-networkd's per-link state directory (default /run/systemd/netif/links). */
  networkdLinksDir?: string;
  /** ifupdown's interfaces file (default /etc/network/interfaces) and state directory (default /run/network). */
  ifupdownInterfaces?: string;
  ifupdownStateDir?: string;
  /** Extra ifup/ifdown options, e.g. ['--no-scripts'] to skip /etc/network/if-*.d hooks. */
  ifupdownOptions?: string[];
  /** RHEL ifcfg directory (default /etc/sysconfig/network-scripts). */
  networkScriptsDir?: string;
  /** Per-command time limit in ms (default 30 s). */
  timeoutMs?: number;
}

/**
 * The managers that claim an interface (more than one is a conflict worth a warning).
 *
 * Hazard: NetworkManager and systemd-networkd run in the host's namespace and know devices
 * by the host's names and indexes; asked from inside another namespace (nsenter only changes
 * the network namespace, D-Bus and /run stay the host's) they would answer, and act, for a
 * host device of the same name. So inside a namespace (`netnsPath`) they are never
 * considered, and ifupdown / network-scripts only when their files are named explicitly.
 */
export async function detectManagers(iface: string, ifindex: number | null, env: ManagerEnvironment = {}): Promise<ManagerKind[]> {
  const found: ManagerKind[] = [];
  const inNamespace = env.netnsPath !== undefined;
  if (!inNamespace) {
    const nm = await runCommand('nmcli', ['-t', '-f', 'DEVICE,STATE', 'device'], { timeoutMs: 5000 });
    if (nm.exitCode === 0) {
      const line = nm.stdout.split('\n').find((l) => l.split(':')[0] === iface);
      if (line !== undefined && !/:unmanaged$/.test(line)) found.push('NetworkManager');
    }
    const linksDir = env.networkdLinksDir ?? '/run/systemd/netif/links';
    if (ifindex !== null && existsSync(`${linksDir}/${ifindex}`)) {
      const state = readFileSync(`${linksDir}/${ifindex}`, 'utf8');
      if (/^ADMIN_STATE=(configured|configuring|failed|pending)/m.test(state)) found.push('systemd-networkd');
    }
  }
  const interfaces = env.ifupdownInterfaces ?? (inNamespace ? undefined : '/etc/network/interfaces');
  if (interfaces !== undefined && existsSync(interfaces)
    && new RegExp(`^\\s*iface\\s+${escapeRegExp(iface)}\\s`, 'm').test(readFileSync(interfaces, 'utf8'))) {
    found.push('ifupdown');
  }
  const scripts = env.networkScriptsDir ?? (inNamespace ? undefined : '/etc/sysconfig/network-scripts');
  if (scripts !== undefined && existsSync(`${scripts}/ifcfg-${iface}`)) found.push('network-scripts');
  return found;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
  const options = { netnsPath: env.netnsPath, timeoutMs: env.timeoutMs ?? 30000 };
  const commands: CommandResult[] = [];
  const step = async (command: string, args: string[]): Promise<boolean> => {
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
    case 'ifupdown': {
      const common = ifupdownArgs(env);
      await step('ifdown', [...common, '--force', iface]);
      ok = await step('ifup', [...common, iface]);
      break;
    }
    case 'network-scripts':
      await step('ifdown', [iface]);
      ok = await step('ifup', [iface]);
      break;
  }
  const last = commands[commands.length - 1]!;
  return { manager, ok, commands, detail: ok ? commands.map((c) => c.command).join('; ') : describeFailure(last) };
}
