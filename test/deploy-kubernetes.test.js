// @ts-check
// deploy/kubernetes/: kustomize builds it offline (`kubectl kustomize`, no cluster), and what it
// builds is what the docs promise: one pod per node in the node's network namespace, exactly
// the capabilities the config's actions need (the same derivation as `netheal unit`), the status
// socket and the state directory on the node, the generated ConfigMap mounted where the daemon
// reads it, a liveness probe that does not fail because the network is down, and a config that
// `netheal config check` accepts.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const path = require('node:path');
const { execFile, spawnSync } = require('node:child_process');
const YAML = require('yaml');
const { configNeeds } = require('../lib/service');
const { validateConfig } = require('../lib/daemon/config');

const DIR = path.resolve(__dirname, '../deploy/kubernetes');
const CLI = require.resolve('../lib/cli.js');
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { env: { ...process.env, KUBECONFIG: '/dev/null' } }).status === 0;
const CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');

/** @returns {Promise<{ code: number, stdout: string, stderr: string }>} */
function run(file, args, env = process.env) {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: 60_000, env }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

/** Declared with test.skip (and the reason) when kubectl is missing, except under CI=true. */
function kubectlTest(title, fn) {
  if (HAS_KUBECTL) test(title, fn);
  else test.skip(`${title} [skipped: kubectl is not installed (Debian package kubernetes-client)]`, fn);
}
if (!HAS_KUBECTL && CI) {
  test('kubectl is installed (CI=true: the manifest tests are required)', (t) => t.fail('kubectl not found: .ci/run installs kubernetes-client'));
}

kubectlTest('kubectl kustomize builds the manifests offline; the DaemonSet is what docs/install.md says', async (t) => {
  // No cluster: KUBECONFIG=/dev/null, so nothing can be contacted.
  const built = await run('kubectl', ['kustomize', DIR], { ...process.env, KUBECONFIG: '/dev/null' });
  t.is(built.code, 0, built.stderr);
  const documents = YAML.parseAllDocuments(built.stdout).map((d) => d.toJS());
  t.deepEqual(documents.map((d) => d.kind).sort(), ['ConfigMap', 'DaemonSet', 'Namespace']);
  const configMap = documents.find((d) => d.kind === 'ConfigMap');
  const daemonSet = documents.find((d) => d.kind === 'DaemonSet');
  t.is(daemonSet.apiVersion, 'apps/v1');
  t.is(daemonSet.metadata.namespace, 'netheal');
  const pod = daemonSet.spec.template.spec;
  t.deepEqual(daemonSet.spec.selector.matchLabels, daemonSet.spec.template.metadata.labels, 'the selector matches the pods');
  t.true(pod.hostNetwork, "the node's own network namespace");
  t.is(pod.containers.length, 1);
  const [container] = pod.containers;

  // The config the pod reads is the generated ConfigMap (its hashed name), at the path in the args.
  const configVolume = pod.volumes.find((/** @type {any} */ v) => v.configMap);
  t.is(configVolume.configMap.name, configMap.metadata.name, 'the volume names the generated ConfigMap');
  const mount = container.volumeMounts.find((/** @type {any} */ m) => m.name === configVolume.name);
  const configArg = container.args[container.args.indexOf('--config') + 1];
  t.is(path.dirname(configArg), mount.mountPath);
  t.deepEqual(Object.keys(configMap.data), [path.basename(configArg)]);
  const config = validateConfig(JSON.parse(configMap.data[path.basename(configArg)]));

  // Exactly the capabilities the config's actions need, nothing else.
  const needed = configNeeds(config).capabilities.map((c) => c.capability.replace(/^CAP_/, '')).sort();
  t.deepEqual([...container.securityContext.capabilities.add].sort(), needed);
  t.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
  t.false(container.securityContext.allowPrivilegeEscalation);
  t.false(Boolean(container.securityContext.privileged), 'not privileged');

  // The status socket and the durable state live on the node.
  const hostPathOf = (/** @type {string} */ mountPath) => {
    const m = container.volumeMounts.find((/** @type {any} */ x) => x.mountPath === mountPath);
    return pod.volumes.find((/** @type {any} */ v) => v.name === m?.name)?.hostPath?.path;
  };
  t.is(hostPathOf('/run/netheal'), '/run/netheal');
  const stateDir = container.env.find((/** @type {any} */ e) => e.name === 'STATE_DIRECTORY').value;
  t.is(hostPathOf(stateDir), '/var/lib/netheal');

  // Liveness through the metrics endpoint the config opens (not `status --check`, which exits 3
  // when an interface is down).
  const port = Number(config.metrics?.listen.split(':').pop());
  t.is(container.livenessProbe.httpGet.port, port);
  t.is(container.livenessProbe.httpGet.path, '/metrics');
  t.false(JSON.stringify(container.livenessProbe).includes('status'));
  t.is(container.ports.find((/** @type {any} */ p) => p.name === 'metrics').containerPort, port);
});

/**
 * Fields of `written` missing from `decoded` or changed in it (paths), ignoring defaults the
 * decode adds. @param {any} written @param {any} decoded @returns {string[]}
 */
function lost(written, decoded, at = '') {
  if (written !== null && typeof written === 'object') {
    if (decoded === null || typeof decoded !== 'object') return [at];
    return Object.keys(written).flatMap((key) => lost(written[key], decoded[key], Array.isArray(written) ? `${at}[${key}]` : `${at}.${key}`));
  }
  return written === decoded ? [] : [`${at} (${JSON.stringify(written)} -> ${JSON.stringify(decoded)})`];
}

/**
 * The DaemonSet decoded into the typed apps/v1 structures and encoded again, offline:
 * `kubectl set resources --local` (a request the manifest does not set, so there is a change
 * to print). A wrong type fails the decode; an unknown or misspelt field is dropped by it,
 * which comparing what was written with what came back catches.
 * @param {string} yamlText
 */
function typedRoundTrip(yamlText) {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['set', 'resources', '--local', '-f', '-', '--requests=ephemeral-storage=1Mi', '-o', 'json'],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBECONFIG: '/dev/null' } },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
    child.stdin?.end(yamlText);
  });
}

kubectlTest('the DaemonSet survives a typed apps/v1 decode: no field unknown to Kubernetes, none of the wrong type', async (t) => {
  const text = fs.readFileSync(path.join(DIR, 'daemonset.yaml'), 'utf8');
  const written = YAML.parse(text);
  const result = await typedRoundTrip(text);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(lost(written, JSON.parse(result.stdout)), []);
  // The check has teeth: a misspelt field is dropped and caught, a wrong type fails the decode.
  const misspelt = await typedRoundTrip(text.replace('hostNetwork: true', 'hostNetwrok: true'));
  t.is(misspelt.code, 0, misspelt.stderr);
  t.true(lost(YAML.parse(text.replace('hostNetwork: true', 'hostNetwrok: true')), JSON.parse(misspelt.stdout)).some((p) => p.startsWith('.spec.template.spec.hostNetwrok')));
  const wrongType = await typedRoundTrip(text.replace('containerPort: 9469', 'containerPort: "metrics"'));
  t.not(wrongType.code, 0);
  t.regex(wrongType.stderr, /containerPort|ContainerPort/);
});

test('the ConfigMap source passes `netheal config check`', async (t) => {
  const check = await run(process.execPath, [CLI, 'config', 'check', '--config', path.join(DIR, 'netheal.json')]);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /configuration OK/);
  t.true(fs.existsSync(path.join(DIR, 'kustomization.yaml')));
});
