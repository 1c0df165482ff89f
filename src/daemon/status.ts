/**
 * The status socket: a unix stream socket (root-only: directory 0700, socket 0600) on which
 * the running daemon answers every connection with one JSON document and closes it.
 * `netheal status` is its client.
 */
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { Server, Socket, createConnection } from 'node:net';
import { dirname } from 'node:path';
import { NethealError } from '../errors';
import { askDaemon } from './socket-client';

/** Where the daemon listens unless the config says otherwise. */
export const DEFAULT_STATUS_SOCKET = '/run/netheal/status.sock';

/** Resolves true when something accepts connections at `path`. */
function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** How long a client may keep a status connection open before it is cut. */
export const STATUS_DEADLINE_MS = 2000;
/** How many bytes a client may send (they are read and discarded; the request carries nothing). */
export const STATUS_READ_LIMIT = 4096;

/**
 * The status socket's server: a `net.Server` whose `close()` also destroys the connections
 * still open, so closing never waits for a client that hangs. Each connection is answered at
 * once, then read (and discarded) up to {@link STATUS_READ_LIMIT} bytes until the client
 * closes its side, and destroyed when it sends more, or when {@link STATUS_DEADLINE_MS} passes.
 */
export class StatusServer extends Server {
  private readonly clients = new Set<Socket>();

  constructor(status: () => unknown, options: StatusServeOptions = {}) {
    super();
    const deadlineMs = options.deadlineMs ?? STATUS_DEADLINE_MS;
    const readLimit = options.readLimit ?? STATUS_READ_LIMIT;
    this.on('connection', (connection: Socket) => {
      this.clients.add(connection);
      // A deadline from the accept, not an idle timeout: a client trickling a byte now and
      // then is cut as surely as one that hangs.
      const deadline = setTimeout(() => connection.destroy(), deadlineMs).unref();
      connection.once('close', () => {
        clearTimeout(deadline);
        this.clients.delete(connection);
      });
      // Errors (a reset client) end the connection; nothing else to report.
      connection.on('error', () => connection.destroy());
      let received = 0;
      // Reading is what notices the client's FIN: without it a client that sent a byte and
      // closed would keep its connection (and fd) open for ever.
      connection.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > readLimit) connection.destroy();
      });
      let body: string;
      try {
        body = JSON.stringify(status());
      } catch (error) {
        body = JSON.stringify({ error: (error as Error).message });
      }
      // Half-close after the answer; the socket closes fully when the client's FIN is read.
      connection.end(`${body}\n`);
    });
  }

  /** Connections open right now. */
  get openConnections(): number {
    return this.clients.size;
  }

  /** Stops listening and destroys the connections still open; `callback` runs once closed. */
  override close(callback?: (error?: Error) => void): this {
    super.close(callback);
    for (const connection of this.clients) connection.destroy();
    this.clients.clear();
    return this;
  }
}

/** Limits of {@link serveStatus}; the defaults suit the daemon. */
export interface StatusServeOptions {
  /** A connection open longer than this (from its accept) is destroyed. Default {@link STATUS_DEADLINE_MS}. */
  deadlineMs?: number;
  /** A client that sends more than this many bytes is cut off. Default {@link STATUS_READ_LIMIT}. */
  readLimit?: number;
  /** Errors of the listening socket after it listens (EMFILE on accept); ignored when absent. */
  onError?: (error: Error) => void;
}

/**
 * Closes a status server: stops listening, destroys open connections, and resolves once the
 * server is closed. Never waits on a client.
 */
export function closeStatusServer(server: StatusServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
  });
}

/**
 * Listens at `path`, answering each connection with `status()` as JSON (see
 * {@link StatusServer} for the limits). Close it with `server.close()` or
 * {@link closeStatusServer}: both destroy connections still open.
 */
export async function serveStatus(path: string, status: () => unknown, options: StatusServeOptions = {}): Promise<StatusServer> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new NethealError('NETHEAL_ERR_STATUS_SOCKET', `status socket ${path}: cannot create ${dirname(path)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (run as root, or set status.socket)`);
  }
  if (await alive(path)) {
    throw new NethealError('NETHEAL_ERR_STATUS_SOCKET', `another netheal daemon answers on ${path}; give this one its own status.socket`);
  }
  try {
    unlinkSync(path); // a stale socket of a daemon that died
  } catch {
    // none
  }
  const server = new StatusServer(status, options);
  await listenPrivately(server, path, 'status socket', options.onError);
  return server;
}

/**
 * Listens on a root-only unix socket: created 0600 from the start (no window in which others
 * could connect). Errors after listening go to `onError` (EMFILE on accept), if given.
 */
export async function listenPrivately(server: Server, path: string, what: string, onError?: (error: Error) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const mask = process.umask(0o177);
    server.once('error', (error: NodeJS.ErrnoException) => {
      process.umask(mask);
      reject(new NethealError('NETHEAL_ERR_STATUS_SOCKET', `${what} ${path}: cannot listen: ${error.code ?? error.message}`));
    });
    server.listen(path, () => {
      process.umask(mask);
      server.removeAllListeners('error');
      server.on('error', (error: Error) => onError?.(error));
      resolve();
    });
  });
  chmodSync(path, 0o600);
}

/** Reads the daemon's status document. */
export function readStatus(path = DEFAULT_STATUS_SOCKET, timeoutMs = 5000): Promise<unknown> {
  return askDaemon(path, null, timeoutMs, 'status socket');
}
