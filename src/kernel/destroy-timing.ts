/**
 * Where a bulk destroy's time went, from the syscall spans the native destroyer's threads
 * record (native/sock_destroy.cc): the kernel's own share of a destroy, beside the wall time
 * the caller saw. The address-loss benchmark reports it next to `ss -K`.
 */

/** Time inside the kernel during one destroy call. */
export interface DestroyTiming {
  /** CLOCK_MONOTONIC (ns, decimal) when a threadpool thread picked the call up. */
  executeNs: string;
  /** CLOCK_MONOTONIC (ns, decimal) of the first SOCK_DESTROY sendmsg, when there was one. */
  firstDestroyNs?: string;
  /** Milliseconds inside the dump syscalls (the kernel walks its tables and builds replies there). */
  dumpMs: number;
  /** Milliseconds inside the SOCK_DESTROY sendmsg() calls (the kernel destroys a window there). */
  destroyMs: number;
  /** Milliseconds inside the recvmmsg() calls that read acks. */
  ackMs: number;
  /**
   * Milliseconds during which at least one thread was inside one of these syscalls: the
   * sums above count parallel threads twice, this does not.
   */
  kernelBusyMs: number;
}

const DESTROY_SEND = 2n;
const ms = (ns: bigint): number => Number(ns) / 1e6;

/** Summarizes the native [kind, startNs, endNs] triples (kinds: 0/1 dump, 2 destroy, 3 ack). */
export function destroyTiming(executeNs: bigint, spans: BigUint64Array): DestroyTiming {
  const sums = [0n, 0n, 0n, 0n];
  const intervals: Array<[bigint, bigint]> = [];
  let firstDestroy: bigint | undefined;
  for (let i = 0; i + 2 < spans.length; i += 3) {
    const kind = spans[i]!;
    const start = spans[i + 1]!;
    const end = spans[i + 2]!;
    if (kind < 4n) sums[Number(kind)]! += end - start;
    if (kind === DESTROY_SEND && (firstDestroy === undefined || start < firstDestroy)) firstDestroy = start;
    intervals.push([start, end]);
  }
  intervals.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let busy = 0n;
  let from = -1n;
  let to = -1n;
  for (const [start, end] of intervals) {
    if (start > to) {
      busy += to - from;
      from = start;
      to = end;
    } else if (end > to) {
      to = end;
    }
  }
  busy += to - from;
  const timing: DestroyTiming = {
    executeNs: executeNs.toString(),
    dumpMs: ms(sums[0]! + sums[1]!),
    destroyMs: ms(sums[2]!),
    ackMs: ms(sums[3]!),
    kernelBusyMs: ms(busy),
  };
  if (firstDestroy !== undefined) timing.firstDestroyNs = firstDestroy.toString();
  return timing;
}
