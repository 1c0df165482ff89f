/**
 * The daemon's journal of disruptive steps under way (src/actions/interruption.ts says why),
 * kept as journal.json in the state directory and written durably before each such step
 * begins its disruptive part. At start the daemon reads what a dead predecessor left there
 * (same boot, same namespace) and undoes it before it watches anything.
 */
import { join } from 'node:path';
import * as v from 'valibot';
import {
  InterruptionJournal, StoredConfiguration, UndoPlan, loadConfiguration, storeConfiguration,
} from '../actions/interruption';
import { StateScope, firstIssue, readStateFile, sameScope, storedConfigurationSchema, writeStateFile } from './state-files';

const FILE = 'journal.json';
const VERSION = 1;

const storedPlan = v.variant('kind', [
  v.object({
    kind: v.literal('link-up-and-replay'),
    configuration: storedConfigurationSchema,
  }),
  v.object({ kind: v.literal('ifup'), args: v.array(v.string()) }),
]);
const storedEntry = v.object({
  id: v.string(), iface: v.string(), action: v.string(), pid: v.pipe(v.number(), v.integer()), startedAt: v.string(), undo: storedPlan,
});
const journalFile = v.object({ version: v.literal(VERSION), scope: v.unknown(), entries: v.array(storedEntry) });

type StoredPlan = { kind: 'link-up-and-replay'; configuration: StoredConfiguration } | { kind: 'ifup'; args: string[] };

/** One step that began its disruptive part and has not ended. */
export interface JournalEntry {
  id: string;
  iface: string;
  action: string;
  /** The daemon that wrote it. */
  pid: number;
  startedAt: string;
  undo: UndoPlan;
}

const toStored = (plan: UndoPlan): StoredPlan => (plan.kind === 'ifup' ? plan : { kind: plan.kind, configuration: storeConfiguration(plan.configuration) });
const fromStored = (plan: StoredPlan): UndoPlan => (plan.kind === 'ifup' ? plan : { kind: plan.kind, configuration: loadConfiguration(plan.configuration) });

/** The file-backed {@link InterruptionJournal} (in memory only without a directory). */
export class ActionJournal implements InterruptionJournal {
  private readonly entries = new Map<string, { iface: string; action: string; pid: number; startedAt: string; undo: StoredPlan }>();

  constructor(private readonly dir: string | undefined, private readonly scope: StateScope) {}

  begin(iface: string, action: string, undo: UndoPlan): string {
    // node:crypto only here, at the first disruptive step: most daemons never take one.
    const id = (require('node:crypto') as typeof import('node:crypto')).randomUUID();
    this.entries.set(id, { iface, action, pid: process.pid, startedAt: new Date().toISOString(), undo: toStored(undo) });
    try {
      this.save();
    } catch (error) {
      // Without the entry a crash in the middle could not be undone: do not begin.
      this.entries.delete(id);
      throw new Error(`cannot write ${join(this.dir ?? '', FILE)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): not starting ${action} on ${iface}`);
    }
    return id;
  }

  end(id: string): void {
    if (!this.entries.delete(id)) return;
    try {
      this.save();
    } catch {
      // The step is over; a stale entry is undone harmlessly at the next start (its replay
      // adds only what is missing).
    }
  }

  /**
   * What a dead predecessor left undone in this scope (another boot's or namespace's entries
   * describe nothing that exists now). A corrupt journal is reported and ignored.
   */
  leftovers(warn: (message: string) => void): JournalEntry[] {
    if (this.dir === undefined) return [];
    const raw = readStateFile(this.dir, FILE, warn);
    if (raw === undefined) return [];
    const parsed = v.safeParse(journalFile, raw);
    if (!parsed.success) {
      warn(`${join(this.dir, FILE)}: ignored, not a journal: ${firstIssue(parsed.issues)}`);
      return [];
    }
    if (!sameScope(this.scope, parsed.output.scope)) return [];
    return parsed.output.entries.map((e) => ({ ...e, undo: fromStored(e.undo as StoredPlan) }));
  }

  /** Forgets the predecessor's entries (once undone) and writes this daemon's own. */
  reset(): void {
    this.save();
  }

  private save(): void {
    if (this.dir === undefined) return;
    writeStateFile(this.dir, FILE, {
      version: VERSION, scope: this.scope, entries: [...this.entries].map(([id, e]) => ({ id, ...e })),
    });
  }
}
