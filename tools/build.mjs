// Builds the browser package: the wasm crate twice, with JS bindings for
// each, and the demo catalog. One script, run by `npm start`, `npm test`,
// `npm run build` and `npm run bench`.
//
//   www/pkg-cpu/     the CPU build (burn's flex backend): every page loads it
//   www/pkg-webgpu/  the WebGPU build: fetched only when a hardware GPU exists
//
// The CPU build uses the `wasm` profile (LTO, panic = abort) and binaryen's
// wasm-opt -O3 (its latency matters most; SHELFRANK_WASM_OPT=0 skips it, =z
// for -Oz). The WebGPU build is a plain release build; wasm-opt on its 30 MB
// takes over ten minutes here, so it runs only with SHELFRANK_WASM_OPT_WEBGPU=1.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = {}) => {
  console.error(`build: ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
};
const started = Date.now();
const optimise = process.env.SHELFRANK_WASM_OPT ?? '3';

const variants = [
  { name: 'cpu', profile: 'wasm', features: ['--no-default-features'], optimise },
  { name: 'webgpu', profile: 'release', features: [], optimise: process.env.SHELFRANK_WASM_OPT_WEBGPU === '1' ? optimise : '0' },
];
for (const { name, profile, features, optimise } of variants) {
  run('cargo', ['build', '--profile', profile, '--lib', '--target', 'wasm32-unknown-unknown', ...features]);
  const wasm = path.join(root, `target/wasm32-unknown-unknown/${profile}/shelfrank.wasm`);
  const out = path.join(root, `www/pkg-${name}`);
  mkdirSync(out, { recursive: true });
  run('wasm-bindgen', ['--target', 'web', '--out-dir', out, wasm]);
  const bindgenWasm = path.join(out, 'shelfrank_bg.wasm');
  if (optimise !== '0') {
    const wasmOpt = path.join(root, 'node_modules/binaryen/bin/wasm-opt');
    if (!existsSync(wasmOpt)) throw new Error('wasm-opt comes from the binaryen npm package: run npm install (or SHELFRANK_WASM_OPT=0)');
    const features = ['--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue'];
    run(wasmOpt, [`-O${optimise}`, ...features, bindgenWasm, '-o', bindgenWasm]);
  }
  const bytes = statSync(bindgenWasm).size;
  const gz = gzipSync(readFileSync(bindgenWasm), { level: 9 }).length;
  console.error(`build: www/pkg-${name}/shelfrank_bg.wasm is ${bytes} bytes, ${gz} gzipped`);
}

const catalog = path.join(root, 'www/demo/catalog.json');
if (!existsSync(catalog)) {
  run('cargo', ['run', '--release', '--quiet', '--bin', 'catalog', '--', '--data', 'data/scientific', '--out', catalog]);
}
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
