/**
 * netheal as a library: the monitor, prober, socket and policy pieces.
 * Every object that opens a socket has close() and leaves no fd or handle behind.
 */
// ProtocolError (in ./errors with its siblings) stays out of the library's names, as before.
export { ExitCode, ErrorCodes, NethealError, KernelError, errnoName, fromSystemError } from './errors';
export type { ErrorCode } from './errors';
export { resolveNetns } from './netns';
export { monotonicNs } from './native';
export type { NativeBinding } from './native';
export { NetlinkClient } from './kernel/netlink-client';
export type { NetlinkClientOptions, NetlinkReply } from './kernel/netlink-client';
export { LinkControl } from './kernel/link-control';
export * from './monitor/link-monitor';
export type { LinkControlOptions } from './kernel/link-control';
export * from './monitor/prober';
export * from './kernel/sockets';
export { parsePrefix, validateFilter } from './kernel/socket-filter';
export type { Prefix, SocketFilter, SocketProtocol } from './kernel/socket-filter';
export * from './actions/path-cleanup';
export * from './service/port-status';
export { Lab } from './lab/lab';
export type { LinkEnd, TapHandle } from './lab/lab';
export * from './policy';
export { Daemon } from './daemon/daemon';
export type { DaemonOptions, DaemonEvents, DetectionEvent } from './daemon/daemon';
export { validateConfig, loadConfig, checkConfig, mergeConfig, configSchema, DEFAULT_CONFIG_PATH } from './daemon/config';
export type { DaemonConfig, ConfigCheck } from './daemon/config';
export { createLogger } from './daemon/logger';
export type { Logger, LogFormat, LogLevel } from './daemon/logger';
export { SystemdNotifier } from './daemon/notify';
export * from './service';
