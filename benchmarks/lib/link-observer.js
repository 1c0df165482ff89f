'use strict';
/**
 * Child process for benchmarks/detection-latency.bench.js, started inside the observed
 * namespace with `ip netns exec NS node link-observer.js MODE DEVICE [OPTIONS_JSON]`.
 *
 * MODE netheal: a LinkMonitor (carrierSync from OPTIONS_JSON); MODE netlink: the npm `netlink`
 * package (mildsunrise/node_netlink) subscribed to RTNLGRP_LINK; MODE idle: nothing at all
 * (baseline for the idle-cost case: the same node process without a monitor).
 *
 * Every carrier transition of DEVICE is stamped with process.hrtime.bigint() (CLOCK_MONOTONIC,
 * comparable across processes) in the JS listener, and kept in memory: nothing is written
 * while measuring, so no observer pays for I/O between events or wakes the parent. netheal
 * also records the addon's receipt stamp (CLOCK_MONOTONIC at recvmsg). On "dump" on stdin the
 * child prints its records as one JSON line and exits.
 */
const path = require('node:path');

const [mode, device, optionsJson] = process.argv.slice(2);
const options = optionsJson ? JSON.parse(optionsJson) : {};
const records = [];
let closeObserver = () => {};

async function startNetheal() {
  const { LinkMonitor } = require(path.join(__dirname, '../../lib/monitor/link-monitor.js'));
  const monitor = new LinkMonitor({ carrierSync: options.carrierSync ?? false });
  monitor.on('event', (event) => {
    const js = process.hrtime.bigint();
    if (event.type !== 'link' || event.link.name !== device || !event.changed.includes('carrier')) return;
    records.push({ t: js.toString(), recv: event.monotonicNs, carrier: event.link.carrier, via: event.via });
  });
  monitor.on('error', (error) => process.stderr.write(`monitor error: ${error.message}\n`));
  await monitor.start();
  closeObserver = () => monitor.close();
}

function startNetlinkPackage() {
  const { createRtNetlink } = require(path.join(__dirname, '../../node_modules/netlink'));
  const socket = createRtNetlink({ ref: true });
  socket.addMembership('LINK');
  let last = null;
  socket.on('message', (parts) => {
    const js = process.hrtime.bigint();
    for (const part of parts) {
      if (part.kind !== 'link' || part.attrs === undefined || part.attrs.ifname !== device) continue;
      const carrier = part.attrs.carrier !== undefined ? part.attrs.carrier === 1 : part.data.flags.lowerUp === true;
      if (carrier === last) continue;
      last = carrier;
      records.push({ t: js.toString(), carrier });
    }
  });
  closeObserver = () => socket.socket.close();
}

async function main() {
  if (mode === 'netheal') await startNetheal();
  else if (mode === 'netlink') startNetlinkPackage();
  else if (mode === 'idle') setInterval(() => {}, 1 << 30); // keeps the loop alive, never fires during a run
  else throw new Error(`unknown mode ${mode}`);
  let input = '';
  process.stdin.on('data', (chunk) => {
    input += chunk;
    if (!input.includes('dump')) return;
    closeObserver();
    process.stdout.write(`${JSON.stringify({ mode, pid: process.pid, records })}\n`, () => process.exit(0));
  });
  process.stdout.write(`ready ${process.pid}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
