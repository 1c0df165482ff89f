// @ts-check
'use strict';
// Units a test container booted from the host's own / (systemd-nspawn -D / --volatile=yes -b)
// must not start: whatever the host has enabled (a Prometheus server, FRR, keepalived, a
// database installed for the benchmarks or by the image) would start in every test box, slow
// its boot past the tests' limits, and has nothing to do with what is tested. Passed to the
// container's systemd as `systemd.mask=UNIT` arguments.
const BOOT_MASKS = [
  'systemd-networkd-wait-online.service', 'NetworkManager-wait-online.service', 'ifupdown-wait-online.service',
  'networking.service', 'keepalived.service', 'frr.service', 'prometheus.service', 'prometheus-node-exporter.service',
  'postgresql.service', 'supervisor.service',
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'nftables.service', 'systemd-firstboot.service',
];

module.exports = { BOOT_MASKS };
