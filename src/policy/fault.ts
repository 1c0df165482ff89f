/**
 * Fault location: which part of the path an interface's bad evidence points at. Pure.
 *
 * The class decides which ladder steps may run (each step declares the classes it can fix)
 * and is shown in logs, `status`, metrics and the lab's table. Classes, most local first:
 * - `link`: the interface itself (removed, administratively down, no carrier);
 * - `local-config`: the host lost configuration the interface had (an address, a default
 *   route through it);
 * - `first-hop`: the link is up and configured but the gateway does not answer (its
 *   neighbour entry FAILED/INCOMPLETE, the probes to it lost);
 * - `beyond-first-hop`: the gateway answers, farther targets do not. Nothing on this host
 *   can fix that: the default is to alert, never to bounce or re-apply.
 * Where the evidence cannot tell first hop from beyond (no gateway probe and no neighbour
 * state), the path fault counts as `beyond-first-hop`: the class whose default is to
 * alert, so that a guess never leads to a disruptive step.
 */

/** Where a fault is. */
export type FaultClass = 'link' | 'local-config' | 'first-hop' | 'beyond-first-hop';

/** Every {@link FaultClass}, most local first. */
export const FAULT_CLASSES: readonly FaultClass[] = Object.freeze(['link', 'local-config', 'first-hop', 'beyond-first-hop'] as FaultClass[]);

/** Path classes: the interface is up and configured, traffic does not get through. */
export const PATH_FAULTS: readonly FaultClass[] = Object.freeze(['first-hop', 'beyond-first-hop'] as FaultClass[]);

/** What the classifier reads: an interface's evidence, reduced to what locates a fault. */
export interface FaultInput {
  removed: boolean;
  adminUp: boolean | null;
  carrier: boolean | null;
  /** Reasons of configuration loss (`address-missing:...`, `default-route-lost:4`). */
  configProblems: readonly string[];
  /** Probe groups of the interface that lost quorum. */
  groupsDown: readonly string[];
  /** The interface's gateway probe targets that fail, and those that answer. */
  gatewayTargetsDown: readonly string[];
  gatewayTargetsUp: readonly string[];
  /** Gateway neighbour entries (address -> NUD state name), as the kernel reports them. */
  gatewayNeighbours: Readonly<Record<string, string>>;
  /** ICMP errors the host itself generated for probes (no route, neighbour failed). */
  localUnreachable: boolean;
}

/** A located fault: its class and the evidence that located it. */
export interface Fault {
  class: FaultClass;
  /** The evidence that decided the class, e.g. `carrier-down`, `neighbour-failed:10.0.0.1`. */
  because: string[];
}

const NEIGHBOUR_DEAD = new Set(['failed', 'incomplete']);

/**
 * Locates the fault of an interface, or returns null when nothing points at one. Only
 * evidence that may take the interface down is classified by the caller; this function
 * answers where, not whether.
 */
export function locateFault(input: FaultInput): Fault | null {
  if (input.removed) return { class: 'link', because: ['link-removed'] };
  if (input.adminUp === false) return { class: 'link', because: ['admin-down'] };
  if (input.carrier === false) return { class: 'link', because: ['carrier-down'] };
  if (input.configProblems.length > 0) return { class: 'local-config', because: [...input.configProblems] };
  if (input.groupsDown.length === 0) return null;
  const firstHop: string[] = [];
  for (const [address, state] of Object.entries(input.gatewayNeighbours)) {
    if (NEIGHBOUR_DEAD.has(state)) firstHop.push(`neighbour-${state}:${address}`);
  }
  for (const target of input.gatewayTargetsDown) firstHop.push(`gateway-silent:${target}`);
  if (input.localUnreachable) firstHop.push('host-unreachable');
  // A gateway that answers a probe is alive, whatever its neighbour entry says right now.
  if (firstHop.length > 0 && input.gatewayTargetsUp.length === 0) return { class: 'first-hop', because: firstHop };
  const because = input.gatewayTargetsUp.length > 0
    ? input.gatewayTargetsUp.map((t) => `gateway-answers:${t}`)
    : ['path-unlocated'];
  return { class: 'beyond-first-hop', because: [...because, ...input.groupsDown.map((g) => `probe-group-down:${g}`)] };
}
