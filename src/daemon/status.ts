/**
 * The status socket: a unix stream socket (root-only: directory 0700, socket 0600) on which
 * the running daemon answers every connection with one JSON document and closes it.
 * `netheal status` is its client.
 */
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { Server, createConnection, createServer } from 'node:net';
import { dirname } from 'node:path';
import { NethealError } from '../errors';

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

/** Listens at `path`, answering each connection with `status()` as JSON. */
export async function serveStatus(path: string, status: () => unknown): Promise<Server> {
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
  const server = createServer((connection) => {
    let body: string;
    try {
      body = JSON.stringify(status());
    } catch (error) {
      body = JSON.stringify({ error: (error as Error).message });
    }
    connection.end(`${body}\n`);
    connection.on('error', () => connection.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    // Created 0600 from the start: no window in which others could connect.
    const mask = process.umask(0o177);
    server.once('error', (error: NodeJS.ErrnoException) => {
      process.umask(mask);
      reject(new NethealError('NETHEAL_ERR_STATUS_SOCKET', `status socket ${path}: cannot listen: ${error.code ?? error.message}`));
    });
    server.listen(path, () => {
      process.umask(mask);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return server;
}

/** Reads the daemon's status document. */
export function readStatus(path = DEFAULT_STATUS_SOCKET, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NethealError('NETHEAL_ERR_TIMEOUT', `the daemon at ${path} did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => { data += chunk; });
    socket.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data));
      } catch {
        reject(new NethealError('NETHEAL_ERR_PROTOCOL', `the status socket ${path} sent something that is not JSON`));
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new NethealError('NETHEAL_ERR_NO_DAEMON', `no netheal daemon is running (nothing answers at ${path})`));
      } else if (error.code === 'EACCES' || error.code === 'EPERM') {
        reject(new NethealError('NETHEAL_ERR_PRIVILEGE', `cannot open ${path}: the status socket is root-only (run as root)`));
      } else {
        reject(new NethealError('NETHEAL_ERR_KERNEL', `cannot read ${path}: ${error.code ?? error.message}`));
      }
    });
  });
}
