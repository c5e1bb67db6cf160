// The page-view path of a multi-page shop: ten product pages, each a full
// navigation, as a shopper clicks through them. Every page is rendered by
// the server with a 40-item "popular" list marked up as the README shows,
// loads shelfrank, records a view of its product and attaches to the list.
// The HTTP cache is warm after the first page (files are served gzipped
// with max-age and an ETag, like a CDN: compressed before the first
// request, not while it waits), and the history is carried in IndexedDB.
//
// Per page it prints: ms from navigation start to the list in its final
// order (reranked, or released in server order), whether it fell back,
// bytes sent by the server for the page view (gzipped bodies and headers),
// and the layout shift the page had (CLS, shifts without recent input);
// also when the page's module script ran (`script_ms`), the engine's load
// stages, and the page thread's long tasks before the list was final.
// Then one `page-view` summary line: `median_ms` (pages 2–10), `first_ms`,
// `max_cls`, `fallbacks`. Two integrations are measured:
// - `attach`: `attach(list)` on a list that is painted at once (today's
//   README integration: server order first, reordered when ready);
// - `hold`: the list carries `data-shelfrank-hold` (hidden by the page's
//   CSS for at most 300 ms, reserved space, no JS needed to reveal it) and
//   shelfrank reorders it before it is shown, or shows the server order
//   when that takes longer than `holdMs`;
// - `service-worker`: the same held list with `serviceWorker: true`, the
//   README's multi-page integration: the engine lives in a service worker
//   that outlives page views (the first page runs its own worker and warms
//   the service worker for the next).
//
//   node bench/pages.mjs [--pages 10] [--modes attach,hold,service-worker] [--options '{"worker":false}'] [--trace]
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/browser/harness.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm', '.bin': 'application/octet-stream', '.css': 'text/css' };

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** One product page of the shop, as its server would render it. */
function productPage(catalog, n, mode) {
  const product = catalog[(n * 97 + 13) % catalog.length];
  // The shop's "popular" list: the same 40 items on every page, in the server's order.
  const popular = catalog.slice(200, 240);
  const items = popular
    .map(
      (item) => `<li data-shelfrank-id="${escape(item.id)}" data-shelfrank-title="${escape(item.title)}"${item.category ? ` data-shelfrank-category="${escape(item.category)}"` : ''}>
  <a href="/shop/${(catalog.indexOf(item) * 7) % 1000}">${escape(item.title)}</a> <small data-shelfrank-slot="reason"></small></li>`,
    )
    .join('\n');
  const hold = mode !== 'attach';
  const options = mode === 'service-worker' ? { serviceWorker: true } : {};
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(product.title)}</title>
<style>
  body { font: 16px/1.4 sans-serif; margin: 0 1rem; }
  ul { list-style: none; padding: 0; }
  li { padding: .3rem 0; }
  @keyframes shelfrank-show { from { visibility: hidden } to { visibility: visible } }
  [data-shelfrank-hold] { animation: shelfrank-show 0s linear 300ms both; }
</style>
<script>
  window.__cls = 0;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value; }).observe({ type: 'layout-shift', buffered: true });
  window.__longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]); }).observe({ type: 'longtask', buffered: true });
</script>
</head><body>
<h1>${escape(product.title)}</h1>
<p>${escape(product.category ?? '')}</p>
<h2>Popular right now</h2>
<ul id="popular"${hold ? ' data-shelfrank-hold' : ''}>
${items}
</ul>
<script type="module">
  import { createReranker } from '/www/shelfrank.js';
  window.__scriptAt = performance.now();
  const shelf = createReranker({ consent: 'not-required', captureDom: false, dataLayer: false, ...${JSON.stringify(options)}, onMetrics: (m) => { if (m.type === 'load') window.__load = m; }, ...(window.__shelfOptions ?? {}) });
  shelf.ready.then(() => { window.__readyAt = performance.now(); });
  shelf.record(${JSON.stringify({ type: 'view', id: product.id, title: product.title, category: product.category ?? undefined })});
  const list = document.getElementById('popular');
  const done = (result) => {
    window.__final = { ms: performance.now(), fallback: result.fallback, error: result.error?.name ?? null, backend: result.backend };
  };
  shelf.attach(list, { surface: 'popular', ${hold ? 'holdMs: 250, ' : ''}onRerank: done });
</script>
</body></html>`;
}

const etags = new WeakMap();
/** A body's ETag, hashed once (for the package's files ahead of any request, not on a page view's clock). */
function etagOf(body) {
  if (!etags.has(body)) etags.set(body, `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`);
  return etags.get(body);
}

/** The package's files as a CDN holds them: gzipped once and tagged, ahead of any request (not on the first one). */
async function precompressed() {
  const zipped = new Map();
  const walk = async (dir) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      // The WebGPU build's 30 MB wasm is fetched only with a hardware adapter: gzipped if it is ever asked for.
      else if (!file.endsWith(path.join('pkg-webgpu', 'shelfrank_bg.wasm'))) {
        const body = gzipSync(await fs.readFile(file), { level: 9 });
        etagOf(body);
        zipped.set(file, body);
      }
    }
  };
  await walk(path.join(root, 'www'));
  await walk(path.join(root, 'models'));
  return zipped;
}

/** Serves the repository's files gzipped with max-age, the shop's pages, and counts the bytes it sends. */
async function shopServer(catalog, mode) {
  const zipped = await precompressed();
  let sent = 0;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const send = (status, headers, body) => {
      res.writeHead(status, headers);
      res.end(body);
      sent += body.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + String(v).length + 4, 20);
    };
    const page = url.pathname.match(/^\/shop\/(\d+)$/);
    if (page) {
      const body = gzipSync(productPage(catalog, Number(page[1]), mode));
      send(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'gzip', 'cache-control': 'no-store' }, body);
      return;
    }
    const file = path.resolve(root, '.' + decodeURIComponent(url.pathname));
    if (!file.startsWith(root + path.sep) || !/^\/(www|models)\//.test(url.pathname)) return send(404, {}, Buffer.from('not found'));
    let body = zipped.get(file);
    if (!body) {
      const raw = await fs.readFile(file).catch(() => null);
      if (!raw) return send(404, {}, Buffer.from('not found'));
      body = gzipSync(raw, { level: 9 });
      zipped.set(file, body);
    }
    // A validator, as every CDN sends: a revalidation (the service worker's
    // install asks with max-age=0 for the scripts it imports) is answered 304.
    const etag = etagOf(body);
    if (req.headers['if-none-match'] === etag) return send(304, { etag, 'cache-control': 'public, max-age=3600' }, Buffer.alloc(0));
    send(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'content-encoding': 'gzip', 'cache-control': 'public, max-age=3600', etag }, body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    take() {
      const n = sent;
      sent = 0;
      return n;
    },
    close: () => new Promise((done) => server.close(done)),
  };
}

/** Drives `pages` page views per integration; prints per-page lines and a summary. */
export async function runPageViews({ pages = 10, modes = ['attach', 'hold', 'service-worker'], shelfOptions = null, trace = false, print = (line) => console.log(JSON.stringify(line)) } = {}) {
  const catalog = JSON.parse(await fs.readFile(path.join(root, 'www/demo/catalog.json'), 'utf8'));
  const summaries = [];
  for (const mode of modes) {
    const server = await shopServer(catalog, mode);
    const chrome = await launchChromium();
    try {
      const page = await chrome.browser.newPage();
      if (shelfOptions) await page.addInitScript((o) => { window.__shelfOptions = o; }, shelfOptions);
      page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
      // --trace: each request's start and end, ms from the page's navigation start.
      const requests = [];
      if (trace) page.on('requestfinished', (r) => requests.push([new URL(r.url()).pathname, r.timing()]));
      const views = [];
      for (let i = 0; i < pages; i++) {
        server.take();
        await page.goto(`${server.url}/shop/${i}`);
        await page.waitForFunction(() => window.__final, null, { timeout: 30_000 });
        await page.waitForTimeout(400); // any late shift would land in here
        const { final, cls, readyAt, load, scriptAt, longTasks } = await page.evaluate(() => ({ final: window.__final, cls: window.__cls, readyAt: window.__readyAt, load: window.__load, scriptAt: window.__scriptAt, longTasks: window.__longTasks }));
        // script_ms: when the page's module script ran (shelfrank.js and its imports loaded);
        // long_tasks: the page thread's tasks over 50 ms before the list was final, as [start, duration] ms.
        const view = { engine: 'shelfrank', case: 'page-view-page', integration: mode, page: i + 1, ms: Math.round(final.ms * 10) / 10, script_ms: Math.round(scriptAt), long_tasks: longTasks.filter(([start]) => start <= final.ms), ready_ms: readyAt ? Math.round(readyAt) : null, load_ms: load ? Math.round(load.ms) : null, host: load?.host ?? null, shared: load?.shared ?? null, load_stages: load?.stages ?? null, fallback: final.fallback, error: final.error, bytes: server.take(), cls: Math.round(cls * 1000) / 1000 };
        if (trace) {
          const origin = await page.evaluate(() => performance.timeOrigin);
          view.requests = requests.splice(0).map(([url, t]) => [url, Math.round(t.startTime - origin), Math.round(t.startTime - origin + t.responseEnd)]);
          view.navigation = await page.evaluate(() => {
            const n = performance.getEntriesByType('navigation')[0];
            return Object.fromEntries(['responseStart', 'responseEnd', 'domInteractive', 'domContentLoadedEventStart', 'loadEventEnd'].map((k) => [k, Math.round(n[k])]));
          });
        }
        views.push(view);
        print(view);
      }
      const later = views.slice(1).map((v) => v.ms).sort((a, b) => a - b);
      const summary = {
        engine: 'shelfrank',
        case: 'page-view',
        integration: mode,
        pages,
        median_ms: later[Math.floor(later.length / 2)] ?? null,
        first_ms: views[0].ms,
        max_cls: Math.max(...views.map((v) => v.cls)),
        fallbacks: views.filter((v) => v.fallback).length,
        first_bytes: views[0].bytes,
        later_bytes_median: views.slice(1).map((v) => v.bytes).sort((a, b) => a - b)[Math.floor((pages - 1) / 2)] ?? null,
      };
      print(summary);
      summaries.push(summary);
    } finally {
      await chrome.close();
      await server.close();
    }
  }
  return summaries;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--pages');
  const options = process.argv.indexOf('--options');
  const modes = process.argv.indexOf('--modes');
  await runPageViews({
    pages: at > 0 ? Number(process.argv[at + 1]) : 10,
    shelfOptions: options > 0 ? JSON.parse(process.argv[options + 1]) : null,
    trace: process.argv.includes('--trace'),
    ...(modes > 0 ? { modes: process.argv[modes + 1].split(',') } : {}),
  });
}
