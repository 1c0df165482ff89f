/**
 * The policy layer: health states, the recovery ladder and its manners (backoff with full
 * jitter, flap damping, action budget, grace period), pure and driven by an injectable clock.
 */
export * from './clock';
export * from './config';
export * from './backoff';
export * from './damping';
export * from './budget';
export * from './evidence';
export * from './health';
export * from './actions';
export * from './engine';
