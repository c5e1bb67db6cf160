// The package as storefront developers get it: one `npm pack`, installed
// once into a fresh shop, then a tiny app per bundler (Vite 5, 6, 7 and 8,
// webpack 5, esbuild, Rollup 4, and no bundler at all behind an import map),
// each built through the bundler's JS API with no configuration beyond the
// line the README gives, served, and run in headless Chromium with the
// README's createReranker + rerank / attach code. Each app must rerank in
// its worker (no fallback), fetch only the CPU build's wasm, and raise no
// page error. Also: a worker script that cannot load (404, wrong MIME type)
// leaves the ranker on the page's thread, and importing the package in
// Node (as SSR frameworks do) is harmless.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { serve } from '../../tools/static-server.mjs';
import { launchChromium, root } from './harness.mjs';

// What the README tells esbuild, Rollup and no-bundler shops to add; the
// tests below use exactly these lines, and check that the README has them.
const COPY_LINE = 'cp -R node_modules/shelfrank/. dist/shelfrank';
const PACKAGE_OPTION = "packageUrl: '/shelfrank/'";
const SERVICE_WORKER_OPTION = 'serviceWorker: true';
const SERVICE_WORKER_URL_OPTION = "serviceWorker: '/shelfrank/www/service-worker.js'";
const IMPORT_MAP = '<script type="importmap">{ "imports": { "shelfrank": "/shelfrank/www/shelfrank.js" } }</script>';

/** The storefront code: the README's createReranker, then rerank and attach. `options` goes first in createReranker's options. */
const main = (options = '') => `
import { createReranker } from 'shelfrank';

const catalog = [
  ['p1', 'Nitrile examination gloves, powder free, medium'],
  ['p2', 'Digital caliper, 150 mm, stainless steel'],
  ['p3', 'PLA 3D printer filament, 1.75 mm, 1 kg, white'],
  ['p4', 'Safety glasses with anti-fog lens'],
  ['p5', 'PETG 3D printer filament, 1.75 mm, 1 kg, black'],
  ['p6', 'Duct tape, silver, 2 inch'],
];
const list = document.getElementById('list');
for (const [id, title] of catalog) {
  const li = document.createElement('li');
  li.dataset.shelfrankId = id;
  li.dataset.shelfrankTitle = title;
  li.textContent = title;
  list.append(li);
}
window.metrics = [];
const shelf = createReranker({ ${options}persist: false, budgetMs: 5000, onMetrics: (m) => window.metrics.push(m) });
shelf.record({ type: 'view', id: 'v1', title: 'ABS 3D printer filament, 1.75 mm, 1 kg, red' });
shelf.record({ type: 'add_to_cart', id: 'v2', title: 'TPU flexible 3D printer filament, 1.75 mm' });
shelf.ready.then(
  async () => {
    const serverList = catalog.map(([id, title]) => ({ id, title }));
    const { items, fallback, error } = await shelf.rerank(serverList, { surface: 'popular' });
    const direct = { fallback, error: error?.message, ids: items.map((i) => i.id) };
    shelf.attach(list, {
      surface: 'recommendations',
      onRerank: (r) => {
        window.result = { direct, fallback: r.fallback, error: r.error?.message, ids: r.items.map((i) => i.id), backend: shelf.backend };
      },
    });
  },
  (error) => {
    window.result = { loadError: error.name + ': ' + error.message };
  },
);
`;

const HTML = (script) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body><ul id="list"></ul>${script}</body></html>`;

let dir; // the shop: node_modules/shelfrank installed once, one folder per app
let chrome;
const closers = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-bundlers-'));
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'shop', private: true, type: 'module' }, null, 2));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', path.join(dir, tarball)], { cwd: dir, stdio: 'pipe' });
  chrome = await launchChromium({ webgpu: false });
});

after(async () => {
  for (const close of closers.reverse()) await close();
  await chrome?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh app folder in the shop, with `files` ({ relative path: text }). */
function app(name, files) {
  const folder = path.join(dir, name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(folder, file)), { recursive: true });
    writeFileSync(path.join(folder, file), text);
  }
  return folder;
}

/** The README's copy line, run in the app's folder (its node_modules: the shop's). */
function copyPackage(folder) {
  if (!existsSync(path.join(folder, 'node_modules'))) symlinkSync(path.join(dir, 'node_modules'), path.join(folder, 'node_modules'));
  execFileSync('sh', ['-c', COPY_LINE], { cwd: folder, stdio: 'pipe' });
}

/** Serves `dist` (or reuses `server`), opens it in Chromium and waits for the app's result. */
async function run(dist, { handler = null, server = null, warm = false } = {}) {
  if (!server) {
    server = await serve(dist, 0, handler);
    closers.push(() => server.close());
  }
  const page = await chrome.browser.newPage();
  const errors = [];
  const wasm = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const onRequest = (request) => {
    if (new URL(request.url()).pathname.endsWith('.wasm')) wasm.push(new URL(request.url()).pathname);
  };
  chrome.browser.on('request', onRequest); // the page's and its worker's
  try {
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => window.result !== undefined, null, { timeout: 60_000 });
    // A first visit with serviceWorker: the page stays until the service worker has loaded the engine for the next one.
    if (warm) await page.waitForFunction(() => window.metrics.some((m) => m.type === 'warm'), null, { timeout: 60_000 });
    const { result, metrics, order } = await page.evaluate(() => ({
      result: window.result,
      metrics: window.metrics,
      order: [...document.querySelectorAll('#list li')].map((li) => li.dataset.shelfrankId),
    }));
    return { result, metrics, order, errors, wasm };
  } finally {
    chrome.browser.off('request', onRequest);
    await page.close();
  }
}

/** Reranked in the worker, on the CPU build, the filaments first, the DOM in that order, nothing else fetched or failed. */
function assertReranked({ result, metrics, order, errors, wasm }, { worker = true, host = worker ? 'worker' : 'page', wasmFetches = 1 } = {}) {
  assert.equal(result.loadError, undefined, result.loadError);
  assert.equal(result.direct.fallback, false, result.direct.error);
  assert.equal(result.fallback, false, result.error);
  assert.equal(result.backend.name, 'cpu', 'no WebGPU adapter without the flag: the CPU path');
  // The two filaments come first after two filament events.
  assert.deepEqual(result.direct.ids.slice(0, 2).sort(), ['p3', 'p5'], result.direct.ids.join(','));
  assert.deepEqual(result.ids.slice(0, 2).sort(), ['p3', 'p5'], result.ids.join(','));
  assert.deepEqual(order, result.ids);
  const load = metrics.find((m) => m.type === 'load');
  assert.equal(load?.ok, true, JSON.stringify(metrics));
  assert.equal(load.worker, worker, `ran ${load.worker ? 'in the worker' : 'on the page'}: ${JSON.stringify(metrics)}`);
  assert.equal(load.host, host, JSON.stringify(load));
  if (worker || host === 'service-worker') assert.deepEqual(metrics.filter((m) => m.type === 'fallback' || m.type === 'error'), []);
  assert.equal(wasm.length, wasmFetches, `only the CPU build's wasm is fetched (${wasmFetches} times): ${wasm.join(', ')}`);
  // The page found the wasm where the bundler put it and compiled it for its engine (a shared service worker loaded its own).
  if (host !== 'service-worker') assert.equal(load.wasmFrom, 'page', JSON.stringify(load));
  assert.deepEqual(errors, []);
}

function listFiles(folder, prefix = '') {
  return readdirSync(folder, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(folder, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** A Vite app with no config file: index.html + main.js, `vite build`. */
async function viteApp(name, vite, options = '') {
  const folder = app(name, { 'index.html': HTML('<script type="module" src="/main.js"></script>'), 'main.js': main(options) });
  const dist = path.join(folder, 'dist');
  await vite.build({ root: folder, logLevel: 'warn', configFile: false, build: { outDir: dist } });
  const files = listFiles(dist);
  assert.equal(files.filter((f) => f.endsWith('.wasm')).length, 2, `the CPU and the WebGPU builds: ${files.join(', ')}`);
  assert.ok(files.some((f) => f.endsWith('.bin')), `no model in the bundle: ${files.join(', ')}`);
  return { folder, dist, files };
}

for (const [name, module] of [
  ['Vite 5', 'vite5'],
  ['Vite 6', 'vite6'],
  ['Vite 7', 'vite7'],
  ['Vite 8', 'vite'],
]) {
  test(`${name}, no configuration: the app bundles the packed package and reranks in its worker`, async () => {
    const vite = await import(module);
    assert.equal(vite.version.split('.')[0], name.split(' ')[1]);
    const { dist, files } = await viteApp(module, vite);
    if (module === 'vite') {
      // What the shop's visitors download (gzip -9), for the README's figures.
      const sizes = {};
      for (const f of files) sizes[f] = { bytes: statSync(path.join(dist, f)).size, gzipped: gzipSync(readFileSync(path.join(dist, f)), { level: 9 }).length };
      console.error(`vite bundle (bytes, gzip -9): ${JSON.stringify(sizes)}`);
    }
    assertReranked(await run(dist));
  });
}

test("Vite 8 with the README's copy line and the service worker's URL: the second page view finds the ranker loaded", async () => {
  const vite = await import('vite');
  const { folder, dist } = await viteApp('vite-sw', vite, `${SERVICE_WORKER_URL_OPTION}, `);
  copyPackage(folder);
  const server = await serve(dist, 0);
  closers.push(() => server.close());
  // A first visit runs on its own worker while the service worker installs, then loads the engine there.
  const first = await run(dist, { server, warm: true });
  assertReranked(first, { wasmFetches: 2 });
  assert.equal(first.metrics.find((m) => m.type === 'warm').ok, true, JSON.stringify(first.metrics));
  const second = await run(dist, { server });
  assertReranked(second, { worker: false, host: 'service-worker', wasmFetches: 0 });
  assert.equal(second.metrics.find((m) => m.type === 'load').shared, true);
});

test('webpack 5, no configuration (src/index.js to dist/main.js): the app reranks in its worker', async () => {
  const { default: webpack } = await import('webpack');
  const folder = app('webpack', { 'src/index.js': main(), 'dist/index.html': HTML('<script src="main.js"></script>') });
  // What `npx webpack` does in the app's folder with no webpack.config.js.
  const stats = await new Promise((resolve, reject) =>
    webpack({ mode: 'production', context: folder, output: { path: path.join(folder, 'dist') } }, (error, result) => (error ? reject(error) : resolve(result))),
  );
  assert.ok(!stats.hasErrors(), stats.toString({ all: false, errors: true }));
  const files = listFiles(path.join(folder, 'dist'));
  assert.equal(files.filter((f) => f.endsWith('.wasm')).length, 2, files.join(', '));
  assertReranked(await run(path.join(folder, 'dist')));
});

test("esbuild (--bundle --format=esm) with the README's packageUrl and copy line: the app reranks in its worker", async () => {
  const esbuild = await import('esbuild');
  const folder = app('esbuild', { 'main.js': main(`${PACKAGE_OPTION}, `), 'dist/index.html': HTML('<script type="module" src="/main.js"></script>') });
  await esbuild.build({ absWorkingDir: folder, entryPoints: ['main.js'], bundle: true, format: 'esm', outdir: 'dist', logLevel: 'warning' });
  copyPackage(folder);
  assertReranked(await run(path.join(folder, 'dist')));
});

test("esbuild with the README's packageUrl, copy line and serviceWorker: true: the first page view reranks in its own worker and loads the ranker in the service worker, the next finds it loaded", async () => {
  const esbuild = await import('esbuild');
  const folder = app('esbuild-sw', { 'main.js': main(`${PACKAGE_OPTION}, ${SERVICE_WORKER_OPTION}, `), 'dist/index.html': HTML('<script type="module" src="/main.js"></script>') });
  await esbuild.build({ absWorkingDir: folder, entryPoints: ['main.js'], bundle: true, format: 'esm', outdir: 'dist', logLevel: 'warning' });
  copyPackage(folder);
  const dist = path.join(folder, 'dist');
  const server = await serve(dist, 0);
  closers.push(() => server.close());
  // A first visit runs on its own worker while the service worker installs, then loads the engine there.
  const first = await run(dist, { server, warm: true });
  assertReranked(first, { wasmFetches: 2 });
  assert.equal(first.metrics.find((m) => m.type === 'warm').ok, true, JSON.stringify(first.metrics));
  const second = await run(dist, { server });
  // Nothing loaded again: no wasm fetched.
  assertReranked(second, { worker: false, host: 'service-worker', wasmFetches: 0 });
  assert.equal(second.metrics.find((m) => m.type === 'load').shared, true);
});

test("Rollup 4 (with @rollup/plugin-node-resolve) with the README's packageUrl and copy line: the app reranks in its worker", async () => {
  const { rollup } = await import('rollup');
  const { nodeResolve } = await import('@rollup/plugin-node-resolve');
  const folder = app('rollup', { 'main.js': main(`${PACKAGE_OPTION}, `), 'dist/index.html': HTML('<script type="module" src="/main.js"></script>') });
  const warnings = [];
  const bundle = await rollup({ input: path.join(folder, 'main.js'), plugins: [nodeResolve({ rootDir: folder })], onwarn: (w) => warnings.push(w.message) });
  await bundle.write({ dir: path.join(folder, 'dist'), format: 'es' });
  await bundle.close();
  assert.deepEqual(warnings, []);
  copyPackage(folder);
  assertReranked(await run(path.join(folder, 'dist')));
});

/** The no-bundler app: the README's copy line and import map, main.js served as it is. */
function importMapApp(name) {
  const folder = app(name, {
    'dist/index.html': HTML(`${IMPORT_MAP}<script type="module" src="/main.js"></script>`),
    'dist/main.js': main(),
  });
  copyPackage(folder);
  return path.join(folder, 'dist');
}

test("no bundler, the README's copy line and import map: the page reranks in its worker", async () => {
  assertReranked(await run(importMapApp('importmap')));
});

for (const [what, handler] of [
  [
    'is missing (404)',
    (req, res, url) => {
      if (!url.pathname.endsWith('/www/worker.js')) return false;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return true;
    },
  ],
  [
    'is served as text/plain',
    (req, res, url) => {
      if (!url.pathname.endsWith('/www/worker.js')) return false;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(readFileSync(path.join(dir, 'node_modules/shelfrank/www/worker.js')));
      return true;
    },
  ],
]) {
  test(`a worker script that ${what} leaves the ranker on the page's thread: it reranks, and onMetrics says why`, async () => {
    const outcome = await run(importMapApp(`worker-${what.length}`), { handler });
    assertReranked(outcome, { worker: false });
    const { metrics } = outcome;
    assert.ok(metrics.some((m) => m.type === 'fallback' && m.from === 'worker' && m.to === 'page' && m.error === 'WorkerError'), JSON.stringify(metrics));
    assert.ok(metrics.some((m) => m.type === 'error' && m.error === 'WorkerError' && m.during === 'load'), JSON.stringify(metrics));
    assert.equal(metrics.filter((m) => m.type === 'load').length, 1, 'one load, on the page, and no crash restart');
  });
}

test('importing the package in Node (as SSR frameworks do) does not crash, and a reranker there keeps the server order', () => {
  const script = `
    const shelfrank = await import('shelfrank');
    const names = Object.keys(shelfrank).sort().join(',');
    const shelf = shelfrank.createReranker({ onMetrics: () => {} });
    const handle = shelf.attach(null, { surface: 'search' });
    const { items, fallback, error } = await shelf.rerank([{ id: 'a' }, { id: 'b' }]);
    await shelf.ready.catch(() => {});
    shelf.destroy();
    console.log(JSON.stringify({ names, ids: items.map((i) => i.id), fallback, error: error?.name, status: shelf.status, handle: typeof handle.refresh }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '--unhandled-rejections=strict', '-e', script], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const result = JSON.parse(out.trim().split('\n').pop());
  assert.equal(result.names, 'Reranker,createReranker,defaultModelUrls,loadReranker');
  assert.deepEqual(result.ids, ['a', 'b']);
  assert.equal(result.fallback, true);
  assert.equal(result.handle, 'function');
  assert.equal(result.status, 'destroyed');
});

test('the README gives exactly the lines these apps use', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const line of [COPY_LINE, PACKAGE_OPTION, IMPORT_MAP, SERVICE_WORKER_OPTION, SERVICE_WORKER_URL_OPTION]) assert.ok(readme.includes(line), `README.md lacks: ${line}`);
});
