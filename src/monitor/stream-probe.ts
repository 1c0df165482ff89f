/**
 * TCP connect and HTTP probes: the prober's targets where ICMP is filtered (clouds, firewalls),
 * on the same detection rules as ICMP echo (see prober.ts). A probe is one connection made
 * inside the watched namespace and bound to the watched device (the addon's tcpSocket(), then
 * Node's net.Socket on that fd):
 * - `tcp://ADDRESS:PORT`: a SYN-ACK *or a RST* (ECONNREFUSED) proves the path: both came back
 *   from the far end. The connection is reset at once (SO_LINGER 0), so probing leaves no
 *   TIME_WAIT behind and the peer's accept queue sees a reset, not a client that stays.
 * - `http://ADDRESS[:PORT]/PATH`: a GET whose status must be the expected one (default: any 2xx
 *   or 3xx) and whose body, when `expectBody` is set, must contain that text, as NetworkManager's
 *   connectivity check does. Without keep-alive: each probe proves a fresh path, like ICMP's.
 * - `https://...`: the same over TLS on that connection. The certificate is verified against the
 *   system's CAs and the address (or `serverName`, also sent as SNI); `insecure` skips that, as
 *   `curl -k` does. A TLS failure is a failed check (`tls-<code>`), like a wrong status.
 * Addresses are IP literals: a probe never depends on DNS.
 * Errors that an ICMP error caused (host or network unreachable) count as `unreachable`;
 * the kernel refusing locally as `send-error`; a wrong status or body as `http-status`.
 */
import { isIP, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { NativeBinding } from '../native';

/** A TCP or HTTP target, parsed. */
export interface StreamTarget {
  kind: 'tcp' | 'http';
  /** https:// (HTTP only). */
  tls?: boolean;
  /** TLS: the name verified in the certificate and sent as SNI (default: the address). */
  serverName?: string | null;
  /** TLS: accept any certificate. */
  insecure?: boolean;
  address: string;
  family: 4 | 6;
  port: number;
  /** HTTP only: the request path (with query), the expected statuses (null: 2xx/3xx), the body text. */
  path?: string;
  expectStatus?: number[] | null;
  expectBody?: string | null;
}

/** An HTTP target with expectations, as the config's object form writes it. */
export interface HttpTargetSpec {
  http: string;
  expectStatus?: number | number[];
  expectBody?: string;
  /** https:// only: the certificate's name to verify and send as SNI. */
  serverName?: string;
  /** https:// only: do not verify the certificate. */
  insecure?: boolean;
}

/** Why a stream probe failed, in the prober's DownReason terms. */
export interface StreamFailure {
  status: 'unreachable' | 'error';
  kind: 'unreachable' | 'send-error' | 'http-status';
  name: string;
  errno?: number;
}

/** The outcome of one stream probe. */
export type StreamOutcome = { status: 'reply'; rttMs: number } | StreamFailure;

/** Errors that arrive as ICMP errors from the path (not decided by this host alone). */
const PATH_ERRORS = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENONET']);

/**
 * Parses `tcp://A:P`, `http://A[:P]/path` (A an IP literal, IPv6 in brackets) or the object
 * form; null when `spec` is neither (an ICMP target, or not a target at all). Throws a
 * RangeError naming what is wrong with a spec that is one of these kinds but malformed.
 */
export function parseStreamTarget(spec: string | HttpTargetSpec): StreamTarget | null {
  const text = typeof spec === 'string' ? spec : spec.http;
  if (typeof text !== 'string' || !/^(tcp|https?):\/\//i.test(text)) {
    if (typeof spec !== 'string') throw new RangeError('expected an http:// or https:// URL');
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new RangeError(`${text}: only tcp://, http:// and https:// targets are supported`);
    return null;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`${text}: not a URL`);
  }
  const kind = url.protocol === 'tcp:' ? 'tcp' : 'http';
  const tls = url.protocol === 'https:';
  if (typeof spec !== 'string' && kind !== 'http') throw new RangeError(`${text}: the object form is for http:// targets`);
  const address = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(address);
  if (family === 0) throw new RangeError(`${text}: the host must be an IP address (a probe never depends on DNS)`);
  if (url.username || url.password) throw new RangeError(`${text}: credentials in the URL are not supported`);
  const port = url.port === '' ? (kind === 'http' ? (tls ? 443 : 80) : NaN) : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`${text}: ${kind}:// needs a port 1-65535`);
  if (kind === 'tcp') {
    if (url.pathname !== '' && url.pathname !== '/') throw new RangeError(`${text}: a tcp:// target has no path`);
    return { kind, address, family: family as 4 | 6, port };
  }
  const expect = typeof spec === 'string' ? undefined : spec.expectStatus;
  const expectStatus = expect === undefined ? null : Array.isArray(expect) ? expect : [expect];
  for (const status of expectStatus ?? []) {
    if (!Number.isInteger(status) || status < 100 || status > 599) throw new RangeError(`expectStatus: ${status} is not an HTTP status`);
  }
  const expectBody = typeof spec === 'string' ? null : spec.expectBody ?? null;
  const serverName = typeof spec === 'string' ? null : spec.serverName ?? null;
  const insecure = typeof spec === 'string' ? false : spec.insecure === true;
  if (!tls && (serverName !== null || insecure)) throw new RangeError(`${text}: serverName and insecure are for https:// targets`);
  const base: StreamTarget = { kind: 'http', address, family: family as 4 | 6, port, path: `${url.pathname}${url.search}`, expectStatus, expectBody };
  return tls ? { ...base, tls, serverName, insecure } : base;
}

/** The name of a target spec (the config's string, or the object form's URL). */
export function targetSpecName(spec: string | HttpTargetSpec): string {
  return typeof spec === 'string' ? spec : spec.http;
}

/** A connection's system error: `unreachable` when the path reported it, else a local `send-error`. */
function failure(error: NodeJS.ErrnoException): StreamFailure {
  const code = error.code ?? 'ERROR';
  const errno = typeof error.errno === 'number' ? { errno: Math.abs(error.errno) } : {};
  return PATH_ERRORS.has(code)
    ? { status: 'unreachable', kind: 'unreachable', name: code, ...errno }
    : { status: 'error', kind: 'send-error', name: code, ...errno };
}

/** Where a stream probe's connection is made. */
export interface StreamContext {
  binding: NativeBinding;
  netns: string | undefined;
  device: string | undefined;
}

/**
 * Starts one probe of `target`; `done` is called once with its outcome (never after cancel()).
 * Returns cancel(), which resets the connection (the prober calls it when the probe's timeout
 * passed first). Throws when the socket cannot be made (no such namespace or device).
 */
/**
 * node:http and node:tls, loaded by the first HTTP(S) probe: a daemon without HTTP targets
 * never loads them (about 1 MiB resident with their dependencies; issue #15).
 */
let httpModules: { http: typeof import('node:http'); tls: typeof import('node:tls') } | undefined;
const lazyHttp = (): NonNullable<typeof httpModules> => (httpModules ??= { http: require('node:http'), tls: require('node:tls') });

export function startStreamProbe(target: StreamTarget, context: StreamContext, done: (outcome: StreamOutcome) => void): () => void {
  const fd = context.binding.tcpSocket(target.family, context.netns, context.device);
  const socket = new Socket({ fd, readable: true, writable: true });
  const started = performance.now();
  let finished = false;
  /** What the request runs on: the socket, or the TLS layer over it (https://). */
  let stream: Socket | TLSSocket = socket;
  // Closing: resetAndDestroy() on a socket still connecting waits for 'connect', which never
  // comes when the SYN is dropped (the kernel retries it for minutes): that would keep an fd
  // per lost probe. destroy() closes it at once (SO_LINGER 0 makes a close of an established
  // one a RST as well).
  const close = (): void => {
    if (stream !== socket) stream.destroy();
    if (socket.connecting || socket.destroyed) socket.destroy();
    else socket.resetAndDestroy();
  };
  const finish = (outcome: StreamOutcome): void => {
    if (finished) return;
    finished = true;
    close();
    done(outcome);
  };
  const replied = (): void => finish({ status: 'reply', rttMs: performance.now() - started });
  const cancel = (): void => {
    finished = true;
    close();
  };
  // Error listeners stay for the socket's life (`on`, not `once`; finish() is idempotent): a
  // second error after the first, or one after a reset, must never be unhandled in the daemon.
  if (target.kind === 'tcp') {
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A RST answered the SYN: the path to the far end works, nothing listens there.
      if (error.code === 'ECONNREFUSED') replied();
      else finish(failure(error));
    });
    socket.connect({ host: target.address, port: target.port }, replied);
    return cancel;
  }
  socket.on('error', (error: NodeJS.ErrnoException) => finish(failure(error)));
  socket.connect({ host: target.address, port: target.port });
  // HTTPS: TLS on that very connection (the handshake waits for the connect).
  const { http, tls } = lazyHttp();
  if (target.tls === true) {
    const tlsSocket = tls.connect({
      socket,
      rejectUnauthorized: target.insecure !== true,
      ...(target.serverName ? { servername: target.serverName } : {}),
      // Verify against the name asked for, or the address (an IP SAN) when none is.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(target.serverName ?? target.address, cert),
    });
    tlsSocket.on('error', (error: NodeJS.ErrnoException) => {
      // A system error (a syscall failed) is the connection's; anything else is the handshake
      // or the certificate, which came from the far end: the path works, the check fails.
      if (typeof error.syscall === 'string') finish(failure(error));
      else finish({ status: 'error', kind: 'http-status', name: `tls-${error.code ?? 'ERROR'}` });
    });
    stream = tlsSocket;
  }
  const host = target.family === 6 ? `[${target.address}]` : target.address;
  const req = http.request({
    createConnection: () => stream,
    host: target.address,
    port: target.port,
    path: target.path,
    method: 'GET',
    headers: { Host: target.port === 80 ? host : `${host}:${target.port}`, 'User-Agent': 'netheal-probe', Connection: 'close' },
    // No `agent` (not even `false`, which makes a fresh Agent that would ignore
    // createConnection and connect from this process's own namespace): the request must run
    // on the socket made in the watched namespace, and nowhere else.
  }, (response) => {
    const status = response.statusCode ?? 0;
    const statusOk = target.expectStatus == null ? status >= 200 && status < 400 : target.expectStatus.includes(status);
    if (!statusOk) {
      finish({ status: 'error', kind: 'http-status', name: `http-${status}` });
      return;
    }
    if (target.expectBody == null) {
      replied();
      return;
    }
    // The expected text within the first 64 KiB, as a captive portal replaces the whole page.
    // Each chunk is checked as it comes, so a body that ends without it is a mismatch.
    const expected = target.expectBody;
    const mismatch: StreamFailure = { status: 'error', kind: 'http-status', name: 'http-body-mismatch' };
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      body += chunk;
      if (body.includes(expected)) replied();
      else if (body.length > 65536) finish(mismatch);
    });
    response.on('end', () => finish(mismatch));
    response.on('error', (error: NodeJS.ErrnoException) => finish(failure(error)));
  });
  req.on('error', (error: NodeJS.ErrnoException) => finish(failure(error)));
  req.on('socket', (used) => {
    // Defence in depth: a request on any other socket would leave from the wrong namespace.
    if (used !== stream) {
      used.destroy();
      finish({ status: 'error', kind: 'send-error', name: 'foreign-socket' });
    }
  });
  req.end();
  return cancel;
}
