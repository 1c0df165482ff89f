/**
 * An episode's ladder: the waits (grace, settle, damping, backoff, hold-down, budget, parked
 * until the evidence changes), the climb over the steps that can fix the located fault, each
 * step's run within its time limit, causal verification, and cancellation. The health
 * judgment that starts and ends episodes lives in engine.ts; this file only acts through the
 * {@link EpisodeHost} the engine gives it.
 */
import { NethealError } from '../errors';
import type { ActionContext, ActionExecutor, StepResult, Verifier, VerifyContext } from './actions';
import type { Clock } from './clock';
import type { LadderStep } from './config';
import { FAULT_CLASSES, Fault, PATH_FAULTS } from './fault';
import type { HealthState } from './health';
import type { ActionEvent, AlertReason, HealthCause, PolicyEngineEvents, VerifyEvent, WaitReason } from './engine-events';
import { ClimbOutcome, DISRUPTIVE_BY_DEFAULT, IfaceRecord, PARKED, errorText, validResult } from './record';
import type { Evidence } from './evidence';

/** What the episode runner needs from the engine that owns the interfaces. */
export interface EpisodeHost {
  readonly clock: Clock;
  readonly dryRun: boolean;
  readonly verifier: Verifier | undefined;
  /** End of the start-up grace period (clock ms). */
  readonly graceEnd: number;
  readonly keepActions: number;
  /** The engine was closed. */
  readonly closed: boolean;
  executor(kind: string): ActionExecutor | undefined;
  /** The record is still the engine's record of its interface (not unwatched). */
  isCurrent(rec: IfaceRecord): boolean;
  locate(rec: IfaceRecord): { judged: Exclude<HealthState, 'recovering'>; fault: Fault | null };
  setState(rec: IfaceRecord, to: HealthState, cause: HealthCause, evidence: Evidence | null): void;
  alert(rec: IfaceRecord, reason: AlertReason, detail: string, untilMs: number | null, once?: boolean): void;
  recovered(rec: IfaceRecord, fault: Fault | null, action: string | null): void;
  parkKey(rec: IfaceRecord): string;
  emit<K extends keyof PolicyEngineEvents>(event: K, ...args: PolicyEngineEvents[K]): boolean;
}

/** Runs the episodes of the interfaces of one engine. */
export class EpisodeRunner {
  constructor(private readonly host: EpisodeHost) {}

  private current(rec: IfaceRecord, token: number): boolean {
    return rec.generation === token && this.host.isCurrent(rec);
  }

  /** Cancels the episode of an interface: waits end, verification ends, a running action is aborted. */
  cancel(rec: IfaceRecord): void {
    rec.generation += 1;
    if (rec.waitTimer !== null) {
      this.host.clock.clearTimeout(rec.waitTimer);
      rec.waitTimer = null;
    }
    const wake = rec.waitResolve;
    rec.waitResolve = null;
    wake?.(false);
    const verify = rec.verifyResolve;
    rec.verifyResolve = null;
    verify?.();
    rec.abort?.abort(new NethealError('NETHEAL_ERR_CLOSED', 'recovery cancelled'));
    rec.abort = null;
    rec.episodeActive = false;
    rec.phase = 'idle';
    rec.step = null;
    rec.waitingFor = null;
    rec.waitUntil = null;
  }

  startEpisode(rec: IfaceRecord): void {
    if (this.host.closed) return;
    rec.generation += 1;
    const token = rec.generation;
    rec.episodeActive = true;
    rec.episodeSince = this.host.clock.now();
    rec.episodeFault = rec.fault;
    rec.ranOnce.clear();
    this.episode(rec, token)
      .catch((err: unknown) => this.host.emit('error', err instanceof Error ? err : new Error(String(err))));
  }

  /** Marks the episode over, synchronously, so evidence arriving next is judged afresh. */
  private endEpisode(rec: IfaceRecord, token: number): void {
    if (rec.generation !== token) return;
    rec.episodeActive = false;
    rec.phase = 'idle';
    rec.step = null;
    rec.waitingFor = null;
    rec.waitUntil = null;
  }

  /** Resolves true when `untilMs` comes, false when cancelled first. */
  private wait(rec: IfaceRecord, token: number, what: WaitReason, untilMs: number): Promise<boolean> {
    if (!this.current(rec, token)) return Promise.resolve(false);
    rec.phase = 'waiting';
    rec.waitingFor = what;
    rec.waitUntil = untilMs;
    rec.parkKey = PARKED.includes(what) || what === 'hold-down' ? this.host.parkKey(rec) : null;
    rec.waitStopped = rec.evidence.disabled || rec.hold || rec.evidence.intentPending;
    return new Promise<boolean>((resolve) => {
      rec.waitResolve = resolve;
      if (Number.isFinite(untilMs)) {
        rec.waitTimer = this.host.clock.setTimeout(() => {
          rec.waitTimer = null;
          rec.waitResolve = null;
          resolve(this.current(rec, token));
        }, untilMs - this.host.clock.now());
      }
    });
  }

  /** Ends a wait early, as if its time had come (a parked episode whose evidence changed). */
  wake(rec: IfaceRecord): void {
    if (rec.waitTimer !== null) {
      this.host.clock.clearTimeout(rec.waitTimer);
      rec.waitTimer = null;
    }
    const resolve = rec.waitResolve;
    rec.waitResolve = null;
    resolve?.(true);
  }

  /** One down episode: waits for grace, damping and backoff, climbs, repeats until resolved. */
  private async episode(rec: IfaceRecord, token: number): Promise<void> {
    try {
      await this.episodeLoop(rec, token);
    } finally {
      this.endEpisode(rec, token);
    }
  }

  private async episodeLoop(rec: IfaceRecord, token: number): Promise<void> {
    let climbAt: number | null = null;
    for (;;) {
      if (!this.current(rec, token)) return;
      const now = this.host.clock.now();
      const { judged, fault } = this.host.locate(rec);
      if (judged !== 'down' || fault === null) {
        // Cleared while the loop was between waits (evidence arriving mid-step).
        this.endEpisode(rec, token);
        this.host.setState(rec, judged, 'not-verified', null);
        this.host.recovered(rec, rec.episodeFault, null);
        return;
      }
      rec.episodeFault = fault;
      if (rec.evidence.disabled) {
        this.host.alert(rec, 'admin-down', `${rec.name} is ${rec.evidence.removed ? 'removed' : `down as its owner (${rec.evidence.intent?.owner}: ${rec.evidence.intent?.source}) wants`}; not acting`, null);
        if (!(await this.wait(rec, token, 'admin-down', Infinity))) return;
        continue;
      }
      rec.alerted.delete('admin-down');
      if (rec.hold) {
        this.host.alert(rec, 'held', `${rec.name} is held for maintenance: watching, never acting`, null);
        if (!(await this.wait(rec, token, 'held', Infinity))) return;
        continue;
      }
      if (rec.evidence.intentPending) {
        this.host.alert(rec, 'intent-pending', `${rec.name} is administratively down; waiting for its owner's intent before acting`, null);
        if (!(await this.wait(rec, token, 'intent', Infinity))) return;
        continue;
      }
      rec.alerted.delete('intent-pending');
      if (rec.policy.ladder.length === 0) {
        this.host.alert(rec, 'no-ladder', `${rec.name} is down and its ladder is empty`, null);
        if (!(await this.wait(rec, token, 'alert-only', Infinity))) return;
        continue;
      }
      if (now < this.host.graceEnd) {
        this.host.alert(rec, 'grace-period', `${rec.name} is down during the start-up grace period; no action before ${this.host.graceEnd} ms`, this.host.graceEnd);
        if (!(await this.wait(rec, token, 'grace-period', this.host.graceEnd))) return;
        rec.alerted.delete('grace-period');
        continue;
      }
      if (PATH_FAULTS.includes(fault.class) && now < rec.settleUntil) {
        // The probes a link blip cost while the gateway is re-learnt: the same incident.
        if (!(await this.wait(rec, token, 'settling', rec.settleUntil))) return;
        continue;
      }
      const suppressedUntil = rec.damper.suppressedUntil(now);
      if (suppressedUntil !== null) {
        this.host.alert(rec, 'suppressed',
          `${rec.name} flaps (penalty ${rec.damper.penaltyAt(now).toFixed(0)}, ${rec.damper.flapCount} flaps); no action before ${suppressedUntil} ms`,
          suppressedUntil);
        if (!(await this.wait(rec, token, 'suppressed', suppressedUntil))) return;
        rec.alerted.delete('suppressed');
        continue;
      }
      if (climbAt === null && rec.backoff.attempts > 0) {
        // Always wait on the clock before a repeat climb, even for a zero delay: the loop
        // then yields to the event loop between climbs.
        climbAt = now + rec.backoff.draw();
        if (!(await this.wait(rec, token, 'backoff', climbAt))) return;
        continue;
      }
      climbAt = null;
      const before = rec.verifiableRuns;
      const outcome = await this.climb(rec, token, fault);
      if (!this.current(rec, token) || outcome === 'verified' || outcome === 'cancelled' || outcome === 'resolved') return;
      if (outcome === 'reclassified') {
        // Progress (one class cleared, another remains) or the fault moved: climb again for
        // the new class at once; backoff is for climbs that changed nothing.
        rec.backoff.reset();
        continue;
      }
      // Only a step that can change the evidence makes another climb worth it.
      const acted = rec.verifiableRuns > before;
      const again = this.host.locate(rec);
      if (outcome === 'interrupted') {
        // Suppressed mid-climb: back to `down`; the loop alerts and waits for reuse.
        this.host.setState(rec, again.judged, 'not-verified', null);
        continue;
      }
      if (!acted) {
        // No step could (or may yet) act on this class: alert, and wait for the evidence to change.
        this.host.alert(rec, 'cannot-fix',
          `${rec.name}: ${fault.class} fault (${fault.because.join(', ')}): no step of ${rec.policy.ladder.map((st) => st.action).join(' > ')} can fix it; alerting only`,
          null);
        this.host.setState(rec, again.judged, 'not-verified', null);
        if (!(await this.wait(rec, token, 'alert-only', Infinity))) return;
        rec.alerted.delete('cannot-fix');
        continue;
      }
      this.host.alert(rec, 'ladder-exhausted',
        `${rec.name}: no rung of ${rec.policy.ladder.map((st) => st.action).join(' > ')} verified for the ${fault.class} fault (${rec.reasons.join(', ') || 'no bad evidence left'})`,
        null, false);
      this.host.setState(rec, again.judged, 'not-verified', null);
    }
  }

  private context(rec: IfaceRecord, index: number, step: LadderStep, fault: Fault, signal: AbortSignal): ActionContext {
    return {
      iface: rec.name, step: index + 1, kind: step.action, attempt: rec.backoff.attempts, state: 'down',
      reasons: [...rec.reasons], fault: { class: fault.class, because: [...fault.because] }, faultSinceMs: rec.faultSince,
      episodeSinceMs: rec.episodeSince,
      evidence: rec.evidence.snapshot(),
      options: { ...(step.options ?? {}) }, timeoutMs: step.timeoutMs ?? rec.policy.actionTimeoutMs, signal,
      dryRun: this.host.dryRun, atMs: this.host.clock.now(),
    };
  }

  /** Reports a step; `ran` says whether an executor really ran (or would have, dry). */
  private record(rec: IfaceRecord, event: ActionEvent, ran: boolean): void {
    if (ran) rec.totalActions += 1;
    if (this.host.keepActions > 0) {
      rec.lastActions.push(event);
      if (rec.lastActions.length > this.host.keepActions) rec.lastActions.shift();
    }
    this.host.emit('action', event);
  }

  /**
   * Re-reads the evidence in the middle of a climb: null while the climb may go on, else how
   * it ends (`resolved` when the fault cleared without a credited step, `reclassified` when
   * the fault moved to another class).
   */
  private drift(rec: IfaceRecord, token: number, fault: Fault): ClimbOutcome | null {
    const now = this.host.locate(rec);
    if (now.judged !== 'down' || now.fault === null) {
      this.endEpisode(rec, token);
      this.host.setState(rec, now.judged, 'not-verified', null);
      this.host.recovered(rec, fault, null);
      return 'resolved';
    }
    return now.fault.class === fault.class ? null : 'reclassified';
  }

  /** One climb of the ladder for one fault class, bottom rung first. */
  private async climb(rec: IfaceRecord, token: number, fault: Fault): Promise<ClimbOutcome> {
    rec.backoff.record();
    const attempt = rec.backoff.attempts;
    const ladder = rec.policy.ladder;
    const skip = (i: number, step: LadderStep, detail: string): void => {
      const at = this.host.clock.now();
      this.record(rec, {
        iface: rec.name, step: i + 1, kind: step.action, attempt, fault: fault.class, dryRun: this.host.dryRun,
        result: { status: 'skipped', detail }, startedAtMs: at, durationMs: 0,
      }, false);
    };
    for (let i = 0; i < ladder.length; i += 1) {
      const step = ladder[i] as LadderStep;
      rec.step = i + 1;
      // Flaps during this climb may have crossed the suppress threshold: stop climbing.
      if (rec.damper.isSuppressed(this.host.clock.now())) return 'interrupted';
      const drifted = this.drift(rec, token, fault);
      if (drifted !== null) return drifted;
      const executor = this.host.executor(step.action);
      if (executor === undefined) {
        this.host.alert(rec, 'unknown-action', `${rec.name}: ladder step ${i + 1} names "${step.action}", which no executor provides`, null, false);
        this.record(rec, {
          iface: rec.name, step: i + 1, kind: step.action, attempt, fault: fault.class, dryRun: this.host.dryRun,
          result: { status: 'failed', detail: `no executor registered for "${step.action}"` }, startedAtMs: this.host.clock.now(), durationMs: 0,
        }, false);
        continue;
      }
      const fixes = step.fixes ?? executor.fixes ?? FAULT_CLASSES;
      if (!fixes.includes(fault.class)) {
        skip(i, step, `cannot fix a ${fault.class} fault`);
        continue;
      }
      const verifiable = executor.verifiable !== false;
      if (!verifiable && rec.ranOnce.has(i)) continue;
      // Hold-down: the fault must have lasted `afterMs` before this step may run.
      const afterMs = step.afterMs ?? executor.afterMs?.[fault.class] ?? 0;
      if (this.host.clock.now() < rec.faultSince + afterMs) {
        if (!(await this.wait(rec, token, 'hold-down', rec.faultSince + afterMs))) return 'cancelled';
        i -= 1; // look at this step again with the evidence as it is now
        continue;
      }
      let abort = new AbortController();
      let ctx = this.context(rec, i, step, fault, abort.signal);
      if (executor.applies) {
        let applies: boolean;
        try {
          applies = await executor.applies(ctx);
        } catch (err) {
          applies = false;
          this.host.alert(rec, 'action-error', `${rec.name}: ${step.action}.applies() threw: ${errorText(err)}`, null, false);
        }
        if (!this.current(rec, token)) return 'cancelled';
        if (!applies) {
          skip(i, step, 'does not apply');
          continue;
        }
      }
      // Budget: alert-only until the window frees a slot, then resume at this rung.
      for (;;) {
        const now = this.host.clock.now();
        const nextFree = rec.budget.nextFreeAtMs(now);
        if (nextFree === null) break;
        const again = this.drift(rec, token, fault);
        if (again !== null) return again;
        this.host.setState(rec, 'down', 'not-verified', null);
        this.host.alert(rec, 'budget-exhausted',
          `${rec.name}: ${rec.policy.budget.maxActions} actions in ${rec.policy.budget.windowMs} ms spent; alert only` +
          (Number.isFinite(nextFree) ? ` until ${nextFree} ms` : ''), nextFree);
        if (!(await this.wait(rec, token, 'budget-exhausted', nextFree))) return 'cancelled';
        rec.alerted.delete('budget-exhausted');
      }
      if (!this.current(rec, token)) return 'cancelled';
      const late = this.drift(rec, token, fault);
      if (late !== null) return late;
      rec.phase = 'running';
      rec.waitingFor = null;
      rec.waitUntil = null;
      abort = new AbortController();
      rec.abort = abort;
      ctx = this.context(rec, i, step, fault, abort.signal);
      const startedAtMs = ctx.atMs;
      rec.budget.record(this.host.clock.now());
      const budgetStamp = this.host.clock.now();
      this.host.setState(rec, 'recovering', 'action', null);
      rec.disrupting = !this.host.dryRun && (executor.disruptive ?? DISRUPTIVE_BY_DEFAULT.includes(executor.kind));
      const result = this.host.dryRun
        ? { status: 'dry-run' as const, detail: `would run ${step.action} on ${rec.name}` }
        : await this.run(rec, executor, ctx, abort);
      rec.disrupting = false;
      if (rec.abort === abort) rec.abort = null;
      if (result.status === 'skipped') rec.budget.refund(budgetStamp);
      else if (verifiable) rec.verifiableRuns += 1;
      this.record(rec, {
        iface: rec.name, step: i + 1, kind: step.action, attempt, fault: fault.class, dryRun: this.host.dryRun, result, startedAtMs,
        durationMs: this.host.clock.now() - startedAtMs,
      }, result.status !== 'skipped');
      if (!this.current(rec, token)) return 'cancelled';
      if (!verifiable) {
        // It cannot bring the path back: no wait, no credit; the ladder goes on.
        rec.ranOnce.add(i);
        rec.phase = 'idle';
        this.host.setState(rec, 'down', 'not-verified', null);
        continue;
      }
      if (result.status === 'ok' || result.status === 'dry-run') {
        const verified = await this.verify(rec, token, i, step, attempt, fault);
        if (!this.current(rec, token)) return 'cancelled';
        if (verified) {
          const after = this.host.locate(rec);
          if (after.judged === 'down' && after.fault !== null && after.fault.class !== fault.class && !this.host.verifier) {
            // This class cleared, another fault remains (a link brought up still lacks its
            // route): credited for its part; the episode goes on with the new class.
            this.host.emit('recovered', {
              iface: rec.name, fault: fault.class, by: 'action', action: step.action, sinceMs: rec.episodeSince, atMs: this.host.clock.now(),
            });
            rec.phase = 'idle';
            this.host.setState(rec, 'down', 'not-verified', null);
            return 'reclassified';
          }
          // A verifier may vouch while evidence still says down; trust it until evidence changes.
          this.endEpisode(rec, token);
          this.host.setState(rec, after.judged === 'down' ? 'healthy' : after.judged, 'verified', null);
          this.host.recovered(rec, fault, step.action);
          if (after.judged === 'down' && !this.host.verifier) {
            // Verified by evidence, then down again before the climb resumed: a new episode.
            this.host.setState(rec, 'down', 'evidence', null);
            this.startEpisode(rec);
          }
          return 'verified';
        }
      }
    }
    rec.phase = 'idle';
    rec.step = null;
    return 'exhausted';
  }

  /** Runs an executor with the step's time limit. Never throws. */
  private run(rec: IfaceRecord, executor: ActionExecutor, ctx: ActionContext, abort: AbortController): Promise<StepResult> {
    return new Promise<StepResult>((resolve) => {
      let settled = false;
      const timer = this.host.clock.setTimeout(() => {
        if (settled) return;
        settled = true;
        abort.abort(new NethealError('NETHEAL_ERR_TIMEOUT', `${ctx.kind} on ${ctx.iface}: no result within ${ctx.timeoutMs} ms`));
        resolve({ status: 'timeout', detail: `no result within ${ctx.timeoutMs} ms` });
      }, ctx.timeoutMs);
      const finish = (result: StepResult): void => {
        if (settled) return;
        settled = true;
        this.host.clock.clearTimeout(timer);
        resolve(result);
      };
      // cancel() (close/unwatch/recovery) aborts: stop waiting for the executor and its timer.
      abort.signal.addEventListener('abort', () => finish({ status: 'failed', detail: 'cancelled' }), { once: true });
      Promise.resolve()
        .then(() => executor.run(ctx))
        .then((r) => {
          if (validResult(r)) {
            finish({ status: r.status, ...(r.detail !== undefined ? { detail: r.detail } : {}), ...(r.data !== undefined ? { data: r.data } : {}) });
          } else {
            if (!settled) this.host.alert(rec, 'action-error', `${rec.name}: ${ctx.kind} returned ${JSON.stringify(r)}, not an ActionResult`, null, false);
            finish({ status: 'failed', detail: 'executor returned an invalid result' });
          }
        }, (err: unknown) => {
          if (!settled && !abort.signal.aborted) this.host.alert(rec, 'action-error', `${rec.name}: ${ctx.kind} threw: ${errorText(err)}`, null, false);
          finish({ status: 'failed', detail: errorText(err) });
        });
    });
  }

  /**
   * Verifies a step within its window, by the verifier or by evidence. By evidence, the step
   * is verified (and credited) when the fault class it was run for is gone: the fault
   * cleared, or moved on to another class.
   */
  private verify(rec: IfaceRecord, token: number, index: number, step: LadderStep, attempt: number, fault: Fault): Promise<boolean> {
    const windowMs = step.verifyTimeoutMs ?? rec.policy.verifyTimeoutMs;
    const startedAtMs = this.host.clock.now();
    rec.phase = 'verifying';
    const report = (verified: boolean, by: VerifyEvent['by'], detail?: string): boolean => {
      if (this.current(rec, token)) {
        this.host.emit('verify', {
          iface: rec.name, step: index + 1, kind: step.action, attempt, verified, by, credited: verified, fault: fault.class,
          ...(detail !== undefined ? { detail } : {}), startedAtMs, durationMs: this.host.clock.now() - startedAtMs,
        });
      }
      return verified;
    };
    const cleared = (): boolean => {
      const now = this.host.locate(rec);
      return now.judged !== 'down' || now.fault === null || now.fault.class !== fault.class;
    };
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const abort = new AbortController();
      const finish = (verified: boolean, by: VerifyEvent['by'], detail?: string): void => {
        if (settled) return;
        settled = true;
        this.host.clock.clearTimeout(timer);
        rec.verifyResolve = null;
        if (!abort.signal.aborted) abort.abort();
        resolve(report(verified, by, detail));
      };
      const timer = this.host.clock.setTimeout(() => finish(false, 'timeout', `not verified within ${windowMs} ms`), windowMs);
      if (this.host.verifier) {
        const ctx: VerifyContext = {
          iface: rec.name, step: index + 1, kind: step.action, attempt, windowMs, signal: abort.signal,
          evidence: rec.evidence.snapshot(),
        };
        const verifier = this.host.verifier;
        // Evidence does not end verification when a verifier decides; cancel() aborts rec.abort.
        rec.verifyResolve = null;
        rec.abort = abort;
        Promise.resolve()
          .then(() => verifier(rec.name, ctx))
          .then((ok) => finish(ok === true, 'verifier'), (err: unknown) => finish(false, 'verifier', `verifier threw: ${errorText(err)}`));
        abort.signal.addEventListener('abort', () => finish(false, 'timeout', 'cancelled'), { once: true });
      } else {
        // Evidence that moves the fault ends verification (reevaluate() calls this); so does cancel().
        rec.verifyResolve = () => {
          if (!this.current(rec, token)) finish(false, 'timeout', 'cancelled');
          else if (cleared()) finish(true, 'evidence');
        };
        if (cleared()) finish(true, 'evidence');
      }
    });
  }
}
