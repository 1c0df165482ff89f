/**
 * The policy's safety state on disk (safety.json in the state directory): per interface the
 * budget spent, damping, backoff and action count ({@link SafetyState}), and the last
 * healthy configuration (addresses and routes, as dumped netlink messages) that `repair`
 * and `link-bounce` put back. Without it a restart would forget a suppression, refill the
 * budget, and lose the only record of routes the kernel flushed.
 *
 * Ages are kept against CLOCK_MONOTONIC, which every process of one boot shares, so they
 * stay true across a restart; a file from another boot or another namespace is ignored.
 */
import { join } from 'node:path';
import * as v from 'valibot';
import { InterfaceConfiguration } from '../actions/link-bounce';
import { StoredConfiguration, loadConfiguration, storeConfiguration } from '../actions/interruption';
import type { InterfaceSafetyState, SafetyState } from '../policy/engine-events';
import { StateScope, firstIssue, monotonicMs, readStateFile, sameScope, storedConfigurationSchema, writeStateFile } from './state-files';

const FILE = 'safety.json';
const VERSION = 1;

const nonNegative = v.pipe(v.number(), v.finite(), v.minValue(0));
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const storedInterface = v.object({
  safety: v.optional(v.object({
    budgetSpentAgoMs: v.array(nonNegative),
    damping: v.object({ penalty: nonNegative, updatedAgoMs: nonNegative, suppressedForMs: v.nullable(nonNegative), flaps: count }),
    backoffAttempts: count,
    totalActions: count,
    baselineAddresses: v.array(v.string()),
  })),
  knownGood: v.optional(storedConfigurationSchema),
});
const safetyFile = v.object({
  version: v.literal(VERSION), scope: v.unknown(), savedMonotonicMs: nonNegative, interfaces: v.record(v.string(), storedInterface),
});

/** What a restarted daemon takes over. */
export interface CarriedState {
  safety: SafetyState;
  /** How long ago it was saved (ms). */
  elapsedMs: number;
  knownGood: Map<string, InterfaceConfiguration>;
}

/** Writes the safety state and the healthy configurations atomically. */
export function saveSafety(dir: string, scope: StateScope, safety: SafetyState, knownGood: ReadonlyMap<string, InterfaceConfiguration>): void {
  const interfaces: Record<string, { safety?: InterfaceSafetyState; knownGood?: StoredConfiguration }> = {};
  for (const [name, state] of Object.entries(safety.interfaces)) interfaces[name] = { safety: state };
  for (const [name, configuration] of knownGood) (interfaces[name] ??= {}).knownGood = storeConfiguration(configuration);
  writeStateFile(dir, FILE, { version: VERSION, scope, savedMonotonicMs: monotonicMs(), interfaces });
}

/** Reads what an earlier daemon of this boot and namespace saved; undefined if nothing applies. */
export function loadSafety(dir: string, scope: StateScope, warn: (message: string) => void): CarriedState | undefined {
  const raw = readStateFile(dir, FILE, warn);
  if (raw === undefined) return undefined;
  const parsed = v.safeParse(safetyFile, raw);
  if (!parsed.success) {
    warn(`${join(dir, FILE)}: ignored, not a safety state: ${firstIssue(parsed.issues)}`);
    return undefined;
  }
  if (!sameScope(scope, parsed.output.scope)) return undefined;
  const safety: SafetyState = { interfaces: {} };
  const knownGood = new Map<string, InterfaceConfiguration>();
  for (const [name, stored] of Object.entries(parsed.output.interfaces)) {
    if (stored.safety !== undefined) safety.interfaces[name] = stored.safety;
    if (stored.knownGood !== undefined) knownGood.set(name, loadConfiguration(stored.knownGood));
  }
  return { safety, elapsedMs: Math.max(0, monotonicMs() - parsed.output.savedMonotonicMs), knownGood };
}
