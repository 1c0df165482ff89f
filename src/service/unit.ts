/**
 * systemd unit generation: the unit for netheal itself (Type=notify, watchdog, least privilege,
 * hardening) and units for the operator's own services (restart policy, port hygiene).
 */
import { resolve } from 'node:path';
import { NethealError } from '../errors';
import { DaemonConfig, validateConfig } from '../daemon/config';
import { BUILTIN_ACTIONS, DEFAULT_LADDER } from '../policy/config';
import { DAEMON_NODE_FLAGS } from '../daemon/node-flags';

/** Default name of netheal's own unit. */
export const NETHEAL_UNIT_NAME = 'netheal.service';

/** TCP states a connection can be in while a process holds it: everything but listen. */
export const LEFTOVER_STATES = ['established', 'syn-recv', 'fin-wait-1', 'fin-wait-2', 'close-wait', 'last-ack', 'closing', 'time-wait'] as const;

/**
 * States of what the kernel keeps after its process is gone: the orphans (closed by the
 * process, or by the kernel when it died) and TIME_WAIT. Once a service's processes are all
 * dead, its own sockets can only be in these; an ESTABLISHED or CLOSE_WAIT socket on its port
 * belongs to some other live process and is left alone.
 */
export const ORPHAN_STATES = ['fin-wait-1', 'fin-wait-2', 'last-ack', 'closing', 'time-wait'] as const;

/**
 * Quotes one word for an Exec*= line (systemd.service(5) "Command lines"): double quotes when
 * needed, `\\` and `"` escaped, `%` doubled (specifiers) and `$` doubled (variable expansion).
 */
export function quoteExecArg(word: string): string {
  if (word.includes('\n') || word.includes('\0')) {
    throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `a command-line word cannot contain a newline or NUL: ${JSON.stringify(word)}`);
  }
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The capabilities netheal needs, each with the reason, for the actions a config can take. */
export interface CapabilityNeed {
  capability: 'CAP_NET_ADMIN' | 'CAP_NET_RAW' | 'CAP_SYS_ADMIN' | 'CAP_NET_BIND_SERVICE';
  why: string;
}

/** What a configuration will do, as far as privilege and sandboxing are concerned. */
export interface ConfigNeeds {
  capabilities: CapabilityNeed[];
  /** manager-reapply may run nmcli / networkctl / ifup: these need root's view of D-Bus and /run. */
  managers: boolean;
  /** An operator hook may run: it inherits the sandbox. */
  hooks: string[];
  /** The daemon enters another network namespace (setns: CAP_SYS_ADMIN, RestrictNamespaces=net). */
  netns: boolean;
}

/** Reads what a validated config needs: capabilities by action, manager back ends, hooks, netns. */
export function configNeeds(config: DaemonConfig): ConfigNeeds {
  const ladders: string[][] = [];
  const defaultsLadder = config.policy.defaults?.ladder;
  const toNames = (ladder: Array<string | { action: string }> | undefined): string[] =>
    (ladder ?? defaultsLadder ?? DEFAULT_LADDER).map((s) => (typeof s === 'string' ? s : s.action));
  const names = Object.keys(config.interfaces);
  if (names.length === 0) ladders.push(toNames(undefined));
  for (const name of names) ladders.push(toNames(config.interfaces[name]!.ladder as Array<string | { action: string }> | undefined));
  const actions = new Set(ladders.flat());
  // No interfaces configured: the default-route interfaces are watched and their gateways probed.
  const probes = names.length === 0 || Object.values(config.interfaces).some((i) => i.probe !== undefined);
  const netns = config.netns !== undefined;
  const capabilities: CapabilityNeed[] = [{
    capability: 'CAP_NET_ADMIN',
    why: 'netlink receive buffer past rmem_max (SO_RCVBUFFORCE), SOCK_DESTROY of dead sockets, link bounce',
  }];
  if (probes) capabilities.push({ capability: 'CAP_NET_RAW', why: 'ICMP echo probes on raw sockets (ping sockets need ping_group_range instead)' });
  if (netns) capabilities.push({ capability: 'CAP_SYS_ADMIN', why: `setns() into ${config.netns} (the kernel asks CAP_SYS_ADMIN for entering a network namespace)` });
  const managers = actions.has(BUILTIN_ACTIONS.MANAGER_REAPPLY) && (!netns
    || config.managers.ifupdown?.interfaces !== undefined || config.managers.networkScriptsDir !== undefined);
  if (managers) {
    if (!probes) capabilities.push({ capability: 'CAP_NET_RAW', why: 'ifup may start a DHCP client (raw packet socket)' });
    capabilities.push({ capability: 'CAP_NET_BIND_SERVICE', why: 'ifup may start a DHCP client (port 68)' });
  }
  const hooks = actions.has(BUILTIN_ACTIONS.HOOK)
    ? Object.values(config.interfaces).flatMap((i) => (i.hook === undefined ? [] : [i.hook.path])) : [];
  return { capabilities, managers, hooks, netns };
}

/** Options of {@link nethealUnit}. */
export interface NethealUnitOptions {
  /** The config file the daemon reads (default /etc/netheal/config.json); its content decides the privileges. */
  configPath?: string;
  /** The parsed config (default: read configPath when it exists, else the defaults). */
  config?: DaemonConfig;
  /** Node binary (default process.execPath: node started directly, so NotifyAccess=main holds). */
  execPath?: string;
  /** lib/daemon.js (default: the one next to this module). */
  daemonPath?: string;
  /** Seconds (default 30). The daemon pings at half of it from its event loop. */
  watchdogSec?: number;
  /** Seconds (default 2). */
  restartSec?: number;
  /** Extra Environment= lines, NAME=value. */
  environment?: Record<string, string>;
  /** The installed systemd's version: Type=notify-reload when >= 253 (null or older: Type=notify and a kill -HUP). */
  systemdVersion?: number | null;
}

/** Type=notify-reload (systemd 253): systemd sends SIGHUP itself and waits for RELOADING=1 + READY=1. */
export const NOTIFY_RELOAD_SINCE = 253;

function checkSeconds(value: number | undefined, fallback: number, option: string, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option} must be between ${min} and ${max} seconds, got ${value}`);
  }
  return v;
}

function absolute(path: string, option: string): string {
  if (!path.startsWith('/')) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option} must be an absolute path, got ${JSON.stringify(path)}`);
  return path;
}

/** A unit file as lines of `[Section]`, `Key=value` and `# comments`. */
/** A unit line: a comment, or a key and its value. */
type UnitLine = string | [string, string | number];

function render(sections: Array<[string, UnitLine[]]>, header: string[]): string {
  const out: string[] = header.map((l) => `# ${l}`);
  for (const [name, entries] of sections) {
    if (out.length > 0) out.push('');
    out.push(`[${name}]`);
    for (const entry of entries) out.push(typeof entry === 'string' ? `# ${entry}` : `${entry[0]}=${entry[1]}`);
  }
  return `${out.join('\n')}\n`;
}

/** Directories that PrivateTmp (implied by DynamicUser) and ProtectHome hide from the service. */
const HIDDEN_PREFIXES = ['/tmp/', '/var/tmp/', '/home/', '/root/', '/run/user/'];

/**
 * The directories the service must still see although the sandbox hides them: netheal
 * itself and node when installed under /tmp, a home directory and the like. They come back
 * read-only with BindReadOnlyPaths= (applied after PrivateTmp/ProtectHome, being deeper).
 */
export function sandboxBinds(paths: string[]): string[] {
  const binds = new Set<string>();
  for (const path of paths) {
    if (HIDDEN_PREFIXES.some((prefix) => path.startsWith(prefix))) binds.add(path);
  }
  return [...binds];
}

/** The hardening every netheal unit gets; each line was checked against the daemon's actions. */
function hardening(needs: ConfigNeeds, binds: string[] = []): Array<string | [string, string]> {
  const caps = needs.capabilities.map((c) => c.capability).join(' ');
  const lines: Array<string | [string, string]> = [
    ...needs.capabilities.map((c) => `${c.capability}: ${c.why}`),
    ['CapabilityBoundingSet', caps],
    ['AmbientCapabilities', caps],
    ['NoNewPrivileges', 'yes'],
  ];
  if (needs.managers) {
    lines.push('manager-reapply runs nmcli/networkctl/ifup: root, so polkit and /run/network agree');
  } else {
    lines.push('Runs as a transient user: the capabilities above are all the privilege it has');
    lines.push(['DynamicUser', 'yes']);
  }
  lines.push(
    ['ProtectSystem', 'strict'],
    ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'],
    ['PrivateMounts', 'yes'],
    ['PrivateDevices', 'yes'],
    ['ProtectKernelTunables', 'yes'],
    ['ProtectKernelModules', 'yes'],
    ['ProtectKernelLogs', 'yes'],
    ['ProtectControlGroups', 'yes'],
    ['ProtectClock', 'yes'],
    ['ProtectHostname', 'yes'],
    ['ProtectProc', 'invisible'],
    ['RestrictAddressFamilies', `AF_UNIX AF_NETLINK AF_INET AF_INET6${needs.managers ? ' AF_PACKET' : ''}`],
    ['RestrictNamespaces', needs.netns ? 'net' : 'yes'],
    ['RestrictRealtime', 'yes'],
    ['RestrictSUIDSGID', 'yes'],
    ['LockPersonality', 'yes'],
    'No MemoryDenyWriteExecute: V8 compiles code at run time',
    ['SystemCallArchitectures', 'native'],
    ['SystemCallFilter', needs.netns ? '@system-service setns' : '@system-service'],
    ['SystemCallFilter', `~@resources @mount @swap @reboot @obsolete @cpu-emulation @debug @raw-io @module${needs.managers ? '' : ' @privileged'}`],
    ['SystemCallErrorNumber', 'EPERM'],
    ['UMask', '0077'],
    ['DevicePolicy', 'closed'],
    ['KeyringMode', 'private'],
    ['RemoveIPC', 'yes'],
  );
  if (needs.managers) lines.push(['ReadWritePaths', '-/run/network -/var/lib/dhcp -/run/systemd/netif']);
  if (binds.length > 0) {
    lines.push('netheal or node lives where PrivateTmp/ProtectHome would hide it: bring it back read-only');
    lines.push(['BindReadOnlyPaths', binds.map(quoteExecArg).join(' ')]);
  }
  return lines;
}

/**
 * The reload lines. Before 253 (Type=notify): `ExecReload=` runs the check, then signals, so a
 * bad file is never signalled. From 253 (Type=notify-reload): systemd sends SIGHUP *before*
 * ExecReload= runs (src/core/service.c, service_enter_reload) and waits for the daemon's
 * RELOADING=1 and READY=1: the daemon runs the same check on SIGHUP and keeps its running config
 * on a bad one; ExecReload= still runs the check so that `systemctl reload` fails on it.
 */
function reloadLines(notifyReload: boolean, systemdVersion: number | null, check: string): UnitLine[] {
  if (notifyReload) {
    return [
      'systemd signals SIGHUP itself; the daemon checks the file and its conf.d/ drop-ins and keeps its running config on a bad one. The check here makes `systemctl reload` fail on it (exit 78, each problem in the journal)',
      ['ExecReload', check],
    ];
  }
  return [
    `Reload checks the file and its conf.d/ drop-ins first: a bad one makes \`systemctl reload\` fail (exit 78, each problem in the journal) and is never signalled. (systemd ${systemdVersion ?? 'unknown'}: Type=notify-reload needs ${NOTIFY_RELOAD_SINCE})`,
    ['ExecReload', check],
    ['ExecReload', '/bin/kill -HUP $MAINPID'],
  ];
}

/** The unit file for netheal's own daemon. */
export function nethealUnit(options: NethealUnitOptions = {}): string {
  const configPath = absolute(options.configPath ?? '/etc/netheal/config.json', '--config');
  const config = options.config ?? validateConfig({});
  const execPath = absolute(options.execPath ?? process.execPath, '--node');
  const daemonPath = absolute(options.daemonPath ?? resolve(__dirname, '..', 'daemon.js'), '--daemon');
  const watchdogSec = checkSeconds(options.watchdogSec, 30, '--watchdog-sec', 1, 3600);
  const systemdVersion = options.systemdVersion ?? null;
  const notifyReload = systemdVersion !== null && systemdVersion >= NOTIFY_RELOAD_SINCE;
  const restartSec = checkSeconds(options.restartSec, 2, '--restart-sec', 0, 3600);
  const needs = configNeeds(config);
  const exec = [execPath, ...DAEMON_NODE_FLAGS, daemonPath, '--config', configPath, '--log-format', 'journal'].map(quoteExecArg).join(' ');
  // `netheal config check`: the CLI beside lib/daemon.js, the same checkConfig() as the daemon.
  const cliPath = resolve(daemonPath, '..', 'cli.js');
  const check = [execPath, cliPath, 'config', 'check', '--config', configPath].map(quoteExecArg).join(' ');
  const environment = Object.entries(options.environment ?? {}).map(([k, v]): [string, string] => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `not an environment variable name: ${k}`);
    return ['Environment', quoteExecArg(`${k}=${v}`)];
  });
  return render([
    ['Unit', [
      ['Description', 'netheal: network self-healing (links, paths, sockets)'],
      ['Documentation', `file://${resolve(daemonPath, '..', '..', 'README.md')}`],
      ['After', 'network-pre.target'],
      ['Before', 'network.target'],
      'Never give up restarting: a network watchdog that stays dead helps nobody',
      ['StartLimitIntervalSec', 0],
    ]],
    ['Service', [
      'READY=1 comes only when monitoring is live; node is started directly so NotifyAccess=main accepts it',
      ['Type', notifyReload ? 'notify-reload' : 'notify'],
      ['NotifyAccess', 'main'],
      ['ExecStart', exec],
      ...reloadLines(notifyReload, systemdVersion, check),
      ...environment,
      ['Restart', 'always'],
      ['RestartSec', restartSec],
      'Exit 78 is an invalid configuration: restarting cannot fix it (`netheal config check` says what to)',
      ['RestartPreventExitStatus', 78],
      'WATCHDOG=1 is sent from the JS event loop: a hung loop is killed (SIGABRT) and restarted',
      ['WatchdogSec', watchdogSec],
      ['TimeoutStartSec', 30],
      ['TimeoutStopSec', 15],
      ['KillMode', 'mixed'],
      ['LimitNOFILE', 65536],
      'The status socket\'s directory (/run/netheal): ProtectSystem=strict leaves /run read-only',
      ['RuntimeDirectory', 'netheal'],
      ['RuntimeDirectoryMode', '0755'],
      'Maintenance holds are kept here across restarts (STATE_DIRECTORY)',
      ['StateDirectory', 'netheal'],
      ['StateDirectoryMode', '0700'],
      ...hardening(needs, sandboxBinds([resolve(daemonPath, '..', '..'), resolve(execPath, '..', '..')])),
    ]],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ], ['Generated by `netheal unit`. Regenerate after changing the config: its actions decide the privileges.']);
}

/** Options of {@link serviceUnit}: the operator's own service. */
export interface ServiceUnitOptions {
  /** Unit name without .service. */
  name: string;
  /** The command line, as it would go on ExecStart= (absolute path or a name found in PATH). */
  exec: string;
  /** Local TCP ports the service listens on: freed before start, leftovers destroyed after stop. */
  ports?: number[];
  /** `on-failure` (default) or `always`. */
  restart?: 'on-failure' | 'always';
  /** Seconds (default 1). */
  restartSec?: number;
  /** Longest delay once restarts keep failing, seconds (default 30); needs systemd >= 254 (RestartSteps=). */
  restartMaxDelaySec?: number;
  /** Steps from restartSec to restartMaxDelaySec (default 5). */
  restartSteps?: number;
  /** The installed systemd's version: RestartSteps/RestartMaxDelaySec only when >= 254. */
  systemdVersion?: number | null;
  /** How long ExecStartPre waits for the port, seconds (default 10). */
  portWaitSec?: number;
  /** LimitNOFILE (default 65536). */
  limitNofile?: number;
  /** User= to run as (default: root, systemd's default). */
  user?: string;
  /** Extra Environment= lines. */
  environment?: Record<string, string>;
  /** Node binary and lib/cli.js used for the port hygiene steps (defaults: this install). */
  execPath?: string;
  cliPath?: string;
  /** `simple` (default), `exec` or `notify`. */
  type?: 'simple' | 'exec' | 'notify';
  description?: string;
}

/** Unit names systemd accepts (unit_name_is_valid, the part before ".service"). */
export function checkUnitName(name: string, option = '--service'): string {
  const base = name.endsWith('.service') ? name.slice(0, -'.service'.length) : name;
  if (!/^[A-Za-z0-9:_.\\@-]{1,247}$/.test(base) || base.startsWith('@')) {
    throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option}: not a valid unit name: ${JSON.stringify(name)}`);
  }
  return base;
}

/** The unit file for the operator's service `name`. */
export function serviceUnit(options: ServiceUnitOptions): string {
  const name = checkUnitName(options.name);
  const exec = options.exec.trim();
  if (exec === '' || /[\n\0]/.test(exec)) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', '--exec: the command line must be one non-empty line');
  const ports = [...new Set(options.ports ?? [])];
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `--port must be 1..65535, got ${port}`);
  }
  const restartSec = checkSeconds(options.restartSec, 1, '--restart-sec', 0, 3600);
  const maxDelay = checkSeconds(options.restartMaxDelaySec, 30, '--restart-max-delay-sec', restartSec, 86400);
  const steps = options.restartSteps ?? 5;
  if (!Number.isInteger(steps) || steps < 1 || steps > 3600) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `--restart-steps must be 1..3600, got ${steps}`);
  const portWait = checkSeconds(options.portWaitSec, 10, '--port-wait', 0, 3600);
  const nofile = options.limitNofile ?? 65536;
  if (!Number.isInteger(nofile) || nofile < 1024 || nofile > 1 << 30) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `--limit-nofile must be 1024..${1 << 30}, got ${nofile}`);
  const node = quoteExecArg(absolute(options.execPath ?? process.execPath, '--node'));
  const cli = quoteExecArg(absolute(options.cliPath ?? resolve(__dirname, '..', 'cli.js'), '--cli'));
  const version = options.systemdVersion ?? null;
  const service: Array<string | [string, string | number]> = [
    ['Type', options.type ?? 'simple'],
  ];
  if (options.user !== undefined) {
    if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(options.user)) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `--user: not a user name: ${options.user}`);
    service.push(['User', options.user]);
  }
  for (const [k, v] of Object.entries(options.environment ?? {})) service.push(['Environment', quoteExecArg(`${k}=${v}`)]);
  if (ports.length > 0) {
    service.push('"+": port hygiene runs with full privileges (SOCK_DESTROY needs CAP_NET_ADMIN) whatever User= is');
    service.push(`Wait until nothing listens on the port, destroying leftovers of an old instance (TIME_WAIT, FIN_WAIT, CLOSE_WAIT...) that would make bind() fail`);
    for (const port of ports) service.push(['ExecStartPre', `+${node} ${cli} port-free ${port} --tcp --wait ${portWait} --kill-stale`]);
  }
  service.push(['ExecStart', exec]);
  if (ports.length > 0) {
    service.push(`After any stop or crash: destroy this service's own leftovers, matched by LOCAL port (sport), in the states only a dead owner leaves (never listeners, never a live process's connection); "-": a failure here is not the service's failure`);
    for (const port of ports) service.push(['ExecStopPost', `-+${node} ${cli} sockets kill --tcp --sport ${port} --state ${ORPHAN_STATES.join(',')}`]);
  }
  service.push(
    ['Restart', options.restart ?? 'on-failure'],
    ['RestartSec', restartSec],
  );
  if (version !== null && version >= 254) {
    service.push('The delay grows from RestartSec to RestartMaxDelaySec over RestartSteps restarts (systemd >= 254)');
    service.push(['RestartSteps', steps], ['RestartMaxDelaySec', maxDelay]);
  } else {
    service.push(`RestartSteps=/RestartMaxDelaySec= need systemd >= 254 (this one: ${version ?? 'unknown'}): fixed RestartSec`);
  }
  service.push(
    'SIGTERM to the main process first (a graceful shutdown can drain), SIGKILL to the whole group at the timeout',
    ['KillMode', 'mixed'],
    ['TimeoutStopSec', 30],
    ['LimitNOFILE', nofile],
  );
  return render([
    ['Unit', [
      ['Description', options.description ?? `${name} (unit generated by netheal)`],
      ['After', 'network-online.target'],
      ['Wants', 'network-online.target'],
      'Keep trying: the restart delay grows instead of the unit giving up',
      ['StartLimitIntervalSec', 0],
    ]],
    ['Service', service],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ], [`Generated by \`netheal unit --service ${name}\`.`]);
}
