/**
 * Health states and the evidence they are judged on. Pure: no clock, no events.
 */
import type { DownEvidenceKind } from './config';
import type { Evidence } from './evidence';
import { Fault, locateFault } from './fault';
import type { Intent } from './intent';

/** Link-local addresses (fe80::/10) never belong to a baseline: the kernel makes them itself. */
function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/**
 * Health of an interface or probe group.
 * - `healthy`: no bad evidence.
 * - `suspect`: some bad evidence, none of it enough to act on (a lost probe, a target down
 *   while the group keeps quorum, stuck sockets, or evidence not listed in `downOn`).
 * - `down`: evidence of a kind in `downOn` is bad (carrier, address, default route, group
 *   quorum); the recovery ladder may run.
 * - `recovering`: a ladder step is running or being verified (interfaces only).
 */
export type HealthState = 'healthy' | 'suspect' | 'down' | 'recovering';

/** Bad evidence found on a subject, split by whether it may take it down. */
export interface Problems {
  /** Reasons that make the subject `down`, e.g. `carrier-down`, `probe-group-down:gw`. */
  hard: string[];
  /** Reasons that only make it `suspect`, e.g. `probe-target-down:192.0.2.1`. */
  soft: string[];
}

/** The state the problems call for (`recovering` is the engine's to set, never judged). */
export function judge(problems: Problems): Exclude<HealthState, 'recovering'> {
  if (problems.hard.length > 0) return 'down';
  if (problems.soft.length > 0) return 'suspect';
  return 'healthy';
}

/** The evidence an interface has accumulated, as `snapshot()` reports it. */
export interface InterfaceEvidenceSnapshot {
  /** null until carrier evidence arrives (unknown counts as fine). */
  carrier: boolean | null;
  adminUp: boolean | null;
  removed: boolean;
  addresses: string[];
  /** Per family: true present, false lost, null unknown / never seen. */
  defaultRoute: { 4: boolean | null; 6: boolean | null };
  /** Probe groups bound to this interface: true up, false quorum lost. */
  probeGroups: Record<string, boolean>;
  /** Probe targets whose last result was a failure. */
  failingTargets: string[];
  stuckSockets: number;
  /** Global addresses of the last healthy state: losing any of them is evidence. */
  baseline: string[];
  /** The gateways' neighbour entries (address -> NUD state). */
  gatewayNeighbours: Record<string, string>;
  /** The owner's intent, null until known. */
  intent: Intent | null;
}

/** Accumulated evidence of one interface and the judgement of it. */
export class InterfaceEvidence {
  /** Last carrier evidence; null until some arrives (unknown counts as fine). */
  carrier: boolean | null = null;
  /** Last admin state (IFF_UP) reported; null if never reported. */
  adminUp: boolean | null = null;
  /** The link was removed (and not seen since). */
  removed = false;
  private readonly addresses = new Set<string>();
  private hadAddress = false;
  private readonly defaultRoute: { 4: boolean | null; 6: boolean | null } = { 4: null, 6: null };
  /** The lost default route is still there, flagged linkdown (its device lost carrier). */
  private readonly defaultRouteLinkdown: { 4: boolean; 6: boolean } = { 4: false, 6: false };
  private readonly groups = new Map<string, boolean>();
  private readonly failingTargets = new Set<string>();
  private readonly gatewayTargets = new Set<string>();
  private readonly neighbours = new Map<string, string>();
  private readonly baseline = new Set<string>();
  private localUnreachable = false;
  private stuck = 0;
  /** The owner's intent; null until known. */
  intent: Intent | null = null;

  /**
   * Applies one piece of evidence about this interface (`default-route` evidence is applied
   * by the engine through {@link InterfaceEvidence.setDefaultRoute}).
   */
  apply(e: Evidence): void {
    switch (e.kind) {
      case 'carrier':
        this.carrier = e.up;
        // A new admin state may be anybody's doing: what the owner wanted before says nothing
        // about it. Until the owner is asked again, its intent is unknown.
        if (e.adminUp !== undefined && e.adminUp !== this.adminUp && this.adminUp !== null && this.intent !== null) {
          this.intent = { ...this.intent, wantUp: null };
        }
        if (e.adminUp !== undefined) this.adminUp = e.adminUp;
        this.removed = e.removed === true;
        if (this.removed) this.adminUp = null;
        break;
      case 'address':
        if (e.present) {
          this.addresses.add(e.address);
          this.hadAddress = true;
          this.renumbered(e.address);
        } else {
          this.addresses.delete(e.address);
        }
        break;
      case 'neighbour':
        if (e.state === 'none') this.neighbours.delete(e.address);
        else this.neighbours.set(e.address, e.state);
        break;
      case 'intent':
        this.intent = { ...e.intent };
        break;
      case 'probe-group':
        this.groups.set(e.group, e.up);
        break;
      case 'probe':
        if (e.ok) this.failingTargets.delete(e.target);
        else this.failingTargets.add(e.target);
        if (e.role === 'gateway') this.gatewayTargets.add(e.target);
        if (e.ok) this.localUnreachable = false;
        else if (e.localUnreachable !== undefined) this.localUnreachable = e.localUnreachable;
        break;
      case 'sockets':
        this.stuck = e.stuck;
        break;
      case 'default-route':
        this.setDefaultRoute(e.family, e.present, e.linkdown === true);
        break;
    }
  }

  /**
   * Takes the global addresses present now as the baseline (the engine calls this whenever
   * the interface is judged healthy). Link-local addresses never count.
   */
  takeBaseline(): void {
    this.baseline.clear();
    for (const a of this.addresses) if (!isLinkLocal(a)) this.baseline.add(a);
  }

  /** The baseline's addresses (global addresses of the last healthy state). */
  baselineAddresses(): string[] {
    return [...this.baseline].sort();
  }

  /**
   * Carries a baseline over a restart: the addresses of `carried` join the baseline, except
   * in a family that has a global address now that `carried` lacks (renumbered meanwhile).
   */
  restoreBaseline(carried: readonly string[]): void {
    const present = [...this.addresses].filter((a) => !isLinkLocal(a));
    for (const a of carried) {
      if (isLinkLocal(a)) continue;
      const renumbered = present.some((p) => familyOf(p) === familyOf(a) && !carried.includes(p));
      if (!renumbered) this.baseline.add(a);
    }
  }

  /**
   * A new global address while a baseline address of its family is missing is a change of
   * address (a new DHCP lease, an operator's renumbering), not a loss: the baseline follows.
   */
  private renumbered(added: string): void {
    if (isLinkLocal(added) || this.baseline.has(added)) return;
    const family = familyOf(added);
    const missing = [...this.baseline].filter((a) => familyOf(a) === family && !this.addresses.has(a));
    if (missing.length === 0) return;
    for (const a of missing) this.baseline.delete(a);
    this.baseline.add(added);
  }

  /** Sets the default-route evidence of a family. */
  setDefaultRoute(family: 4 | 6, present: boolean | null, linkdown = false): void {
    this.defaultRouteLinkdown[family] = present === false && linkdown;
    this.defaultRoute[family] = present;
  }

  /** The default-route evidence of a family. */
  getDefaultRoute(family: 4 | 6): boolean | null {
    return this.defaultRoute[family];
  }

  /** Bad evidence, split by `downOn` and the required addresses. */
  problems(downOn: readonly DownEvidenceKind[], requiredAddresses: readonly string[]): Problems {
    const out: Problems = { hard: [], soft: [] };
    const put = (kind: DownEvidenceKind | 'probe', reason: string): void => {
      if (kind !== 'probe' && downOn.includes(kind)) out.hard.push(reason);
      else out.soft.push(reason);
    };
    if (this.removed) put('carrier', 'link-removed');
    else if (this.adminUp === false) put('carrier', this.intent?.wantUp === false ? 'admin-down:intended' : 'admin-down');
    else if (this.carrier === false) put('carrier', 'carrier-down');
    const missing = new Set<string>();
    for (const a of requiredAddresses) if (!this.addresses.has(a)) missing.add(a);
    for (const a of this.baseline) if (!this.addresses.has(a)) missing.add(a);
    for (const a of [...missing].sort()) put('address', `address-missing:${a}`);
    if (missing.size === 0 && requiredAddresses.length === 0 && this.baseline.size === 0 && this.hadAddress && this.addresses.size === 0) {
      put('address', 'address-missing');
    }
    for (const family of [4, 6] as const) {
      // A route lost only to its linkdown flag is the carrier fault's consequence, not lost
      // configuration: while the carrier is down that is the problem; once it is back the
      // flag is re-read within milliseconds, and nothing would need putting back meanwhile.
      if (this.defaultRoute[family] === false && !this.defaultRouteLinkdown[family]) put('default-route', `default-route-lost:${family}`);
    }
    for (const [group, up] of [...this.groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!up) put('probe-group', `probe-group-down:${group}`);
    }
    for (const target of [...this.failingTargets].sort()) put('probe', `probe-target-down:${target}`);
    if (this.stuck > 0) put('sockets', `sockets-stuck:${this.stuck}`);
    return out;
  }

  /**
   * Whether the interface is gone or down as its owner wants it (the engine never acts then).
   * Admin-down against the owner's intent is a fault to heal, not a decision to respect.
   */
  get disabled(): boolean {
    // wantUp false with the link up: NetworkManager's `device disconnect` leaves it admin-up
    // and unconfigured on purpose.
    return this.removed || this.intent?.wantUp === false;
  }

  /** Admin-down while the owner's intent is not known yet: wait for it before acting. */
  get intentPending(): boolean {
    return this.adminUp === false && !this.removed && (this.intent === null || this.intent.wantUp === null);
  }

  /**
   * Where the hard problems point (see {@link locateFault}); null when none of the evidence
   * that may take the interface down is bad.
   */
  fault(problems: Problems): Fault | null {
    const gatewayDown = [...this.gatewayTargets].filter((t) => this.failingTargets.has(t));
    const gatewayUp = [...this.gatewayTargets].filter((t) => !this.failingTargets.has(t));
    if (problems.hard.length === 0) {
      // Only suspect: a failing target while the group keeps quorum is still located (status
      // and metrics show where), though nothing acts on it.
      const far = [...this.failingTargets].filter((t) => !this.gatewayTargets.has(t));
      if (gatewayDown.length === 0 && far.length === 0) return null;
      return locateFault({
        removed: false, adminUp: null, carrier: null, configProblems: [], groupsDown: far.map((t) => `target:${t}`),
        gatewayTargetsDown: gatewayDown, gatewayTargetsUp: gatewayUp, gatewayNeighbours: Object.fromEntries(this.neighbours),
        localUnreachable: this.localUnreachable,
      });
    }
    const hard = new Set(problems.hard);
    return locateFault({
      removed: hard.has('link-removed'),
      adminUp: hard.has('admin-down') || hard.has('admin-down:intended') ? false : this.adminUp,
      carrier: hard.has('carrier-down') ? false : null,
      configProblems: problems.hard.filter((r) => r.startsWith('address-missing') || r.startsWith('default-route-lost')),
      groupsDown: problems.hard.filter((r) => r.startsWith('probe-group-down:')).map((r) => r.slice('probe-group-down:'.length)),
      gatewayTargetsDown: gatewayDown,
      gatewayTargetsUp: gatewayUp,
      gatewayNeighbours: Object.fromEntries(this.neighbours),
      localUnreachable: this.localUnreachable,
    });
  }

  /** A plain copy for status output. */
  snapshot(): InterfaceEvidenceSnapshot {
    return {
      carrier: this.carrier,
      adminUp: this.adminUp,
      removed: this.removed,
      addresses: [...this.addresses].sort(),
      defaultRoute: { ...this.defaultRoute },
      probeGroups: Object.fromEntries([...this.groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      failingTargets: [...this.failingTargets].sort(),
      stuckSockets: this.stuck,
      baseline: [...this.baseline].sort(),
      gatewayNeighbours: Object.fromEntries([...this.neighbours].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      intent: this.intent === null ? null : { ...this.intent },
    };
  }
}

/** The evidence a probe group has accumulated, as `snapshot()` reports it. */
export interface GroupEvidenceSnapshot {
  /** null until the prober reports; false when quorum is lost. */
  up: boolean | null;
  iface: string | null;
  reason: string | null;
  targetsUp: number | null;
  targetsTotal: number | null;
  failingTargets: string[];
}

/** Accumulated evidence of one probe group. */
export class GroupEvidence {
  /** Quorum verdict; null until the prober reports. */
  up: boolean | null = null;
  /** Interface the group is bound to, from evidence. */
  iface: string | null = null;
  /** The prober's reason for the last verdict. */
  reason: string | null = null;
  /** Targets answering, if reported. */
  targetsUp: number | null = null;
  /** Targets in the group, if reported. */
  targetsTotal: number | null = null;
  private readonly failing = new Set<string>();

  /** Applies `probe-group` or `probe` evidence about this group. */
  apply(e: Evidence): void {
    if (e.kind === 'probe-group') {
      this.up = e.up;
      this.reason = e.reason ?? null;
      if (e.iface !== undefined) this.iface = e.iface;
      this.targetsUp = e.targetsUp ?? null;
      this.targetsTotal = e.targetsTotal ?? null;
    } else if (e.kind === 'probe') {
      if (e.ok) this.failing.delete(e.target);
      else this.failing.add(e.target);
      if (e.iface !== undefined) this.iface = e.iface;
    }
  }

  /** Quorum lost is hard; failing targets or a partial count are soft. */
  problems(): Problems {
    const out: Problems = { hard: [], soft: [] };
    if (this.up === false) out.hard.push(`quorum-lost${this.reason ? `:${this.reason}` : ''}`);
    if (this.targetsUp !== null && this.targetsTotal !== null && this.targetsUp < this.targetsTotal) {
      out.soft.push(`targets-up:${this.targetsUp}/${this.targetsTotal}`);
    }
    for (const t of [...this.failing].sort()) out.soft.push(`probe-target-down:${t}`);
    return out;
  }

  /** A plain copy for status output. */
  snapshot(): GroupEvidenceSnapshot {
    return {
      up: this.up, iface: this.iface, reason: this.reason, targetsUp: this.targetsUp,
      targetsTotal: this.targetsTotal, failingTargets: [...this.failing].sort(),
    };
  }
}
