/**
 * struct tcp_info (include/uapi/linux/tcp.h) as inet_diag returns it in INET_DIAG_INFO, decoded
 * for passive path evidence. Pure and bounds-checked: the struct grows with the kernel (its
 * length is the attribute's), so fields past the end of an older kernel's struct are absent,
 * and a struct too short to hold the counters the evidence needs is a ProtocolError.
 */
import { ProtocolError } from './netlink';

/** Bytes up to and including tcpi_segs_in (Linux 4.2): the least the evidence can use. */
export const TCP_INFO_MIN_LEN = 144;
/** Bytes up to and including tcpi_total_rto_time (Linux 6.7). */
export const TCP_INFO_RTO_LEN = 248;

/** The fields of struct tcp_info that path evidence reads. */
export interface TcpInfo {
  /** tcpi_state (TCP_* from tcp_states.h). */
  state: number;
  /** tcpi_retransmits: consecutive unrecovered RTOs of the head segment now. */
  retransmits: number;
  /** tcpi_backoff: RTO backoff exponent now. */
  backoff: number;
  /** tcpi_rto in µs. */
  rtoUs: number;
  /** tcpi_unacked: segments in flight. */
  unacked: number;
  /** tcpi_lost: segments now marked lost. */
  lost: number;
  /** ms since the last data segment sent / received, and the last ack received. */
  lastDataSentMs: number;
  lastDataRecvMs: number;
  lastAckRecvMs: number;
  /** tcpi_rtt in µs. */
  rttUs: number;
  /** tcpi_total_retrans: segments retransmitted over the socket's life. */
  totalRetrans: number;
  /** tcpi_segs_out / tcpi_segs_in: segments sent (retransmissions included) / received. */
  segsOut: number;
  segsIn: number;
  /** Linux 6.7: RTO timeouts (recurring ones included), RTO recoveries, ms spent in them. */
  totalRto?: number;
  totalRtoRecoveries?: number;
  totalRtoTimeMs?: number;
}

/** Decodes the payload of an INET_DIAG_INFO attribute of a TCP socket. */
export function decodeTcpInfo(bytes: Buffer): TcpInfo {
  if (bytes.length < TCP_INFO_MIN_LEN) {
    throw new ProtocolError(`tcp_info of ${bytes.length} bytes, need at least ${TCP_INFO_MIN_LEN} (tcpi_segs_in, Linux 4.2)`);
  }
  const info: TcpInfo = {
    state: bytes.readUInt8(0),
    retransmits: bytes.readUInt8(2),
    backoff: bytes.readUInt8(4),
    rtoUs: bytes.readUInt32LE(8),
    unacked: bytes.readUInt32LE(24),
    lost: bytes.readUInt32LE(32),
    lastDataSentMs: bytes.readUInt32LE(44),
    lastDataRecvMs: bytes.readUInt32LE(52),
    lastAckRecvMs: bytes.readUInt32LE(56),
    rttUs: bytes.readUInt32LE(68),
    totalRetrans: bytes.readUInt32LE(100),
    segsOut: bytes.readUInt32LE(136),
    segsIn: bytes.readUInt32LE(140),
  };
  if (bytes.length >= TCP_INFO_RTO_LEN) {
    info.totalRto = bytes.readUInt16LE(240);
    info.totalRtoRecoveries = bytes.readUInt16LE(242);
    info.totalRtoTimeMs = bytes.readUInt32LE(244);
  }
  return info;
}
