// `npm test` after set-up: the native tests (`cargo test --profile
// native-test`: release, at opt-level 1, see Cargo.toml) and the
// browser package build (tools/build.mjs) side by side, then the browser
// tests on the built package. The two builds share no artifacts (native vs
// wasm32) and each spends long stretches on one core (one big crate, one
// LTO link), so running them together fills the machine's idle core.
// Prints how long each part took. Arguments go to `node --test`
// (e.g. `npm test -- tests/browser/ranker.test.mjs`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fail } from './setup.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
const since = (t) => `${((Date.now() - t) / 60_000).toFixed(1)} min`;

/** Runs a command with each output line prefixed by `label`; resolves to its exit code. */
function run(label, cmd, args) {
  return new Promise((resolve) => {
    const t = Date.now();
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [from, to] of [
      [child.stdout, process.stdout],
      [child.stderr, process.stderr],
    ]) {
      let rest = '';
      from.setEncoding('utf8');
      from.on('data', (chunk) => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        for (const line of lines) to.write(`[${label}] ${line}\n`);
      });
      from.on('end', () => rest && to.write(`[${label}] ${rest}\n`));
    }
    child.on('error', (error) => {
      console.error(`[${label}] cannot run ${cmd}: ${error.message}`);
      resolve(1);
    });
    child.on('close', (code) => {
      console.error(`test: ${label} finished (exit ${code}) in ${since(t)}`);
      resolve(code ?? 1);
    });
  });
}

const [native, build] = await Promise.all([
  run('native', 'cargo', ['test', '--profile', 'native-test']),
  run('build', process.execPath, [path.join(root, 'tools/build.mjs')]),
]);
if (build !== 0) fail('the browser package did not build: the [build] lines above say why.');
if (native !== 0) fail('native tests failed: the [native] lines above name them (rerun one with `cargo test --profile native-test <name>`).');

const files = process.argv.slice(2);
const t = Date.now();
const browser = await new Promise((resolve) => {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...(files.length ? files : ['tests/browser/'])], { cwd: root, stdio: 'inherit' });
  child.on('close', (code) => resolve(code ?? 1));
});
console.error(`test: browser tests finished (exit ${browser}) in ${since(t)}; npm test took ${since(started)} after set-up`);
if (browser !== 0) fail('browser tests failed: the "not ok" lines above name them.');
