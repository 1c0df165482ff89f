/**
 * The operator's maintenance holds, kept in the state directory (systemd's StateDirectory=,
 * default /var/lib/netheal) so that they outlive a reload, a crash and a restart. One small
 * JSON file with a schema version, written atomically (a temporary file renamed over it).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The state directory systemd gives the unit, else /var/lib/netheal. */
export function defaultStateDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env.STATE_DIRECTORY?.split(':')[0] || '/var/lib/netheal';
}

const VERSION = 1;

/** Reads the held interfaces; a missing file is no holds, a corrupt one is reported and ignored. */
export function loadHolds(dir: string, warn: (message: string) => void): Set<string> {
  const file = join(dir, 'holds.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`${file}: cannot read: ${(error as NodeJS.ErrnoException).code}; no holds`);
    return new Set();
  }
  try {
    const data = JSON.parse(text) as { version?: unknown; holds?: unknown };
    if (data.version !== VERSION || !Array.isArray(data.holds) || data.holds.some((h) => typeof h !== 'string')) {
      throw new Error(`expected {"version":${VERSION},"holds":[names]}`);
    }
    return new Set(data.holds as string[]);
  } catch (error) {
    warn(`${file}: ignored, not a holds file: ${(error as Error).message}`);
    return new Set();
  }
}

/** Writes the held interfaces atomically. */
export function saveHolds(dir: string, holds: Iterable<string>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'holds.json');
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ version: VERSION, holds: [...holds].sort() })}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}
