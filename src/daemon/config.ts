/**
 * The daemon's configuration file (JSON, default /etc/netheal/config.json) and its drop-in
 * directory (conf.d/*.json next to it, merged in name order), validated with zod: every
 * problem names its file and field path, all are reported at once, and a bad file changes
 * nothing. `netheal config check` and the daemon (start and reload) share checkConfig().
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { NethealError } from '../errors';
import { resolveNetns } from '../netns';
import { checkHookPath } from '../actions/hook';
import { FAULT_CLASSES } from '../policy/fault';
import { parseListen } from './metrics';
import { parseStreamTarget } from '../monitor/stream-probe';
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

/** A string target's problem, or null: "gateway", an IP address, tcp://A:P or http://A[:P]/path. */
function stringTargetProblem(target: string): string | null {
  if (target === 'gateway' || isIP(target) !== 0) return null;
  try {
    if (parseStreamTarget(target) !== null) return null;
  } catch (error) {
    return (error as Error).message;
  }
  return 'must be "gateway", an IPv4/IPv6 address, tcp://ADDRESS:PORT or http(s)://ADDRESS[:PORT]/PATH';
}

/** An ICMP, TCP or HTTP target (stream-probe.ts), or an HTTP target with expectations. */
const probeTarget = z.union([
  z.string().superRefine((target, ctx) => {
    const problem = stringTargetProblem(target);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  }),
  z.strictObject({
    http: z.string(),
    expectStatus: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).optional(),
    expectBody: z.string().min(1).optional(),
    serverName: z.string().min(1).max(253).optional(),
    insecure: z.boolean().optional(),
  }).superRefine((target, ctx) => {
    try {
      if (parseStreamTarget(target)?.kind !== 'http') ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL', path: ['http'] });
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message, path: ['http'] });
    }
  }),
]);

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

/** One way out of the host: an interface and the gateway behind it (listed most preferred first). */
const uplinkSchema = z.strictObject({
  iface: z.string().refine(isValidInterfaceName, 'must be a kernel interface name'),
  gateway: z.string().refine((g) => isIP(g) === 4, 'must be an IPv4 address'),
  /** What proves the path: the gateway by default; farther targets catch losses beyond it. */
  targets: z.array(z.string().refine((t) => isIP(t) === 4, 'must be an IPv4 address')).min(1).optional(),
});

/** Defaults of `failover.tcpEvidence` (see docs/design.md for the rule). */
const TCP_EVIDENCE_DEFAULTS = {
  enabled: true, fastIntervalMs: 100, idleIntervalMs: 2_000, stallMs: 500, minSegments: 2, minRetransmits: 2, clearMs: 5_000,
};

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
  /**
   * Two or more uplinks, most preferred first: netheal keeps its own default route (metric
   * `failover.metric`, below the managers') through the best healthy one (see
   * src/daemon/uplinks.ts).
   */
  uplinks: z.array(uplinkSchema).min(2, 'needs at least two uplinks to choose between').optional(),
  failover: z.strictObject({
    metric: z.number().int().min(0).max(0xffffffff).default(1),
    /** How long a more preferred uplink must stay healthy before traffic moves back (ms). */
    holdUpMs: ms(0, 3_600_000).default(5_000),
    intervalMs: ms(10, 60_000).default(100),
    timeoutMs: ms(1, 60_000).optional(),
    multiplier: z.number().int().min(1).max(255).default(3),
    recovery: z.number().int().min(1).max(255).default(3),
    /**
     * Passive evidence from TCP (src/policy/tcp-evidence.ts): an uplink whose established
     * sockets have received nothing for `stallMs` while sending `minSegments` segments, of
     * which `minRetransmits` were retransmitted, counts as failed, as if its probes had failed.
     */
    tcpEvidence: z.strictObject({
      enabled: z.boolean().default(true),
      /** Polling while the uplink carries traffic, and while it does not. */
      fastIntervalMs: ms(10, 10_000).default(100),
      idleIntervalMs: ms(100, 600_000).default(2_000),
      stallMs: ms(50, 600_000).default(500),
      minSegments: z.number().int().min(1).max(100_000).default(2),
      minRetransmits: z.number().int().min(1).max(100_000).default(2),
      /** A dead verdict with nothing to contradict it (its sockets moved away) is dropped after this. */
      clearMs: ms(0, 86_400_000).default(5_000),
    }).default(TCP_EVIDENCE_DEFAULTS),
  }).default({ metric: 1, holdUpMs: 5_000, intervalMs: 100, multiplier: 3, recovery: 3, tcpEvidence: TCP_EVIDENCE_DEFAULTS }),
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
  const seen = new Set<string>();
  (config.uplinks ?? []).forEach((u, i) => {
    const key = `${u.iface} via ${u.gateway}`;
    if (seen.has(key)) problems.push(`uplinks[${i}]: ${key} is listed twice`);
    seen.add(key);
  });
  const tcp = config.failover.tcpEvidence;
  if (tcp.fastIntervalMs > tcp.idleIntervalMs) {
    problems.push(`failover.tcpEvidence.fastIntervalMs: ${tcp.fastIntervalMs} is above idleIntervalMs ${tcp.idleIntervalMs}`);
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

/** One problem with a configuration: the text names the field; `path` is its location when known. */
interface Problem {
  text: string;
  path?: ReadonlyArray<PropertyKey>;
}

/**
 * Every problem with parsed JSON, in one pass: the schema's (all of them), then, once the
 * schema holds, the cross-field rules, the policy rules and the hook files.
 */
function configProblems(raw: unknown, options: { actions?: readonly string[] } = {}): { config?: DaemonConfig; problems: Problem[] } {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue): Problem => {
      const keys = (issue as { keys?: string[] }).keys;
      const at = formatPath(issue.path);
      // A bad record key (an interface name) carries its own reason one level down.
      const inner = issue.code === 'invalid_key' ? (issue as { issues?: { message: string }[] }).issues?.[0]?.message : undefined;
      if (keys?.length) {
        return { text: `${at}: unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}`, path: [...issue.path, keys[0]!] };
      }
      return { text: `${at}: ${inner ?? issue.message}`, path: issue.path };
    });
    return { problems };
  }
  const config = result.data;
  const problems: Problem[] = crossFieldProblems(config, [...Object.values(BUILTIN_ACTIONS), ...(options.actions ?? [])]).map((text) => ({ text }));
  try {
    validatePolicyConfig(policyConfigOf(config));
  } catch (error) {
    problems.push({ text: (error as Error).message.replace(/^policy\.interfaces\./, 'interfaces.') });
  }
  for (const [name, iface] of Object.entries(config.interfaces)) {
    if (iface.hook !== undefined) {
      try {
        checkHookPath(iface.hook.path, `interfaces.${name}.hook.path`);
      } catch (error) {
        problems.push({ text: (error as Error).message, path: ['interfaces', name, 'hook', 'path'] });
      }
    }
  }
  return problems.length > 0 ? { problems } : { config, problems };
}

/**
 * Validates parsed JSON. Throws NETHEAL_ERR_CONFIG naming the field path of every problem,
 * e.g. `interfaces.eth0.probe.intervalMs: Too small: expected number to be >=10`.
 */
export function validateConfig(raw: unknown, source = 'config', options: { actions?: readonly string[] } = {}): DaemonConfig {
  const { config, problems } = configProblems(raw, options);
  if (config === undefined) throw new NethealError('NETHEAL_ERR_CONFIG', `${source}: invalid configuration: ${problems.map((p) => p.text).join('; ')}`);
  return config;
}

/** The drop-in directory of a config file: conf.d/ beside it. */
export function dropInDirectory(configPath: string): string {
  return join(dirname(configPath), 'conf.d');
}

/** The drop-ins of a config file: conf.d/*.json, in byte order of their names (like systemd's). */
export function dropInFiles(configPath: string): string[] {
  const dir = dropInDirectory(configPath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw new NethealError('NETHEAL_ERR_CONFIG', `${dir}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b)))).map((n) => join(dir, n));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const originKey = (path: ReadonlyArray<PropertyKey>): string => path.map(String).join('\0');

/** Which file set each node of a merged config (keyed by originKey of its path). */
type Origins = Map<string, string>;

function markOrigin(value: unknown, path: PropertyKey[], file: string, origins: Origins): void {
  origins.set(originKey(path), file);
  if (Array.isArray(value)) value.forEach((v, i) => markOrigin(v, [...path, i], file, origins));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) markOrigin(v, [...path, k], file, origins);
}

/**
 * Merges `over` into `base` (a fresh object comes back; neither is changed): objects are
 * merged key by key, recursively; anything else (arrays, strings, numbers, booleans, null)
 * replaces what was there. The rule for drop-ins over the main file.
 */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  return mergeTracked(base, over, '', new Map(), []);
}

/** mergeConfig, recording in `origins` that `file` set each node it wrote. */
function mergeTracked(base: Record<string, unknown>, over: Record<string, unknown>, file: string, origins: Origins, at: PropertyKey[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const path = [...at, key];
    const current = out[key];
    // defineProperty, not assignment: a "__proto__" key in a file stays a key (and the schema
    // refuses it) instead of replacing the merged object's prototype.
    const merged = isPlainObject(current) && isPlainObject(value) ? mergeTracked(current, value, file, origins, path) : structuredClone(value);
    Object.defineProperty(out, key, { value: merged, enumerable: true, writable: true, configurable: true });
    if (!(isPlainObject(current) && isPlainObject(value))) markOrigin(value, path, file, origins);
  }
  return out;
}

/** The file that set the deepest node a problem is about (by its path, else by its text). */
function originOf(problem: Problem, merged: unknown, origins: Origins, fallback: string): string {
  let best = fallback;
  if (problem.path !== undefined) {
    for (let n = problem.path.length; n > 0; n--) {
      const file = origins.get(originKey(problem.path.slice(0, n)));
      if (file !== undefined) return file;
    }
    return best;
  }
  // Walk the text's leading field path (`interfaces.eth0.100.ladder[1]: ...`) through the
  // merged object, matching the longest key at each level (names may hold dots).
  let rest = problem.text;
  let node: unknown = merged;
  const path: PropertyKey[] = [];
  for (;;) {
    let next: string | undefined;
    if (isPlainObject(node)) {
      for (const key of Object.keys(node)) {
        const after = rest[key.length];
        if (rest.startsWith(key) && (after === undefined || after === '.' || after === '[' || after === ':') && (next === undefined || key.length > next.length)) next = key;
      }
    }
    if (next === undefined) break;
    path.push(next);
    node = (node as Record<string, unknown>)[next];
    best = origins.get(originKey(path)) ?? best;
    rest = rest.slice(next.length);
    while (rest.startsWith('[')) {
      const index = /^\[(\d+)\]/.exec(rest);
      if (index === null || !Array.isArray(node)) break;
      path.push(Number(index[1]));
      node = node[Number(index[1])];
      best = origins.get(originKey(path)) ?? best;
      rest = rest.slice(index[0].length);
    }
    if (!rest.startsWith('.')) break;
    rest = rest.slice(1);
  }
  return best;
}

/** What {@link checkConfig} found. */
export interface ConfigCheck {
  /** The validated, merged configuration; undefined when there are problems, or no file at all (optional). */
  config: DaemonConfig | undefined;
  /** The files read: the main file (when present), then the drop-ins in merge order. */
  files: string[];
  /** Every problem, each `FILE: field.path: what is wrong`. Empty: valid. */
  problems: string[];
  /** The problems are with reading or parsing the files (nothing was validated). */
  unreadable: boolean;
}

/**
 * Reads the config file and its drop-ins (conf.d/*.json beside it, in name order), merges
 * them (see mergeConfig) and validates the result: what the daemon does at start and on
 * reload, and all that `netheal config check` does. Never throws for a bad file: every
 * problem is returned, each naming its file. `optional`: a missing main file is no problem
 * (the drop-ins, if any, apply over the defaults). `netns`: also check that the namespace the
 * daemon would use (`override`, as --netns, else the config's) exists, as a reload does.
 */
export function checkConfig(path: string, options: { optional?: boolean; actions?: readonly string[]; netns?: { override?: string } } = {}): ConfigCheck {
  const files: string[] = [];
  const problems: string[] = [];
  const origins: Origins = new Map();
  let merged: Record<string, unknown> = {};
  let present = false;
  const read = (file: string, optional: boolean): void => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if (!(optional && (error as NodeJS.ErrnoException).code === 'ENOENT')) {
        problems.push(`${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      return;
    }
    files.push(file);
    present = true;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      problems.push(`${file}: not valid JSON: ${(error as Error).message}`);
      return;
    }
    if (!isPlainObject(raw)) {
      problems.push(`${file}: (top level): must be a JSON object, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw}`);
      return;
    }
    merged = mergeTracked(merged, raw, file, origins, []);
  };
  read(path, options.optional === true);
  let dropIns: string[] = [];
  try {
    dropIns = dropInFiles(path);
  } catch (error) {
    problems.push((error as Error).message);
  }
  for (const file of dropIns) read(file, false);
  if (problems.length > 0) return { config: undefined, files, problems, unreadable: true };
  if (!present) return { config: undefined, files, problems, unreadable: false };
  const fallback = files[0]!;
  const result = configProblems(merged, options);
  for (const problem of result.problems) problems.push(`${originOf(problem, merged, origins, fallback)}: ${problem.text}`);
  if (result.config !== undefined && options.netns !== undefined) {
    const override = options.netns.override;
    try {
      resolveNetns(override ?? result.config.netns, override !== undefined ? '--netns' : 'netns');
    } catch (error) {
      problems.push(override !== undefined ? (error as Error).message : `${originOf({ text: 'netns', path: ['netns'] }, merged, origins, fallback)}: ${(error as Error).message}`);
    }
  }
  return { config: problems.length > 0 ? undefined : result.config, files, problems, unreadable: false };
}

/**
 * Reads, merges (drop-ins) and validates a config file. A missing optional main file with no
 * drop-ins yields undefined; any problem throws NETHEAL_ERR_CONFIG naming every problem.
 */
export function loadConfig(path: string, { optional = false, actions }: { optional?: boolean; actions?: readonly string[] } = {}): DaemonConfig | undefined {
  const check = checkConfig(path, { optional, ...(actions ? { actions } : {}) });
  if (check.problems.length > 0) {
    // One file: the message reads as before (`FILE: invalid configuration: field: ...`).
    const single = check.files.length <= 1 && check.problems.every((p) => p.startsWith(`${path}: `));
    const text = check.unreadable ? check.problems.join('; ') : single ? `${path}: invalid configuration: ${check.problems.map((p) => p.slice(path.length + 2)).join('; ')}` : `invalid configuration: ${check.problems.join('; ')}`;
    throw new NethealError('NETHEAL_ERR_CONFIG', text);
  }
  return check.config;
}
