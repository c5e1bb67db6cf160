// The service-worker host (`serviceWorker: true`), in headless Chromium on
// the packed package: the engine one page view loads serves the next page
// view with the same history and the same ranking as a page's own worker;
// a host the browser stopped is loaded again; a host that cannot be
// registered leaves the page on its own worker, with nothing broken.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { categoryScenario, startSite } from './harness.mjs';

let site;
before(async () => {
  site = await startSite();
});
after(async () => {
  await site?.close();
});

function scenario() {
  const { focusItems, others } = categoryScenario(6);
  return { viewed: focusItems.slice(0, 4), list: [...others.slice(0, 25), ...focusItems.slice(4, 14), ...others.slice(25, 45)] };
}

/** In the page: a ranker with `options`, its load metric, and a rerank of `list` (after recording `viewed`, if given). */
const visit = `async ({ options, viewed, list }) => {
  const metrics = [];
  // A shop's own listener for its service worker's messages: ours must never reach it.
  let reachedPage = 0;
  navigator.serviceWorker?.addEventListener('message', () => reachedPage++);
  navigator.serviceWorker?.startMessages();
  // A first visit's service worker loads its engine after this page's: 'warm' says when it has.
  let warmed;
  window.__warmed = new Promise((resolve) => { warmed = resolve; });
  const shelf = window.shelfrank.createReranker({ consent: 'not-required', captureDom: false, dataLayer: false, ...options, onMetrics: (m) => { metrics.push(m); if (m.type === 'warm') warmed(m); } });
  window.__reported = metrics;
  await shelf.ready;
  for (const item of viewed ?? []) shelf.record({ type: 'view', id: item.id, title: item.title, category: item.category });
  const result = await shelf.rerank(list, { budgetMs: 0 });
  const history = await shelf.history();
  window.__shelf = shelf;
  return {
    load: metrics.find((m) => m.type === 'load'),
    fallbacks: metrics.filter((m) => m.type === 'fallback'),
    errors: metrics.filter((m) => m.type === 'error').map((m) => m.error),
    fallback: result.fallback,
    error: result.error?.message ?? null,
    order: result.ranking?.map((r) => r.id) ?? null,
    scores: result.ranking?.map((r) => r.score) ?? null,
    history: history.map((e) => e.id),
    reachedPage,
  };
}`;

/** In the page: the 'warm' metric, or a failure if none came within 30 s. */
const warmed = () => Promise.race([window.__warmed, new Promise((resolve) => setTimeout(() => resolve({ ok: false, error: 'no warm metric within 30 s' }), 30_000))]);

test('with serviceWorker the engine outlives the page view: a first visit runs on its own worker while the service worker loads the engine, which serves the next page with its history and the ranking of a page-owned worker', async () => {
  const { viewed, list } = scenario();
  const storageName = 'sw-host-test';
  const page = await site.openPage('index.html');
  const first = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName }, viewed, list })})`);
  assert.equal(first.fallback, false, first.error);
  assert.equal(first.load.host, 'worker', 'a first visit does not wait for the service worker to install');
  assert.deepEqual(first.fallbacks, []);
  assert.deepEqual(first.history, viewed.map((v) => v.id));
  const warm = await page.evaluate(warmed);
  assert.equal(warm.ok, true, JSON.stringify(warm));

  // A full navigation: a new document, a new ranker, the same service worker.
  await page.goto(`${site.url}/fixtures/index.html`);
  await page.waitForFunction(() => window.shelfrank !== undefined && window.catalog !== undefined);
  const second = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName }, list })})`);
  assert.equal(second.fallback, false, second.error);
  assert.equal(second.load.host, 'service-worker');
  assert.equal(second.load.shared, true, 'the second page found the engine loaded');
  assert.equal(second.load.stages.ranker, undefined, 'and loaded no model');
  assert.deepEqual(second.history, viewed.map((v) => v.id));
  assert.deepEqual(second.order, first.order);
  assert.equal(first.reachedPage + second.reachedPage, 0, "no reply reached the page's navigator.serviceWorker listeners");

  // The same history in a page-owned worker (restored from IndexedDB) ranks the same.
  const own = await page.evaluate(`(${visit})(${JSON.stringify({ options: { storageName }, list })})`);
  assert.equal(own.load.host, 'worker');
  assert.deepEqual(own.history, viewed.map((v) => v.id));
  assert.deepEqual(own.order, second.order);
  for (const [i, score] of own.scores.entries()) assert.ok(Math.abs(score - second.scores[i]) < 1e-4, `score ${i}: ${score} vs ${second.scores[i]}`);

  // What this page's own worker records meanwhile reaches the service worker's engine at the next page view.
  const extra = list[0];
  await page.evaluate(async (item) => {
    await window.__shelf.ready;
    window.__shelf.record({ type: 'add_to_cart', id: item.id, title: item.title });
    await window.__shelf.history();
    await window.__shelf.stats(); // the record's write has settled behind it
  }, extra);
  await page.goto(`${site.url}/fixtures/index.html`);
  await page.waitForFunction(() => window.shelfrank !== undefined && window.catalog !== undefined);
  const third = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName }, list })})`);
  assert.equal(third.load.shared, true);
  assert.deepEqual(third.history, [...viewed.map((v) => v.id), extra.id]);

  // A page without consent yet never joins the engine that holds the stored history.
  const unconsented = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName, consent: 'required' }, list })})`);
  assert.equal(unconsented.load.host, 'service-worker');
  assert.equal(unconsented.load.shared, false);
  assert.deepEqual(unconsented.history, []);
  assert.deepEqual(site.pageErrors, []);
  await page.close();
});

test('two tabs served by one service-worker engine each rerank their own list again, never the other tab’s', async () => {
  const { viewed, list } = scenario();
  const storageName = 'sw-two-tabs';
  const options = { serviceWorker: true, storageName, consent: 'not-required', captureDom: false, dataLayer: false };
  const first = await site.openPage('index.html');
  // The service worker serves this page, or (on a first visit) installs and
  // loads its engine for the next page views.
  const warm = await first.evaluate(async (o) => {
    let warmed;
    const done = new Promise((resolve) => (warmed = resolve));
    let load = null;
    const shelf = window.shelfrank.createReranker({ ...o, onMetrics: (m) => (m.type === 'load' ? (load = m) : m.type === 'warm' && warmed(m)) });
    await shelf.ready;
    if (load?.host === 'service-worker') return { ok: true, host: load.host };
    return Promise.race([done, new Promise((resolve) => setTimeout(() => resolve({ ok: false, error: 'no warm metric within 30 s' }), 30_000))]);
  }, options);
  assert.equal(warm.ok, true, JSON.stringify(warm));
  const tabs = [await site.openPage('index.html'), await site.openPage('index.html')];
  const lists = [list, [...list].reverse().slice(0, 30)];
  const open = (tab) =>
    tab.evaluate(async ({ o, viewed }) => {
      const metrics = [];
      window.__tab = window.shelfrank.createReranker({ ...o, onMetrics: (m) => metrics.push(m) });
      await window.__tab.ready;
      for (const item of viewed) window.__tab.record({ type: 'view', id: item.id, title: item.title, category: item.category });
      return metrics.find((m) => m.type === 'load');
    }, { o: options, viewed });
  const rerank = (tab, items) =>
    tab.evaluate(async (items) => {
      const result = await window.__tab.rerank(items, { budgetMs: 0 });
      return { fallback: result.fallback, error: result.error?.message ?? null, order: result.ranking?.map((r) => r.id) ?? null };
    }, items);
  const loads = [await open(tabs[0]), await open(tabs[1])];
  for (const load of loads) assert.equal(load.host, 'service-worker');
  const once = [await rerank(tabs[0], lists[0]), await rerank(tabs[1], lists[1])];
  // Each tab sends its list again: the engine last took the other tab's.
  const again = [await rerank(tabs[0], lists[0]), await rerank(tabs[1], lists[1])];
  const twice = [await rerank(tabs[1], lists[1]), await rerank(tabs[0], lists[0])];
  for (const [i, result] of [...once, ...again, ...twice].entries()) assert.equal(result.fallback, false, `${i}: ${result.error}`);
  assert.equal(once[0].order.length, lists[0].length);
  assert.equal(once[1].order.length, lists[1].length);
  assert.deepEqual(again[0].order, once[0].order, 'tab 1 ranks its own list');
  assert.deepEqual(again[1].order, once[1].order, 'tab 2 ranks its own list');
  assert.deepEqual(twice[0].order, once[1].order, 'tab 2, its list held by the engine');
  assert.deepEqual(twice[1].order, once[0].order, 'tab 1, after tab 2');
  assert.deepEqual(site.pageErrors, []);
  for (const tab of [first, ...tabs]) await tab.close();
});

test('a service worker the browser stopped between page views is loaded again, and answers with the stored history', async () => {
  const { viewed, list } = scenario();
  const storageName = 'sw-host-stop-test';
  const page = await site.openPage('index.html');
  const visitor = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName }, viewed, list })})`);
  assert.equal(visitor.fallback, false, visitor.error);
  // A first visit to this origin runs on its own worker and warms the service worker; after the test above, the service worker serves it.
  if (visitor.load.host === 'worker') assert.equal((await page.evaluate(warmed)).ok, true);
  else assert.equal(visitor.load.host, 'service-worker');
  // The next page view is served by the service worker, which the browser then stops.
  await page.goto(`${site.url}/fixtures/index.html`);
  await page.waitForFunction(() => window.shelfrank !== undefined && window.catalog !== undefined);
  const first = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: true, storageName }, list })})`);
  assert.equal(first.fallback, false, first.error);
  assert.equal(first.load.host, 'service-worker');
  assert.deepEqual(first.order, visitor.order);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  const after = await page.evaluate(async (list) => {
    const result = await window.__shelf.rerank(list, { budgetMs: 0 });
    return { fallback: result.fallback, error: result.error?.message ?? null, order: result.ranking?.map((r) => r.id) ?? null, history: (await window.__shelf.history()).map((e) => e.id) };
  }, list);
  assert.equal(after.fallback, false, after.error);
  assert.deepEqual(after.history, viewed.map((v) => v.id));
  assert.deepEqual(after.order, first.order);
  assert.deepEqual(site.pageErrors, []);
  await page.close();
});

test('a service worker that cannot be registered (404) leaves the page on its own worker: ready, reranked, a fallback metric, no page error', async () => {
  const { viewed, list } = scenario();
  const page = await site.openPage('index.html');
  const outcome = await page.evaluate(`(${visit})(${JSON.stringify({ options: { serviceWorker: '/package/www/no-such-worker.js', persist: false }, viewed, list })})`);
  assert.equal(outcome.fallback, false, outcome.error);
  assert.equal(outcome.load.host, 'worker');
  // The registration fails on its own time, beside this page's load: its report comes when it does.
  await page.waitForFunction(() => window.__reported?.some((m) => m.type === 'fallback'), null, { timeout: 10_000 });
  const reported = await page.evaluate(() => window.__reported);
  assert.ok(reported.some((m) => m.type === 'error' && m.during === 'load'), JSON.stringify(reported));
  assert.ok(reported.some((m) => m.type === 'fallback' && m.from === 'service-worker' && m.to === 'worker'), JSON.stringify(reported));
  assert.deepEqual(site.pageErrors, []);
  await page.close();
});
