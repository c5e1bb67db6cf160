// Builds the browser package: the wasm crate twice, with JS bindings for
// each, the shim (`www/src/*.js` minified to `www/*.js`) and the demo
// catalog. One script, run by `npm start`, `npm test`,
// `npm run build` and `npm run bench`.
//
//   www/pkg-cpu/     the CPU build (the plain-Rust host network, no burn): every page loads it
//   www/pkg-webgpu/  the WebGPU build: fetched only when a hardware GPU exists
//   www/*.js         the shim the page loads, minified (the entry points bundled) from www/src/ (with source maps)
//
// The CPU build uses the `wasm` profile (LTO, panic = abort) and binaryen's
// wasm-opt -O3 (its latency matters most; SHELFRANK_WASM_OPT=0 skips it, =z
// for -Oz). Both builds' JS glue is minified with esbuild. The WebGPU build is a plain release build (profile
// `wasm-webgpu`, so it never waits on the native build's lock); wasm-opt on its 30 MB
// takes over ten minutes here, so it runs only with SHELFRANK_WASM_OPT_WEBGPU=1.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { fail, wasmBindgenCommand, wasmBindgenVersion } from './setup.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = {}) => {
  console.error(`build: ${path.basename(cmd)} ${args.join(' ')}`);
  const t = Date.now();
  try {
    execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    console.error(`build: ${path.basename(cmd)} took ${((Date.now() - t) / 1000).toFixed(0)} s`);
  } catch (error) {
    // The tool has printed why; say what failed in one line, without a Node stack.
    if (error.code === 'ENOENT') fail(`${path.basename(cmd)} is not installed: run \`node tools/setup.mjs\` to install what the build needs, then build again.`);
    fail(`\`${path.basename(cmd)} ${args.join(' ')}\` failed (exit ${error.status ?? error.signal}): the output above says why.`);
  }
};
const wasmBindgen = wasmBindgenCommand();
if (!wasmBindgen) fail(`wasm-bindgen ${wasmBindgenVersion()} (the version in Cargo.lock) is not installed: run \`node tools/setup.mjs\` (npm start and npm test do), then build again.`);
const started = Date.now();
const optimise = process.env.SHELFRANK_WASM_OPT ?? '3';

const variants = [
  // `first`: how long a first build takes on an idle 2-core machine (the WebGPU build compiles burn for wasm).
  { name: 'cpu', profile: 'wasm', features: ['--no-default-features'], optimise, first: 'under a minute' },
  { name: 'webgpu', profile: 'wasm-webgpu', features: [], optimise: process.env.SHELFRANK_WASM_OPT_WEBGPU === '1' ? optimise : '0', first: '7-8 min' },
];
for (const { name, profile, features, optimise, first } of variants) {
  console.error(`build: the ${name} wasm build (the first on a machine takes ${first} on 2 cores; later ones, seconds)`);
  run('cargo', ['build', '--profile', profile, '--lib', '--target', 'wasm32-unknown-unknown', ...features]);
  const wasm = path.join(root, `target/wasm32-unknown-unknown/${profile}/shelfrank.wasm`);
  const out = path.join(root, `www/pkg-${name}`);
  const bindgenWasm = path.join(out, 'shelfrank_bg.wasm');
  // What this package was made from: when cargo did not relink, the
  // bindings and wasm-opt's output (minutes for the CPU build) still hold.
  const source = statSync(wasm);
  const made = JSON.stringify({ mtime: source.mtimeMs, size: source.size, optimise, wasmBindgen: wasmBindgenVersion() });
  const stamp = path.join(out, '.made-from.json');
  if (existsSync(bindgenWasm) && existsSync(stamp) && readFileSync(stamp, 'utf8') === made) {
    console.error(`build: www/pkg-${name} is up to date`);
    continue;
  }
  mkdirSync(out, { recursive: true });
  run(wasmBindgen, ['--target', 'web', '--out-dir', out, wasm]);
  if (optimise !== '0') {
    const wasmOpt = path.join(root, 'node_modules/binaryen/bin/wasm-opt');
    if (!existsSync(wasmOpt)) fail('wasm-opt comes from the binaryen npm package, which is not installed: run `node tools/setup.mjs` (or build with SHELFRANK_WASM_OPT=0).');
    const features = ['--enable-reference-types', '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals', '--enable-multivalue'];
    run(wasmOpt, [`-O${optimise}`, ...features, bindgenWasm, '-o', bindgenWasm]);
  }
  // The generated JS glue, minified like the wasm it loads (every page
  // fetches the CPU build's and the worker imports both): 19.8 -> 13.1 KB
  // gzipped together. Exports, the wasm's import names and the literal
  // `new URL('shelfrank_bg.wasm', import.meta.url)` bundlers look for stay.
  const glue = path.join(out, 'shelfrank.js');
  const { transformSync } = await import('esbuild');
  writeFileSync(glue, transformSync(readFileSync(glue, 'utf8'), { minify: true, format: 'esm', target: 'es2022', legalComments: 'none' }).code);
  const bytes = statSync(bindgenWasm).size;
  const gz = gzipSync(readFileSync(bindgenWasm), { level: 9 }).length;
  console.error(`build: www/pkg-${name}/shelfrank_bg.wasm is ${bytes} bytes, ${gz} gzipped`);
  writeFileSync(stamp, made);
}

// The shim: its readable sources are `www/src/*.js`; the page loads
// `www/*.js`, the same modules minified, each with a source map back to its
// sources. The sources name their neighbours as the built files sit
// (`./pkg-cpu/…`, `../models/…`), so every import and
// `new URL(…, import.meta.url)` keeps its literal text. The three entry
// points a page view loads are bundled, each into one file: the page's
// module (`shelfrank.js`, with capture and protocol; the page-thread
// engine stays a separate `./engine.js`, imported only when there is no
// worker) and the Web Worker (`worker.js`, with the engine, its host and
// both builds' JS glue; `service-worker.js` imports the engine from it, so
// a first visit downloads the engine once). A first page view then waits
// on one request per thread instead of a chain of three or four imports.
// The other modules are still built alone, for the page-thread fallback.
const shimSources = path.join(root, 'www/src');
// The sources import the wasm builds' glue as the built files see it (`./pkg-cpu/…` next to `www/*.js`).
const besideTheBuiltFiles = {
  name: 'beside-the-built-files',
  setup(build) {
    build.onResolve({ filter: /^\.\/pkg-/ }, (args) => ({ path: path.join(root, 'www', args.path) }));
    // The glue's own default wasm URL (`new URL('shelfrank_bg.wasm', import.meta.url)`, which bundlers
    // such as webpack follow) named from where the bundle sits. The engine always passes its URL.
    build.onLoad({ filter: /[\\/]pkg-(cpu|webgpu)[\\/]shelfrank\.js$/ }, (args) => {
      const kind = path.basename(path.dirname(args.path));
      const glue = readFileSync(args.path, 'utf8');
      const named = glue.replaceAll(/new URL\((["'])shelfrank_bg\.wasm\1,\s*import\.meta\.url\)/g, `new URL("./${kind}/shelfrank_bg.wasm",import.meta.url)`);
      if (named === glue) throw new Error(`${args.path}: the glue no longer names shelfrank_bg.wasm as expected`);
      return { contents: named, loader: 'js' };
    });
  },
};
const BUNDLED = { 'shelfrank.js': ['./engine.js'], 'worker.js': [], 'service-worker.js': ['./worker.js'] };
{
  const esbuild = await import('esbuild');
  let before = 0;
  let after = 0;
  const bundles = [];
  for (const name of readdirSync(shimSources).filter((f) => f.endsWith('.js')).sort()) {
    const source = readFileSync(path.join(shimSources, name), 'utf8');
    const common = { minify: true, format: 'esm', target: 'es2022', legalComments: 'none', sourcemap: 'external', sourcesContent: false };
    let code;
    let map;
    if (BUNDLED[name]) {
      const out = await esbuild.build({ ...common, entryPoints: [path.join(shimSources, name)], bundle: true, external: BUNDLED[name], outfile: path.join(root, 'www', name), write: false, plugins: [besideTheBuiltFiles] });
      map = out.outputFiles.find((f) => f.path.endsWith('.map')).text;
      code = out.outputFiles.find((f) => f.path.endsWith('.js')).text.replace(/\/\/# sourceMappingURL=.*\n?$/, '');
    } else {
      ({ code, map } = esbuild.transformSync(source, { ...common, sourcefile: `src/${name}` }));
    }
    writeFileSync(path.join(root, 'www', name), `${code}//# sourceMappingURL=${name}.map\n`);
    writeFileSync(path.join(root, 'www', `${name}.map`), map);
    if (BUNDLED[name]) {
      bundles.push(`${name} ${gzipSync(code, { level: 9 }).length}`);
    } else {
      before += gzipSync(source, { level: 9 }).length;
      after += gzipSync(code, { level: 9 }).length;
    }
  }
  console.error(`build: the shim's modules minified, ${before} -> ${after} bytes gzipped; bundles (bytes gzipped): ${bundles.join(', ')}`);
}

const catalog = path.join(root, 'www/demo/catalog.json');
if (!existsSync(catalog)) {
  run(process.execPath, [path.join(root, 'tools/catalog.mjs'), '--data', path.join(root, 'data/scientific'), '--out', catalog]);
}
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
