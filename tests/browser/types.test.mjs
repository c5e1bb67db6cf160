// The TypeScript types: a storefront's use of the whole public API compiles
// under --strict (and misuses do not), and the shim exports exactly what
// the types declare.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './harness.mjs';

test('the public API type-checks under --strict, and misuses are type errors', () => {
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const args = ['--strict', '--noEmit', '--skipLibCheck', 'false', '--target', 'es2022', '--module', 'es2022', '--moduleResolution', 'bundler', '--lib', 'es2022,dom,esnext.disposable', 'tests/types/usage.ts'];
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
  }
});

test('the shim exports exactly what its types declare', async () => {
  const shim = await import(path.join(root, 'www/shelfrank.js'));
  const types = readFileSync(path.join(root, 'www/shelfrank.d.ts'), 'utf8');
  const declared = [...types.matchAll(/^export declare (?:function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(shim).sort(), declared);
});
