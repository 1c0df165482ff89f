/**
 * Reading and writing sysctls, in this namespace or another one. /proc/sys/net shows the
 * namespace of the process that opens it, so another namespace is read and written by a
 * child entered there (`nsenter --net=PATH sysctl ...`).
 */
import { execFile } from 'node:child_process';
import { NethealError } from '../errors';

/** Runs a command, optionally inside the network namespace file `netnsPath`. */
export function runIn(netnsPath: string | undefined, command: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const [file, argv] = netnsPath === undefined ? [command, args] : ['nsenter', [`--net=${netnsPath}`, '--', command, ...args]];
  return new Promise((resolve) => {
    execFile(file, argv, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 127;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Reads sysctl keys (dotted names); missing keys are absent from the result. */
export async function readSysctls(keys: string[], netnsPath?: string): Promise<Map<string, string>> {
  // `sysctl -e` skips unknown keys; "key = value" lines keep names beside values.
  const { stdout, stderr, code } = await runIn(netnsPath, 'sysctl', ['-e', ...keys]);
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf(' = ');
    if (eq > 0) values.set(line.slice(0, eq).trim(), line.slice(eq + 3).trim().replace(/\s+/g, ' '));
  }
  if (values.size === 0 && code !== 0) {
    throw new NethealError('NETHEAL_ERR_SYSCTL', `sysctl ${keys.join(' ')}${netnsPath ? ` in ${netnsPath}` : ''} failed: ${stderr.trim() || `exit ${code}`}`);
  }
  return values;
}

/** Writes sysctls (`sysctl -w key=value ...`), inside `netnsPath` when given. */
export async function writeSysctls(values: Array<[string, string]>, netnsPath?: string): Promise<void> {
  if (values.length === 0) return;
  const { code, stderr } = await runIn(netnsPath, 'sysctl', ['-q', '-w', ...values.map(([k, v]) => `${k}=${v}`)]);
  if (code !== 0) {
    throw new NethealError('NETHEAL_ERR_SYSCTL', `sysctl -w${netnsPath ? ` in ${netnsPath}` : ''} failed: ${stderr.trim() || `exit ${code}`}`);
  }
}

/** Reads /proc/net/netstat (TcpExt, IpExt counters) of the namespace. */
export async function readNetstat(netnsPath?: string): Promise<Map<string, number>> {
  const { code, stdout, stderr } = await runIn(netnsPath, 'cat', ['/proc/net/netstat']);
  if (code !== 0) throw new NethealError('NETHEAL_ERR_SYSCTL', `reading /proc/net/netstat failed: ${stderr.trim()}`);
  return parseNetstat(stdout);
}

/** Parses /proc/net/netstat: header line and value line per group; keys "TcpExt.TCPTimeWaitOverflow". */
export function parseNetstat(text: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const head = lines[i]!.split(/\s+/);
    const vals = lines[i + 1]!.split(/\s+/);
    const group = head[0]!.replace(/:$/, '');
    for (let j = 1; j < head.length; j += 1) out.set(`${group}.${head[j]}`, Number(vals[j]));
  }
  return out;
}
