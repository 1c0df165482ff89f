/**
 * The daemon's ladder actions as policy executors (src/policy/actions.ts is the contract),
 * least disruptive first: link-up, repair, manager-reapply, kill-sockets, link-bounce, hook.
 * Each declares the fault classes it can fix and how long a fault must last before it runs.
 */
import { BlockList } from 'node:net';
import { ActionContext, ActionExecutor, ActionResult, actionEnvironment } from '../policy/actions';
import { BUILTIN_ACTIONS } from '../policy/config';
import { FAULT_CLASSES, PATH_FAULTS } from '../policy/fault';
import { InterfaceConfiguration, bounceLink } from '../actions/link-bounce';
import { ManagerEnvironment, OwnerClaim, reapply } from '../actions/manager';
import { restoreBaseline, setLinkUp } from '../actions/repair';
import { describeFailure, runCommand } from '../actions/run';
import { checkHookPath, hookEnvironment, hookPrograms } from '../actions/hook';
import type { InterruptionJournal } from '../actions/interruption';
import { decodeAddress } from '../kernel/rtnetlink';
import { SocketInfo, Sockets } from '../kernel/sockets';
import { NativeBinding } from '../native';

/** What the executors need from the daemon. */
export interface ExecutorHost {
  netnsPath: string | undefined;
  binding?: NativeBinding;
  sockets: Sockets;
  includeTimeWait: boolean;
  /** How long a path must stay dead before its stuck sockets are destroyed (ms). */
  pathDeadMs: number;
  managers: ManagerEnvironment;
  /** Where disruptive steps write down how to undo their middle (src/actions/interruption.ts). */
  journal: InterruptionJournal;
  /**
   * The managers' claims on an interface, from a query started at or after `sinceMs` (the
   * engine's clock; one in flight counts): an episode's steps share the query the fault
   * itself set off instead of paying the managers' tools' start-up again.
   */
  claimsSince(iface: string, sinceMs: number): Promise<OwnerClaim[]>;
  /** The engine's clock, the one `ActionContext`'s times are on. */
  now(): number;
  /** The last answered claims, if any (no query). */
  lastClaims(iface: string): OwnerClaim[] | undefined;
  /** Addresses on the interface now, with their prefix lengths (from the LinkMonitor). */
  addressesOf(iface: string): { address: string; prefixlen: number; family: 4 | 6 }[];
  ifindexOf(iface: string): number | null;
  /** The last snapshot taken while the interface was healthy. */
  knownGood(iface: string): InterfaceConfiguration | undefined;
  /** Hook of an interface, if configured. */
  hookOf(iface: string): { path: string; timeoutMs: number } | undefined;
}

/** A carrier blip must never bounce, re-apply or run a hook: link faults wait this long. */
export const LINK_HOLD_DOWN_MS = 3000;
/** A manager's own remove-and-re-add (networkd's reconfigure: 2-3 ms, measured) must not trigger a re-apply. */
export const MANAGER_CONFIRM_MS = 50;
/** A replaced address (`ip addr replace`, a renumbering script) must not be undone. */
export const REPAIR_CONFIRM_MS = 20;
/**
 * `ifdown` removes the address before it takes the link down and records its intent last
 * (measured: the address is gone ~100 ms before): on an ifupdown interface the repair waits
 * this long before it asks ifupdown whether the loss was meant.
 */
export const IFDOWN_CONFIRM_MS = 150;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The owner as asked at or after `sinceMs` (`host.now()`: asked now). */
async function ownerOf(host: ExecutorHost, iface: string, sinceMs: number): Promise<OwnerClaim | null> {
  const [first] = await host.claimsSince(iface, sinceMs);
  return first ?? null;
}

/**
 * How old an owner's answer may be when a step acts on it. A fault's first steps act on the
 * query the fault set off (a second one would cost the tools' start-up again); a step that
 * comes later (a link fault's 3 s hold-down, a later climb) asks again, or an operator's
 * `nmcli device disconnect` in the meantime, which changes no evidence, would go unseen.
 */
export const OWNER_ANSWER_MAX_AGE_MS = 1000;

/** The owner as asked since the fault began, and within {@link OWNER_ANSWER_MAX_AGE_MS}. */
const ownerSinceFault = (host: ExecutorHost, ctx: ActionContext): Promise<OwnerClaim | null> =>
  ownerOf(host, ctx.iface, Math.max(ctx.faultSinceMs, host.now() - OWNER_ANSWER_MAX_AGE_MS));

/** Sets an interface up that is administratively down against its owner's intent. */
function linkUp(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.LINK_UP,
    fixes: ['link'],
    applies: (ctx) => ctx.evidence.adminUp === false && !ctx.evidence.removed,
    async run(ctx) {
      await setLinkUp(ctx.iface, { netnsPath: host.netnsPath, binding: host.binding, signal: ctx.signal });
      return { status: 'ok', detail: 'set administratively up (RTM_NEWLINK IFF_UP)', data: { commands: [] } };
    },
  };
}

/**
 * Puts back exactly the addresses and routes of the last healthy state, by netlink. For
 * interfaces no daemon owns (unmanaged ones, and ifupdown's, whose declared state is what
 * `ifup` configured): NetworkManager and networkd are asked instead, never overridden.
 */
function repair(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.REPAIR,
    fixes: ['local-config'],
    afterMs: { 'local-config': REPAIR_CONFIRM_MS },
    async applies(ctx) {
      if (host.knownGood(ctx.iface) === undefined) return false;
      // A daemon that owns the interface is asked to re-apply instead (the next rung).
      const known = host.lastClaims(ctx.iface)?.[0];
      if (known?.owner === 'systemd-networkd' || known?.owner === 'NetworkManager') return false;
      let owner = await ownerSinceFault(host, ctx);
      if (owner === null) return true;
      if (owner.owner !== 'ifupdown' && owner.owner !== 'network-scripts') return false;
      const age = host.now() - ctx.faultSinceMs;
      // A loss that began the episode may be an ifdown under way; one that followed an earlier
      // fault of this episode (routes flushed by an admin-down just healed) is not.
      if (age < IFDOWN_CONFIRM_MS && ctx.episodeSinceMs >= ctx.faultSinceMs) {
        await delay(IFDOWN_CONFIRM_MS - age);
        owner = await ownerOf(host, ctx.iface, host.now());
      }
      // The owner took it down on purpose: nothing to repair.
      return owner !== null && owner.wantUp !== false;
    },
    async run(ctx) {
      const baseline = host.knownGood(ctx.iface);
      if (baseline === undefined) return { status: 'skipped', detail: 'no healthy state known to restore' };
      const result = await restoreBaseline(ctx.iface, baseline, { netnsPath: host.netnsPath, binding: host.binding, signal: ctx.signal });
      return {
        status: result.failures.length === 0 ? 'ok' : 'failed',
        detail: `restored ${result.restoredAddresses} addresses and ${result.restoredRoutes} routes${result.failures.length ? `; ${result.failures.join('; ')}` : ''}`,
        data: { restoredAddresses: result.restoredAddresses, restoredRoutes: result.restoredRoutes, commands: [] },
      };
    },
  };
}

/**
 * Asks the manager that owns the interface to re-apply it. For lost configuration only the
 * daemons that hold it (NetworkManager, networkd); for a link fault that did not clear, any
 * manager (ifupdown's re-apply is a down/up cycle).
 */
function managerReapply(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.MANAGER_REAPPLY,
    fixes: ['local-config', 'link'],
    afterMs: { 'local-config': MANAGER_CONFIRM_MS, link: LINK_HOLD_DOWN_MS },
    async applies(ctx) {
      // Asked again since the fault began: the loss may be the owner's own doing (networkd
      // applying ActivationPolicy=down removes the address before it takes the link down;
      // NetworkManager's `device disconnect` keeps the link up). The query the fault set off
      // is shared, so this costs no extra round.
      const owner = await ownerSinceFault(host, ctx);
      // Never re-apply what the owner took down on purpose (`nmcli device disconnect`).
      if (owner === null || owner.wantUp === false) return false;
      return ctx.fault.class === 'link' || owner.owner === 'systemd-networkd' || owner.owner === 'NetworkManager';
    },
    async run(ctx) {
      const owner = await ownerSinceFault(host, ctx);
      if (owner === null) return { status: 'skipped', detail: 'no network manager owns the interface' };
      const result = await reapply(owner.owner, ctx.iface, {
        ...host.managers, netnsPath: host.netnsPath, timeoutMs: ctx.timeoutMs, signal: ctx.signal, journal: host.journal,
      });
      return {
        status: result.ok ? 'ok' : 'failed', detail: `${owner.owner}: ${result.detail}`,
        data: { manager: owner.owner, commands: result.commands.map((c) => c.command) },
      };
    },
  };
}

/** TCP states in which a socket waits on its peer, so a dead path leaves it hanging. */
const WAITING_STATES = ['established', 'syn-sent', 'fin-wait-1', 'close-wait', 'last-ack', 'closing'] as const;

/**
 * Destroys the sockets stuck on a dead path, once it has stayed dead for `pathDeadMs`: by
 * then TCP's backed-off retransmissions would leave their owners hanging long after the path
 * returns. Sockets to on-link peers (inside the interface's own prefixes) do not use the
 * dead path and are left alone. It cannot bring the path back: never verified, never
 * credited, run once per episode.
 */
function killSockets(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.KILL_SOCKETS,
    fixes: PATH_FAULTS,
    verifiable: false,
    afterMs: { 'first-hop': host.pathDeadMs, 'beyond-first-hop': host.pathDeadMs },
    async run(ctx: ActionContext): Promise<ActionResult> {
      const own = host.addressesOf(ctx.iface).filter((a) => !a.address.startsWith('fe80:'));
      const sources = new Set(own.map((a) => a.address));
      for (const message of host.knownGood(ctx.iface)?.addresses ?? []) {
        const address = decodeAddress(message);
        if (address !== null && !address.address.startsWith('fe80:')) sources.add(address.address);
      }
      const onLink = new BlockList();
      for (const a of own) onLink.addSubnet(a.address, a.prefixlen, a.family === 4 ? 'ipv4' : 'ipv6');
      const stuck: SocketInfo[] = [];
      for (const src of sources) {
        const found = await host.sockets.query({ src, protocol: 'tcp', state: [...WAITING_STATES] });
        for (const s of found) if (!onLink.check(s.dst, s.family === 4 ? 'ipv4' : 'ipv6')) stuck.push(s);
      }
      const result = stuck.length === 0 ? { destroyed: 0, matched: 0, failed: [] as { error: string }[] } : await host.sockets.destroySockets(stuck);
      return {
        status: 'ok',
        detail: `destroyed ${result.destroyed} of ${stuck.length} sockets routed through the dead path from ${[...sources].join(', ') || 'no address'}` +
          (result.failed.length ? `; ${result.failed.length} failed: ${result.failed[0]!.error}` : ''),
        data: { destroyed: result.destroyed, matched: stuck.length, commands: [] },
      };
    },
  };
}

/** Bounces the link by netlink and restores what the kernel flushed; only when unmanaged. */
function linkBounce(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.LINK_BOUNCE,
    fixes: ['link'],
    afterMs: { link: LINK_HOLD_DOWN_MS },
    async applies(ctx) {
      // A manager would fight a raw bounce and own the configuration anyway.
      return (await ownerSinceFault(host, ctx)) === null;
    },
    async run(ctx) {
      const downMs = typeof ctx.options.downMs === 'number' ? ctx.options.downMs : 200;
      const result = await bounceLink(ctx.iface, {
        netnsPath: host.netnsPath, downMs, knownGood: host.knownGood(ctx.iface), binding: host.binding, journal: host.journal,
      });
      return {
        status: result.failures.length === 0 ? 'ok' : 'failed',
        detail: `bounced; restored ${result.restoredRoutes} routes and ${result.restoredAddresses} addresses${result.failures.length ? `; ${result.failures.join('; ')}` : ''}`,
        data: { restoredRoutes: result.restoredRoutes, restoredAddresses: result.restoredAddresses, commands: [] },
      };
    },
  };
}

/** Runs the operator's hook with the event in NETHEAL_* variables and a time limit. */
function hook(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.HOOK,
    fixes: FAULT_CLASSES,
    afterMs: { link: LINK_HOLD_DOWN_MS },
    applies(ctx) {
      return host.hookOf(ctx.iface) !== undefined;
    },
    async run(ctx) {
      const config = host.hookOf(ctx.iface);
      if (config === undefined) return { status: 'skipped', detail: 'no hook configured' };
      const limit = Math.min(config.timeoutMs, ctx.timeoutMs);
      let programs: string[];
      try {
        programs = hookPrograms(config.path);
      } catch (error) {
        return { status: 'failed', detail: `${config.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
      }
      if (programs.length === 0) return { status: 'skipped', detail: `${config.path} holds no hook to run` };
      const failures: string[] = [];
      let durationMs = 0;
      let exitCode: number | null = null;
      for (const program of programs) {
        // Checked again right before it runs: a hooks directory may have gained a file since.
        try {
          checkHookPath(program, 'hook');
        } catch (error) {
          failures.push(`${program}: refused: ${(error as Error).message.replace(/^hook: /, '')}`);
          continue;
        }
        // The step's limit is shared by the hooks of a directory, in turn.
        const left = Math.max(1, Math.round(limit - durationMs));
        // Inside the watched namespace (an `ip link set $NETHEAL_IFACE down` must hit the
        // watched device, not the host's of that name), with only the documented environment,
        // its whole process group killed at the limit or when the engine aborts the step.
        const result = await runCommand(program, [], {
          netnsPath: host.netnsPath,
          timeoutMs: left,
          signal: ctx.signal,
          env: hookEnvironment({ ...actionEnvironment(ctx), NETHEAL_TIMEOUT_MS: String(left), NETHEAL_NETNS: host.netnsPath ?? '' }),
        });
        durationMs += result.durationMs;
        exitCode = result.exitCode;
        if (result.exitCode !== 0) failures.push(`${program}: ${describeFailure(result)}`);
        if (ctx.signal.aborted || result.timedOut) break;
      }
      const ran = programs.length === 1 ? programs[0]! : `${programs.length} hooks in ${config.path}`;
      return failures.length === 0
        ? { status: 'ok', detail: `${ran} exited 0`, data: { durationMs, commands: programs } }
        : { status: 'failed', detail: programs.length === 1 ? describeFailureText(failures[0]!, programs[0]!) : failures.join('; '), data: { exitCode, commands: programs } };
    },
  };
}

/** A single hook's failure as it always read ("exit 3", not "/path: exit 3"). */
const describeFailureText = (failure: string, program: string): string => (failure.startsWith(`${program}: `) ? failure.slice(program.length + 2) : failure);

/** The built-in executors, in the default ladder's order. */
export function builtinExecutors(host: ExecutorHost): ActionExecutor[] {
  return [linkUp(host), repair(host), managerReapply(host), killSockets(host), linkBounce(host), hook(host)];
}
