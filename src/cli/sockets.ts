/** `netheal sockets`, `netheal sockets kill`, `netheal port-free` (issue #4). */
import { Command } from 'commander';
export function registerSockets(_program: Command): void {}
