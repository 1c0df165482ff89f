/**
 * The daemon's configuration file (JSON, default /etc/netheal/config.json) and its drop-in
 * directory (conf.d/*.json next to it, merged in name order), validated with valibot: every
 * problem names its file and field path, all are reported at once, and a bad file changes
 * nothing. `netheal config check` and the daemon (start and reload) share checkConfig().
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';
import * as v from 'valibot';
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

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
/** A duration in milliseconds: the same rule, named for what the field holds. */
const ms = int;
const nonEmpty = () => v.pipe(v.string(), v.minLength(1));

/**
 * A string or an object: `lazy` picks the schema by the input's type, so that a bad object
 * reports its own field (`ladder[0].bogus`) rather than a union's "expected string or object".
 */
const stringOr = <S extends v.GenericSchema, O extends v.GenericSchema>(string: S, object: O) =>
  v.lazy((input) => (typeof input === 'string' ? string : object));

const ladderStep = stringOr(
  nonEmpty(),
  v.strictObject({
    action: nonEmpty(),
    timeoutMs: v.optional(ms(1, 3_600_000)),
    verifyTimeoutMs: v.optional(ms(0, 3_600_000)),
    /** Run only once the fault has lasted this long. */
    afterMs: v.optional(ms(0, 86_400_000)),
    /** The fault classes this step may run for (default: what its action can fix). */
    fixes: v.optional(v.array(v.picklist(FAULT_CLASSES))),
    options: v.optional(v.record(v.string(), v.unknown())),
  }),
);

const policyFields = {
  ladder: v.optional(v.array(ladderStep)),
  backoff: v.optional(v.strictObject({
    initialMs: v.optional(ms(0, 86_400_000)),
    maxMs: v.optional(ms(0, 86_400_000)),
    multiplier: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(100))),
    resetAfterMs: v.optional(ms(0, 86_400_000)),
  })),
  damping: v.optional(v.strictObject({
    penaltyPerFlap: v.optional(v.pipe(v.number(), v.minValue(0))),
    halfLifeMs: v.optional(ms(1, 86_400_000)),
    suppressThreshold: v.optional(v.pipe(v.number(), v.minValue(0))),
    reuseThreshold: v.optional(v.pipe(v.number(), v.minValue(0))),
    maxSuppressMs: v.optional(ms(0, 86_400_000)),
  })),
  budget: v.optional(v.strictObject({
    maxActions: v.optional(int(0, 1_000_000)),
    windowMs: v.optional(ms(1, 86_400_000 * 7)),
  })),
  verifyTimeoutMs: v.optional(ms(0, 3_600_000)),
  actionTimeoutMs: v.optional(ms(1, 3_600_000)),
  downOn: v.optional(v.array(v.picklist(DOWN_EVIDENCE_KINDS))),
  requiredAddresses: v.optional(v.array(v.pipe(v.string(), v.check((a) => isIP(a) !== 0, 'must be an IP address')))),
  settleMs: v.optional(ms(0, 600_000)),
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

/** The problem of an object target's `http` URL, or null. */
function httpTargetProblem(target: { http: string }): string | null {
  try {
    return parseStreamTarget(target)?.kind === 'http' ? null : 'must be an http:// or https:// URL';
  } catch (error) {
    return (error as Error).message;
  }
}

const httpStatus = int(100, 599);

/** An ICMP, TCP or HTTP target (stream-probe.ts), or an HTTP target with expectations. */
const probeTarget = stringOr(
  v.pipe(v.string(), v.rawCheck(({ dataset, addIssue }) => {
    const problem = dataset.typed ? stringTargetProblem(dataset.value) : null;
    if (problem !== null) addIssue({ message: problem });
  })),
  v.pipe(
    v.strictObject({
      http: v.string(),
      expectStatus: v.optional(v.union([httpStatus, v.pipe(v.array(httpStatus), v.minLength(1))])),
      expectBody: v.optional(nonEmpty()),
      serverName: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(253))),
      insecure: v.optional(v.boolean()),
    }),
    v.forward(v.check((target) => httpTargetProblem(target) === null, (issue) => httpTargetProblem(issue.input) ?? 'invalid'), ['http']),
  ),
);

const probeSchema = v.pipe(
  v.strictObject({
    /** "gateway" follows the default route's gateway through this interface. */
    targets: v.pipe(v.array(probeTarget), v.minLength(1)),
    intervalMs: v.optional(ms(10, 3_600_000), 1000),
    /** A probe unanswered this long counts as lost in statistics; it does not decide down. */
    timeoutMs: v.optional(ms(1, 60_000), 1000),
    /** BFD's detect multiplier: a target is down after multiplier x intervalMs without a reply, or once multiplier probes went unanswered (src/monitor/prober.ts). */
    multiplier: v.optional(int(1, 255), 3),
    /** Consecutive replies before a down target is up again. */
    recovery: v.optional(int(1, 255), 3),
    /** The group is down when fewer than this many targets are up. */
    quorum: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  }),
  v.forward(v.check((p) => p.quorum === undefined || p.quorum <= p.targets.length, 'quorum cannot exceed the number of targets'), ['quorum']),
);

const interfaceSchema = v.strictObject({
  probe: v.optional(probeSchema),
  hook: v.optional(v.strictObject({ path: v.pipe(v.string(), v.startsWith('/', 'must be an absolute path')), timeoutMs: v.optional(ms(1, 3_600_000), 30_000) })),
  /** Poll carrier of this device (default: on for unstacked devices: NICs, taps, bridges). */
  carrierSync: v.optional(v.boolean()),
  ...policyFields,
});

const ipv4 = v.pipe(v.string(), v.check((a) => isIP(a) === 4, 'must be an IPv4 address'));

/** One way out of the host: an interface and the gateway behind it (listed most preferred first). */
const uplinkSchema = v.strictObject({
  iface: v.pipe(v.string(), v.check(isValidInterfaceName, 'must be a kernel interface name')),
  gateway: ipv4,
  /** What proves the path: the gateway by default; farther targets catch losses beyond it. */
  targets: v.optional(v.pipe(v.array(ipv4), v.minLength(1))),
});

/** Defaults of `failover.tcpEvidence` (see docs/design.md for the rule). */
const TCP_EVIDENCE_DEFAULTS = {
  enabled: true, fastIntervalMs: 100, idleIntervalMs: 2_000, stallMs: 500, minSegments: 2, minRetransmits: 2, clearMs: 5_000,
};

/**
 * valibot's record() leaves out the keys "__proto__", "prototype" and "constructor" without a
 * word (to guard against prototype pollution); an interface so named is refused instead.
 */
const RESERVED_KEYS = ['__proto__', 'prototype', 'constructor'];
const noReservedKeys = v.check(
  (input: unknown) => typeof input !== 'object' || input === null || !RESERVED_KEYS.some((key) => Object.hasOwn(input, key)),
  (issue) => `interface name ${JSON.stringify(RESERVED_KEYS.find((key) => Object.hasOwn(issue.input as object, key)))} is not supported`,
);

/** The schema of the whole file. */
export const configSchema = v.strictObject({
  /** Namespace (name under /run/netns or a path) the daemon watches and acts in. */
  netns: v.optional(nonEmpty()),
  /** Watched interfaces by name. Empty or absent: the interfaces of the default routes. */
  interfaces: v.optional(v.pipe(v.unknown(), noReservedKeys, v.record(v.pipe(v.string(), v.check(isValidInterfaceName,
    'must be a kernel interface name: 1-15 bytes, no "/", ":" or white space, not "." or ".."')), interfaceSchema)), {}),
  policy: v.optional(v.strictObject({
    graceMs: v.optional(ms(0, 86_400_000)),
    defaults: v.optional(v.strictObject(policyFields)),
  }), {}),
  killSockets: v.optional(v.strictObject({
    includeTimeWait: v.optional(v.boolean(), false),
    /**
     * Sockets on a removed address are destroyed once it has stayed away this long: a
     * manager's remove-and-re-add (networkd's reconfigure: 2-3 ms) or netheal's own repair must not trip it.
     */
    addressGoneMs: v.optional(ms(0, 600_000), 1_000),
    /** Sockets stuck on a dead path are destroyed once it has been dead this long. */
    pathDeadMs: v.optional(ms(0, 86_400_000), 10_000),
  }), {}),
  managers: v.optional(v.strictObject({
    ifupdown: v.optional(v.strictObject({
      interfaces: v.optional(v.string()),
      stateDir: v.optional(v.string()),
      options: v.optional(v.array(v.string())),
    })),
    networkScriptsDir: v.optional(v.string()),
  }), {}),
  /**
   * Two or more uplinks, most preferred first: netheal keeps its own default route (metric
   * `failover.metric`, below the managers') through the best healthy one (see
   * src/daemon/uplinks.ts).
   */
  uplinks: v.optional(v.pipe(v.array(uplinkSchema), v.minLength(2, 'needs at least two uplinks to choose between'))),
  failover: v.optional(v.strictObject({
    metric: v.optional(int(0, 0xffffffff), 1),
    /** How long a more preferred uplink must stay healthy before traffic moves back (ms). */
    holdUpMs: v.optional(ms(0, 3_600_000), 5_000),
    intervalMs: v.optional(ms(10, 60_000), 100),
    timeoutMs: v.optional(ms(1, 60_000)),
    multiplier: v.optional(int(1, 255), 3),
    recovery: v.optional(int(1, 255), 3),
    /**
     * Passive evidence from TCP (src/policy/tcp-evidence.ts): an uplink whose established
     * sockets have received nothing for `stallMs` while sending `minSegments` segments, of
     * which `minRetransmits` were retransmitted, counts as failed, as if its probes had failed.
     */
    tcpEvidence: v.optional(v.strictObject({
      enabled: v.optional(v.boolean(), TCP_EVIDENCE_DEFAULTS.enabled),
      /** Polling while the uplink carries traffic, and while it does not. */
      fastIntervalMs: v.optional(ms(10, 10_000), TCP_EVIDENCE_DEFAULTS.fastIntervalMs),
      idleIntervalMs: v.optional(ms(100, 600_000), TCP_EVIDENCE_DEFAULTS.idleIntervalMs),
      stallMs: v.optional(ms(50, 600_000), TCP_EVIDENCE_DEFAULTS.stallMs),
      minSegments: v.optional(int(1, 100_000), TCP_EVIDENCE_DEFAULTS.minSegments),
      minRetransmits: v.optional(int(1, 100_000), TCP_EVIDENCE_DEFAULTS.minRetransmits),
      /** A dead verdict with nothing to contradict it (its sockets moved away) is dropped after this. */
      clearMs: v.optional(ms(0, 86_400_000), TCP_EVIDENCE_DEFAULTS.clearMs),
    }), {}),
  }), {}),
  carrierSyncIntervalMs: v.optional(ms(5, 60_000), 100),
  status: v.optional(v.strictObject({ socket: v.pipe(v.string(), v.startsWith('/', 'must be an absolute path')) })),
  metrics: v.optional(v.strictObject({ listen: nonEmpty() })),
  log: v.optional(v.strictObject({
    format: v.optional(v.picklist(['journal', 'text', 'json'])),
    level: v.optional(v.picklist(['error', 'warning', 'notice', 'info', 'debug']), 'info'),
  }), {}),
});

/** A validated configuration. */
export type DaemonConfig = v.InferOutput<typeof configSchema>;
/** A watched interface's settings. */
export type InterfaceConfig = v.InferOutput<typeof interfaceSchema>;
export type ProbeConfig = v.InferOutput<typeof probeSchema>;

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

/**
 * A schema issue as a problem naming its field: `interfaces.eth0.probe.intervalMs: Invalid
 * value: Expected >=10 but received 1`; an unknown key (strictObject's issue, whose path ends
 * at the key) as `interfaces.eth0: unknown key "ladderr"`.
 */
function schemaProblem(issue: v.BaseIssue<unknown>): Problem {
  const path = (issue.path ?? []).map((item) => item.key as PropertyKey);
  if (issue.type === 'strict_object' && issue.expected === 'never' && path.length > 0) {
    const key = path[path.length - 1]!;
    return { text: `${formatPath(path.slice(0, -1))}: unknown key ${JSON.stringify(key)}`, path };
  }
  return { text: `${formatPath(path)}: ${issue.message}`, path };
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
  const result = v.safeParse(configSchema, raw);
  if (!result.success) return { problems: result.issues.map(schemaProblem) };
  const config = result.output;
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
 * e.g. `interfaces.eth0.probe.intervalMs: Invalid value: Expected >=10 but received 1`.
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
