// Builds the browser package: the wasm crate, its JS bindings (www/pkg),
// and the demo catalog. One script, run by `npm start`, `npm test` and
// `npm run build`. Set SHELFRANK_WASM_OPT=1 to also shrink the wasm with
// binaryen's wasm-opt (slow: minutes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = {}) => {
  console.error(`build: ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
};
const started = Date.now();

run('cargo', ['build', '--release', '--lib', '--target', 'wasm32-unknown-unknown']);
const wasm = path.join(root, 'target/wasm32-unknown-unknown/release/shelfrank.wasm');
const out = path.join(root, 'www/pkg');
mkdirSync(out, { recursive: true });
run('wasm-bindgen', ['--target', 'web', '--out-dir', out, wasm]);
const bindgenWasm = path.join(out, 'shelfrank_bg.wasm');
if (process.env.SHELFRANK_WASM_OPT === '1') {
  const wasmOpt = path.join(root, 'node_modules/binaryen/bin/wasm-opt');
  if (!existsSync(wasmOpt)) throw new Error('SHELFRANK_WASM_OPT=1 needs the binaryen npm package (npm install)');
  run(wasmOpt, ['-Oz', '--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue', bindgenWasm, '-o', bindgenWasm]);
}
console.error(`build: ${path.relative(root, bindgenWasm)} is ${statSync(bindgenWasm).size} bytes`);

const catalog = path.join(root, 'www/demo/catalog.json');
if (!existsSync(catalog)) {
  run('cargo', ['run', '--release', '--quiet', '--bin', 'catalog', '--', '--data', 'data/scientific', '--out', catalog]);
}
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
