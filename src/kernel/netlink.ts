/**
 * Netlink framing: nlmsghdr, attributes (nlattr) and NLMSG_ERROR, as in linux/netlink.h.
 * Pure functions over Buffers; every walk is bounds-checked and throws {@link ProtocolError}
 * on bytes that do not decode, never reads past the end.
 */
import { ProtocolError } from '../errors';

/** Message types (linux/netlink.h). */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

/** Header flags (linux/netlink.h). */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/** In NLMSG_ERROR: the original request was not echoed back (NETLINK_CAP_ACK). */
export const NLM_F_CAPPED = 0x100;
/** In NLMSG_ERROR: extended-ack TLVs follow. */
export const NLM_F_ACK_TLVS = 0x200;
/** NLMSGERR_ATTR_MSG: the kernel's error text. */
export const NLMSGERR_ATTR_MSG = 1;

/** Protocols (linux/netlink.h). */
export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;

export const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
/** nla_type carries NLA_F_NESTED and NLA_F_NET_BYTEORDER in its top bits. */
export const NLA_TYPE_MASK = 0x3fff;

/** Raised when kernel bytes do not decode (defined with the other error classes). */
export { ProtocolError };

/** One netlink message; `payload` is a view into the datagram (no copy). */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

/** Rounds up to the 4-byte netlink alignment (NLMSG_ALIGN / NLA_ALIGN). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Length of the message at `offset` of buffer[.., end), validated (header fits, length within
 * bounds). The step to the next message is align4(length).
 */
export function messageLength(buffer: Buffer, offset: number, end: number): number {
  const length = buffer.readUInt32LE(offset);
  if (length < NLMSG_HDRLEN || offset + length > end) {
    throw new ProtocolError(`netlink message at offset ${offset} claims ${length} bytes, ${end - offset} left`);
  }
  return length;
}

/** Throws unless what follows the last message of buffer[.., end) at `offset` is padding. */
export function checkTrailing(offset: number, end: number): void {
  if (offset < end && end - offset >= 4) {
    throw new ProtocolError(`${end - offset} trailing bytes after the last netlink message`);
  }
}

/** Splits a datagram into its messages. */
export function parseMessages(datagram: Buffer): NetlinkMessage[] {
  const messages: NetlinkMessage[] = [];
  const end = datagram.length;
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= end) {
    const length = messageLength(datagram, offset, end);
    messages.push({
      type: datagram.readUInt16LE(offset + 4),
      flags: datagram.readUInt16LE(offset + 6),
      seq: datagram.readUInt32LE(offset + 8),
      pid: datagram.readUInt32LE(offset + 12),
      payload: datagram.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += align4(length);
  }
  checkTrailing(offset, end);
  return messages;
}

/** Builds one message: nlmsghdr + payload (pid 0: the kernel fills in our port). */
export function encodeMessage(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const length = NLMSG_HDRLEN + payload.length;
  const out = Buffer.alloc(align4(length));
  out.writeUInt32LE(length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12);
  payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** Attributes by type (the last one wins if repeated); values are views into `buffer`. */
export type Attributes = Map<number, Buffer>;

/** Walks the nlattr list in `buffer` from `offset` to the end. */
export function parseAttributes(buffer: Buffer, offset = 0): Attributes {
  const attributes: Attributes = new Map();
  while (offset + NLA_HDRLEN <= buffer.length) {
    const length = buffer.readUInt16LE(offset);
    const type = buffer.readUInt16LE(offset + 2) & NLA_TYPE_MASK;
    if (length < NLA_HDRLEN || offset + length > buffer.length) {
      throw new ProtocolError(`attribute ${type} at offset ${offset} claims ${length} bytes, ${buffer.length - offset} left`);
    }
    attributes.set(type, buffer.subarray(offset + NLA_HDRLEN, offset + length));
    offset += align4(length);
  }
  return attributes;
}

/** Encodes one attribute (value padded to 4 bytes). */
export function encodeAttribute(type: number, value: Buffer): Buffer {
  const length = NLA_HDRLEN + value.length;
  const out = Buffer.alloc(align4(length));
  out.writeUInt16LE(length, 0);
  out.writeUInt16LE(type, 2);
  value.copy(out, NLA_HDRLEN);
  return out;
}

/** Reads a u8/u32 attribute, or undefined when absent or too short. */
export function attrU8(attributes: Attributes, type: number): number | undefined {
  const value = attributes.get(type);
  return value !== undefined && value.length >= 1 ? value.readUInt8(0) : undefined;
}
export function attrU32(attributes: Attributes, type: number): number | undefined {
  const value = attributes.get(type);
  return value !== undefined && value.length >= 4 ? value.readUInt32LE(0) : undefined;
}
export function attrS32(attributes: Attributes, type: number): number | undefined {
  const value = attributes.get(type);
  return value !== undefined && value.length >= 4 ? value.readInt32LE(0) : undefined;
}
/** Reads a NUL-terminated string attribute. */
export function attrString(attributes: Attributes, type: number): string | undefined {
  const value = attributes.get(type);
  if (value === undefined) return undefined;
  const end = value.indexOf(0);
  return value.toString('utf8', 0, end === -1 ? value.length : end);
}

/** A decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NetlinkErrorReply {
  /** Positive errno, 0 for success. */
  errno: number;
  /** Sequence number of the request this answers (from the echoed header). */
  seq: number;
  /** Extended-ack text (NLMSGERR_ATTR_MSG), when the kernel gave one. */
  extAck?: string;
}

/** Decodes struct nlmsgerr { int error; struct nlmsghdr msg; ... } plus ack TLVs. */
export function parseErrorReply(message: NetlinkMessage): NetlinkErrorReply {
  const payload = message.payload;
  if (payload.length < 4 + NLMSG_HDRLEN) {
    throw new ProtocolError(`NLMSG_ERROR payload of ${payload.length} bytes, need ${4 + NLMSG_HDRLEN}`);
  }
  const reply: NetlinkErrorReply = { errno: -payload.readInt32LE(0), seq: message.seq };
  if (message.flags & NLM_F_ACK_TLVS) {
    // Without NLM_F_CAPPED the whole request is echoed before the TLVs.
    const echoed = message.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : payload.readUInt32LE(4);
    const tlvStart = 4 + align4(echoed);
    if (tlvStart <= payload.length) {
      const text = attrString(parseAttributes(payload, tlvStart), NLMSGERR_ATTR_MSG);
      if (text !== undefined && text.length > 0) reply.extAck = text;
    }
  }
  return reply;
}
