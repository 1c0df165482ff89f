/**
 * The daemon's configuration file (JSON, default /etc/netheal/config.json), validated with
 * zod: every error names the field path and the problem, and a bad file changes nothing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { NethealError } from '../errors';
import { checkHookPath } from '../actions/hook';
import { FAULT_CLASSES } from '../policy/fault';
import { parseListen } from './metrics';
import { BUILTIN_ACTIONS, DEFAULT_BACKOFF, DOWN_EVIDENCE_KINDS, InterfacePolicyConfig, PolicyConfig, validatePolicyConfig } from '../policy/config';

/** The only directory netheal creates for its status socket. */
export const STATUS_DIR = '/run/netheal';

/** Where the daemon looks when --config is not given. */
export const DEFAULT_CONFIG_PATH = '/etc/netheal/config.json';

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

const ladderStep = z.union([
  z.string().min(1),
  z.strictObject({
    action: z.string().min(1),
    timeoutMs: ms(1, 3_600_000).optional(),
    verifyTimeoutMs: ms(0, 3_600_000).optional(),
    /** Run only once the fault has lasted this long. */
    afterMs: ms(0, 86_400_000).optional(),
    /** The fault classes this step may run for (default: what its action can fix). */
    fixes: z.array(z.enum(FAULT_CLASSES as unknown as [string, ...string[]])).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
  }),
]);

const policyFields = {
  ladder: z.array(ladderStep).optional(),
  backoff: z.strictObject({
    initialMs: ms(0, 86_400_000).optional(),
    maxMs: ms(0, 86_400_000).optional(),
    multiplier: z.number().min(1).max(100).optional(),
    resetAfterMs: ms(0, 86_400_000).optional(),
  }).optional(),
  damping: z.strictObject({
    penaltyPerFlap: z.number().min(0).optional(),
    halfLifeMs: ms(1, 86_400_000).optional(),
    suppressThreshold: z.number().min(0).optional(),
    reuseThreshold: z.number().min(0).optional(),
    maxSuppressMs: ms(0, 86_400_000).optional(),
  }).optional(),
  budget: z.strictObject({
    maxActions: z.number().int().min(0).max(1_000_000).optional(),
    windowMs: ms(1, 86_400_000 * 7).optional(),
  }).optional(),
  verifyTimeoutMs: ms(0, 3_600_000).optional(),
  actionTimeoutMs: ms(1, 3_600_000).optional(),
  downOn: z.array(z.enum(DOWN_EVIDENCE_KINDS as unknown as [string, ...string[]])).optional(),
  requiredAddresses: z.array(z.string().refine((a) => isIP(a) !== 0, 'must be an IP address')).optional(),
  settleMs: ms(0, 600_000).optional(),
};

const probeTarget = z.string().refine((t) => t === 'gateway' || isIP(t) !== 0, 'must be "gateway" or an IPv4/IPv6 address');

const probeSchema = z.strictObject({
  /** "gateway" follows the default route's gateway through this interface. */
  targets: z.array(probeTarget).min(1),
  intervalMs: ms(10, 3_600_000).default(1000),
  /** A probe unanswered this long counts as lost in statistics; it does not decide down. */
  timeoutMs: ms(1, 60_000).default(1000),
  /** BFD's detect multiplier: a target is down after multiplier x intervalMs without a reply. */
  multiplier: z.number().int().min(1).max(255).default(3),
  /** Consecutive replies before a down target is up again. */
  recovery: z.number().int().min(1).max(255).default(3),
  /** The group is down when fewer than this many targets are up. */
  quorum: z.number().int().min(1).optional(),
}).refine((p) => p.quorum === undefined || p.quorum <= p.targets.length, {
  message: 'quorum cannot exceed the number of targets', path: ['quorum'],
});

const interfaceSchema = z.strictObject({
  probe: probeSchema.optional(),
  hook: z.strictObject({ path: z.string().startsWith('/', 'must be an absolute path'), timeoutMs: ms(1, 3_600_000).default(30_000) }).optional(),
  /** Poll carrier of this device (default: on for unstacked devices: NICs, taps, bridges). */
  carrierSync: z.boolean().optional(),
  ...policyFields,
});

/** The schema of the whole file. */
export const configSchema = z.strictObject({
  /** Namespace (name under /run/netns or a path) the daemon watches and acts in. */
  netns: z.string().min(1).optional(),
  /** Watched interfaces by name. Empty or absent: the interfaces of the default routes. */
  interfaces: z.record(z.string().refine(isValidInterfaceName,
    'must be a kernel interface name: 1-15 bytes, no "/", ":" or white space, not "." or ".."'), interfaceSchema).default({}),
  policy: z.strictObject({
    graceMs: ms(0, 86_400_000).optional(),
    defaults: z.strictObject(policyFields).optional(),
  }).default({}),
  killSockets: z.strictObject({
    includeTimeWait: z.boolean().default(false),
    /**
     * Sockets on a removed address are destroyed once it has stayed away this long: a
     * manager's remove-and-re-add (networkd's reconfigure: 2-3 ms) or netheal's own repair must not trip it.
     */
    addressGoneMs: ms(0, 600_000).default(1_000),
    /** Sockets stuck on a dead path are destroyed once it has been dead this long. */
    pathDeadMs: ms(0, 86_400_000).default(10_000),
  }).default({ includeTimeWait: false, addressGoneMs: 1_000, pathDeadMs: 10_000 }),
  managers: z.strictObject({
    ifupdown: z.strictObject({
      interfaces: z.string().optional(),
      stateDir: z.string().optional(),
      options: z.array(z.string()).optional(),
    }).optional(),
    networkScriptsDir: z.string().optional(),
  }).default({}),
  carrierSyncIntervalMs: ms(5, 60_000).default(100),
  status: z.strictObject({ socket: z.string().startsWith('/') }).optional(),
  metrics: z.strictObject({ listen: z.string().min(1) }).optional(),
  log: z.strictObject({
    format: z.enum(['journal', 'text', 'json']).optional(),
    level: z.enum(['error', 'warning', 'notice', 'info', 'debug']).default('info'),
  }).default({ level: 'info' }),
});

/** A validated configuration. */
export type DaemonConfig = z.infer<typeof configSchema>;
/** A watched interface's settings. */
export type InterfaceConfig = z.infer<typeof interfaceSchema>;
export type ProbeConfig = z.infer<typeof probeSchema>;

/** The kernel's rule for device names (net/core/dev.c dev_valid_name). */
export function isValidInterfaceName(name: string): boolean {
  const bytes = Buffer.byteLength(name);
  return bytes >= 1 && bytes <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/**
 * Rules the schema cannot state: every ladder step names an action that exists, a ladder
 * that names `hook` has a hook, no ladder is empty, backoff's first delay is not above its
 * cap, the listen address parses, the status socket's directory exists (netheal creates
 * only /run/netheal). Returns every problem found, each naming its field.
 */
function crossFieldProblems(config: DaemonConfig, actions: readonly string[]): string[] {
  const problems: string[] = [];
  const checkLadder = (ladder: unknown[] | undefined, at: string, hasHook: boolean | null): void => {
    if (ladder === undefined) return;
    if (ladder.length === 0) problems.push(`${at}: must have at least one step (to keep netheal from acting, hold the interface instead)`);
    ladder.forEach((step, i) => {
      const action = typeof step === 'string' ? step : (step as { action: string }).action;
      if (!actions.includes(action)) problems.push(`${at}[${i}]: unknown action ${JSON.stringify(action)} (one of ${actions.join(', ')})`);
      else if (action === BUILTIN_ACTIONS.HOOK && hasHook === false) problems.push(`${at}[${i}]: names "hook" but the interface has no hook configured`);
    });
  };
  const checkBackoff = (backoff: { initialMs?: number; maxMs?: number } | undefined, at: string): void => {
    const initial = backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    const max = backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
    if (backoff !== undefined && initial > max) problems.push(`${at}.initialMs: ${initial} is above maxMs ${max}`);
  };
  checkLadder(config.policy.defaults?.ladder, 'policy.defaults.ladder', null);
  checkBackoff(config.policy.defaults?.backoff, 'policy.defaults.backoff');
  for (const [name, iface] of Object.entries(config.interfaces)) {
    checkLadder(iface.ladder, `interfaces.${name}.ladder`, iface.hook !== undefined);
    checkBackoff(iface.backoff === undefined ? undefined : { ...config.policy.defaults?.backoff, ...iface.backoff }, `interfaces.${name}.backoff`);
  }
  if (config.metrics !== undefined) {
    try {
      parseListen(config.metrics.listen);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (config.status !== undefined) {
    const dir = dirname(config.status.socket);
    if (dir !== STATUS_DIR && !existsSync(dir)) problems.push(`status.socket: directory ${dir} does not exist (netheal creates only ${STATUS_DIR})`);
  }
  return problems;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '') || '(top level)';
}

/** The policy engine's view of a config. */
export function policyConfigOf(config: DaemonConfig): PolicyConfig {
  const interfaces: Record<string, InterfacePolicyConfig> = {};
  for (const [name, iface] of Object.entries(config.interfaces)) {
    const { probe: _p, hook: _h, carrierSync: _c, ...policy } = iface;
    interfaces[name] = policy as InterfacePolicyConfig;
  }
  return { graceMs: config.policy.graceMs, defaults: config.policy.defaults as InterfacePolicyConfig | undefined, interfaces };
}

/**
 * Validates parsed JSON. Throws NETHEAL_ERR_CONFIG naming the field path of the first
 * problems, e.g. `interfaces.eth0.probe.intervalMs: Too small: expected number to be >=10`.
 */
export function validateConfig(raw: unknown, source = 'config', options: { actions?: readonly string[] } = {}): DaemonConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.slice(0, 5).map((issue) => {
      const keys = (issue as { keys?: string[] }).keys;
      const at = formatPath(issue.path);
      // A bad record key (an interface name) carries its own reason one level down.
      const inner = issue.code === 'invalid_key' ? (issue as { issues?: { message: string }[] }).issues?.[0]?.message : undefined;
      return keys?.length ? `${at}: unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}` : `${at}: ${inner ?? issue.message}`;
    });
    throw new NethealError('NETHEAL_ERR_CONFIG', `${source}: invalid configuration: ${problems.join('; ')}`);
  }
  const config = result.data;
  const crossField = crossFieldProblems(config, [...Object.values(BUILTIN_ACTIONS), ...(options.actions ?? [])]);
  if (crossField.length > 0) throw new NethealError('NETHEAL_ERR_CONFIG', `${source}: invalid configuration: ${crossField.join('; ')}`);
  // Checks zod cannot express on its own: cross-field policy rules and the hook files.
  try {
    validatePolicyConfig(policyConfigOf(config));
  } catch (error) {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${source}: invalid configuration: ${(error as Error).message.replace(/^policy\.interfaces\./, 'interfaces.')}`);
  }
  for (const [name, iface] of Object.entries(config.interfaces)) {
    if (iface.hook !== undefined) {
      try {
        checkHookPath(iface.hook.path, `interfaces.${name}.hook.path`);
      } catch (error) {
        throw new NethealError('NETHEAL_ERR_CONFIG', `${source}: invalid configuration: ${(error as Error).message}`);
      }
    }
  }
  return config;
}

/** Reads and validates a config file. A missing default file yields undefined; any other problem throws. */
export function loadConfig(path: string, { optional = false } = {}): DaemonConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NethealError('NETHEAL_ERR_CONFIG', `${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new NethealError('NETHEAL_ERR_CONFIG', `${path}: not valid JSON: ${(error as Error).message}`);
  }
  return validateConfig(raw, path);
}
