/**
 * Disruptive steps leave an interface worse in their middle: a link bounce has set the link
 * down and the kernel has flushed its routes; ifupdown's re-apply has run `ifdown` but not
 * yet `ifup`. If the daemon dies there (kill -9, OOM, a crash), nothing brings the interface
 * back: the restarted daemon would find a link that is down "on purpose" and no memory of
 * the routes. So each such step first writes down how to undo its middle (an
 * {@link UndoPlan}) in a journal that survives the process, and strikes it out when done; a
 * restarted daemon carries out what it finds there before anything else.
 */
import { NetlinkMessage } from '../kernel/netlink';
import { NativeBinding } from '../native';
import { InterfaceConfiguration } from './link-bounce';
import { restoreBaseline, setLinkUp } from './repair';
import { describeFailure, runCommand } from './run';

/** How to undo the middle of an interrupted step. */
export type UndoPlan =
  /** Set the link up and put back these addresses and routes (a link bounce). */
  | { kind: 'link-up-and-replay'; configuration: InterfaceConfiguration }
  /** Run `ifup` (ifupdown's or network-scripts' re-apply stopped after `ifdown`). */
  | { kind: 'ifup'; args: string[] };

/** Where disruptive steps write down what they are about to do. */
export interface InterruptionJournal {
  /** Records that `action` on `iface` is about to begin its disruptive part; returns its id. */
  begin(iface: string, action: string, undo: UndoPlan): string;
  /** Strikes out an entry: the step ended (well or not) and left nothing half-done. */
  end(id: string): void;
}

/** A journal that keeps nothing (library use without a state directory). */
export const NO_JOURNAL: InterruptionJournal = { begin: () => '', end: () => undefined };

/** What undoing an interrupted step did. */
export interface UndoResult {
  ok: boolean;
  detail: string;
}

/** Carries out an {@link UndoPlan} on `iface`. Never throws. */
export async function undoInterrupted(iface: string, plan: UndoPlan, options: { netnsPath?: string; binding?: NativeBinding; timeoutMs?: number } = {}): Promise<UndoResult> {
  try {
    if (plan.kind === 'link-up-and-replay') {
      await setLinkUp(iface, options);
      const restored = await restoreBaseline(iface, plan.configuration, options);
      const ok = restored.failures.length === 0;
      return {
        ok,
        detail: `set up; restored ${restored.restoredAddresses} addresses and ${restored.restoredRoutes} routes${ok ? '' : `; ${restored.failures.join('; ')}`}`,
      };
    }
    const result = await runCommand('ifup', plan.args, { netnsPath: options.netnsPath, timeoutMs: options.timeoutMs ?? 30000 });
    return { ok: result.exitCode === 0, detail: result.exitCode === 0 ? `ifup ${plan.args.join(' ')}` : describeFailure(result) };
  } catch (error) {
    return { ok: false, detail: (error as Error).message };
  }
}

/** A netlink message as JSON (the journal and the state file keep dumped messages). */
export interface StoredMessage {
  type: number;
  flags: number;
  payload: string;
}

export const storeMessage = (m: NetlinkMessage): StoredMessage => ({ type: m.type, flags: m.flags, payload: m.payload.toString('base64') });
export const loadMessage = (m: StoredMessage): NetlinkMessage => ({ type: m.type, flags: m.flags, seq: 0, pid: 0, payload: Buffer.from(m.payload, 'base64') });

/** An interface configuration as JSON. */
export interface StoredConfiguration {
  ifindex: number;
  routes: StoredMessage[];
  addresses: StoredMessage[];
}

export const storeConfiguration = (c: InterfaceConfiguration): StoredConfiguration => ({
  ifindex: c.ifindex, routes: c.routes.map(storeMessage), addresses: c.addresses.map(storeMessage),
});
export const loadConfiguration = (c: StoredConfiguration): InterfaceConfiguration => ({
  ifindex: c.ifindex, routes: c.routes.map(loadMessage), addresses: c.addresses.map(loadMessage),
});
