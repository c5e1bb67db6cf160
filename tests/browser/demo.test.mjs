// The demo shop driven like a shopper in headless Chromium, against its
// real backend (MiniSearch over the Scientific catalog): search, open and
// add to cart several items of one kind, search again, and those items rise
// against a fresh profile; the campaign slot stays; every request the page
// and its worker make is checked for the recorded history.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startDemo } from '../../tools/serve-demo.mjs';
import { launchChromium, root } from './harness.mjs';

// Hose clamps among everything else called a clamp (clamp meters, bar clamps, …).
const QUERY = 'clamp';
const KIND = /Hose Clamps$/;

let demo;
let browser;
let chrome;
before(async () => {
  demo = await startDemo({ root, rotation: 0 }); // a fixed campaign: the same lists every day
  chrome = await launchChromium({ webgpu: false, viewport: { width: 1280, height: 900 } });
  browser = chrome.browser;
});
after(async () => {
  await chrome?.close();
  await demo?.close();
});

/** The result list once its rerank came back: ids, categories, pinned. */
async function results(page) {
  await page.waitForSelector('body[data-page="search"] #results[data-fallback]', { timeout: 30_000 });
  return page.$$eval('#results > li', (lis) =>
    lis.map((li) => ({ id: li.dataset.shelfrankId, category: li.dataset.shelfrankCategory ?? '', pinned: li.hasAttribute('data-shelfrank-pinned') })),
  );
}

async function search(page, query) {
  await page.fill('#q', query);
  await page.press('#q', 'Enter');
  return results(page);
}

const meanSlot = (list, ids) => {
  const slots = list.map((item, i) => (ids.has(item.id) ? i : null)).filter((s) => s !== null);
  return slots.reduce((a, b) => a + b, 0) / slots.length;
};

test('a shopper who adds several items of one kind to the cart sees that kind rise in the next search; nothing about it leaves the page', async () => {
  const requests = [];
  const onRequest = (request) =>
    requests.push({ url: request.url(), method: request.method(), body: request.postData(), headers: request.headers(), type: request.resourceType() });
  browser.on('request', onRequest);
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  // A fresh profile. ?budget gives a loaded CI machine room; budgets have their own tests.
  await page.goto(`${demo.url}/www/demo/?budget=2000#/`);
  await page.waitForSelector('#status[data-state="ready"]', { timeout: 60_000 });
  const fresh = await search(page, QUERY);
  const ofKind = fresh.filter((item) => !item.pinned && KIND.test(item.category));
  assert.ok(ofKind.length >= 6, `the scenario needs several items of one kind in '${QUERY}': ${ofKind.length}`);
  const pinnedSlot = fresh.findIndex((item) => item.pinned);
  assert.equal(pinnedSlot, 2, 'the campaign is pinned at slot 2');

  // Open three of them (the lowest placed) from the results and add each to the cart.
  const chosen = ofKind.slice(-3).map((item) => item.id);
  for (const id of chosen) {
    await page.click(`#results > li[data-shelfrank-id="${id}"] a.item-link`);
    await page.waitForSelector(`body[data-page="product"] #product`);
    await page.click('#add-to-cart');
    await page.waitForSelector('#added', { state: 'visible' });
    await page.waitForSelector('#related[data-fallback]');
    await page.goBack();
    await results(page);
  }
  const again = await search(page, QUERY);

  // The same kind, except the three bought, now sits higher than for the fresh profile.
  const others = new Set(ofKind.map((item) => item.id).filter((id) => !chosen.includes(id)));
  const was = meanSlot(fresh, others);
  const now = meanSlot(again, others);
  console.error(`'${QUERY}': mean slot of the other ${others.size} items of the kind ${was.toFixed(1)} → ${now.toFixed(1)}`);
  assert.ok(now < was - 3, `items of the kind rose: mean slot ${was} → ${now}`);
  assert.equal(again[pinnedSlot].id, fresh[pinnedSlot].id, 'the campaign slot is unchanged');
  assert.ok(again[pinnedSlot].pinned);
  assert.deepEqual(new Set(again.map((i) => i.id)), new Set(fresh.map((i) => i.id)), 'the same items, reordered');
  // The data panel lists what was recorded (it refreshes after a short debounce).
  await page.waitForFunction(() => document.querySelectorAll('#history li[data-type="add_to_cart"]').length === 3, null, { timeout: 10_000 });
  mkdirSync(path.join(root, 'test-results'), { recursive: true });
  await page.screenshot({ path: path.join(root, 'test-results/demo-shop.png'), fullPage: false });

  // Check out: a GA4 purchase. Then read back what the device stored.
  await page.click('#cart-link');
  await page.waitForSelector('body[data-page="cart"] #checkout');
  await page.click('#checkout');
  await page.waitForSelector('#order-confirmation');
  await page.waitForFunction(() => document.querySelectorAll('#history li[data-type="purchase"]').length >= 3, null, { timeout: 10_000 });
  const stored = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('shelfrank');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const get = open.result.transaction('history').objectStore('history').get('events');
          get.onsuccess = () => {
            open.result.close();
            resolve(get.result.events);
          };
          get.onerror = () => reject(get.error);
        };
      }),
  );
  const kinds = new Set(stored.map((e) => e.type));
  for (const kind of ['search', 'click', 'view', 'add_to_cart', 'purchase']) assert.ok(kinds.has(kind), `no '${kind}' event was stored: ${[...kinds]}`);
  for (const id of chosen) assert.ok(stored.some((e) => e.type === 'add_to_cart' && e.id === id), `add to cart of ${id} was not stored`);

  // Every request: GET, no body, and the history appears only where the
  // shopper's own navigation asked for it (their search, the pages they opened).
  browser.off('request', onRequest);
  const navigated = new Set([
    `/api/search?q=${QUERY}&limit=40`,
    ...chosen.map((id) => `/api/item/${id}`),
  ]);
  const secrets = new Set();
  for (const e of stored) for (const value of [e.id, e.title, e.query]) if (value && value.length >= 4) secrets.add(value);
  assert.ok(requests.length > 10);
  for (const r of requests) {
    const url = new URL(r.url);
    assert.equal(url.origin, demo.url, `a request left the shop's origin: ${r.url}`);
    assert.equal(r.method, 'GET', `${r.method} ${r.url}`);
    assert.ok(!r.body, `a request carried a body: ${r.url}`);
    const where = url.pathname + url.search;
    assert.ok(/^\/(www|models)\/|^\/api\/(popular|campaign|search|item\/)/.test(url.pathname), `unexpected request ${where}`);
    if (navigated.has(where)) continue;
    const text = decodeURIComponent(where) + ' ' + Object.values(r.headers).join(' ');
    for (const secret of secrets) {
      assert.ok(!text.includes(secret) && !text.includes(encodeURIComponent(secret)), `request ${where} carries recorded '${secret}'`);
    }
  }

  // Forget: the data panel empties and nothing is left in storage.
  await page.click('#forget');
  await page.waitForFunction(() => document.querySelectorAll('#history li[data-type]').length === 0);
  const left = await page.evaluate(async () => ({
    databases: (await indexedDB.databases()).map((d) => d.name),
    localStorage: Object.keys(localStorage),
  }));
  assert.deepEqual(left, { databases: [], localStorage: [] });
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('the multi-page mode: server-rendered product pages, each a full navigation; from the second on the lists are reranked by the service worker the first loaded, before they are shown', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.goto(`${demo.url}/shop/`);
  assert.match(new URL(page.url()).pathname, /^\/shop\/[A-Za-z0-9_-]+$/);
  // The first visit: the page's lists settle (reranked or in server order) while the service worker installs.
  await page.waitForFunction(() => [...document.querySelectorAll('.shelf')].every((ul) => !ul.hasAttribute('data-shelfrank-hold')), null, { timeout: 30_000 });
  await page.waitForFunction(() => window.shelf.status === 'ready', null, { timeout: 30_000 });
  // It reranked on its own worker; the service worker then loads the ranker for the next page.
  assert.match(await page.$eval('#ranker-status', (e) => e.textContent), /\(worker\)/);
  await page.waitForFunction(() => document.getElementById('ranker-status').dataset.warm !== undefined, null, { timeout: 30_000 });
  assert.equal(await page.$eval('#ranker-status', (e) => e.dataset.warm), 'loaded');
  const firstPath = new URL(page.url()).pathname;
  // A shopper clicks a related product: a new document.
  const watch = `(() => {
    window.__moves = 0;
    window.__shownOrder = {};
    for (const ul of document.querySelectorAll('.shelf')) {
      new MutationObserver((records) => {
        if (!ul.hasAttribute('data-shelfrank-hold')) {
          if (window.__shownOrder[ul.id] === undefined) window.__shownOrder[ul.id] = [...ul.children].map((li) => li.dataset.shelfrankId).join();
          else window.__moves += records.filter((r) => r.type === 'childList').length;
        }
      }).observe(ul, { childList: true, attributes: true });
    }
  })()`;
  await page.addInitScript(`document.addEventListener('DOMContentLoaded', () => ${watch})`);
  const next = await page.$eval('#related li:first-child a', (a) => a.href);
  await Promise.all([page.waitForURL(next), page.click('#related li:first-child a')]);
  await page.waitForFunction(() => document.querySelector('#related')?.getAttribute('data-state') === 'reranked' && document.querySelector('#popular')?.getAttribute('data-state') === 'reranked', null, { timeout: 30_000 });
  await page.waitForTimeout(300);
  const second = await page.evaluate(() => ({
    path: location.pathname,
    status: document.getElementById('ranker-status').textContent,
    held: [...document.querySelectorAll('[data-shelfrank-hold]')].length,
    moves: window.__moves,
    history: null,
  }));
  second.history = await page.evaluate(async () => (await window.shelf.history()).map((e) => e.type));
  assert.notEqual(second.path, firstPath);
  assert.match(second.status, /service-worker, loaded by an earlier page/);
  assert.equal(second.held, 0);
  assert.equal(second.moves, 0, 'no list moved after it was shown');
  assert.ok(second.history.filter((t) => t === 'view').length >= 2, `both product views are in the history: ${second.history.join(',')}`);
  assert.deepEqual(errors, []);
  await page.close();
});
