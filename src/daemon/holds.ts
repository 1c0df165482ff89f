/**
 * The operator's maintenance holds, kept in the state directory so that they outlive a
 * reload, a crash and a restart (holds name interfaces, whatever the boot).
 */
import { join } from 'node:path';
import { readStateFile, writeStateFile } from './state-files';

const VERSION = 1;
const FILE = 'holds.json';

/** Reads the held interfaces; a missing file is no holds, a corrupt one is reported and ignored. */
export function loadHolds(dir: string, warn: (message: string) => void): Set<string> {
  const data = readStateFile(dir, FILE, warn) as { version?: unknown; holds?: unknown } | undefined;
  if (data === undefined) return new Set();
  if (typeof data !== 'object' || data === null || data.version !== VERSION || !Array.isArray(data.holds) || data.holds.some((h) => typeof h !== 'string')) {
    warn(`${join(dir, FILE)}: ignored, not a holds file: expected {"version":${VERSION},"holds":[names]}`);
    return new Set();
  }
  return new Set(data.holds as string[]);
}

/** Writes the held interfaces atomically. */
export function saveHolds(dir: string, holds: Iterable<string>): void {
  writeStateFile(dir, FILE, { version: VERSION, holds: [...holds].sort() });
}
