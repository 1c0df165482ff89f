import { constants } from 'node:os';

/**
 * The one registry of netheal error codes. Every code here is documented in README.md
 * (a test checks), and every error netheal raises on purpose is a {@link NethealError}.
 */

/** Exit codes shared by the CLI and the daemon (DESIGN.md "Exit codes"). */
export const ExitCode = {
  /** Done. */
  OK: 0,
  /** The operation failed. */
  FAILURE: 1,
  /** Usage error: a bad flag or argument. */
  USAGE: 2,
  /** Missing privilege; the message names the capability. */
  NO_PRIVILEGE: 77,
  /** Invalid configuration; the message names the field. */
  CONFIG: 78,
} as const;

/** Error codes with their meaning and the exit code the CLI uses for them. */
export const ErrorCodes = {
  NETHEAL_ERR_USAGE: { exit: ExitCode.USAGE, doc: 'A flag, argument or option value is invalid.' },
  NETHEAL_ERR_INVALID_OPTION: { exit: ExitCode.USAGE, doc: 'A library option has the wrong type or range; the message names it.' },
  NETHEAL_ERR_PRIVILEGE: { exit: ExitCode.NO_PRIVILEGE, doc: 'The kernel refused for lack of a capability (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN for setns).' },
  NETHEAL_ERR_NETNS: { exit: ExitCode.FAILURE, doc: 'The network namespace named by --netns / netns does not exist or cannot be entered.' },
  NETHEAL_ERR_NO_DEVICE: { exit: ExitCode.FAILURE, doc: 'No network interface with that name or index.' },
  NETHEAL_ERR_KERNEL: { exit: ExitCode.FAILURE, doc: 'The kernel answered a netlink request with an error (errno and extended-ack text kept).' },
  NETHEAL_ERR_PROTOCOL: { exit: ExitCode.FAILURE, doc: 'The kernel sent bytes that do not decode (truncated or malformed message).' },
  NETHEAL_ERR_CLOSED: { exit: ExitCode.FAILURE, doc: 'The object was used after close().' },
  NETHEAL_ERR_TIMEOUT: { exit: ExitCode.FAILURE, doc: 'A request to the kernel or a helper command did not finish in time.' },
  NETHEAL_ERR_UNSUPPORTED: { exit: ExitCode.FAILURE, doc: 'This kernel cannot do it (e.g. SOCK_DESTROY without CONFIG_INET_DIAG_DESTROY).' },
  NETHEAL_ERR_CONFIG: { exit: ExitCode.CONFIG, doc: 'The configuration file is invalid; the message names the field path.' },
  NETHEAL_ERR_NO_DAEMON: { exit: ExitCode.FAILURE, doc: 'No netheal daemon answers on the status socket.' },
  NETHEAL_ERR_LAB: { exit: ExitCode.FAILURE, doc: 'Building or changing a namespace lab failed (the failing ip command is named).' },
} as const;

/** One of the registered error codes. */
export type ErrorCode = keyof typeof ErrorCodes;

/** Base class of every error netheal raises on purpose. */
export class NethealError extends Error {
  /** A registered `NETHEAL_ERR_*` code. */
  readonly code: ErrorCode;
  /** The errno behind it, when a syscall or the kernel failed (positive, e.g. 1 for EPERM). */
  readonly errno?: number;
  /** The syscall or netlink request that failed. */
  readonly syscall?: string;

  constructor(code: ErrorCode, message: string, details: { errno?: number; syscall?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'NethealError';
    this.code = code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
  }

  /** The exit code the CLI uses for this error. */
  get exitCode(): number {
    return ErrorCodes[this.code].exit;
  }
}

/**
 * An NLMSG_ERROR the kernel sent in answer to a request: distinct from a failed syscall,
 * keeps the request's sequence number and the extended-ack text (NLMSGERR_ATTR_MSG).
 */
export class KernelError extends NethealError {
  /** Sequence number of the request the kernel refused. */
  readonly seq: number;
  /** Symbolic errno name, e.g. "EPERM". */
  readonly errnoName: string;
  /** The kernel's own explanation, when NETLINK_EXT_ACK produced one. */
  readonly extAck?: string;

  constructor(request: string, errno: number, seq: number, extAck?: string) {
    const name = errnoName(errno);
    const privilege = errno === 1 || errno === 13;
    super(privilege ? 'NETHEAL_ERR_PRIVILEGE' : 'NETHEAL_ERR_KERNEL',
      `${request}: kernel answered ${name}${extAck ? ` (${extAck})` : ''}` +
        (privilege ? ': this needs CAP_NET_ADMIN in the namespace\'s owning user namespace' : ''),
      { errno, syscall: request });
    this.name = 'KernelError';
    this.seq = seq;
    this.errnoName = name;
    if (extAck !== undefined) this.extAck = extAck;
  }
}

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** "EPERM" for 1, and so on; "errno N" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/**
 * Turns an Error thrown by the native addon (with errno/code/syscall) into a NethealError with
 * a message that says what to do. `what` names the operation ("open netlink socket").
 */
export function fromSystemError(error: unknown, what: string, netns?: string): NethealError {
  if (error instanceof NethealError) return error;
  const e = error as { code?: string; errno?: number; syscall?: string; message?: string };
  const errno = typeof e.errno === 'number' ? Math.abs(e.errno) : undefined;
  const base = { errno, syscall: e.syscall, cause: error };
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    const capability = e.syscall === 'setns' ? 'CAP_SYS_ADMIN' : 'CAP_NET_ADMIN';
    return new NethealError('NETHEAL_ERR_PRIVILEGE', `${what}: ${e.syscall ?? 'operation'} not permitted: needs ${capability}`, base);
  }
  if (netns !== undefined && (e.syscall === 'open' || e.syscall === 'setns')) {
    return new NethealError('NETHEAL_ERR_NETNS', `${what}: cannot enter network namespace ${netns}: ${e.code ?? e.message}`, base);
  }
  return new NethealError('NETHEAL_ERR_KERNEL', `${what}: ${e.message ?? String(error)}`, base);
}
