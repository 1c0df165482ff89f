// @ts-check
// TCP connect and HTTP probes beside ICMP echo, in a client/router lab where nft on the router
// filters what the probes need: with ICMP dropped the echo target goes down while the TCP and
// HTTP targets stay up; a RST is a reply; a dropped SYN is silence; a wrong HTTP status is a
// failure with its reason; the daemon's quorum decides what an ICMP-only filter means.
'use strict';
/** @type {import('ava').TestFn} */
const test = /** @type {any} */ (require('ava')); // its types describe the ESM default export
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { Lab } = require('../lib/lab/lab');
const { Prober } = require('../lib/monitor/prober');
const { Daemon } = require('../lib/daemon/daemon');
const { validateConfig } = require('../lib/daemon/config');
const { createLogger } = require('../lib/daemon/logger');
const { parseStreamTarget } = require('../lib/monitor/stream-probe');
const { clientRouter } = require('./helpers/lab');

const FAR = '198.51.100.1';
/** By path: under npm/ava, node_modules/.bin comes first in PATH, and @vercel/nft has a bin named nft. */
const NFT = '/usr/sbin/nft';
/**
 * A token only the lab's server knows: a body check that finds it proves the request reached
 * the router's server, i.e. left from the client namespace (the host's own network may even
 * use the same addresses as the lab).
 */
const TOKEN = `netheal-${process.pid}-${Date.now()}`;
/** An HTTP server on the router's far address: /health answers 204, anything else 200 with a page holding TOKEN. */
const SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/health') { res.writeHead(204); res.end(); }
  else { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>please log in ${TOKEN}</html>'); }
}).listen(8080, '${FAR}', () => console.log('ready'));
`;

/** The lab: client up0 -> router, the router owns FAR and serves HTTP on FAR:8080. */
async function lab(t) {
  const topology = await clientRouter(t, { extraRoutes: [['198.51.100.0/24', 'via', '192.0.2.1']] });
  await topology.lab.addAddress(topology.router, 'lo', `${FAR}/32`);
  const server = topology.lab.spawn(topology.router, process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => server.kill('SIGKILL'));
  await new Promise((resolve, reject) => {
    server.stdout?.once('data', resolve);
    server.once('exit', (code) => reject(new Error(`the HTTP server exited ${code}`)));
  });
  return topology;
}

/** nft on the router, input hook: `rule` (e.g. 'ip protocol icmp counter drop') for packets to FAR. */
async function routerFilter(l, router, rule) {
  await l.exec(router, NFT, ['add', 'table', 'inet', 'probe_filter']);
  await l.exec(router, NFT, ['add', 'chain', 'inet', 'probe_filter', 'input', '{ type filter hook input priority 0; }']);
  await l.exec(router, NFT, ['add', 'rule', 'inet', 'probe_filter', 'input', 'ip', 'daddr', FAR, ...rule.split(' ')]);
}

/** Resolves with the first event of `type` that `match` accepts (past ones included). */
function recorder(emitter, types) {
  const events = [];
  const waiters = [];
  for (const type of types) {
    emitter.on(type, (e) => {
      // `event` names the emitter's event (a probe result has a `type` of its own: the ICMP type).
      const entry = { ...e, event: type };
      events.push(entry);
      for (const w of [...waiters]) if (w.match(entry)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(entry); }
    });
  }
  return {
    events,
    next(match, what, timeoutMs = 20_000) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; last: ${JSON.stringify(events.slice(-4), (k, v) => (typeof v === 'bigint' ? String(v) : v))}`)), timeoutMs);
        waiters.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
      });
    },
  };
}

test('target specs: tcp:// and http:// with IP literals parse; names, hosts and ports that cannot be probed are refused naming why', (t) => {
  t.deepEqual(parseStreamTarget('tcp://10.0.0.1:443'), { kind: 'tcp', address: '10.0.0.1', family: 4, port: 443 });
  t.like(parseStreamTarget('http://[fd00::1]/generate_204?x=1'), { kind: 'http', address: 'fd00::1', family: 6, port: 80, path: '/generate_204?x=1', expectStatus: null });
  t.like(parseStreamTarget({ http: 'http://10.0.0.1:8080/', expectStatus: 204, expectBody: 'ok' }), { port: 8080, expectStatus: [204], expectBody: 'ok' });
  t.is(parseStreamTarget('10.0.0.1'), null);
  t.throws(() => parseStreamTarget('tcp://10.0.0.1'), { message: /needs a port/ });
  t.throws(() => parseStreamTarget('http://example.com/'), { message: /must be an IP address/ });
  t.like(parseStreamTarget('https://10.0.0.1/x'), { kind: 'http', tls: true, port: 443, insecure: false, serverName: null });
  t.like(parseStreamTarget({ http: 'https://10.0.0.1:8443/', serverName: 'health.example', insecure: true }), { tls: true, port: 8443, serverName: 'health.example', insecure: true });
  t.throws(() => parseStreamTarget({ http: 'http://10.0.0.1/', insecure: true }), { message: /for https:\/\/ targets/ });
  t.throws(() => parseStreamTarget('ftp://10.0.0.1/'), { message: /only tcp:\/\/, http:\/\/ and https:\/\//});
  t.throws(() => parseStreamTarget('tcp://10.0.0.1:22/x'), { message: /no path/ });
  const bad = (targets) => { try { validateConfig({ interfaces: { eth0: { probe: { targets } } } }); return null; } catch (e) { return /** @type {Error} */ (e).message; } };
  t.regex(bad(['tcp://10.0.0.1']) ?? '', /interfaces\.eth0\.probe\.targets\[0\].*needs a port/);
  t.regex(bad([{ http: 'http://10.0.0.1/', expectStatus: 99 }]) ?? '', /interfaces\.eth0\.probe\.targets\[0\]/);
  t.is(bad(['gateway', 'tcp://10.0.0.1:443', 'http://10.0.0.1/health', { http: 'http://10.0.0.1/', expectStatus: [200, 204] }, { http: 'https://10.0.0.1/', insecure: true }]), null);
});

test('ICMP dropped on the path: the echo target goes down, TCP (SYN-ACK and RST) and HTTP stay up; a dropped SYN is silence; a wrong status is a failure', async (t) => {
  const { lab: l, client, router } = await lab(t);
  // Deadlines with room for a loaded 2-core machine: a connection and a GET served by a Node
  // process can take 100+ ms there (multiplier x interval = 500 ms; a probe counts as lost
  // after 250 ms).
  const interval = 50, multiplier = 10;
  const prober = new Prober({ netns: Lab.path(client), device: 'up0', interval, timeout: 250, multiplier, recovery: 2 });
  t.teardown(() => prober.close());
  const r = recorder(prober, ['target-up', 'target-down', 'probe']);
  const names = {
    icmp: prober.add(FAR, { name: 'icmp' }),
    tcpOpen: prober.add(`tcp://${FAR}:8080`, { name: 'tcp-open' }),
    tcpClosed: prober.add(`tcp://${FAR}:9`, { name: 'tcp-closed' }),
    http: prober.add({ http: `http://${FAR}:8080/health`, expectStatus: 204 }, { name: 'http' }),
    portal: prober.add({ http: `http://${FAR}:8080/health`, expectStatus: 200 }, { name: 'portal' }),
    body: prober.add({ http: `http://${FAR}:8080/login`, expectBody: TOKEN }, { name: 'body' }),
  };
  for (const name of ['icmp', 'tcp-open', 'tcp-closed', 'http', 'body']) await r.next((e) => e.event === 'target-up' && e.target === name, `${name} up`);
  const closedReply = r.events.find((e) => e.event === 'probe' && e.target === 'tcp-closed' && e.status === 'reply');
  t.truthy(closedReply, 'a RST (nothing listens on port 9) is a reply: it came from the far end');
  // The wrong status: two failures in a row with a reason take it down early.
  // The wrong status: every probe of it fails with that status as its reason; it never comes up.
  await r.next((e) => e.event === 'target-down' && e.target === 'portal', 'portal down');
  const portalResults = r.events.filter((e) => e.event === 'probe' && e.target === 'portal');
  // (A probe of a server slow to answer may time out; those that are answered fail on the status.)
  t.true(portalResults.filter((e) => e.status === 'error' && e.reason === 'http-204').length >= 2, JSON.stringify(portalResults.slice(0, 3)));
  t.false(portalResults.some((e) => e.status === 'reply'));
  t.false(r.events.some((e) => e.event === 'target-up' && e.target === 'portal'));
  t.is(prober.stats(names.http).state, 'up');
  t.true(prober.stats(names.http).rtt !== null);

  // ICMP dropped on the router: echo goes silent, connections still come back.
  await routerFilter(l, router, 'ip protocol icmp counter drop');
  const icmpDown = await r.next((e) => e.event === 'target-down' && e.target === 'icmp', 'icmp down');
  t.is(icmpDown.reason.kind, 'timeout');
  const at = r.events.length;
  const repliesSince = (target) => r.events.slice(at).filter((e) => e.event === 'probe' && e.target === target && e.status === 'reply').length;
  // Ten more replies of each stream target after the echo went down, none of them down meanwhile.
  await r.next(() => ['tcp-open', 'tcp-closed', 'http', 'body'].every((n) => repliesSince(n) >= 10), '10 replies of each stream target');
  for (const name of ['tcp-open', 'tcp-closed', 'http', 'body']) {
    t.is(prober.stats(name).state, 'up', name);
    t.false(r.events.slice(at).some((e) => e.event === 'target-down' && e.target === name), `${name} never went down`);
  }

  // SYNs to 8080 dropped too: the open port's targets go silent (a timeout, not an error); port 9 still answers.
  await l.exec(router, NFT, ['add', 'rule', 'inet', 'probe_filter', 'input', 'tcp', 'dport', '8080', 'drop']);
  const tcpDown = await r.next((e) => e.event === 'target-down' && e.target === 'tcp-open', 'tcp-open down');
  t.is(tcpDown.reason.kind, 'timeout');
  t.true(tcpDown.silentMs >= multiplier * interval * 0.75 - 1, `down after ${tcpDown.silentMs} ms of silence (multiplier x interval, jittered)`);
  await r.next((e) => e.event === 'target-down' && e.target === 'http', 'http down');
  t.is(prober.stats(names.tcpClosed).state, 'up');

  // Probing leaves no TIME_WAIT behind (SO_LINGER 0): hundreds of connections made, none lingering.
  const ss = await l.exec(client, 'ss', ['-Htan', 'state', 'time-wait']);
  t.is(ss.trim(), '', `TIME_WAIT left by the probes:\n${ss}`);
  t.true(prober.stats(names.tcpOpen).sent > 20);
  // Lost probes leave no socket behind either: a dropped SYN's connection is closed at its
  // timeout. While probing, only those still within it are open: four targets on port 8080, a
  // probe per 50 ms each, 250 ms: about 20 (a leak would be hundreds). Closed, none.
  const count = (text) => text.trim().split('\n').filter(Boolean).length;
  const synSent = await l.exec(client, 'ss', ['-Htan', 'state', 'syn-sent']);
  t.true(count(synSent) <= 4 * 7, `connections in SYN-SENT while probing:\n${synSent}`);
  prober.close();
  await new Promise((resolve) => setImmediate(resolve));
  const afterClose = await l.exec(client, 'ss', ['-Htan', 'state', 'syn-sent']);
  t.is(count(afterClose), 0, `connections left in SYN-SENT after close():\n${afterClose}`);
});

/** Polls `predicate` (a status read) until true; the deadline only guards a hang. */
async function waitUntil(predicate, what, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The daemon's view of up0 with one ICMP and one TCP target at `quorum`, then ICMP dropped. */
async function daemonWithIcmpDropped(t, quorum) {
  const { lab: l, client, router } = await lab(t);
  const daemon = new Daemon({
    config: validateConfig({
      netns: Lab.path(client),
      policy: { graceMs: 0 },
      managers: { networkScriptsDir: os.tmpdir() },
      interfaces: { up0: { probe: { targets: [FAR, `tcp://${FAR}:8080`], intervalMs: 50, timeoutMs: 250, multiplier: 6, recovery: 2, quorum } } },
    }),
    logger: createLogger({ format: 'json', minLevel: 'error', write: () => {} }),
  });
  t.teardown(() => daemon.stop());
  const r = recorder(daemon, ['health']);
  const actions = [];
  daemon.on('action', (e) => { if (e.result?.status !== 'skipped') actions.push(e.kind); });
  await daemon.start();
  const targetStates = () => Object.fromEntries(Object.entries(/** @type {any} */ (daemon.status()).targets ?? {}).map(([name, s]) => [name, /** @type {any} */ (s).state]));
  await waitUntil(() => Object.values(targetStates()).length === 2 && Object.values(targetStates()).every((x) => x === 'up'), () => `both targets up: ${JSON.stringify(targetStates())}`);
  const since = r.events.length;
  await routerFilter(l, router, 'ip protocol icmp counter drop');
  return { daemon, r, since, l, router, actions };
}

test('the policy decides: quorum 1 of ICMP + TCP rides out an ICMP-only filter, quorum 2 calls the path down', async (t) => {
  const lenient = await daemonWithIcmpDropped(t, 1);
  // The ICMP target's own down arrives as a probe evidence; the interface must not go down.
  const status = () => /** @type {any} */ (lenient.daemon.status());
  await new Promise((resolve, reject) => {
    const end = Date.now() + 20_000;
    const poll = () => {
      const targets = status().targets ?? {};
      const icmp = Object.entries(targets).find(([name]) => name === `up0:${FAR}`)?.[1];
      if (icmp?.state === 'down') return resolve(undefined);
      if (Date.now() > end) {
        lenient.l.exec(lenient.router, NFT, ['list', 'ruleset']).then((rules) => reject(new Error(`the ICMP target never went down: ${JSON.stringify(targets)}\n${rules}`)), reject);
        return;
      }
      setTimeout(poll, 20);
    };
    poll();
  });
  // Twenty more replies of the TCP target: the interface stays out of `down` all along.
  const tcpReceived = () => /** @type {any} */ (Object.entries(status().targets ?? {}).find(([name]) => name === `up0:tcp://${FAR}:8080`)?.[1])?.received ?? 0;
  const from = tcpReceived();
  await waitUntil(() => tcpReceived() >= from + 20, () => `20 more TCP replies (from ${from}, now ${tcpReceived()})`);
  t.false(lenient.r.events.slice(lenient.since).some((e) => e.iface === 'up0' && e.to === 'down'), 'up0 never judged down');
  // One of two targets silent is partial evidence: suspect at most, and nothing runs.
  t.true(['healthy', 'suspect'].includes(status().interfaces.up0.state), status().interfaces.up0.state);
  t.deepEqual(lenient.actions, [], 'no action');
  await lenient.daemon.stop();

  const strict = await daemonWithIcmpDropped(t, 2);
  const down = await strict.r.next((e) => e.iface === 'up0' && e.to === 'down' && strict.r.events.indexOf(e) >= strict.since, 'up0 down');
  t.true(down.reasons.some((/** @type {string} */ x) => x.includes(`probe-target-down:up0:${FAR}`)), down.reasons.join(', '));
  t.false(down.reasons.some((/** @type {string} */ x) => x.includes('tcp://')), 'the TCP target is not blamed');
});

test('HTTPS on the connection made in the namespace: a self-signed certificate fails verification (a failed check, with its reason), insecure accepts it, a CA that signed it verifies it', async (t) => {
  const topology = await clientRouter(t, { extraRoutes: [['198.51.100.0/24', 'via', '192.0.2.1']] });
  const { lab: l, client, router } = topology;
  await l.addAddress(router, 'lo', `${FAR}/32`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netheal-https-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A self-signed certificate for the far address (an IP SAN), which is its own CA.
  const openssl = await new Promise((resolve) => execFile('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${FAR}`,
    '-addext', `subjectAltName=IP:${FAR}`, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], (error, _out, err) => resolve(error ? err : null)));
  t.is(openssl, null, String(openssl));
  const server = l.spawn(router, process.execPath, ['-e', `
const https = require('node:https'); const fs = require('node:fs');
https.createServer({ key: fs.readFileSync(${JSON.stringify(path.join(dir, 'key.pem'))}), cert: fs.readFileSync(${JSON.stringify(path.join(dir, 'cert.pem'))}) },
  (req, res) => { res.writeHead(204); res.end(); }).listen(8443, '${FAR}', () => console.log('ready'));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => server.kill('SIGKILL'));
  await new Promise((resolve, reject) => { server.stdout?.once('data', resolve); server.once('exit', (code) => reject(new Error(`https server exited ${code}`))); });
  const prober = new Prober({ netns: Lab.path(client), device: 'up0', interval: 50, timeout: 1000, multiplier: 20, recovery: 1 });
  t.teardown(() => prober.close());
  const r = recorder(prober, ['target-up', 'target-down', 'probe']);
  prober.add({ http: `https://${FAR}:8443/`, expectStatus: 204 }, { name: 'verified' });
  prober.add({ http: `https://${FAR}:8443/`, expectStatus: 204, insecure: true }, { name: 'insecure' });
  await r.next((e) => e.event === 'target-up' && e.target === 'insecure', 'insecure up');
  const down = await r.next((e) => e.event === 'target-down' && e.target === 'verified', 'verified down');
  t.is(down.reason.kind, 'http-status');
  t.regex(down.reason.name, /^tls-(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/);
  t.false(r.events.some((e) => e.event === 'probe' && e.target === 'verified' && e.status === 'reply'));
  // The same certificate trusted as a CA (NODE_EXTRA_CA_CERTS is read at start: a child process).
  const child = await new Promise((resolve) => {
    const script = `
const { Prober } = require(${JSON.stringify(path.resolve(__dirname, '../lib/monitor/prober'))});
const p = new Prober({ netns: ${JSON.stringify(Lab.path(client))}, device: 'up0', interval: 50, timeout: 1000, multiplier: 20, recovery: 1 });
p.on('target-up', () => { console.log('up'); p.close(); });
p.on('target-down', (e) => { console.log('down ' + e.reason.name); p.close(); });
p.add({ http: 'https://${FAR}:8443/', expectStatus: 204 });`;
    execFile(process.execPath, ['-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') }, timeout: 30_000 }, (error, stdout, stderr) => resolve(stdout + (error ? stderr : '')));
  });
  t.is(String(child).trim(), 'up', 'verified against the CA, by its IP SAN');
});
