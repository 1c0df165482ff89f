/**
 * What the policy engine is told: a typed union of observations, plus the mapping from
 * LinkMonitor events onto it.
 */
import type { MonitorEvent } from '../monitor/link-monitor';
import { INTENT_OWNERS, Intent } from './intent';

/**
 * Carrier (and optionally admin state) of an interface. From a LinkMonitor `link` event:
 * `{kind:'carrier', iface: link.name, up: link.carrier, adminUp: link.adminUp}`; a
 * `link-removed` event maps to `up: false, removed: true`.
 */
export interface CarrierEvidence {
  kind: 'carrier';
  iface: string;
  /** IFLA_CARRIER (lower layer up). */
  up: boolean;
  /** IFF_UP. An administratively down interface is down, but the engine never acts on it. */
  adminUp?: boolean;
  /** The interface disappeared (RTM_DELLINK). */
  removed?: boolean;
}

/** An address appeared on or left an interface (RTM_NEWADDR / RTM_DELADDR). */
export interface AddressEvidence {
  kind: 'address';
  iface: string;
  present: boolean;
  /** The address as formatted by the monitor (no prefix length). */
  address: string;
  family?: 4 | 6;
  prefixlen?: number;
}

/**
 * The host's default route of a family was lost or restored (LinkMonitor `default-route`
 * events). `lost` marks the family absent on `iface` (on every interface that had it when
 * `iface` is null); `restored` marks it present on `iface` and clears the loss on all
 * interfaces, since the host has a default route again (whether a path through it works is
 * for the probes to say).
 */
export interface DefaultRouteEvidence {
  kind: 'default-route';
  family: 4 | 6;
  present: boolean;
  /** The interface the route goes (went) through, or null when unknown. */
  iface: string | null;
  gateway?: string | null;
  /** Lost only in that its device lost carrier (still there, flagged linkdown): a link fault's consequence. */
  linkdown?: boolean;
}

/**
 * A probe group's verdict: `up: false` when its quorum is lost (the prober's group down,
 * which already needs `multiplier` x interval of silence per target). This is the probe evidence that
 * may take an interface down. `iface` binds the group to an interface (else the config's
 * `groups[group].iface`, else the group only has a health state of its own).
 */
export interface ProbeGroupEvidence {
  kind: 'probe-group';
  group: string;
  iface?: string;
  up: boolean;
  reason?: string;
  /** Targets answering, if known; fewer than `targetsTotal` makes the group suspect. */
  targetsUp?: number;
  targetsTotal?: number;
}

/**
 * One probe target's state: a single probe result, or the prober's `target-down` /
 * `target-up`. Never more than `suspect`: a lost probe alone never causes an action.
 */
export interface ProbeEvidence {
  kind: 'probe';
  target: string;
  ok: boolean;
  group?: string;
  iface?: string;
  rttMs?: number;
  /**
   * `gateway` when the target is the interface's gateway (the first hop): its answers tell a
   * first-hop fault from one beyond it. Default: a farther target.
   */
  role?: 'gateway' | 'far';
  /** The host itself refused to send (no route, neighbour FAILED): a first-hop sign. */
  localUnreachable?: boolean;
}

/**
 * The gateway's neighbour entry on the interface changed (RTM_NEWNEIGH / RTM_DELNEIGH for a
 * default route's gateway). `failed` or `incomplete` while probes fail locate the fault at
 * the first hop. Never bad evidence by itself: the kernel empties entries on every blip.
 */
export interface NeighbourEvidence {
  kind: 'neighbour';
  iface: string;
  address: string;
  /** The NUD state name in lower case (`reachable`, `stale`, `failed`, ...), `none` when removed. */
  state: string;
}

/**
 * Who owns the interface and whether it wants it up (see src/policy/intent.ts): what the
 * engine heals toward. Admin-down that the owner wants is respected; admin-down against the
 * owner's intent is a link fault to heal.
 */
export interface IntentEvidence {
  kind: 'intent';
  iface: string;
  intent: Intent;
}

/**
 * Socket health on the interface's path: `stuck` sockets (retransmitting, half-open) as
 * the daemon's socket scan counts them. Suspect only, unless `sockets` is in `downOn`.
 */
export interface SocketsEvidence {
  kind: 'sockets';
  iface: string;
  stuck: number;
  detail?: string;
}

/** Everything {@link PolicyEngine.observe} accepts. */
export type Evidence =
  | CarrierEvidence
  | AddressEvidence
  | DefaultRouteEvidence
  | ProbeGroupEvidence
  | ProbeEvidence
  | SocketsEvidence
  | NeighbourEvidence
  | IntentEvidence;

/** The `kind` values of {@link Evidence}. */
export type EvidenceKind = Evidence['kind'];

/**
 * Maps a LinkMonitor event onto evidence. `nameOf` turns an ifindex into the interface
 * name (the daemon keeps that table from `link` events; LinkMonitor's `links` gives it).
 * `resync` maps to nothing: the monitor re-emits every link that changed. `neighbour` (a
 * gateway's ARP/NDP entry) maps to nothing yet.
 *
 * @example
 * monitor.on('event', (ev) => {
 *   for (const e of evidenceFromMonitorEvent(ev, (i) => names.get(i))) engine.observe(e);
 * });
 */
export function evidenceFromMonitorEvent(event: MonitorEvent,
  nameOf: (ifindex: number) => string | undefined): Evidence[] {
  switch (event.type) {
    case 'link':
      return [{ kind: 'carrier', iface: event.link.name, up: event.link.carrier, adminUp: event.link.adminUp }];
    case 'link-removed':
      return [{ kind: 'carrier', iface: event.name, up: false, removed: true }];
    case 'address': {
      const iface = nameOf(event.ifindex);
      if (iface === undefined) return [];
      return [{
        kind: 'address', iface, present: event.action === 'added', address: event.address,
        family: event.family, prefixlen: event.prefixlen,
      }];
    }
    case 'default-route': {
      // Superseded (still there through the same gateway, only no longer preferred: netheal's
      // own failover route, a manager's metric change) is no loss of the interface's.
      if (event.action === 'lost' && event.superseded === true) return [];
      const iface = event.ifindex === null ? null : nameOf(event.ifindex) ?? null;
      return [{
        kind: 'default-route', family: event.family, present: event.action === 'restored', iface,
        gateway: event.gateway, ...(event.linkdown ? { linkdown: true } : {}),
      }];
    }
    case 'neighbour': {
      const iface = nameOf(event.ifindex);
      if (iface === undefined) return [];
      return [{ kind: 'neighbour', iface, address: event.address, state: event.action === 'removed' ? 'none' : event.state }];
    }
    case 'resync':
      return [];
  }
}

/** Checks the shape of evidence at the API edge; returns a message naming the fault, or null. */
export function evidenceProblem(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return 'evidence must be an object';
  const o = e as Record<string, unknown>;
  const str = (k: string): boolean => typeof o[k] === 'string' && o[k] !== '';
  const bool = (k: string): boolean => typeof o[k] === 'boolean';
  switch (o.kind) {
    case 'carrier':
      if (!str('iface')) return 'carrier evidence: iface must be a non-empty string';
      if (!bool('up')) return 'carrier evidence: up must be a boolean';
      return null;
    case 'address':
      if (!str('iface')) return 'address evidence: iface must be a non-empty string';
      if (!bool('present')) return 'address evidence: present must be a boolean';
      if (!str('address')) return 'address evidence: address must be a non-empty string';
      return null;
    case 'default-route':
      if (o.family !== 4 && o.family !== 6) return 'default-route evidence: family must be 4 or 6';
      if (!bool('present')) return 'default-route evidence: present must be a boolean';
      if (o.iface !== null && !str('iface')) return 'default-route evidence: iface must be a string or null';
      if (o.linkdown !== undefined && typeof o.linkdown !== 'boolean') return 'default-route evidence: linkdown must be a boolean';
      return null;
    case 'probe-group':
      if (!str('group')) return 'probe-group evidence: group must be a non-empty string';
      if (!bool('up')) return 'probe-group evidence: up must be a boolean';
      if (o.iface !== undefined && !str('iface')) return 'probe-group evidence: iface must be a string';
      return null;
    case 'probe':
      if (!str('target')) return 'probe evidence: target must be a non-empty string';
      if (!bool('ok')) return 'probe evidence: ok must be a boolean';
      return null;
    case 'neighbour':
      if (!str('iface')) return 'neighbour evidence: iface must be a non-empty string';
      if (!str('address')) return 'neighbour evidence: address must be a non-empty string';
      if (!str('state')) return 'neighbour evidence: state must be a non-empty string';
      return null;
    case 'intent': {
      if (!str('iface')) return 'intent evidence: iface must be a non-empty string';
      const intent = o.intent as Record<string, unknown> | null | undefined;
      if (typeof intent !== 'object' || intent === null) return 'intent evidence: intent must be an object';
      if (!INTENT_OWNERS.includes(intent.owner as never)) return `intent evidence: intent.owner must be one of ${INTENT_OWNERS.join(', ')}`;
      if (intent.wantUp !== null && typeof intent.wantUp !== 'boolean') return 'intent evidence: intent.wantUp must be a boolean or null';
      return null;
    }
    case 'sockets':
      if (!str('iface')) return 'sockets evidence: iface must be a non-empty string';
      if (typeof o.stuck !== 'number' || !(o.stuck >= 0)) return 'sockets evidence: stuck must be a number >= 0';
      return null;
    default:
      return `unknown evidence kind ${JSON.stringify(o.kind)}`;
  }
}
