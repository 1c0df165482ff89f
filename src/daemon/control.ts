/**
 * The control socket (beside the status socket, root-only): one JSON request line in, one
 * JSON answer line out, then the connection closes. Requests: `{"command":"hold","iface":X}`
 * and `{"command":"release","iface":X}`. Kept apart from the status socket, which answers
 * every connection at once without reading.
 */
import { unlinkSync } from 'node:fs';
import { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { askDaemon } from './socket-client';
import { listenPrivately } from './status';

/** A request the daemon understands. */
export interface ControlRequest {
  command: 'hold' | 'release';
  iface: string;
}

/** The daemon's answer: ok, or an error naming what is wrong. */
export type ControlAnswer = { ok: true; [key: string]: unknown } | { ok: false; error: string };

const REQUEST_LIMIT = 1024;
const DEADLINE_MS = 2000;

/** The control socket that goes with a status socket path. */
export function controlSocketPath(statusPath: string): string {
  return join(dirname(statusPath), 'control.sock');
}

/** Checks a parsed request; returns the request or a message naming the field at fault. */
export function parseControlRequest(raw: unknown): ControlRequest | string {
  if (typeof raw !== 'object' || raw === null) return 'request: expected a JSON object';
  const o = raw as Record<string, unknown>;
  if (o.command !== 'hold' && o.command !== 'release') return `command: expected "hold" or "release", got ${JSON.stringify(o.command)}`;
  if (typeof o.iface !== 'string' || o.iface === '') return 'iface: expected an interface name';
  return { command: o.command, iface: o.iface };
}

/** A control server; `close()` also destroys connections still open. */
export class ControlServer extends Server {
  private readonly clients = new Set<Socket>();

  constructor(handle: (request: ControlRequest) => Promise<ControlAnswer>) {
    super();
    this.on('connection', (connection: Socket) => {
      this.clients.add(connection);
      const deadline = setTimeout(() => connection.destroy(), DEADLINE_MS).unref();
      connection.once('close', () => {
        clearTimeout(deadline);
        this.clients.delete(connection);
      });
      connection.on('error', () => connection.destroy());
      let buffer = '';
      let answered = false;
      const answer = (a: ControlAnswer): void => {
        answered = true;
        connection.end(`${JSON.stringify(a)}\n`);
      };
      connection.setEncoding('utf8');
      connection.on('data', (chunk: string) => {
        if (answered) return;
        buffer += chunk;
        if (buffer.length > REQUEST_LIMIT) return answer({ ok: false, error: `request: longer than ${REQUEST_LIMIT} bytes` });
        const newline = buffer.indexOf('\n');
        if (newline < 0) return;
        let raw: unknown;
        try {
          raw = JSON.parse(buffer.slice(0, newline));
        } catch {
          return answer({ ok: false, error: 'request: not valid JSON' });
        }
        const request = parseControlRequest(raw);
        if (typeof request === 'string') return answer({ ok: false, error: request });
        handle(request).then(answer, (error: Error) => answer({ ok: false, error: error.message }));
      });
    });
  }

  override close(callback?: (error?: Error) => void): this {
    super.close(callback);
    for (const connection of this.clients) connection.destroy();
    this.clients.clear();
    return this;
  }
}

/** Listens at `path` (mode 0600; a stale socket is replaced: the status socket already proved no daemon owns it). */
export async function serveControl(path: string, handle: (request: ControlRequest) => Promise<ControlAnswer>): Promise<ControlServer> {
  try {
    unlinkSync(path);
  } catch {
    // none
  }
  const server = new ControlServer(handle);
  await listenPrivately(server, path, 'control socket');
  return server;
}

/** Sends one request to the daemon's control socket and resolves with its answer. */
export async function sendControl(path: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlAnswer> {
  return (await askDaemon(path, `${JSON.stringify(request)}\n`, timeoutMs, 'control socket')) as ControlAnswer;
}
