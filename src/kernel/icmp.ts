/**
 * ICMP/ICMPv6 echo: the packed records exchanged with native/icmp_socket.cc, address
 * encoding, and the names of ICMP error types and codes (RFC 792, RFC 4443;
 * linux/icmp.h, linux/icmpv6.h). Pure functions.
 */
import { formatIp, parseIp } from './rtnetlink';

/** Bytes of one probe record handed to IcmpSocket.send(): address[16], u16 seq, u16 0, u32 tag. */
export const SEND_RECORD = 24;
/** Bytes of one result record delivered by the native socket. */
export const RESULT_RECORD = 64;

/** Result record kinds (byte 0). */
export const ResultKind = { REPLY: 0, ICMP_ERROR: 1, LOCAL_ERROR: 2 } as const;
/** Result record flags (byte 3). */
export const ResultFlag = { TAG_VALID: 1, KERNEL_RTT: 2, RTT_KNOWN: 4 } as const;

/** One decoded result record. */
export interface IcmpResult {
  /** 0 echo reply, 1 ICMP error (IP_RECVERR, SO_EE_ORIGIN_ICMP[6]), 2 local error. */
  kind: number;
  /** ICMP type: 0/129 echo reply, or the error's type (3 dest unreachable, 11 time exceeded...). */
  type: number;
  code: number;
  flags: number;
  seq: number;
  ident: number;
  /** Our 32-bit probe tag (valid when flags & TAG_VALID). */
  tag: number;
  /** ee_errno of an error (EHOSTUNREACH, ENETUNREACH, ...), else 0. */
  errno: number;
  /** Reply source, or the router that sent the error (the offender). */
  from: string | null;
  /** Destination of the failed probe (errors only). */
  dest: string | null;
  /** Round-trip time in ns (flags & RTT_KNOWN). */
  rttNs: number;
  /** CLOCK_MONOTONIC at receipt, ns (as a double). */
  monotonicNs: number;
}

/** Encodes an IP address as the 16 bytes a record carries (IPv4 in the first 4). */
export function encodeAddress(address: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = parseIp(address);
  } catch {
    throw new TypeError(`not an IP address: ${address}`);
  }
  const out = Buffer.alloc(16);
  bytes.copy(out);
  return out;
}

/** Formats the 16 address bytes at `offset` for `family`; null for an all-zero address. */
export function decodeAddress(buf: Buffer, offset: number, family: 4 | 6): string | null {
  const bytes = buf.subarray(offset, offset + (family === 4 ? 4 : 16));
  return bytes.every((b) => b === 0) ? null : formatIp(bytes);
}

/** Writes one probe record at `offset`. `address` is from {@link encodeAddress}. */
export function writeSendRecord(buf: Buffer, offset: number, address: Buffer, seq: number, tag: number): void {
  address.copy(buf, offset, 0, 16);
  buf.writeUInt16LE(seq & 0xffff, offset + 16);
  buf.writeUInt16LE(0, offset + 18);
  buf.writeUInt32LE(tag >>> 0, offset + 20);
}

/** Decodes result record `index` of a native result buffer. */
export function readResult(buf: Buffer, index: number, family: 4 | 6): IcmpResult {
  const o = index * RESULT_RECORD;
  if (o + RESULT_RECORD > buf.length) throw new RangeError(`result record ${index} beyond ${buf.length} bytes`);
  const kind = buf[o]!;
  return {
    kind,
    type: buf[o + 1]!,
    code: buf[o + 2]!,
    flags: buf[o + 3]!,
    seq: buf.readUInt16LE(o + 4),
    ident: buf.readUInt16LE(o + 6),
    tag: buf.readUInt32LE(o + 8),
    errno: buf.readInt32LE(o + 12),
    from: decodeAddress(buf, o + 16, family),
    dest: kind === ResultKind.REPLY ? null : decodeAddress(buf, o + 32, family),
    rttNs: buf.readDoubleLE(o + 48),
    monotonicNs: buf.readDoubleLE(o + 56),
  };
}

const UNREACH4: Record<number, string> = {
  0: 'net-unreachable', 1: 'host-unreachable', 2: 'protocol-unreachable', 3: 'port-unreachable',
  4: 'fragmentation-needed', 5: 'source-route-failed', 6: 'net-unknown', 7: 'host-unknown',
  9: 'net-prohibited', 10: 'host-prohibited', 11: 'net-tos-unreachable', 12: 'host-tos-unreachable',
  13: 'admin-prohibited', 14: 'host-precedence-violation', 15: 'precedence-cutoff',
};
const UNREACH6: Record<number, string> = {
  0: 'no-route', 1: 'admin-prohibited', 2: 'beyond-scope', 3: 'address-unreachable',
  4: 'port-unreachable', 5: 'source-policy-failed', 6: 'reject-route',
};

/**
 * A readable name for an ICMP error: 'host-unreachable', 'ttl-exceeded', ... The raw type and
 * code stay available next to it.
 */
export function icmpErrorName(family: 4 | 6, type: number, code: number): string {
  if (family === 4) {
    if (type === 3) return UNREACH4[code] ?? `unreachable-code-${code}`;
    if (type === 11) return code === 0 ? 'ttl-exceeded' : 'reassembly-time-exceeded';
    if (type === 12) return 'parameter-problem';
    if (type === 5) return 'redirect';
    return `icmp-type-${type}-code-${code}`;
  }
  if (type === 1) return UNREACH6[code] ?? `unreachable-code-${code}`;
  if (type === 2) return 'packet-too-big';
  if (type === 3) return code === 0 ? 'hop-limit-exceeded' : 'reassembly-time-exceeded';
  if (type === 4) return 'parameter-problem';
  return `icmpv6-type-${type}-code-${code}`;
}
