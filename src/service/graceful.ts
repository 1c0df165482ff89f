/**
 * For Node services that embed netheal: a listener a restarted instance can share
 * (SO_REUSEADDR + SO_REUSEPORT, which Node 20 cannot set) and a graceful shutdown that stops
 * accepting, lets in-flight requests finish within a limit, then destroys what is left of
 * THIS process's sockets on its port, so no FIN_WAIT / CLOSE_WAIT / TIME_WAIT of it lingers.
 *
 * Pending connections: when a SO_REUSEPORT listener closes, the connections waiting in its
 * accept queue are reset, unless net.ipv4.tcp_migrate_req=1 (Linux 5.14+, per namespace)
 * lets the kernel move them to another listener of the group. `netheal tune` sets it.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { NethealError } from '../errors';
import { NativeBinding, nativeBinding } from '../native';
import { resolveNetns } from '../netns';
import { SocketInfo, Sockets } from '../kernel/sockets';
import { LEFTOVER_STATES } from './unit';

/** Options of {@link listenReusePort}. */
export interface ReusePortOptions {
  port: number;
  /** Local address (default 0.0.0.0). */
  host?: string;
  backlog?: number;
  /** Create the socket in this namespace (name or path); default: the process's own. */
  netns?: string;
  binding?: NativeBinding;
}

/**
 * Binds a SO_REUSEADDR + SO_REUSEPORT listener natively and hands it to `server`
 * (`server.listen({ fd })`). Resolves when the server listens.
 */
export function listenReusePort(server: Server, options: ReusePortOptions): Promise<void> {
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `port must be 0..65535, got ${port}`);
  const backlog = options.backlog ?? 511;
  const binding = options.binding ?? nativeBinding();
  if (binding.reusePortListener === undefined) throw new NethealError('NETHEAL_ERR_UNSUPPORTED', 'this netheal addon has no reusePortListener: rebuild it');
  const netns = options.netns === undefined ? undefined : resolveNetns(options.netns, 'netns');
  const fd = binding.reusePortListener(options.host ?? '0.0.0.0', port, backlog, netns);
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      binding.closeFd(fd);
      reject(error);
    };
    server.once('error', onError);
    server.listen({ fd, backlog }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Options of {@link gracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** The service's own local port (default: the server's listening port). */
  port?: number;
  /** How long in-flight requests may take, ms (default 10000). */
  timeoutMs?: number;
  /** Signals that start the shutdown (default SIGTERM and SIGINT). */
  signals?: NodeJS.Signals[];
  /** Call process.exit when done (default true; exit code 0, 1 if the cleanup failed). */
  exit?: boolean;
  /** Namespace of the server's socket (default: the process's own). */
  netns?: string;
  /** Runs after accepting stopped, before waiting (e.g. tell a load balancer). */
  onStopAccepting?: () => void | Promise<void>;
  binding?: NativeBinding;
}

/** What a shutdown did. */
export interface ShutdownReport {
  /** Connections that ended on their own within the limit. */
  drained: number;
  /** Connections still open at the limit, destroyed (the peer got an RST). */
  forced: number;
  /** Kernel sockets of this process destroyed after the drain (time-wait, fin-wait...). */
  leftoversDestroyed: number;
  /** Set when SOCK_DESTROY failed (e.g. no CAP_NET_ADMIN): what is left lingers until the kernel times it out. */
  cleanupError?: string;
  durationMs: number;
}

/** A registered shutdown; `shutdown()` may also be called directly. */
export interface GracefulShutdown {
  shutdown(): Promise<ShutdownReport>;
  /** Removes the signal handlers. */
  dispose(): void;
  /** True once shutdown started. */
  readonly draining: boolean;
}

const strip = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '');
const key = (address: string | undefined, port: number | undefined): string => `${strip(address)}|${port ?? 0}`;
/** Remember closed peers this long: longer than TIME_WAIT (60 s) and the default fin_timeout. */
const REMEMBER_MS = 130_000;

/** The socket inodes this process holds (/proc/self/fd -> socket:[N]). */
function ownInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null) inodes.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * Installs the shutdown on `server` (net.Server or http.Server). On a signal: stop accepting,
 * close idle keep-alive connections and answer new requests with `Connection: close`, wait for
 * in-flight ones up to `timeoutMs`, destroy the rest, then destroy this process's leftover
 * sockets on its port (matched by local port AND the peers it served, so another instance
 * sharing the port by SO_REUSEPORT keeps its connections), and exit.
 */
export function gracefulShutdown(server: Server, options: GracefulShutdownOptions = {}): GracefulShutdown {
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', `timeoutMs must be >= 0, got ${timeoutMs}`);
  const open = new Set<Socket>();
  /** Peers of connections that closed recently: their kernel sockets may linger. */
  const closed = new Map<string, number>();
  let draining = false;
  let running: Promise<ShutdownReport> | undefined;

  const onConnection = (socket: Socket): void => {
    open.add(socket);
    const peer = key(socket.remoteAddress, socket.remotePort);
    socket.once('close', () => {
      open.delete(socket);
      const now = Date.now();
      closed.set(peer, now);
      if (closed.size > 4096) {
        for (const [k, at] of closed) {
          if (now - at < REMEMBER_MS) break;
          closed.delete(k);
        }
      }
    });
  };
  server.on('connection', onConnection);
  const onRequest = (_req: unknown, res: { setHeader(name: string, value: string): void; headersSent?: boolean }): void => {
    if (draining && res.headersSent !== true) res.setHeader('Connection', 'close');
  };
  // http.Server only: runs before the service's own handler.
  server.prependListener('request' as 'connection', onRequest as unknown as (socket: Socket) => void);

  const shutdown = (): Promise<ShutdownReport> => {
    running ??= (async () => {
      const started = Date.now();
      draining = true;
      const address = server.address();
      const port = options.port ?? (address !== null && typeof address === 'object' ? address.port : undefined);
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      if (options.onStopAccepting !== undefined) await options.onStopAccepting();
      const closeIdle = (): void => (server as Server & { closeIdleConnections?: () => void }).closeIdleConnections?.();
      closeIdle();
      const idleTimer = setInterval(closeIdle, 50);
      let timer: NodeJS.Timeout | undefined;
      const inFlight = open.size;
      await Promise.race([closing, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
      clearTimeout(timer);
      clearInterval(idleTimer);
      const report: ShutdownReport = { drained: 0, forced: 0, leftoversDestroyed: 0, durationMs: 0 };
      let sockets: Sockets | undefined;
      try {
        if (port === undefined) throw new NethealError('NETHEAL_ERR_INVALID_OPTION', 'gracefulShutdown: no port given and the server does not listen');
        sockets = new Sockets({ netns: options.netns, binding: options.binding });
        // Still open at the limit: destroy them by identity while we still own them (inode), so
        // the kernel resets them instead of leaving FIN_WAIT orphans behind.
        if (open.size > 0) {
          const inodes = ownInodes();
          const live = (await sockets.query({ sport: port, protocol: 'tcp', state: [...LEFTOVER_STATES] }))
            .filter((s) => s.inode !== null && inodes.has(s.inode));
          const result = await sockets.destroySockets(live);
          report.forced = result.destroyed;
          for (const socket of open) socket.destroy();
        }
        report.drained = Math.max(0, inFlight - report.forced);
        // What the kernel keeps of connections we closed: time-wait, fin-wait, last-ack, closing.
        const mine = (s: SocketInfo): boolean => s.inode === null && closed.has(key(s.dst, s.dport));
        const leftovers = (await sockets.query({ sport: port, protocol: 'tcp', state: ['time-wait', 'fin-wait-1', 'fin-wait-2', 'last-ack', 'closing', 'close-wait'] }))
          .filter(mine);
        const result = await sockets.destroySockets(leftovers);
        report.leftoversDestroyed = result.destroyed;
        if (result.failed.length > 0) report.cleanupError = `${result.failed.length} sockets not destroyed: ${result.failed[0]!.error}${result.unsupported ? ` (${result.unsupported})` : ''}`;
      } catch (error) {
        report.cleanupError = (error as Error).message;
        for (const socket of open) socket.destroy();
      } finally {
        sockets?.close();
      }
      report.durationMs = Date.now() - started;
      return report;
    })();
    return running;
  };

  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const onSignal = (): void => {
    void shutdown().then((report) => {
      if (options.exit !== false) process.exit(report.cleanupError === undefined ? 0 : 1);
    }, (error: Error) => {
      // A throwing stop hook must not become an unhandled rejection: report and exit 1.
      process.stderr.write(`graceful shutdown failed: ${error.message}\n`);
      if (options.exit !== false) process.exit(1);
    });
  };
  for (const signal of signals) process.on(signal, onSignal);
  return {
    shutdown,
    dispose() {
      for (const signal of signals) process.off(signal, onSignal);
      server.off('connection', onConnection);
      server.off('request' as 'connection', onRequest as unknown as (socket: Socket) => void);
    },
    get draining() {
      return draining;
    },
  };
}
