/**
 * Which uplink carries the default route, when a host has more than one way out. Pure: fed
 * the health of each uplink (its probe group), it decides, on the injected clock:
 * - the preferred uplink (the first listed) carries traffic while it is healthy;
 * - when the uplink in use fails, the most preferred healthy one takes over at once;
 * - a more preferred uplink that comes back takes over again only after it has stayed
 *   healthy for `holdUpMs`, and never while its own flap damping suppresses it (a primary
 *   that flaps must not drag traffic back and forth);
 * - with no healthy uplink the current one is kept: a route through a dead uplink costs
 *   nothing more than no route, and it is the first to work again.
 */
import { Clock, TimerHandle } from './clock';
import { DampingConfig } from './config';
import { FlapDamper } from './damping';

/** A change of the uplink in use. */
export interface UplinkChange {
  from: string | null;
  to: string;
  /** `failover` (the one in use failed), `failback` (a preferred one is back and stable), `start`. */
  reason: 'failover' | 'failback' | 'start';
  atMs: number;
}

/** Options of {@link UplinkSelector}. */
export interface UplinkSelectorOptions {
  /** How long a more preferred uplink must stay healthy before traffic moves back to it (ms). */
  holdUpMs: number;
  /** Flap damping per uplink (a failure is a flap); a suppressed uplink is not failed back to. */
  damping: DampingConfig;
  clock: Clock;
  /** Called on every change of the uplink in use. */
  onChange: (change: UplinkChange) => void;
}

interface UplinkState {
  name: string;
  healthy: boolean;
  damper: FlapDamper;
}

/** Keeps the choice of uplink; see the module comment for the rules. */
export class UplinkSelector {
  private readonly uplinks: UplinkState[];
  private readonly options: UplinkSelectorOptions;
  private current: string | null = null;
  private failbackTimer: TimerHandle | null = null;
  /** The uplink the pending fail-back is for. */
  private failbackTarget: string | null = null;

  /**
   * `names` in order of preference; each starts healthy (its probes have not said otherwise).
   * `initial`: the uplink to begin with (the one in use before a reload), default the first;
   * a more preferred one takes over after its hold-up, as after any failover.
   */
  constructor(names: readonly string[], options: UplinkSelectorOptions, initial?: string) {
    if (names.length === 0) throw new Error('UplinkSelector: no uplinks');
    this.options = options;
    this.uplinks = names.map((name) => ({ name, healthy: true, damper: new FlapDamper(options.damping) }));
    this.switchTo(initial !== undefined && names.includes(initial) ? initial : this.uplinks[0]!.name, 'start');
    this.decide();
  }

  /** The uplink in use. */
  get inUse(): string {
    return this.current!;
  }

  /** Whether an uplink is healthy as last reported. */
  isHealthy(name: string): boolean {
    return this.uplinks.find((u) => u.name === name)?.healthy === true;
  }

  /** Reports an uplink's health; a change of the uplink in use is announced through onChange. */
  setHealth(name: string, healthy: boolean): void {
    const uplink = this.uplinks.find((u) => u.name === name);
    if (uplink === undefined || uplink.healthy === healthy) return;
    uplink.healthy = healthy;
    if (!healthy) uplink.damper.flap(this.options.clock.now());
    this.decide();
  }

  /** Cancels the fail-back timer. */
  close(): void {
    this.clearTimer();
  }

  private decide(): void {
    const now = this.options.clock.now();
    const inUse = this.uplinks.find((u) => u.name === this.current)!;
    const best = this.uplinks.find((u) => u.healthy);
    if (best === undefined) {
      // Nothing healthy: keep the route where it is (the first to work again).
      this.clearTimer();
      return;
    }
    if (!inUse.healthy) {
      this.clearTimer();
      this.switchTo(best.name, 'failover');
      return;
    }
    // In use and healthy: is a more preferred one back?
    const preferred = this.uplinks.slice(0, this.uplinks.indexOf(inUse)).find((u) => u.healthy);
    if (preferred === undefined) {
      this.clearTimer();
      return;
    }
    // Its hold-up is already running: let it run (a change elsewhere must not restart it).
    if (this.failbackTimer !== null && this.failbackTarget === preferred.name) return;
    this.clearTimer();
    const suppressedUntil = preferred.damper.suppressedUntil(now);
    const at = Math.max(now + this.options.holdUpMs, suppressedUntil ?? 0);
    this.failbackTarget = preferred.name;
    this.failbackTimer = this.options.clock.setTimeout(() => {
      this.failbackTimer = null;
      this.failbackTarget = null;
      this.failBackTo(preferred.name);
    }, at - now);
  }

  /** The hold-up of `name` ended: move back if it is still the best healthy choice. */
  private failBackTo(name: string): void {
    const now = this.options.clock.now();
    const target = this.uplinks.find((u) => u.name === name)!;
    const index = this.uplinks.indexOf(target);
    const inUseIndex = this.uplinks.findIndex((u) => u.name === this.current);
    if (!target.healthy || index >= inUseIndex) return;
    if (target.damper.isSuppressed(now)) {
      this.decide();
      return;
    }
    this.switchTo(target.name, 'failback');
  }

  private switchTo(name: string, reason: UplinkChange['reason']): void {
    if (name === this.current) return;
    const from = this.current;
    this.current = name;
    this.options.onChange({ from, to: name, reason, atMs: this.options.clock.now() });
  }

  private clearTimer(): void {
    if (this.failbackTimer !== null) {
      this.options.clock.clearTimeout(this.failbackTimer);
      this.failbackTimer = null;
      this.failbackTarget = null;
    }
  }
}
