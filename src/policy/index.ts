/**
 * The policy layer: health states, the recovery ladder and its manners (backoff with full
 * jitter, flap damping, action budget, grace period), pure and driven by an injectable clock.
 * It decides; injected executors act.
 *
 * Wiring it into a daemon or a service:
 *
 * @example
 * const engine = new PolicyEngine({
 *   config: cfg.policy,                       // PolicyConfig (defaults: DEFAULT_*)
 *   interfaces: ['eth0'],                     // watched besides cfg.policy.interfaces
 *   actions: [killSockets, managerReapply, linkBounce, hook, myDrainPool],
 *   dryRun: argv.dryRun,
 * });
 * engine.on('health', (e) => log.info(e));   // {iface|group, from, to, evidence, reasons, cause, atMs}
 * engine.on('action', (e) => log.info(e));   // {iface, step, kind, attempt, fault, dryRun, result, durationMs}
 * engine.on('alert', (e) => log.warn(e));    // {iface, reason, detail, untilMs, atMs}
 * monitor.on('event', (ev) => {
 *   for (const e of evidenceFromMonitorEvent(ev, (i) => names.get(i))) engine.observe(e);
 * });
 * prober.on('group-down', (g) => engine.observe({ kind: 'probe-group', group: g.name, iface: g.iface, up: false, reason: g.reason }));
 * prober.on('target-down', (t) => engine.observe({ kind: 'probe', target: t.target, group: t.group, ok: false }));
 * statusSocket.handle('status', () => engine.snapshot());
 * // on shutdown: engine.close();
 */
export * from './clock';
export * from './config';
export * from './backoff';
export * from './damping';
export * from './budget';
export * from './evidence';
export * from './health';
export * from './fault';
export * from './intent';
export * from './actions';
export * from './engine';
