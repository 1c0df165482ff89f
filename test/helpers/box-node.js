// @ts-check
// The Node that runs the tests, also inside a container booted from the host's own /
// (systemd-nspawn -D / --volatile=yes): a Node under /usr is there already; any other (the
// Node 22 and 24 runtimes CI fetches into a cache directory, nvm's) has its prefix bound in
// read-only at the same path, so process.execPath works in the box as outside.
'use strict';
const path = require('node:path');

const NODE = process.execPath;
/** The install prefix to bind, or null when the volatile root has this Node already. */
const NODE_PREFIX = NODE.startsWith('/usr/') ? null : path.dirname(path.dirname(NODE));
/** systemd-nspawn arguments that make process.execPath exist in the box. */
const NODE_BIND_ARGS = NODE_PREFIX === null ? [] : [`--bind-ro=${NODE_PREFIX}`];

module.exports = { NODE, NODE_PREFIX, NODE_BIND_ARGS };
