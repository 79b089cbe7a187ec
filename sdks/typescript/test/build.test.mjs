// The published shape: dist/ holds ES modules, CommonJS and declarations,
// and both require() and import() of the package name give the same API.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SDK_ROOT } from './harness.mjs';

const pkg = JSON.parse(readFileSync(join(SDK_ROOT, 'package.json'), 'utf8'));

test('dist has ESM, CJS and type declarations for every entry of the exports map', () => {
  const entry = pkg.exports['.'];
  for (const file of [entry.import.default, entry.import.types, entry.require.default, entry.require.types, pkg.main, pkg.types]) {
    assert.ok(existsSync(join(SDK_ROOT, file)), `${file} is missing: run npm run build`);
  }
  assert.equal(JSON.parse(readFileSync(join(SDK_ROOT, 'dist/esm/package.json'), 'utf8')).type, 'module');
  assert.equal(JSON.parse(readFileSync(join(SDK_ROOT, 'dist/cjs/package.json'), 'utf8')).type, 'commonjs');
  const dts = readFileSync(join(SDK_ROOT, entry.import.types), 'utf8');
  assert.match(dts, /export \{ Sandbox/);
});

test('require() and import() of the package both work and agree', async () => {
  // Self-reference by package name resolves through the exports map.
  const require = createRequire(join(SDK_ROOT, 'package.json'));
  const cjs = require(pkg.name);
  const esm = await import(pkg.name);
  assert.equal(typeof cjs.Sandbox.create, 'function');
  assert.equal(typeof esm.Sandbox.create, 'function');
  const exported = (mod) => Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule').sort();
  assert.deepEqual(exported(cjs), exported(esm));
  assert.equal(cjs.VERSION, pkg.version);
  assert.equal(esm.VERSION, pkg.version);
  // Errors are real subclasses in both builds.
  const err = new cjs.EditConflictError({ code: 'edit_conflict', status: 409, detail: 'x' });
  assert.ok(err instanceof cjs.ConflictError && err instanceof cjs.WarrenError && err instanceof Error);
  assert.equal(err.name, 'EditConflictError');
  assert.ok(new esm.NotFoundError({ code: 'file_not_found', detail: 'x' }) instanceof esm.WarrenError);
});

test('the CommonJS build loads in a plain CommonJS process', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `const { Sandbox, WarrenError } = require(${JSON.stringify(join(SDK_ROOT, pkg.main))});
    if (typeof Sandbox.list !== 'function' || typeof WarrenError !== 'function') process.exit(1);
    console.log('ok');`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'ok');
});
