'use strict';
// Small process helpers the benchmarks share.
const { execFile } = require('node:child_process');

/** Runs `ip -n NS -batch -` with one command a line (thousands of addresses in one exec). */
function ipBatch(ns, lines) {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', ['-n', ns, '-batch', '-'], (error) => (error ? reject(error) : resolve()));
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

/** A child's whole stdout and stderr, and its exit code. */
function collect(child) {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

module.exports = { ipBatch, collect };
