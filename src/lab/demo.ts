/**
 * `node lib/daemon.js --lab`: the real daemon (a child process running lib/daemon.js with a
 * generated config) against a throw-away namespace lab, with a scripted series of faults.
 * Prints a timeline and a table: fault, detected after, detected by, action taken,
 * recovered after. Exit 0 when every fault was detected and recovered.
 *
 * Lab: namespace `client` (the host netheal guards) and `router`, joined by a veth
 * (uplink0 192.0.2.2/24 <-> 192.0.2.1/24); the router also answers on 198.51.100.1. The
 * client has a tap `nic0` standing in for a physical NIC whose carrier the lab controls.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NETLINK_ROUTE, NetlinkMessage } from '../kernel/netlink';
import {
  RTM_NEWADDR, RTM_NEWROUTE, decodeAddress, decodeRoute, encodeDeletion, encodeGetAddresses, encodeGetRoutes, isDefaultRoute, AF_INET,
} from '../kernel/rtnetlink';
import { LinkControl } from '../kernel/link-control';
import { LinkMonitor } from '../monitor/link-monitor';
import { NetlinkClient } from '../kernel/netlink-client';
import { monotonicNs } from '../native';
import { NethealError } from '../errors';
import { Lab, TapHandle, pacedFlaps } from './lab';
import { DAEMON_NODE_FLAGS } from '../daemon/node-flags';
import { FAR_SERVER, addTwoUplinks } from './two-uplinks';
import { startEchoServer, startFlow } from './flow';

/** One line of the daemon's JSON log. */
interface LogRecord {
  msg: string;
  level: string;
  iface?: string;
  group?: string;
  from?: string;
  to?: string;
  evidence?: string;
  action?: string;
  result?: string;
  alert?: string;
  monotonicNs?: string;
  [key: string]: unknown;
}

/** One fault's outcome, as the table shows it. */
export interface FaultOutcome {
  fault: string;
  iface: string;
  detectedMs: number | null;
  detectedBy: string | null;
  actions: string[];
  recoveredMs: number | null;
  /** What "recovered after" counts from. */
  recoveredFrom: 'cause removed' | 'detection';
  note?: string;
}

const CLIENT_IF = 'uplink0';
const TAP_IF = 'nic0';

function ms(from: bigint, to: bigint): number {
  return Number(to - from) / 1e6;
}

function delay(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}

/** Follows the daemon's JSON log and lets the script wait for records. */
class DaemonLog {
  readonly records: Array<LogRecord & { receivedNs: bigint }> = [];
  private waiters: Array<{ match: (r: LogRecord) => boolean; resolve: (r: LogRecord | null) => void; timer: NodeJS.Timeout }> = [];

  constructor(child: ChildProcess, private readonly print: (r: LogRecord, receivedNs: bigint) => void) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        return;
      }
      const receivedNs = monotonicNs();
      this.records.push({ ...record, receivedNs });
      this.print(record, receivedNs);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(record)) {
          clearTimeout(waiter.timer);
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(record);
        }
      }
    });
  }

  /** Resolves with the first record from now on that matches, or null after `timeoutMs`. */
  next(match: (r: LogRecord) => boolean, timeoutMs: number): Promise<LogRecord | null> {
    return new Promise((resolve) => {
      const waiter = { match, resolve, timer: setTimeout(() => { this.waiters.splice(this.waiters.indexOf(waiter), 1); resolve(null); }, timeoutMs) };
      this.waiters.push(waiter);
    });
  }

  mark(): number {
    return this.records.length;
  }

  since(mark: number): LogRecord[] {
    return this.records.slice(mark);
  }
}

async function deleteByNetlink(netnsPath: string, pick: (m: NetlinkMessage) => boolean, what: string, family: number): Promise<bigint> {
  const client = new NetlinkClient({ protocol: NETLINK_ROUTE, netns: netnsPath });
  try {
    const dump = what === 'address'
      ? await client.dump('RTM_GETADDR dump', encodeGetAddresses)
      : await client.dump('RTM_GETROUTE dump', (seq) => encodeGetRoutes(seq, family));
    const message = dump.messages.find(pick);
    if (message === undefined) throw new NethealError('NETHEAL_ERR_LAB', `no ${what} to delete in the client namespace`);
    let sentAt = 0n;
    await client.request(`delete ${what}`, (seq) => {
      const request = encodeDeletion(seq, message);
      sentAt = monotonicNs();
      return request;
    });
    return sentAt;
  } finally {
    client.close();
  }
}

/** What a lab run found. */
export interface LabResult {
  ok: boolean;
  outcomes: FaultOutcome[];
}

/** Runs the demo; resolves with the process exit code. */
export async function runLabDemo(options: { logFormat?: string; quiet?: boolean } = {}): Promise<number> {
  return (await runLab(options)).ok ? 0 : 1;
}

/**
 * Waits, blocking (a signal handler's last moments cannot wait on events), until process
 * `pid` has exited (gone, or a zombie its parent, us, has yet to reap). True if it did.
 */
function waitForExitSync(pid: number, limitMs: number): boolean {
  const deadline = Date.now() + limitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let state: string;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] ?? '';
    } catch {
      return true;
    }
    if (state === 'Z' || state === 'X') return true;
    if (Date.now() >= deadline) return false;
    Atomics.wait(pause, 0, 0, 20);
  }
}

/** Runs the scripted faults against the real daemon; `quiet` prints nothing (benchmarks). */
export async function runLab(options: { logFormat?: string; quiet?: boolean } = {}): Promise<LabResult> {
  const out = (line: string): void => {
    if (!options.quiet) process.stdout.write(`${line}\n`);
  };
  const lab = Lab.create();
  const scratch = mkdtempSync(join(tmpdir(), 'netheal-lab-'));
  let daemon: ChildProcess | undefined;
  let driver: LinkMonitor | undefined;
  // Also when interrupted (Ctrl-C, SIGTERM): the lab's signal handler destroys it, and no
  // finally below runs then. The daemon is asked to stop; its files go.
  lab.onDestroy(() => {
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null && daemon.pid !== undefined) {
      // The stopping daemon saves its state into the scratch directory: let it finish (up to
      // 3 s, then SIGKILL) before the directory goes, or it would write into a half-removed one.
      daemon.kill('SIGTERM');
      if (!waitForExitSync(daemon.pid, 3000)) {
        daemon.kill('SIGKILL');
        waitForExitSync(daemon.pid, 1000);
      }
    }
    rmSync(scratch, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });
  const start = monotonicNs();
  const at = (ns: bigint | string): string => `+${(ms(start, BigInt(ns)) / 1000).toFixed(3)}s`;
  try {
    out('netheal lab: building namespaces (client, router), a veth uplink and a tap NIC ...');
    const client = await lab.addNamespace('client');
    const router = await lab.addNamespace('router');
    const clientPath = Lab.path(client);
    await lab.addVeth({ ns: client, name: CLIENT_IF }, { ns: router, name: 'down0' });
    await lab.addAddress(client, CLIENT_IF, '192.0.2.2/24');
    await lab.addAddress(client, CLIENT_IF, '2001:db8:1::2/64');
    await lab.addAddress(router, 'down0', '192.0.2.1/24');
    await lab.addAddress(router, 'down0', '2001:db8:1::1/64');
    await lab.addAddress(router, 'lo', '198.51.100.1/32');
    await lab.addRoute(client, 'default', 'via', '192.0.2.1');
    const tap: TapHandle = await lab.addTap(client, TAP_IF);
    await lab.addAddress(client, TAP_IF, '203.0.113.2/24');

    // The tap's "driver": a NIC that comes back after a reset (admin down, then up).
    driver = new LinkMonitor({ netns: clientPath, carrierSync: false });
    await driver.start();
    let resetSeen = false;
    let stuck = false;
    driver.on('event', (event) => {
      if (event.type !== 'link' || event.link.name !== TAP_IF || !stuck) return;
      if (!event.link.adminUp) resetSeen = true;
      else if (resetSeen) {
        stuck = false;
        tap.setCarrier(true);
      }
    });

    const config = {
      netns: clientPath,
      interfaces: {
        [CLIENT_IF]: {
          probe: { targets: ['gateway', '198.51.100.1'], intervalMs: 20, timeoutMs: 20, multiplier: 3, recovery: 2, quorum: 2 },
          requiredAddresses: ['192.0.2.2'],
          verifyTimeoutMs: 1000,
        },
        [TAP_IF]: {
          carrierSync: true,
          verifyTimeoutMs: 1000,
        },
      },
      // Demo timing: no grace period, short backoff, and damping that forgives the scripted
      // faults a few seconds apart but suppresses a storm (defaults: minutes, for servers).
      policy: {
        graceMs: 0,
        defaults: {
          backoff: { initialMs: 500, maxMs: 2000, resetAfterMs: 1000 },
          damping: { penaltyPerFlap: 1000, halfLifeMs: 2000, suppressThreshold: 2500, reuseThreshold: 800, maxSuppressMs: 60000 },
          budget: { maxActions: 100, windowMs: 600000 },
        },
      },
      carrierSyncIntervalMs: 50,
      // Demo timing: a path dead for 1 s has its stuck sockets destroyed (default 10 s).
      killSockets: { pathDeadMs: 1000 },
      // Managers are the host's business: point them at empty places so none is "found".
      managers: { ifupdown: { interfaces: join(scratch, 'interfaces') }, networkScriptsDir: scratch },
      status: { socket: join(scratch, 'status.sock') },
    };
    const configPath = join(scratch, 'config.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));

    out(`netheal lab: starting the daemon: node lib/daemon.js --config ${configPath} --log-format json`);
    out(`netheal lab: while it runs: node lib/cli.js status --socket ${join(scratch, 'status.sock')}`);
    out('');
    // Its state directory is the lab's too: a throw-away lab leaves nothing in /var/lib/netheal.
    daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, join(__dirname, '..', 'daemon.js'), '--config', configPath, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, STATE_DIRECTORY: join(scratch, 'state') },
    });
    // Timeline lines carry when the lab read them, so they are in order: a record's own
    // monotonicNs is sometimes the evidence's receipt (a transition), sometimes the log
    // call's, and printing those made the timeline go back and forth. The detection times in
    // the table still come from the records' monotonicNs.
    const log = new DaemonLog(daemon, (r, receivedNs) => {
      if (r.to !== undefined || r.action !== undefined || r.alert !== undefined || /live|watching|destroyed/.test(r.msg)) out(`  ${at(receivedNs)}  daemon: ${r.msg}`);
    });
    const live = await log.next((r) => /monitoring is live/.test(r.msg), 10000);
    if (process.env.NETHEAL_LAB_STATUS_FILE) {
      // Test hook: where the status socket is, so a test can read it during the run.
      writeFileSync(process.env.NETHEAL_LAB_STATUS_FILE, join(scratch, 'status.sock'));
    }
    if (live === null) throw new NethealError('NETHEAL_ERR_LAB', 'the daemon did not become ready within 10 s');
    // Let the probes settle (2 replies per target make a group up).
    await log.next((r) => r.iface === CLIENT_IF && r.to === 'healthy', 1000);
    await delay(300);

    const outcomes: FaultOutcome[] = [];
    const control = new LinkControl({ netns: Lab.path(router) });
    const clientControl = new LinkControl({ netns: clientPath });

    const isDown = (iface: string) => (r: LogRecord): boolean => r.iface === iface && (r.to === 'down' || r.to === 'suspect');
    const isHealthy = (iface: string) => (r: LogRecord): boolean => r.iface === iface && r.to === 'healthy';

    /** Injects a fault, waits for detection, optionally removes the cause, waits for health. */
    const scenario = async (fault: string, iface: string, inject: () => Promise<bigint>, removeCause?: () => Promise<void>, holdMs = 1500): Promise<void> => {
      out(`-- fault: ${fault}`);
      const mark = log.mark();
      const outcome: FaultOutcome = {
        fault, iface, detectedMs: null, detectedBy: null, actions: [], recoveredMs: null,
        recoveredFrom: removeCause ? 'cause removed' : 'detection',
      };
      outcomes.push(outcome);
      let t0: bigint;
      try {
        t0 = await inject();
      } catch (error) {
        outcome.note = `could not inject: ${(error as Error).message}`;
        return;
      }
      // The detection is the first down record stamped at or after t0 (an inject may cause an
      // earlier, deliberate blip, like the tap's first drop); it may already have arrived.
      const afterT0 = (r: LogRecord): boolean => isDown(iface)(r) && r.monotonicNs !== undefined && BigInt(r.monotonicNs) >= t0;
      const detection = log.since(mark).find(afterT0) ?? await log.next(afterT0, 5000);
      if (detection === null) {
        outcome.note = 'not detected within 5 s';
        if (removeCause) await removeCause();
        return;
      }
      const detectedNs = BigInt(detection.monotonicNs ?? monotonicNs().toString());
      outcome.detectedMs = ms(t0, detectedNs);
      outcome.detectedBy = detection.evidence === undefined ? null : `${detection.evidence}${detection.via ? ` (${String(detection.via)})` : ''}`;
      if (typeof detection.fault === 'string') outcome.detectedBy = `${detection.fault}: ${outcome.detectedBy ?? '-'}`;
      let recovered: LogRecord | null;
      let fromNs: bigint;
      if (removeCause) {
        await delay(holdMs);
        const healthy = log.next(isHealthy(iface), 10000);
        fromNs = monotonicNs();
        await removeCause();
        recovered = await healthy;
      } else {
        fromNs = detectedNs;
        recovered = await log.next(isHealthy(iface), 15000);
      }
      if (recovered !== null) outcome.recoveredMs = ms(fromNs, BigInt(recovered.monotonicNs ?? monotonicNs().toString()));
      for (const r of log.since(mark)) {
        if (r.iface === iface && r.action !== undefined && r.result !== undefined && r.result !== 'skipped') outcome.actions.push(`${r.action}:${r.result}`);
        if (r.iface === iface && r.recovery === 'without-action') outcome.actions.push('recovered without action');
        if (r.iface === iface && r.action !== undefined && r.verified === true) outcome.actions.push(`verified:${r.action}`);
        if (r.iface === iface && r.alert !== undefined && r.alert !== 'ladder-exhausted') outcome.actions.push(`alert:${r.alert}`);
      }
      // Past the backoff reset (resetAfterMs 1000): each fault meets a fresh ladder.
      await delay(1200);
    };

    await scenario('carrier loss (far end down)', CLIENT_IF,
      () => control.setAdmin('down0', false),
      async () => { await control.setAdmin('down0', true); });
    await scenario('path blackhole (router drops replies)', CLIENT_IF,
      async () => { const t = monotonicNs(); await lab.ip(router, 'route', 'add', 'blackhole', '192.0.2.2/32'); return t; },
      async () => { await lab.ip(router, 'route', 'del', 'blackhole', '192.0.2.2/32'); });
    await scenario('admin-down behind netheal\'s back (RTM_NEWLINK down)', CLIENT_IF,
      // By netlink, stamped just before the request (as for the carrier loss): t0 before an
      // `ip` process would count that process's start-up (~10 ms) as detection time.
      () => clientControl.setAdmin(CLIENT_IF, false));
    await scenario('loss beyond the first hop (far target gone)', CLIENT_IF,
      async () => { const t = monotonicNs(); await lab.ip(router, 'addr', 'del', '198.51.100.1/32', 'dev', 'lo'); return t; },
      async () => { await lab.ip(router, 'addr', 'add', '198.51.100.1/32', 'dev', 'lo'); });
    await scenario('address loss (192.0.2.2 removed)', CLIENT_IF,
      () => deleteByNetlink(clientPath, (m) => m.type === RTM_NEWADDR && decodeAddress(m)?.address === '192.0.2.2', 'address', AF_INET));
    await scenario('default-route loss (route deleted)', CLIENT_IF,
      () => deleteByNetlink(clientPath, (m) => { const r = m.type === RTM_NEWROUTE ? decodeRoute(m) : null; return r !== null && isDefaultRoute(r); }, 'route', AF_INET));
    await scenario('NIC carrier loss (tap; linkwatch delays it; a reset fixes it)', TAP_IF, async () => {
      // A first drop shortly before makes the kernel hold the second one back ~1 s.
      tap.setCarrier(false);
      tap.setCarrier(true);
      await delay(200);
      stuck = true;
      resetSeen = false;
      const t = monotonicNs();
      tap.setCarrier(false);
      return t;
    });
    // Last, because damping keeps the interface suppressed for minutes afterwards.
    const stormMark = log.mark();
    await scenario('flap storm (25 far-end flaps, 80 ms apart)', CLIENT_IF,
      () => pacedFlaps(control, 'down0', 25, 40),
      async () => { await control.setAdmin('down0', true); }, 800);
    const bounces = log.since(stormMark).filter((r) => r.action === 'link-bounce' && r.result !== undefined && r.iface === CLIENT_IF).length;
    outcomes[outcomes.length - 1]!.note = `${bounces} link bounce(s) during the storm`;
    control.close();
    clientControl.close();

    out('');
    printTable(outcomes, out);
    out('');
    const uplinkOutcomes = await twoUplinkPhase(scratch, out, at);
    out('');
    printTable(uplinkOutcomes, out);
    outcomes.push(...uplinkOutcomes);
    const ok = outcomes.every((o) => o.detectedMs !== null && o.recoveredMs !== null);
    out('');
    out(ok ? 'netheal lab: every fault detected and recovered.' : 'netheal lab: some faults were not detected or not recovered (see the table).');
    return { ok, outcomes };
  } finally {
    if (daemon !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once('exit', resolve));
      daemon.kill('SIGTERM');
      await Promise.race([exited, delay(5000)]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    driver?.close();
    await lab.destroy(); // and the scratch directory (onDestroy above)
    out('netheal lab: namespaces removed.');
  }
}

/**
 * The second part of the lab: a host with two uplinks (src/lab/two-uplinks.ts) and a live TCP
 * flow to a far server, a second daemon keeping the default route on the healthy one. Faults
 * on the primary: a loss beyond its first hop (the probes see it), then a TCP-only blackhole
 * (its router drops TCP, ICMP passes: only the flow's tcp_info shows it). Each: detection,
 * the failover and the connections moved, and the fail-back once the cause is removed.
 */
async function twoUplinkPhase(scratch: string, out: (line: string) => void, at: (ns: bigint | string) => string): Promise<FaultOutcome[]> {
  const lab = Lab.create();
  let daemon: ChildProcess | undefined;
  let flow: ReturnType<typeof startFlow> | undefined;
  let server: ChildProcess | undefined;
  const outcomes: FaultOutcome[] = [];
  try {
    out('netheal lab: two uplinks: client up0 -> r1, up1 -> r2, both routers to a far server; a live TCP flow to it ...');
    const { client, r1, far } = await addTwoUplinks(lab);
    server = await startEchoServer(far, FAR_SERVER, 7700);
    const config = {
      netns: Lab.path(client),
      interfaces: { up0: {}, up1: {} },
      policy: { graceMs: 600000 },
      uplinks: [{ iface: 'up0', gateway: '192.0.2.1', targets: [FAR_SERVER] }, { iface: 'up1', gateway: '198.51.100.1', targets: [FAR_SERVER] }],
      // Demo timing: fail back 0.5 s after the primary is healthy again; a TCP verdict with
      // nothing left to judge by fades after 1 s (defaults: 5 s each).
      failover: { intervalMs: 10, holdUpMs: 500, tcpEvidence: { clearMs: 1000, idleIntervalMs: 500 } },
      managers: { ifupdown: { interfaces: join(scratch, 'interfaces') }, networkScriptsDir: scratch },
    };
    const configPath = join(scratch, 'uplinks.json');
    writeFileSync(configPath, JSON.stringify(config, null, 2));
    daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, join(__dirname, '..', 'daemon.js'), '--config', configPath, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, STATE_DIRECTORY: join(scratch, 'state-uplinks') },
    });
    const log = new DaemonLog(daemon, (r, receivedNs) => {
      if (r.uplink !== undefined && (r.reason !== undefined || r.tcpDead !== undefined || r.healthy === false)) out(`  ${at(receivedNs)}  daemon: ${r.msg}`);
    });
    if ((await log.next((r) => /monitoring is live/.test(r.msg), 10000)) === null) throw new NethealError('NETHEAL_ERR_LAB', 'the uplinks daemon did not become ready within 10 s');
    flow = startFlow(client, FAR_SERVER, 7700, { everyMs: 20, timeoutMs: 3000 });
    const running = flow;
    await new Promise<void>((resolve) => running.once('echo', () => resolve()));
    await delay(500);

    const uplinkFault = async (fault: string, detectedBy: (r: LogRecord) => string | null, inject: () => Promise<void>, remove: () => Promise<void>): Promise<void> => {
      out(`-- fault: ${fault}`);
      const outcome: FaultOutcome = { fault, iface: 'up0', detectedMs: null, detectedBy: null, actions: [], recoveredMs: null, recoveredFrom: 'cause removed' };
      outcomes.push(outcome);
      const mark = log.mark();
      const failover = log.next((r) => r.reason === 'failover', 5000);
      const t0 = monotonicNs();
      await inject();
      const moved = await failover;
      if (moved === null) {
        outcome.note = 'no failover within 5 s';
        await remove();
        return;
      }
      const cause = log.records.slice(mark).find((r) => detectedBy(r) !== null);
      outcome.detectedMs = ms(t0, cause?.receivedNs ?? monotonicNs());
      outcome.detectedBy = cause === undefined ? null : detectedBy(cause);
      outcome.actions.push(`failover to up1${typeof moved.destroyed === 'number' && moved.destroyed > 0 ? ` (${moved.destroyed} connection(s) moved)` : ''}`);
      const back = await running.echoAfter(t0);
      outcome.note = `flow exchanging again ${ms(t0, back).toFixed(0)} ms after the fault`;
      await delay(500);
      const failback = log.next((r) => r.reason === 'failback', 10000);
      const removedNs = monotonicNs();
      await remove();
      const returned = await failback;
      if (returned !== null) {
        outcome.actions.push('fail-back after the hold-up');
        outcome.recoveredMs = ms(removedNs, monotonicNs());
      }
      await delay(300);
    };
    const nft = (script: string[]) => async (): Promise<void> => {
      for (const line of script) await lab.exec(r1, '/usr/sbin/nft', [line]);
    };
    await uplinkFault('uplinks: loss beyond the primary\'s first hop', (r) => (r.healthy === false && r.uplink === 'up0/192.0.2.1' ? 'probe (uplink up0)' : null),
      async () => { await lab.ip(r1, 'route', 'replace', 'blackhole', `${FAR_SERVER}/32`); },
      async () => { await lab.ip(r1, 'route', 'replace', `${FAR_SERVER}/32`, 'via', '10.1.0.2'); });
    await uplinkFault('uplinks: TCP-only blackhole on the primary (ICMP passes)', (r) => (r.tcpDead === true && r.uplink === 'up0/192.0.2.1' ? 'TCP evidence (tcp_info)' : null),
      nft(['add table inet nhlab', 'add chain inet nhlab through { type filter hook forward priority 0; }', 'add rule inet nhlab through meta l4proto tcp drop']),
      nft(['delete table inet nhlab']));
    return outcomes;
  } finally {
    flow?.stop();
    server?.kill('SIGKILL');
    if (daemon !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once('exit', resolve));
      daemon.kill('SIGTERM');
      await Promise.race([exited, delay(5000)]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    }
    await lab.destroy();
  }
}

function printTable(outcomes: FaultOutcome[], out: (line: string) => void): void {
  const rows = [
    ['fault', 'detected after', 'detected by', 'action taken', 'recovered after'],
    ...outcomes.map((o) => [
      o.fault,
      o.detectedMs === null ? 'NOT DETECTED' : `${o.detectedMs.toFixed(1)} ms`,
      o.detectedBy ?? '-',
      (o.actions.length ? summarize(o.actions) : 'none') + (o.note ? ` (${o.note})` : ''),
      o.recoveredMs === null ? 'NOT RECOVERED' : `${o.recoveredMs.toFixed(0)} ms after ${o.recoveredFrom}`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  rows.forEach((row, i) => {
    out(row.map((cell, j) => cell.padEnd(widths[j]!)).join(' | ').trimEnd());
    if (i === 0) out(widths.map((w) => '-'.repeat(w)).join('-|-'));
  });
}

/** "kill-sockets:ok, link-bounce:ok x2" */
function summarize(actions: string[]): string {
  const counts = new Map<string, number>();
  for (const a of actions) counts.set(a, (counts.get(a) ?? 0) + 1);
  return [...counts].map(([a, n]) => (n > 1 ? `${a} x${n}` : a)).join(', ');
}
