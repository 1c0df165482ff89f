/** `netheal ping` (issue #3). */
import { Command } from 'commander';
export function registerPing(_program: Command): void {}
