// What the README promises about errors and limits, checked against the
// code that raises them: every error `name` the package can hand a page is
// listed, and the request limits exist once, in Rust.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './harness.mjs';

const read = (file) => readFileSync(path.join(root, file), 'utf8');
// The shim's sources (the build minifies them to www/*.js).
const shimFiles = readdirSync(path.join(root, 'www/src')).filter((f) => f.endsWith('.js'));

/** Error names the shim and the ranker can raise in a page. */
function raisedNames() {
  const names = new Set();
  for (const file of shimFiles) {
    for (const [, name] of read(`www/src/${file}`).matchAll(/(?:namedError\(|name(?: =|:) )'([A-Z][A-Za-z]*Error)'/g)) names.add(name);
  }
  // The ranker's kinds, except DataError: datasets are read by the native tools only.
  for (const [, name] of read('src/error.rs').matchAll(/=> "([A-Z][A-Za-z]*Error)"/g)) if (name !== 'DataError') names.add(name);
  return names;
}

test("README's error-name list names every error the package raises", () => {
  const readme = read('README.md');
  const list = /Errors carry a\s+`name` \(([^)]*)\)/.exec(readme);
  assert.ok(list, 'README has the "Errors carry a `name` (…)" list');
  const listed = new Set([...list[1].matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]));
  const raised = raisedNames();
  assert.ok(raised.size >= 14, `found the raised names: ${[...raised].join(', ')}`);
  const missing = [...raised].filter((name) => !listed.has(name));
  assert.deepEqual(missing, [], `raised but not in the README: ${missing.join(', ')}`);
  const stale = [...listed].filter((name) => !raised.has(name));
  assert.deepEqual(stale, [], `in the README but never raised: ${stale.join(', ')}`);
});

test('the request limits are defined once, in Rust: the shim reads them from the ranker', () => {
  for (const file of shimFiles) {
    const source = read(`www/src/${file}`);
    assert.doesNotMatch(source, /10[_,]?000|1024|MAX_CANDIDATES|MAX_TEXT_BYTES/, `www/src/${file} has its own copy of a limit`);
  }
  assert.match(read('src/rank.rs'), /pub const MAX_CANDIDATES: usize = 10_000;/);
  assert.match(read('src/wasm.rs'), /"maxCandidates": crate::rank::MAX_CANDIDATES/);
  // One check of a list inside the ranker: arrange relies on start's.
  const rank = read('src/rank.rs');
  const arrange = rank.slice(rank.indexOf('pub fn arrange('), rank.indexOf('fn server_signal('));
  assert.doesNotMatch(arrange.replace(/debug_assert!\([^;]*;/g, ''), /validate\(/, 'arrange validates again');
});
