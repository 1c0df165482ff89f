/**
 * Request/response over one netlink socket: sequence numbers, port-id checks, dumps
 * (with NLM_F_DUMP_INTR retry), acks, and batched requests that share one sendmsg().
 */
import { KernelError, NethealError, fromSystemError } from '../errors';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  NLM_F_DUMP_INTR,
  NetlinkMessage,
  parseErrorReply,
  parseMessages,
} from './netlink';
import { NativeBinding, NativeNetlinkSocket, nativeBinding } from '../native';

/** Options of {@link NetlinkClient}. */
export interface NetlinkClientOptions {
  /** NETLINK_ROUTE, NETLINK_SOCK_DIAG, ... */
  protocol: number;
  /** Resolved namespace file (see resolveNetns). */
  netns?: string;
  /** Per-request time limit in ms (default 5000). */
  timeoutMs?: number;
  receiveBuffer?: number;
  binding?: NativeBinding;
}

/** What a completed request returns. */
export interface NetlinkReply {
  /** The data messages (dump parts or a single reply), NLMSG_DONE/ERROR excluded. */
  messages: NetlinkMessage[];
  /** CLOCK_MONOTONIC (ns) at receipt of the datagram that completed the request. */
  monotonicNs: bigint;
  /** NLM_F_DUMP_INTR was seen: the dump may be inconsistent. */
  interrupted: boolean;
}

interface Pending {
  name: string;
  messages: NetlinkMessage[];
  interrupted: boolean;
  timer: NodeJS.Timeout;
  resolve(reply: NetlinkReply): void;
  reject(error: Error): void;
}

/** A netlink request socket on the event loop. Call close() when done. */
export class NetlinkClient {
  private readonly socket: NativeNetlinkSocket;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private readonly portId: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private closed = false;
  private dumpQueue: Promise<unknown> = Promise.resolve();

  constructor(options: NetlinkClientOptions) {
    const binding = options.binding ?? nativeBinding();
    this.timeoutMs = options.timeoutMs ?? 5000;
    try {
      this.socket = new binding.NetlinkSocket(
        { protocol: options.protocol, netns: options.netns, receiveBuffer: options.receiveBuffer ?? 4 * 1024 * 1024 },
        (datagrams, stamps) => this.onData(datagrams, stamps),
        (error) => this.failAll(fromSystemError(error, 'netlink request socket')),
      );
    } catch (error) {
      throw fromSystemError(error, 'open netlink socket', options.netns);
    }
    this.portId = this.socket.portId ?? 0;
    // A request socket with nothing pending must not keep the process alive.
    this.socket.unref();
  }

  /** The next sequence number (wraps at 2^32, skips 0). */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /**
   * Sends one request (built by `encode` with the sequence number given) and resolves when
   * the kernel's ACK or NLMSG_DONE arrives; rejects with KernelError on NLMSG_ERROR.
   * Non-dump requests must carry NLM_F_ACK so that their end is known.
   */
  request(name: string, encode: (seq: number) => Buffer): Promise<NetlinkReply> {
    if (this.closed) return Promise.reject(new NethealError('NETHEAL_ERR_CLOSED', `${name}: netlink client is closed`));
    const seq = this.nextSeq();
    const promise = this.track(name, seq);
    try {
      this.socket.send(encode(seq));
    } catch (error) {
      this.settle(seq)?.reject(fromSystemError(error, name));
    }
    return promise;
  }

  /**
   * A dump, re-issued (up to `retries` times) while the kernel flags it NLM_F_DUMP_INTR.
   * Dumps on one socket run one at a time: the kernel answers EBUSY to a second dump
   * while one is in progress.
   */
  dump(name: string, encode: (seq: number) => Buffer, retries = 5): Promise<NetlinkReply> {
    const run = async (): Promise<NetlinkReply> => {
      for (let attempt = 0; ; attempt++) {
        const reply = await this.request(name, encode);
        if (!reply.interrupted || attempt >= retries) return reply;
      }
    };
    const result = this.dumpQueue.then(run, run);
    this.dumpQueue = result.catch(() => undefined);
    return result;
  }

  /**
   * Sends many acked requests, `window` per datagram, and resolves with one errno per
   * request (0 = success) in order. Never rejects for a kernel NLMSG_ERROR.
   */
  async batch(name: string, encoders: Array<(seq: number) => Buffer>, window = 256): Promise<number[]> {
    const results = new Array<number>(encoders.length).fill(0);
    for (let start = 0; start < encoders.length; start += window) {
      if (this.closed) throw new NethealError('NETHEAL_ERR_CLOSED', `${name}: netlink client is closed`);
      const slice = encoders.slice(start, start + window);
      const parts: Buffer[] = [];
      const waits: Array<Promise<void>> = [];
      slice.forEach((encode, i) => {
        const seq = this.nextSeq();
        parts.push(encode(seq));
        waits.push(this.track(name, seq).then(
          () => { results[start + i] = 0; },
          (error: unknown) => {
            if (error instanceof KernelError && error.errno !== undefined) results[start + i] = error.errno;
            else throw error;
          },
        ));
      });
      try {
        this.socket.send(Buffer.concat(parts));
      } catch (error) {
        const failure = fromSystemError(error, name);
        for (const pending of [...this.pending.values()]) pending.reject(failure);
        this.pending.clear();
        throw failure;
      }
      await Promise.all(waits);
    }
    return results;
  }

  /** Rejects what is pending with NETHEAL_ERR_CLOSED and closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new NethealError('NETHEAL_ERR_CLOSED', 'netlink client closed'));
    this.socket.close();
  }

  private track(name: string, seq: number): Promise<NetlinkReply> {
    return new Promise<NetlinkReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(seq)?.reject(new NethealError('NETHEAL_ERR_TIMEOUT', `${name}: no answer from the kernel in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      if (this.pending.size === 0) this.socket.ref();
      this.pending.set(seq, { name, messages: [], interrupted: false, timer, resolve, reject });
    });
  }

  private settle(seq: number): Pending | undefined {
    const pending = this.pending.get(seq);
    if (pending === undefined) return undefined;
    clearTimeout(pending.timer);
    this.pending.delete(seq);
    if (this.pending.size === 0 && !this.closed) this.socket.unref();
    return pending;
  }

  private failAll(error: Error): void {
    for (const seq of [...this.pending.keys()]) this.settle(seq)?.reject(error);
  }

  private onData(datagrams: Buffer[], stamps: BigUint64Array): void {
    datagrams.forEach((datagram, index) => {
      let messages: NetlinkMessage[];
      try {
        messages = parseMessages(datagram);
      } catch (error) {
        this.failAll(error as Error);
        return;
      }
      for (const message of messages) {
        // Replies to us carry our port id; anything else is not ours.
        if (message.pid !== this.portId) continue;
        const pending = this.pending.get(message.seq);
        if (pending === undefined) continue;
        if (message.flags & NLM_F_DUMP_INTR) pending.interrupted = true;
        if (message.type === NLMSG_NOOP || message.type === NLMSG_OVERRUN) continue;
        if (message.type === NLMSG_DONE || message.type === NLMSG_ERROR) {
          this.settle(message.seq);
          let errno = 0;
          let extAck: string | undefined;
          if (message.type === NLMSG_ERROR) {
            try {
              ({ errno, extAck } = parseErrorReply(message));
            } catch (error) {
              pending.reject(error as Error);
              continue;
            }
          } else if (message.payload.length >= 4) {
            // NLMSG_DONE carries the dump's final status as a negative errno.
            errno = -message.payload.readInt32LE(0);
          }
          if (errno !== 0) pending.reject(new KernelError(pending.name, errno, message.seq, extAck));
          else pending.resolve({ messages: pending.messages, monotonicNs: stamps[index]!, interrupted: pending.interrupted });
        } else {
          pending.messages.push(message);
        }
      }
    });
  }
}
