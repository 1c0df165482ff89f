/**
 * `netheal port-free` and the units' ExecStartPre: who holds a local port, and whether a
 * plain bind() on it would succeed.
 */
import { checkPort } from '../kernel/socket-filter';
import { SocketProtocol } from '../kernel/socket-filter';
import { SocketInfo, Sockets } from '../kernel/sockets';

/** What `port-free` found on a local port. */
export interface PortStatus {
  port: number;
  /** True when no listener and no UDP socket holds the port and no leftover blocks a plain bind(). */
  free: boolean;
  /** TCP listeners and bound UDP sockets on the port (with owners). */
  holders: SocketInfo[];
  /**
   * Orphaned TCP sockets on the port (no process holds them: time-wait, fin-wait-1/2,
   * closing, last-ack): a bind() without SO_REUSEADDR fails on them, and nobody will miss
   * them. Connections a live process still holds (established, close-wait) are `holders`.
   */
  stale: SocketInfo[];
}

/** Looks at who holds local port `port` (TCP and/or UDP), owners included. */
export async function portStatus(sockets: Sockets, port: number, protocols: SocketProtocol[] = ['tcp', 'udp']): Promise<PortStatus> {
  checkPort(port, 'port');
  const found = await sockets.query({ sport: port, protocol: protocols }, { owners: true });
  const listening = found.filter((s) => s.protocol === 'udp' || s.state === 'listen');
  const connections = found.filter((s) => s.protocol === 'tcp' && s.state !== 'listen');
  const orphan = (s: SocketInfo): boolean => (s.owners ?? []).length === 0;
  // With a listener, it alone is the holder. Without one, connections a live process still
  // holds (established, close-wait) hold the port too; only orphans are stale.
  const holders = listening.length > 0 ? listening : connections.filter((s) => !orphan(s));
  const stale = holders.length > 0 ? [] : connections.filter(orphan);
  return { port, free: holders.length === 0 && stale.length === 0, holders, stale };
}
