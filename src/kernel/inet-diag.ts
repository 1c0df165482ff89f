/**
 * inet_diag codecs (linux/inet_diag.h, linux/sock_diag.h): SOCK_DIAG_BY_FAMILY dump requests
 * (struct inet_diag_req_v2 plus INET_DIAG_REQ_BYTECODE), replies (struct inet_diag_msg),
 * the filter bytecode the kernel runs per socket (net/ipv4/inet_diag.c inet_diag_bc_run),
 * and SOCK_DESTROY requests. Pure functions; every walk over kernel bytes is bounds-checked
 * and throws {@link ProtocolError} on bytes that do not decode.
 */
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NetlinkMessage,
  ProtocolError,
  attrU32,
  encodeAttribute,
  encodeMessage,
  parseAttributes,
} from './netlink';
import { AF_INET, AF_INET6, formatIp } from './ip-address';

/** Message types (linux/sock_diag.h). */
export const SOCK_DIAG_BY_FAMILY = 20;
export const SOCK_DESTROY = 21;

/** Address families (linux/socket.h; one definition, in rtnetlink) and protocols (linux/in.h). */
export { AF_INET, AF_INET6 };
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** Request attribute (linux/inet_diag.h enum { INET_DIAG_REQ_NONE, INET_DIAG_REQ_BYTECODE, ... }). */
export const INET_DIAG_REQ_BYTECODE = 1;
/** Reply attributes we read (linux/inet_diag.h). */
/** struct tcp_info for TCP (decoded by tcp-info.ts); asked for with idiag_ext bit INET_DIAG_INFO - 1. */
export const INET_DIAG_INFO = 2;
export const INET_DIAG_INFO_EXT = 1 << (INET_DIAG_INFO - 1);
export const INET_DIAG_SHUTDOWN = 8;
export const INET_DIAG_MARK = 15;
export const INET_DIAG_CGROUP_ID = 21;

/** Bytecode operations (linux/inet_diag.h enum INET_DIAG_BC_*). */
export const INET_DIAG_BC_NOP = 0;
export const INET_DIAG_BC_JMP = 1;
export const INET_DIAG_BC_S_GE = 2;
export const INET_DIAG_BC_S_LE = 3;
export const INET_DIAG_BC_D_GE = 4;
export const INET_DIAG_BC_D_LE = 5;
export const INET_DIAG_BC_AUTO = 6;
export const INET_DIAG_BC_S_COND = 7;
export const INET_DIAG_BC_D_COND = 8;
export const INET_DIAG_BC_DEV_COND = 9;
export const INET_DIAG_BC_MARK_COND = 10;
export const INET_DIAG_BC_S_EQ = 11;
export const INET_DIAG_BC_D_EQ = 12;
export const INET_DIAG_BC_CGROUP_COND = 13;

/** sizeof(struct inet_diag_req_v2), sizeof(struct inet_diag_sockid), sizeof(struct inet_diag_msg). */
export const INET_DIAG_REQ_V2_LEN = 56;
export const INET_DIAG_SOCKID_LEN = 48;
export const INET_DIAG_MSG_LEN = 72;

/**
 * TCP states (include/net/tcp_states.h) under the names `ss` uses. Index = kernel number.
 * TCP_NEW_SYN_RECV (12) is reported by the kernel as SYN_RECV; TCP_BOUND_INACTIVE (13) is
 * never dumped by inet_diag.
 */
export const TCP_STATES = [
  'unknown', 'established', 'syn-sent', 'syn-recv', 'fin-wait-1', 'fin-wait-2', 'time-wait',
  'close', 'close-wait', 'last-ack', 'listen', 'closing',
] as const;
/** A socket state as `ss` names it. */
export type SocketState = Exclude<(typeof TCP_STATES)[number], 'unknown'>;
/** Every state name a filter accepts. */
export const STATE_NAMES: readonly SocketState[] = TCP_STATES.slice(1) as SocketState[];
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_RECV = 3;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_LISTEN = 10;
export const TCP_NEW_SYN_RECV = 12;
/** Every state bit the kernel knows (TCPF_* up to TCP_NEW_SYN_RECV). */
export const ALL_STATES = (1 << 13) - 2;

/** Bitmask (TCPF_*) of the named states; syn-recv includes TCP_NEW_SYN_RECV. */
export function stateMask(states: readonly SocketState[]): number {
  let mask = 0;
  for (const state of states) {
    const n = TCP_STATES.indexOf(state);
    if (n <= 0) throw new RangeError(`unknown state ${state}`);
    mask |= 1 << n;
    if (n === TCP_SYN_RECV) mask |= 1 << TCP_NEW_SYN_RECV;
  }
  return mask >>> 0;
}

/**
 * struct inet_diag_sockid kept as the kernel sent it: a SOCK_DESTROY must carry exactly the
 * identity the dump returned (addresses, ports, interface and cookie).
 */
export interface InetDiagSockId {
  /** Host byte order. */
  sport: number;
  dport: number;
  /** 16 bytes each, network order (IPv4 uses the first 4). */
  src: Buffer;
  dst: Buffer;
  /** idiag_if: the bound device (sk_bound_dev_if), 0 when unbound. */
  ifindex: number;
  /** idiag_cookie[0] and [1] as the kernel sent them. */
  cookie: [number, number];
}

/** A decoded struct inet_diag_msg (plus the attributes netheal reads). */
export interface InetDiagMessage {
  family: number;
  /** Kernel state number (TCP_* from tcp_states.h). */
  state: number;
  timer: number;
  retrans: number;
  id: InetDiagSockId;
  expires: number;
  rqueue: number;
  wqueue: number;
  uid: number;
  inode: number;
  /** INET_DIAG_MARK when present (needs CAP_NET_ADMIN). */
  mark?: number;
  /** INET_DIAG_INFO (struct tcp_info for TCP) when the dump asked for it: decode with tcp-info.ts. */
  info?: Buffer;
}

/** Reads a struct inet_diag_sockid at `offset` (caller checked the length). */
function readSockId(buffer: Buffer, offset: number): InetDiagSockId {
  return {
    sport: buffer.readUInt16BE(offset),
    dport: buffer.readUInt16BE(offset + 2),
    // Views into the datagram (no copy): a dump of 100 000 sockets stays cheap.
    src: buffer.subarray(offset + 4, offset + 20),
    dst: buffer.subarray(offset + 20, offset + 36),
    ifindex: buffer.readUInt32LE(offset + 36),
    cookie: [buffer.readUInt32LE(offset + 40), buffer.readUInt32LE(offset + 44)],
  };
}

function writeSockId(out: Buffer, offset: number, id: InetDiagSockId): void {
  if (id.src.length !== 16 && id.src.length !== 4) throw new RangeError('src must be 4 or 16 bytes');
  if (id.dst.length !== 16 && id.dst.length !== 4) throw new RangeError('dst must be 4 or 16 bytes');
  out.writeUInt16BE(id.sport, offset);
  out.writeUInt16BE(id.dport, offset + 2);
  id.src.copy(out, offset + 4);
  id.dst.copy(out, offset + 20);
  out.writeUInt32LE(id.ifindex >>> 0, offset + 36);
  out.writeUInt32LE(id.cookie[0] >>> 0, offset + 40);
  out.writeUInt32LE(id.cookie[1] >>> 0, offset + 44);
}

/** Decodes one SOCK_DIAG_BY_FAMILY reply (struct inet_diag_msg + attributes). */
export function decodeInetDiagMessage(message: NetlinkMessage): InetDiagMessage {
  const p = message.payload;
  if (p.length < INET_DIAG_MSG_LEN) {
    throw new ProtocolError(`inet_diag_msg of ${p.length} bytes, need ${INET_DIAG_MSG_LEN}`);
  }
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) throw new ProtocolError(`inet_diag_msg with family ${family}`);
  const decoded: InetDiagMessage = {
    family,
    state: p.readUInt8(1),
    timer: p.readUInt8(2),
    retrans: p.readUInt8(3),
    id: readSockId(p, 4),
    expires: p.readUInt32LE(52),
    rqueue: p.readUInt32LE(56),
    wqueue: p.readUInt32LE(60),
    uid: p.readUInt32LE(64),
    inode: p.readUInt32LE(68),
  };
  if (p.length > INET_DIAG_MSG_LEN) {
    const attributes = parseAttributes(p, INET_DIAG_MSG_LEN);
    const mark = attrU32(attributes, INET_DIAG_MARK);
    if (mark !== undefined) decoded.mark = mark;
    const info = attributes.get(INET_DIAG_INFO);
    if (info !== undefined) decoded.info = info;
  }
  return decoded;
}

/** The source or destination address of a decoded socket as text (4 or 16 bytes by family). */
export function sockIdAddress(family: number, bytes: Buffer): string {
  return formatIp(family === AF_INET ? bytes.subarray(0, 4) : bytes.subarray(0, 16));
}

/** The socket cookie (u64) as a decimal string. */
export function cookieString(cookie: [number, number]): string {
  const high = cookie[1] >>> 0;
  // Exact as a double below 2^53; BigInt only for the rest.
  if (high < 0x200000) return String(high * 0x100000000 + (cookie[0] >>> 0));
  return ((BigInt(cookie[1] >>> 0) << 32n) | BigInt(cookie[0] >>> 0)).toString();
}

/** Splits a decimal or 0x cookie string back into idiag_cookie[0..1]. */
export function parseCookie(text: string): [number, number] {
  const value = BigInt(text);
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`cookie out of range: ${text}`);
  return [Number(value & 0xffffffffn), Number(value >> 32n)];
}

/** One condition of a filter program: all conditions must hold (logical AND). */
export type BytecodeCondition =
  | { op: 'sport' | 'dport'; port: number }
  | { op: 'sport-ge' | 'sport-le' | 'dport-ge' | 'dport-le'; port: number }
  /** Address prefix; family 4 also matches v4-mapped addresses of IPv6 sockets (kernel rule). */
  | { op: 'src' | 'dst'; family: 4 | 6; address: Buffer; prefixlen: number; port?: number }
  | { op: 'dev'; ifindex: number }
  | { op: 'mark'; mark: number; mask: number };

const OP_LEN = 4;

function portOp(code: number, port: number): Buffer {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port out of range: ${port}`);
  const out = Buffer.alloc(2 * OP_LEN);
  out.writeUInt8(code, 0);
  // The second op's `no` field carries the port (inet_diag_bc_run reads op[1].no).
  out.writeUInt16LE(port, 6);
  return out;
}

function conditionBody(condition: BytecodeCondition): Buffer {
  switch (condition.op) {
    case 'sport': return portOp(INET_DIAG_BC_S_EQ, condition.port);
    case 'dport': return portOp(INET_DIAG_BC_D_EQ, condition.port);
    case 'sport-ge': return portOp(INET_DIAG_BC_S_GE, condition.port);
    case 'sport-le': return portOp(INET_DIAG_BC_S_LE, condition.port);
    case 'dport-ge': return portOp(INET_DIAG_BC_D_GE, condition.port);
    case 'dport-le': return portOp(INET_DIAG_BC_D_LE, condition.port);
    case 'src':
    case 'dst': {
      const length = condition.family === 4 ? 4 : 16;
      if (condition.address.length !== length) throw new RangeError(`address of ${condition.address.length} bytes for IPv${condition.family}`);
      if (!Number.isInteger(condition.prefixlen) || condition.prefixlen < 0 || condition.prefixlen > length * 8) {
        throw new RangeError(`prefix length out of range: ${condition.prefixlen}`);
      }
      // op + struct inet_diag_hostcond { u8 family; u8 prefix_len; int port; __be32 addr[]; }
      const out = Buffer.alloc(OP_LEN + 8 + length);
      out.writeUInt8(condition.op === 'src' ? INET_DIAG_BC_S_COND : INET_DIAG_BC_D_COND, 0);
      out.writeUInt8(condition.family === 4 ? AF_INET : AF_INET6, 4);
      out.writeUInt8(condition.prefixlen, 5);
      out.writeInt32LE(condition.port ?? -1, 8);
      condition.address.copy(out, 12);
      return out;
    }
    case 'dev': {
      const out = Buffer.alloc(OP_LEN + 4);
      out.writeUInt8(INET_DIAG_BC_DEV_COND, 0);
      out.writeUInt32LE(condition.ifindex >>> 0, 4);
      return out;
    }
    case 'mark': {
      const out = Buffer.alloc(OP_LEN + 8);
      out.writeUInt8(INET_DIAG_BC_MARK_COND, 0);
      out.writeUInt32LE(condition.mark >>> 0, 4);
      out.writeUInt32LE(condition.mask >>> 0, 8);
      return out;
    }
  }
}

/**
 * Compiles an AND of conditions into inet_diag bytecode. Each op jumps to the next one when
 * it holds (`yes` = its own length) and past the end of the program when it does not
 * (`no` = remaining length + 4): the kernel accepts a socket only when the walk ends exactly
 * at the end. An empty list yields an empty program (no attribute needed).
 */
export function compileBytecode(conditions: readonly BytecodeCondition[]): Buffer {
  const bodies = conditions.map(conditionBody);
  let remaining = bodies.reduce((sum, body) => sum + body.length, 0);
  for (const body of bodies) {
    body.writeUInt8(body.length, 1);
    body.writeUInt16LE(remaining + 4, 2);
    remaining -= body.length;
  }
  return Buffer.concat(bodies);
}

/** struct inet_diag_req_v2. */
export function encodeInetDiagReq(family: number, protocol: number, states: number, id?: InetDiagSockId, ext = 0): Buffer {
  const out = Buffer.alloc(INET_DIAG_REQ_V2_LEN);
  out.writeUInt8(family, 0);
  out.writeUInt8(protocol, 1);
  out.writeUInt8(ext, 2);
  out.writeUInt32LE(states >>> 0, 4);
  if (id !== undefined) writeSockId(out, 8, id);
  else {
    // INET_DIAG_NOCOOKIE: a dump does not look at it, but say "no cookie" explicitly.
    out.writeUInt32LE(0xffffffff, 48);
    out.writeUInt32LE(0xffffffff, 52);
  }
  return out;
}

/**
 * SOCK_DIAG_BY_FAMILY dump of one family and protocol, filtered by state mask and bytecode;
 * `ext` asks for extensions (bit N-1 for attribute N, e.g. INET_DIAG_INFO).
 */
export function encodeInetDiagDump(seq: number, family: number, protocol: number, states: number, bytecode?: Buffer, ext = 0): Buffer {
  const req = encodeInetDiagReq(family, protocol, states, undefined, ext);
  const payload = bytecode !== undefined && bytecode.length > 0
    ? Buffer.concat([req, encodeAttribute(INET_DIAG_REQ_BYTECODE, bytecode)])
    : req;
  return encodeMessage(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, payload);
}

/** Length of one SOCK_DESTROY message: nlmsghdr + inet_diag_req_v2. */
export const SOCK_DESTROY_LEN = 16 + INET_DIAG_REQ_V2_LEN;

/**
 * Writes one SOCK_DESTROY (acked) for the socket a dump returned (its full identity, cookie
 * included) at `offset` of `out`, which must have SOCK_DESTROY_LEN zeroed bytes there. A bulk
 * destroy writes thousands of these into one buffer per sendmsg().
 */
export function writeSockDestroy(out: Buffer, offset: number, seq: number, family: number, protocol: number, id: InetDiagSockId): void {
  out.writeUInt32LE(SOCK_DESTROY_LEN, offset);
  out.writeUInt16LE(SOCK_DESTROY, offset + 4);
  out.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, offset + 6);
  out.writeUInt32LE(seq >>> 0, offset + 8);
  out.writeUInt8(family, offset + 16);
  out.writeUInt8(protocol, offset + 17);
  out.writeUInt32LE(ALL_STATES, offset + 20);
  writeSockId(out, offset + 24, id);
}

/** SOCK_DESTROY of the socket a dump returned, as its own message. */
export function encodeSockDestroy(seq: number, family: number, protocol: number, id: InetDiagSockId): Buffer {
  const out = Buffer.alloc(SOCK_DESTROY_LEN);
  writeSockDestroy(out, 0, seq, family, protocol, id);
  return out;
}
