/**
 * Live TCP traffic for the lab, tests and benchmarks: an echo server, and a client that
 * exchanges a short line every `everyMs` and reconnects at once when its connection fails
 * (ECONNABORTED, ECONNRESET, or no echo within `timeoutMs`), as a well-behaved application
 * does. Both are python3 in a namespace (nsenter); the client reports each event with a
 * CLOCK_MONOTONIC stamp (python's time.monotonic_ns(), the clock of process.hrtime).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { Lab } from './lab';

const SERVER = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(128)
print("listening", flush=True)
def serve(c):
    try:
        while True:
            data = c.recv(4096)
            if not data: break
            c.sendall(data)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const CLIENT = `
import errno, socket, sys, time
host, port, every, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
now = time.monotonic_ns
while True:
    try:
        c = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        print("connect-failed", now(), errno.errorcode.get(e.errno, "timeout"), flush=True)
        time.sleep(0.005)
        continue
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("connected", now(), c.getsockname()[0], flush=True)
    try:
        while True:
            c.sendall(b"ping\\n")
            got = b""
            while not got.endswith(b"\\n"):
                part = c.recv(64)
                if not part: raise ConnectionResetError(errno.ECONNRESET, "eof")
                got += part
            print("echo", now(), flush=True)
            time.sleep(every)
    except socket.timeout:
        print("failed", now(), "timeout", flush=True)
    except OSError as e:
        print("failed", now(), errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    c.close()
`;

/** Events of a {@link Flow}; stamps are CLOCK_MONOTONIC ns. */
export interface FlowEvents {
  connected: [{ atNs: bigint; src: string }];
  echo: [{ atNs: bigint }];
  failed: [{ atNs: bigint; error: string }];
  'connect-failed': [{ atNs: bigint; error: string }];
}

/** A running client; stop() kills it. */
export class Flow extends EventEmitter<FlowEvents> {
  /** Echoes so far. */
  echoes = 0;
  /** The last echo (CLOCK_MONOTONIC ns), 0n before the first. */
  lastEchoNs = 0n;
  /** Source address of the connection now, null between connections. */
  src: string | null = null;

  constructor(private readonly child: ChildProcess) {
    super();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const [kind, stamp, detail] = line.split(' ');
      const atNs = BigInt(stamp ?? '0');
      if (kind === 'echo') {
        this.echoes++;
        this.lastEchoNs = atNs;
        this.emit('echo', { atNs });
      } else if (kind === 'connected') {
        this.src = detail ?? '';
        this.emit('connected', { atNs, src: this.src });
      } else if (kind === 'failed') {
        this.src = null;
        this.emit('failed', { atNs, error: detail ?? '' });
      }
      else if (kind === 'connect-failed') this.emit('connect-failed', { atNs, error: detail ?? '' });
    });
  }

  /** Resolves at the first echo at or after `ns`. */
  echoAfter(ns: bigint): Promise<bigint> {
    if (this.lastEchoNs >= ns) return Promise.resolve(this.lastEchoNs);
    return new Promise((resolve) => {
      const on = ({ atNs }: { atNs: bigint }): void => {
        if (atNs >= ns) {
          this.off('echo', on);
          resolve(atNs);
        }
      };
      this.on('echo', on);
    });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** Starts an echo server on `address:port` in `ns`; resolves once it listens. Kill it when done. */
export async function startEchoServer(ns: string, address: string, port: number): Promise<ChildProcess> {
  const server = spawn('nsenter', [`--net=${Lab.path(ns)}`, '--', 'python3', '-u', '-c', SERVER, address, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string | null>((resolve) => {
    createInterface({ input: server.stdout! }).once('line', resolve);
    server.once('exit', () => resolve(null));
  });
  if (line !== 'listening') throw new Error(`echo server on ${address}:${port} did not start`);
  return server;
}

/** Starts a reconnecting client in `ns` to `address:port`. */
export function startFlow(ns: string, address: string, port: number, options: { everyMs?: number; timeoutMs?: number } = {}): Flow {
  const child = spawn('nsenter', [`--net=${Lab.path(ns)}`, '--', 'python3', '-u', '-c', CLIENT, address, String(port),
    String(options.everyMs ?? 20), String(options.timeoutMs ?? 3000)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Flow(child);
}
