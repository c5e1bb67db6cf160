// Faults the page must survive, in headless Chromium on the packed package:
// the WebGPU device lost mid-session, no WebGPU adapter at all, and the
// ranker's worker crashing. Each time the ranker carries on from the CPU
// with the shopper's history, the page sees no error, and the fallback is
// reported through onMetrics.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium, startSite } from './harness.mjs';

let site;
before(async () => {
  site = await startSite();
});
after(async () => {
  await site?.close();
});

/** Records a few views of one category and returns a list to rerank. */
const SESSION = () => {
  const catalog = window.catalog;
  const category = catalog[40].category;
  const viewed = catalog.filter((c) => c.category === category).slice(0, 4);
  const list = catalog.slice(200, 260);
  return { viewed, list };
};

test('WebGPU device lost mid-session: the request is answered from the CPU, which serves from then on with the same history', async () => {
  // Keep every GPUDevice the page creates, so the test can destroy it.
  const page = await site.openPage('index.html', {
    initScript: () => {
      window.gpuDevices = [];
      const requestDevice = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await requestDevice.apply(this, args);
        window.gpuDevices.push(device);
        return device;
      };
    },
  });
  const outcome = await page.evaluate(async (session) => {
    const { viewed, list } = (0, eval)(`(${session})`)();
    const metrics = [];
    const ranker = await window.shelfrank.loadReranker({ backend: 'webgpu', worker: false, persist: false, budgetMs: 0, onMetrics: (m) => metrics.push(m) });
    for (const item of viewed) ranker.record({ type: 'view', id: item.id, title: item.title, category: item.category });
    const order = (result) => result.items.map((c) => c.id);
    const before = await ranker.rerank(list);
    const devices = window.gpuDevices.length;
    for (const device of window.gpuDevices) device.destroy();
    const during = await ranker.rerank(list, { budgetMs: 20_000 });
    const afterwards = await ranker.rerank(list);
    const cpu = await window.shelfrank.loadReranker({ backend: 'cpu', worker: false, persist: false, budgetMs: 0 });
    for (const item of viewed) cpu.record({ type: 'view', id: item.id, title: item.title, category: item.category });
    const reference = await cpu.rerank(list);
    return {
      devices,
      before: { backend: before.backend, fallback: before.fallback, order: order(before) },
      during: { backend: during.backend, fallback: during.fallback, error: during.error && `${during.error.name}: ${during.error.message}`, order: order(during) },
      afterwards: { backend: afterwards.backend, fallback: afterwards.fallback, error: afterwards.error?.message, order: order(afterwards) },
      reference: order(reference),
      history: (await ranker.history()).length,
      fallbacks: metrics.filter((m) => m.type === 'fallback'),
    };
  }, SESSION.toString());
  assert.ok(outcome.devices >= 1, 'the page created a WebGPU device');
  assert.equal(outcome.before.backend, 'webgpu');
  assert.equal(outcome.before.fallback, false);
  // The request that met the lost device: answered from the CPU, not by the server-order fallback.
  assert.equal(outcome.during.fallback, false, outcome.during.error);
  assert.equal(outcome.during.backend, 'cpu', 'the request that met the lost device was answered from the CPU');
  assert.deepEqual(outcome.during.order, outcome.reference, 'and ranked exactly as a CPU ranker with the same history');
  assert.equal(outcome.afterwards.backend, 'cpu', 'the CPU serves after the device is lost');
  assert.equal(outcome.afterwards.fallback, false, outcome.afterwards.error);
  assert.equal(outcome.history, 4, 'the history came across');
  assert.deepEqual(outcome.afterwards.order, outcome.reference, 'it ranks exactly as a CPU ranker with the same history');
  assert.ok(outcome.fallbacks.some((m) => m.from === 'webgpu' && m.to === 'cpu'), JSON.stringify(outcome.fallbacks));
  assert.deepEqual(site.pageErrors, [], 'nothing escaped into the page');
  await page.close();
});

test('backend "webgpu" on a browser with no WebGPU adapter serves from the CPU and reports the fallback', async () => {
  const chrome = await launchChromium({ webgpu: false });
  const page = await chrome.browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  try {
    await page.goto(`${site.url}/fixtures/index.html`);
    await page.waitForFunction(() => window.shelfrank !== undefined && window.catalog !== undefined);
    const outcome = await page.evaluate(async (session) => {
      const { viewed, list } = (0, eval)(`(${session})`)();
      const metrics = [];
      const ranker = window.shelfrank.createReranker({ backend: 'webgpu', persist: false, budgetMs: 0, onMetrics: (m) => metrics.push(m) });
      const backend = await ranker.ready;
      for (const item of viewed) ranker.record({ type: 'view', id: item.id, title: item.title });
      const result = await ranker.rerank(list);
      return { hasGpu: 'gpu' in navigator && (await navigator.gpu.requestAdapter()) !== null, backend, fallback: result.fallback, fallbacks: metrics.filter((m) => m.type === 'fallback') };
    }, SESSION.toString());
    assert.equal(outcome.hasGpu, false, 'this browser really has no adapter');
    assert.equal(outcome.backend.name, 'cpu');
    assert.match(outcome.backend.reason, /WebGPU was requested but failed/);
    assert.equal(outcome.fallback, false);
    assert.deepEqual(outcome.fallbacks.map((m) => [m.from, m.to, m.error]), [['webgpu', 'cpu', 'BackendError']]);
    assert.deepEqual(errors, []);
  } finally {
    await chrome.close();
  }
});

test('the worker crashing is reported, a new worker starts on the CPU with the stored history, and reranking goes on', async () => {
  const page = await site.openPage();
  const workers = [];
  page.on('worker', (worker) => workers.push(worker));
  await page.evaluate(async (session) => {
    const { viewed, list } = (0, eval)(`(${session})`)();
    window.metrics = [];
    window.list = list;
    window.ranker = await window.shelfrank.loadReranker({ backend: 'cpu', budgetMs: 0, storageName: 'crash-test', onMetrics: (m) => window.metrics.push(m) });
    for (const item of viewed) window.ranker.record({ type: 'view', id: item.id, title: item.title });
    // Wait until the events are in IndexedDB (a crash loses writes still in flight).
    const stored = async () => {
      if (!(await indexedDB.databases()).some((d) => d.name === 'crash-test')) return 0;
      return new Promise((resolve) => {
        const open = indexedDB.open('crash-test');
        open.onerror = () => resolve(0);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('history')) return db.close(), resolve(0);
          const get = db.transaction('history').objectStore('history').get('events');
          get.onsuccess = () => (db.close(), resolve(get.result?.events?.length ?? 0));
          get.onerror = () => (db.close(), resolve(0));
        };
      });
    };
    for (let i = 0; i < 100 && (await stored()) < viewed.length; i++) await new Promise((r) => setTimeout(r, 50));
    window.before = (await window.ranker.rerank(list)).items.map((c) => c.id);
  }, SESSION.toString());
  const worker = workers.find((w) => /worker\.js/.test(w.url()));
  assert.ok(worker, 'the ranker runs in a worker');
  // An uncaught exception in the worker's global scope, as a trap in an async wasm callback would raise.
  await worker.evaluate(() => setTimeout(() => {
    throw new Error('simulated crash in the ranker worker');
  }, 0));
  await page.waitForFunction(() => window.metrics.some((m) => m.type === 'load' && m.afterCrash), null, { timeout: 30_000 });
  const outcome = await page.evaluate(async () => {
    const result = await window.ranker.rerank(window.list);
    const history = await window.ranker.history();
    const out = {
      fallback: result.fallback,
      error: result.error?.message,
      order: result.items.map((c) => c.id),
      before: window.before,
      history: history.length,
      status: window.ranker.status,
      metrics: window.metrics.filter((m) => m.type !== 'rerank'),
    };
    await window.ranker.forget();
    return out;
  });
  assert.equal(outcome.status, 'ready');
  assert.equal(outcome.fallback, false, outcome.error);
  assert.equal(outcome.history, 4, 'the history came back from IndexedDB');
  assert.deepEqual(outcome.order, outcome.before, 'the same ranking as before the crash');
  assert.ok(outcome.metrics.some((m) => m.type === 'error' && m.error === 'WorkerError' && m.during === 'worker'), JSON.stringify(outcome.metrics));
  assert.ok(outcome.metrics.some((m) => m.type === 'fallback' && m.to === 'cpu'), JSON.stringify(outcome.metrics));
  assert.ok(workers.length >= 2, 'a new worker was started');
  assert.deepEqual(site.pageErrors, [], 'the crash did not reach the page');
  await page.close();
});

test("the page compiles the CPU build's wasm while its worker starts and hands it over; when the page's fetch of it fails, the worker fetches it and serves the same", async () => {
  // The wasm's first request fails (as a flaky network or a cache that
  // refuses it would); later ones are served.
  let wasmRequests = 0;
  let failFirst = false;
  const own = await startSite({
    handler: (req, res, url) => {
      if (!url.pathname.endsWith('/pkg-cpu/shelfrank_bg.wasm')) return false;
      wasmRequests += 1;
      if (failFirst && wasmRequests === 1) {
        res.writeHead(503, { 'cache-control': 'no-store' }).end('busy');
        return true;
      }
      return false;
    },
  });
  const load = async () => {
    const page = await own.openPage();
    const outcome = await page.evaluate(async (session) => {
      const { viewed, list } = (0, eval)(`(${session})`)();
      const metrics = [];
      const ranker = await window.shelfrank.loadReranker({ backend: 'cpu', budgetMs: 0, persist: false, onMetrics: (m) => metrics.push(m) });
      for (const item of viewed) ranker.record({ type: 'view', id: item.id, title: item.title });
      const result = await ranker.rerank(list);
      ranker.destroy();
      return { load: metrics.find((m) => m.type === 'load'), fallback: result.fallback, order: result.items.map((c) => c.id) };
    }, SESSION.toString());
    await page.close();
    return outcome;
  };
  try {
    failFirst = true;
    const fetched = await load();
    assert.equal(fetched.load.host, 'worker');
    assert.equal(fetched.load.wasmFrom, 'fetched', 'the worker fetched the wasm the page could not');
    assert.equal(wasmRequests, 2, 'the page asked once (refused), the worker once');
    assert.equal(fetched.fallback, false);
    failFirst = false;
    const given = await load();
    assert.equal(given.load.host, 'worker');
    assert.equal(given.load.wasmFrom, 'page', 'the worker instantiated the module the page compiled');
    assert.equal(given.fallback, false);
    assert.deepEqual(given.order, fetched.order, 'the same ranking either way');
  } finally {
    await own.close();
  }
});
