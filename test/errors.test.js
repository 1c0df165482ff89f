// Every registered error code is documented in the README, and nothing documented is stale.
'use strict';
const test = require('ava');
const fs = require('node:fs');
const path = require('node:path');
const { ErrorCodes, ExitCode } = require('../lib/errors');

const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

test('every error code is documented in README.md', (t) => {
  for (const code of Object.keys(ErrorCodes)) t.true(readme.includes(`\`${code}\``), `${code} missing from README`);
});

test('the README documents no code that does not exist', (t) => {
  const documented = new Set(readme.match(/NETHEAL_ERR_[A-Z_]+/g));
  for (const code of documented) t.true(code in ErrorCodes, `${code} is documented but not registered`);
});

test('every exit code is documented', (t) => {
  for (const code of Object.values(ExitCode)) t.regex(readme, new RegExp(`^\\| ${code} \\|`, 'm'));
});
