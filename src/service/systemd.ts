/**
 * Talking to the installed systemd: its version (RestartSteps= and RestartMaxDelaySec= came in
 * systemd 254) and systemctl calls used by install/uninstall.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';

/** The version number `systemctl --version` reports ("systemd 252 (252.39-1~deb12u2)" -> 252), or null. */
export function parseSystemdVersion(text: string): number | null {
  const match = /^systemd (\d+)/m.exec(text);
  return match === null ? null : Number(match[1]);
}

/** The installed systemd's version, or null when systemctl is missing. */
export function systemdVersion(): number | null {
  try {
    return parseSystemdVersion(execFileSync('systemctl', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }));
  } catch {
    return null;
  }
}

/** True when PID 1 is systemd (sd_booted(3): /run/systemd/system exists). */
export function systemdBooted(root = '/'): boolean {
  try {
    return statSync(`${root.replace(/\/$/, '')}/run/systemd/system`).isDirectory();
  } catch {
    return false;
  }
}
