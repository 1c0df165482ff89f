/**
 * Socket filters: what `Sockets.query` / `destroy` and `netheal sockets` accept, checked at
 * the API edge (NETHEAL_ERR_INVALID_OPTION names the field) and compiled into what each
 * sock_diag dump asks the kernel for: protocols, families, state bitmasks, ports, prefixes.
 * Pure: no socket, no I/O.
 */
import { isIP } from 'node:net';
import { NethealError } from '../errors';
import { ALL_STATES, STATE_NAMES, SocketState, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, stateMask } from './inet-diag';
import { parseIp } from './ip-address';

/** Transport protocol of a socket. */
export type SocketProtocol = 'tcp' | 'udp';

/** What to select. Every field narrows (logical AND); absent fields match everything. */
export interface SocketFilter {
  /** State name(s). For UDP, "listen" selects unconnected sockets, as `ss -l` does. */
  state?: SocketState | SocketState[];
  /** Local port. */
  sport?: number;
  /** Remote port. */
  dport?: number;
  /** Local address or prefix, "ADDR" or "ADDR/LEN". */
  src?: string;
  /** Remote address or prefix. */
  dst?: string;
  /** Bound device (SO_BINDTODEVICE): a name in the namespace or an ifindex. Not the egress interface. */
  dev?: string | number;
  protocol?: SocketProtocol | SocketProtocol[];
  family?: 4 | 6;
  uid?: number;
}

/** Bit of a TCP state in an inet_diag state mask. */
export const BIT = (state: number): number => 1 << state;
const UDP_STATES = BIT(TCP_ESTABLISHED) | BIT(TCP_CLOSE);
const FILTER_KEYS = ['state', 'sport', 'dport', 'src', 'dst', 'dev', 'protocol', 'family', 'uid'];

/** NETHEAL_ERR_INVALID_OPTION naming the option. */
export function invalidOption(option: string, message: string): NethealError {
  return new NethealError('NETHEAL_ERR_INVALID_OPTION', `${option}: ${message}`);
}

/** A prefix parsed from "ADDR" or "ADDR/LEN". */
export interface Prefix {
  family: 4 | 6;
  address: Buffer;
  prefixlen: number;
}

/** Parses "ADDR[/LEN]"; throws NETHEAL_ERR_INVALID_OPTION naming `option`. */
export function parsePrefix(text: unknown, option: string): Prefix {
  if (typeof text !== 'string') throw invalidOption(option, `expected an address or ADDR/LEN, got ${JSON.stringify(text)}`);
  const slash = text.indexOf('/');
  const address = (slash === -1 ? text : text.slice(0, slash)).replace(/^\[(.*)\]$/, '$1');
  const version = isIP(address);
  if (version === 0) throw invalidOption(option, `${JSON.stringify(text)} is not an IP address or prefix (ADDR or ADDR/LEN)`);
  const max = version === 4 ? 32 : 128;
  let prefixlen = max;
  if (slash !== -1) {
    const len = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) {
      throw invalidOption(option, `prefix length in ${JSON.stringify(text)} must be 0-${max}`);
    }
    prefixlen = Number(len);
  }
  return { family: version as 4 | 6, address: parseIp(address), prefixlen };
}

/** A port 0-65535; throws NETHEAL_ERR_INVALID_OPTION naming `option`. */
export function checkPort(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw invalidOption(option, `port must be an integer 0-65535, got ${JSON.stringify(value)}`);
  }
  return value;
}

function asList<T>(value: T | T[] | undefined): T[] | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value : [value];
}

/** A filter checked and compiled: what each dump asks the kernel for. */
export interface Plan {
  states?: SocketState[];
  sport?: number;
  dport?: number;
  src?: Prefix;
  dst?: Prefix;
  dev?: string | number;
  protocols: SocketProtocol[];
  families: Array<4 | 6>;
  uid?: number;
}

/** Validates a filter at the API edge (NETHEAL_ERR_INVALID_OPTION names the field). */
export function validateFilter(filter: SocketFilter = {}): Plan {
  if (filter === null || typeof filter !== 'object') throw invalidOption('filter', 'expected an object');
  for (const key of Object.keys(filter)) {
    if (!FILTER_KEYS.includes(key)) throw invalidOption(`filter.${key}`, `unknown filter field (known: ${FILTER_KEYS.join(', ')})`);
  }
  const plan: Plan = { protocols: ['tcp', 'udp'], families: [4, 6] };
  const states = asList(filter.state);
  if (states !== undefined) {
    if (states.length === 0) throw invalidOption('state', 'empty state list');
    for (const state of states) {
      if (!STATE_NAMES.includes(state)) {
        throw invalidOption('state', `unknown state ${JSON.stringify(state)} (known: ${STATE_NAMES.join(', ')})`);
      }
    }
    plan.states = [...new Set(states)];
  }
  if (filter.sport !== undefined) plan.sport = checkPort(filter.sport, 'sport');
  if (filter.dport !== undefined) plan.dport = checkPort(filter.dport, 'dport');
  if (filter.src !== undefined) plan.src = parsePrefix(filter.src, 'src');
  if (filter.dst !== undefined) plan.dst = parsePrefix(filter.dst, 'dst');
  if (filter.dev !== undefined) {
    const dev = filter.dev;
    const ok = (typeof dev === 'string' && dev.length > 0 && dev.length < 16 && !/[\s/\0]/.test(dev))
      || (typeof dev === 'number' && Number.isInteger(dev) && dev > 0 && dev <= 0x7fffffff);
    if (!ok) throw invalidOption('dev', `expected an interface name or ifindex, got ${JSON.stringify(dev)}`);
    plan.dev = dev;
  }
  const protocols = asList(filter.protocol);
  if (protocols !== undefined) {
    if (protocols.length === 0 || protocols.some((p) => p !== 'tcp' && p !== 'udp')) {
      throw invalidOption('protocol', `expected "tcp" or "udp", got ${JSON.stringify(filter.protocol)}`);
    }
    plan.protocols = [...new Set(protocols)];
  }
  if (filter.family !== undefined) {
    if (filter.family !== 4 && filter.family !== 6) throw invalidOption('family', `expected 4 or 6, got ${JSON.stringify(filter.family)}`);
    plan.families = [filter.family];
  }
  if (filter.uid !== undefined) {
    if (typeof filter.uid !== 'number' || !Number.isInteger(filter.uid) || filter.uid < 0 || filter.uid > 0xffffffff) {
      throw invalidOption('uid', `expected a non-negative integer, got ${JSON.stringify(filter.uid)}`);
    }
    plan.uid = filter.uid;
  }
  return plan;
}

/** True when the filter narrows nothing but protocol or family (a destroy needs `all`). */
export function isEmptyFilter(plan: Plan): boolean {
  return plan.states === undefined && plan.sport === undefined && plan.dport === undefined && plan.src === undefined
    && plan.dst === undefined && plan.dev === undefined && plan.uid === undefined;
}

/** State bitmasks for one dump of each protocol. */
export function stateMasks(plan: Plan, forDestroy: boolean): { tcp: number; udp: number } {
  if (plan.states === undefined) {
    // A destroy never touches listeners unless asked: TCP LISTEN and unconnected UDP.
    return forDestroy
      ? { tcp: ALL_STATES & ~BIT(TCP_LISTEN), udp: BIT(TCP_ESTABLISHED) }
      : { tcp: ALL_STATES, udp: UDP_STATES };
  }
  const tcp = stateMask(plan.states);
  // UDP knows two states: connected (ESTABLISHED) and not (CLOSE, which `ss -l` lists). An
  // unconnected UDP socket is a server: a destroy takes it only when `listen` is asked for.
  const unconnected = forDestroy ? BIT(TCP_LISTEN) : BIT(TCP_CLOSE) | BIT(TCP_LISTEN);
  const udp = (tcp & BIT(TCP_ESTABLISHED)) | (tcp & unconnected ? BIT(TCP_CLOSE) : 0);
  return { tcp, udp };
}
