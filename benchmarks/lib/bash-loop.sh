#!/bin/bash
# The common "self-healing" loop, instrumented for benchmarks/recovery.bench.js:
#
#   while true; do ping -c1 -W1 GW >/dev/null || { ifdown IF; ifup IF; }; sleep 30; done
#
# Run ONLY inside a lab namespace (ip netns exec NS bash-loop.sh ...): GW is a lab address,
# IFACES/STATE are the lab's own ifupdown interfaces file and state dir, never the host's.
#
# usage: bash-loop.sh GW IF INTERFACES_FILE STATE_DIR SLEEP_S
# Output, one line per event, each with bash's $EPOCHREALTIME (CLOCK_REALTIME, us; no fork):
#   ping <t>     the loop starts its ping (= the end of the previous sleep)
#   ok <t>       ping answered
#   fail <t>     ping failed (detection)
#   bounced <t>  ifdown + ifup returned
#   sleep <t>    the loop starts sleeping
set -u
GW=$1 IF=$2 IFACES=$3 STATE=$4 SLEEP_S=$5
export LC_ALL=C
IFUPDOWN_OPTS=(-i "$IFACES" "--state-dir=$STATE" --no-scripts)
while true; do
  echo "ping $EPOCHREALTIME"
  if ping -c1 -W1 "$GW" >/dev/null 2>&1; then
    echo "ok $EPOCHREALTIME"
  else
    echo "fail $EPOCHREALTIME"
    ifdown "${IFUPDOWN_OPTS[@]}" "$IF" >/dev/null 2>&1
    ifup "${IFUPDOWN_OPTS[@]}" "$IF" >/dev/null 2>&1
    echo "bounced $EPOCHREALTIME"
  fi
  echo "sleep $EPOCHREALTIME"
  sleep "$SLEEP_S"
done
