/**
 * Path-failure cleanup, a reaction to the LinkMonitor's address events: when an address is
 * removed, the sockets that used it as their source are destroyed (SOCK_DESTROY, through
 * {@link Sockets}), so their owners learn at once instead of retransmitting for minutes.
 */
import { EventEmitter } from 'node:events';
import { NethealError } from '../errors';
import { invalidOption as invalid } from '../kernel/socket-filter';
import { DestroyResult, Sockets } from '../kernel/sockets';
import { NativeBinding, monotonicNs } from '../native';

/** The LinkMonitor event this reacts to (structurally typed: any emitter of this shape). */
export interface AddressRemovedEvent {
  type: 'address';
  action: 'added' | 'removed';
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixlen: number;
  /** CLOCK_MONOTONIC (ns, decimal) at receipt of the RTM_DELADDR. */
  monotonicNs?: string;
}

/** What {@link PathCleanup} emits as 'cleanup' after each removed address. */
export interface CleanupReport extends DestroyResult {
  address: string;
  family: 4 | 6;
  ifindex: number;
  /** CLOCK_MONOTONIC (ns, decimal) of the address event's receipt, when the event had one. */
  eventNs?: string;
  /** CLOCK_MONOTONIC (ns, decimal) when the cleanup started and when the last ack arrived. */
  startedNs: string;
  finishedNs: string;
}

/** Options of {@link PathCleanup}. */
export interface PathCleanupOptions {
  /** Emitter of `'event'` objects (a LinkMonitor). */
  monitor: EventEmitter;
  /** Namespace of the monitored links (the sockets live there). */
  netns?: string;
  /** Destroy TIME_WAIT leftovers too (default false). */
  includeTimeWait?: boolean;
  /**
   * Confirmation window, ms (default 0): the sockets are destroyed only if the address has
   * not come back by then. An address that a manager removes and re-adds (networkd's
   * `reconfigure`: 2-3 ms), or that netheal's own repair puts back, leaves its sockets alive:
   * TCP never noticed. 0 destroys at once.
   */
  confirmMs?: number;
  binding?: NativeBinding;
}

/** Events of {@link PathCleanup}. */
export interface PathCleanupEvents {
  cleanup: [CleanupReport];
  error: [Error];
}

/**
 * Path-failure cleanup: when an address is removed, destroys the sockets that used it as
 * their source address (in-process, no fork), so their owners learn at once (ECONNABORTED)
 * instead of retransmitting for minutes. Emits 'cleanup' with the result of each.
 */
export class PathCleanup extends EventEmitter<PathCleanupEvents> {
  private readonly sockets: Sockets;
  private readonly monitor: EventEmitter;
  private readonly includeTimeWait: boolean;
  private readonly confirmMs: number;
  /** Removed addresses waiting for their confirmation window, by address. */
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly listener: (event: unknown) => void;
  private closed = false;

  constructor(options: PathCleanupOptions) {
    super();
    if (options === null || typeof options !== 'object' || !(options.monitor instanceof EventEmitter)) {
      throw invalid('monitor', 'expected an EventEmitter of address events (a LinkMonitor)');
    }
    this.monitor = options.monitor;
    this.includeTimeWait = options.includeTimeWait === true;
    this.confirmMs = options.confirmMs ?? 0;
    if (!Number.isInteger(this.confirmMs) || this.confirmMs < 0) throw invalid('confirmMs', 'expected an integer >= 0');
    // Small dump datagrams: the first destroys start after ~50 dumped sockets, not ~250.
    this.sockets = new Sockets({ netns: options.netns, binding: options.binding, dumpDatagram: 8192 });
    this.sockets.prepare();
    this.listener = (event) => this.onEvent(event as AddressRemovedEvent);
    this.monitor.on('event', this.listener);
  }

  /** Stops listening and closes the netlink socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.monitor.off('event', this.listener);
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    this.sockets.close();
  }

  private onEvent(event: AddressRemovedEvent): void {
    if (this.closed || event === null || typeof event !== 'object') return;
    if (event.type !== 'address' || typeof event.address !== 'string') return;
    if (event.action === 'added') {
      // Back within the window: the sockets never noticed; leave them be.
      const timer = this.pending.get(event.address);
      if (timer !== undefined) clearTimeout(timer);
      this.pending.delete(event.address);
      return;
    }
    if (event.action !== 'removed') return;
    if (this.confirmMs === 0) {
      this.destroy(event);
      return;
    }
    if (this.pending.has(event.address)) return;
    this.pending.set(event.address, setTimeout(() => {
      this.pending.delete(event.address);
      if (!this.closed) this.destroy(event);
    }, this.confirmMs));
  }

  private destroy(event: AddressRemovedEvent): void {
    const startedNs = monotonicNs();
    this.sockets.destroyBySourceAddress(event.address, { includeTimeWait: this.includeTimeWait }).then((result) => {
      const report: CleanupReport = {
        ...result,
        address: event.address,
        family: event.family,
        ifindex: event.ifindex,
        startedNs: startedNs.toString(),
        // The destroy thread's stamp of the last ack; the loop may see the result later.
        finishedNs: result.lastAckNs ?? monotonicNs().toString(),
      };
      if (event.monotonicNs !== undefined) report.eventNs = event.monotonicNs;
      this.emit('cleanup', report);
    }, (error: Error) => {
      if (this.closed && error instanceof NethealError && error.code === 'NETHEAL_ERR_CLOSED') return;
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
  }
}
