/**
 * The systemd notify protocol (sd_notify(3)): READY, STATUS, WATCHDOG, RELOADING, STOPPING.
 * Datagrams go out through the addon (Node's dgram has no AF_UNIX). The watchdog ping is sent
 * from a JS timer on purpose: a hung event loop stops pinging and systemd kills us.
 */
import { NativeBinding, nativeBinding } from '../native';

/** What the notifier needs from the environment (defaults to process.env). */
export interface NotifyEnvironment {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

/** Sends sd_notify messages when $NOTIFY_SOCKET is set; a silent no-op otherwise. */
export class SystemdNotifier {
  private readonly address: string | undefined;
  private readonly watchdogUsec: number | undefined;
  private readonly binding: NativeBinding | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  /** The last send error, kept so a failing socket is reported once, not every ping. */
  lastError: Error | undefined;

  constructor(env: NotifyEnvironment = process.env, binding?: NativeBinding) {
    this.address = env.NOTIFY_SOCKET || undefined;
    const usec = Number(env.WATCHDOG_USEC);
    // WATCHDOG_PID, when set, names the process the watchdog is meant for.
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    this.watchdogUsec = Number.isFinite(usec) && usec > 0 && forUs ? usec : undefined;
    this.binding = this.address !== undefined ? binding ?? nativeBinding() : undefined;
  }

  /** True when systemd (or a test) listens. */
  get enabled(): boolean {
    return this.address !== undefined;
  }

  /** The watchdog interval systemd expects, in ms, or undefined. */
  get watchdogMs(): number | undefined {
    return this.watchdogUsec === undefined ? undefined : this.watchdogUsec / 1000;
  }

  /** Sends raw assignments, e.g. {READY: '1', STATUS: 'ok'}. Returns false on failure. */
  send(fields: Record<string, string>): boolean {
    if (this.address === undefined || this.binding === undefined) return false;
    const message = Object.entries(fields).map(([key, value]) => `${key}=${value.replace(/\n/g, ' ')}`).join('\n');
    try {
      this.binding.sdNotify(this.address, message);
      this.lastError = undefined;
      return true;
    } catch (error) {
      this.lastError = error as Error;
      return false;
    }
  }

  ready(status?: string): boolean {
    return this.send(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status });
  }

  status(status: string): boolean {
    return this.send({ STATUS: status });
  }

  /** RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects; follow with ready(). */
  reloading(): boolean {
    return this.send({ RELOADING: '1', MONOTONIC_USEC: (process.hrtime.bigint() / 1000n).toString() });
  }

  stopping(status?: string): boolean {
    return this.send(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status });
  }

  /** Starts WATCHDOG=1 pings at half the interval systemd asked for. */
  startWatchdog(): void {
    const ms = this.watchdogMs;
    if (ms === undefined || this.watchdogTimer !== undefined) return;
    this.send({ WATCHDOG: '1' });
    this.watchdogTimer = setInterval(() => this.send({ WATCHDOG: '1' }), Math.max(1, Math.floor(ms / 2)));
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer !== undefined) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}
