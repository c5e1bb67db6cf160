// The package as a storefront developer gets it: `npm pack`, installed into
// a fresh app, bundled by Vite with no configuration, served, and run in
// headless Chromium: the wasm, the worker and the model must all be found
// by the bundler, and the list reranked.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';
import { serve } from '../../tools/static-server.mjs';
import { launchChromium, root } from './harness.mjs';

const cleanup = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const MAIN = `
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
const shelf = createReranker({ persist: false, budgetMs: 5000 });
shelf.record({ type: 'view', id: 'v1', title: 'ABS 3D printer filament, 1.75 mm, 1 kg, red' });
shelf.record({ type: 'add_to_cart', id: 'v2', title: 'TPU flexible 3D printer filament, 1.75 mm' });
shelf.ready.then(
  () => shelf.attach(list, { surface: 'recommendations', onRerank: (r) => { window.result = { fallback: r.fallback, error: r.error?.message, ids: r.items.map((i) => i.id), backend: shelf.backend }; } }),
  (error) => { window.result = { loadError: error.name + ': ' + error.message }; },
);
`;

test('a fresh Vite app bundles the packed package and reranks with it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shelfrank-vite-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop();
  const app = path.join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'vite-shop', private: true, type: 'module' }, null, 2));
  writeFileSync(
    path.join(app, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>shop</title></head><body><ul id="list"></ul><script type="module" src="/main.js"></script></body></html>',
  );
  writeFileSync(path.join(app, 'main.js'), MAIN);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', path.join(dir, tarball)], { cwd: app, stdio: 'pipe' });

  await build({ root: app, logLevel: 'warn', configFile: false, build: { outDir: path.join(app, 'dist') } });
  const dist = path.join(app, 'dist');
  const files = listFiles(dist);
  assert.ok(files.some((f) => f.endsWith('.wasm')), `no wasm in the bundle: ${files.join(', ')}`);
  assert.ok(files.some((f) => f.endsWith('.bin')), `no model in the bundle: ${files.join(', ')}`);

  // What the shop's visitors download (gzip -9).
  const sizes = {};
  for (const f of files) {
    sizes[f] = { bytes: statSync(path.join(dist, f)).size, gzipped: gzipSync(readFileSync(path.join(dist, f)), { level: 9 }).length };
  }
  console.error(`vite bundle (bytes, gzip -9): ${JSON.stringify(sizes)}`);
  assert.equal(files.filter((f) => f.endsWith('.wasm')).length, 2, 'the CPU and the WebGPU builds');

  const server = await serve(dist);
  cleanup.push(() => server.close());
  const { browser, close } = await launchChromium({ webgpu: false });
  cleanup.push(close);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => window.result !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.result);
  assert.equal(result.loadError, undefined, result.loadError);
  assert.equal(result.fallback, false, result.error);
  assert.equal(result.backend.name, 'cpu', 'no WebGPU adapter without the flag: the CPU path');
  // The two filaments come first after two filament events.
  assert.deepEqual(result.ids.slice(0, 2).sort(), ['p3', 'p5'], result.ids.join(','));
  assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('#list li')].map((li) => li.dataset.shelfrankId)), result.ids);
  assert.deepEqual(errors, []);
});

function listFiles(dir, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}
