/**
 * The daemon's ladder actions as policy executors: kill-sockets, manager-reapply,
 * link-bounce and hook (src/policy/actions.ts is the contract).
 */
import { ActionContext, ActionExecutor, ActionResult, actionEnvironment } from '../policy/actions';
import { BUILTIN_ACTIONS } from '../policy/config';
import { InterfaceConfiguration, bounceLink } from '../actions/link-bounce';
import { ManagerEnvironment, ManagerKind, detectManagers, reapply } from '../actions/manager';
import { describeFailure, runCommand } from '../actions/run';
import { decodeAddress } from '../kernel/rtnetlink';
import { Sockets } from '../monitor/sockets';
import { NativeBinding } from '../native';

/** What the executors need from the daemon. */
export interface ExecutorHost {
  netnsPath: string | undefined;
  binding?: NativeBinding;
  sockets: Sockets;
  includeTimeWait: boolean;
  managers: ManagerEnvironment;
  /** Addresses on the interface now (from the LinkMonitor). */
  addressesOf(iface: string): string[];
  ifindexOf(iface: string): number | null;
  /** The last snapshot taken while the interface was healthy. */
  knownGood(iface: string): InterfaceConfiguration | undefined;
  /** Hook of an interface, if configured. */
  hookOf(iface: string): { path: string; timeoutMs: number } | undefined;
}

/** Destroys the sockets whose source address is (or was, when healthy) on the interface. */
function killSockets(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.KILL_SOCKETS,
    async run(ctx: ActionContext): Promise<ActionResult> {
      const addresses = new Set(host.addressesOf(ctx.iface));
      for (const message of host.knownGood(ctx.iface)?.addresses ?? []) {
        const address = decodeAddress(message);
        if (address !== null) addresses.add(address.address);
      }
      let destroyed = 0;
      let matched = 0;
      const failed: string[] = [];
      for (const address of addresses) {
        if (address.startsWith('fe80:')) continue; // link-local: no socket worth saving uses it
        const result = await host.sockets.destroyBySourceAddress(address, { includeTimeWait: host.includeTimeWait });
        destroyed += result.destroyed;
        matched += result.matched;
        if (result.unsupported !== undefined) failed.push(result.unsupported);
        else if (result.failed.length > 0) failed.push(`${result.failed.length} on ${address}: ${result.failed[0]!.error}`);
      }
      return {
        status: failed.length > 0 && destroyed === 0 && matched > 0 ? 'failed' : 'ok',
        detail: `destroyed ${destroyed} of ${matched} sockets on ${[...addresses].join(', ') || 'no address'}${failed.length ? `; ${failed.join('; ')}` : ''}`,
        data: { destroyed, matched },
      };
    },
  };
}

async function managersOf(host: ExecutorHost, iface: string): Promise<ManagerKind[]> {
  return detectManagers(iface, host.ifindexOf(iface), { ...host.managers, netnsPath: host.netnsPath });
}

/** Asks the manager that owns the interface to re-apply it. */
function managerReapply(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.MANAGER_REAPPLY,
    async applies(ctx) {
      return (await managersOf(host, ctx.iface)).length > 0;
    },
    async run(ctx) {
      const [manager] = await managersOf(host, ctx.iface);
      if (manager === undefined) return { status: 'skipped', detail: 'no network manager owns the interface' };
      const result = await reapply(manager, ctx.iface, { ...host.managers, netnsPath: host.netnsPath, timeoutMs: ctx.timeoutMs });
      return { status: result.ok ? 'ok' : 'failed', detail: `${manager}: ${result.detail}`, data: { manager } };
    },
  };
}

/** Bounces the link by netlink and restores the routes the kernel flushed; only when unmanaged. */
function linkBounce(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.LINK_BOUNCE,
    async applies(ctx) {
      // A manager would fight a raw bounce and own the configuration anyway.
      return (await managersOf(host, ctx.iface)).length === 0;
    },
    async run(ctx) {
      const downMs = typeof ctx.options.downMs === 'number' ? ctx.options.downMs : 200;
      const result = await bounceLink(ctx.iface, {
        netnsPath: host.netnsPath, downMs, knownGood: host.knownGood(ctx.iface), binding: host.binding,
      });
      return {
        status: result.failures.length === 0 ? 'ok' : 'failed',
        detail: `bounced; restored ${result.restoredRoutes} routes and ${result.restoredAddresses} addresses${result.failures.length ? `; ${result.failures.join('; ')}` : ''}`,
        data: { restoredRoutes: result.restoredRoutes, restoredAddresses: result.restoredAddresses },
      };
    },
  };
}

/** Runs the operator's hook with the event in NETHEAL_* variables and a time limit. */
function hook(host: ExecutorHost): ActionExecutor {
  return {
    kind: BUILTIN_ACTIONS.HOOK,
    applies(ctx) {
      return host.hookOf(ctx.iface) !== undefined;
    },
    async run(ctx) {
      const config = host.hookOf(ctx.iface);
      if (config === undefined) return { status: 'skipped', detail: 'no hook configured' };
      const result = await runCommand(config.path, [], {
        timeoutMs: Math.min(config.timeoutMs, ctx.timeoutMs),
        env: { ...process.env, ...actionEnvironment(ctx), NETHEAL_NETNS: host.netnsPath ?? '' },
      });
      return result.exitCode === 0
        ? { status: 'ok', detail: `${config.path} exited 0`, data: { durationMs: result.durationMs } }
        : { status: 'failed', detail: describeFailure(result), data: { exitCode: result.exitCode } };
    },
  };
}

/** The four built-in executors. */
export function builtinExecutors(host: ExecutorHost): ActionExecutor[] {
  return [killSockets(host), managerReapply(host), linkBounce(host), hook(host)];
}
