/**
 * The CLI's side of the daemon's root-only unix sockets (status and control): connect, send
 * an optional request line, read the whole answer until the daemon closes, parse it as JSON.
 * Errors name the socket and what to do (no daemon, not root, a hung daemon).
 */
import { createConnection } from 'node:net';
import { NethealError } from '../errors';

/** Sends `request` (if any) to the socket at `path` and resolves with its JSON answer. */
export function askDaemon(path: string, request: string | null, timeoutMs: number, what: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NethealError('NETHEAL_ERR_TIMEOUT', `the daemon at ${path} did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    if (request !== null) socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => { data += chunk; });
    socket.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data));
      } catch {
        reject(new NethealError('NETHEAL_ERR_PROTOCOL', `the ${what} ${path} sent something that is not JSON`));
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new NethealError('NETHEAL_ERR_NO_DAEMON', `no netheal daemon is running (nothing answers at ${path})`));
      } else if (error.code === 'EACCES' || error.code === 'EPERM') {
        reject(new NethealError('NETHEAL_ERR_PRIVILEGE', `cannot open ${path}: the ${what} is root-only (run as root)`));
      } else {
        reject(new NethealError('NETHEAL_ERR_KERNEL', `cannot read ${path}: ${error.code ?? error.message}`));
      }
    });
  });
}
