import { Command } from 'commander';
export function registerWatch(_program: Command): void {}
