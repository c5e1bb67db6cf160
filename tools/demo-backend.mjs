// The demo shop's "server": search, popular items, product pages and one
// campaign slot over the exported catalog, answered as JSON under /api/.
// It only ever sees what any shop server sees (a query, an item id); there is
// no route that accepts a shopper's history.
import { readFile } from 'node:fs/promises';
import MiniSearch from 'minisearch';

const STOP_WORDS = new Set(['a', 'an', 'and', 'for', 'in', 'of', 'on', 'or', 'the', 'to', 'with']);
const MAX_LIMIT = 100;
const RELATED = 16;
const CAMPAIGN_SLOT = 2;
const CAMPAIGN_CATEGORIES = 7;

/** FNV-1a, for deterministic demo values derived from an id. */
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The dataset has no prices: a stable made-up price in USD, labelled as such by the shop. */
export function demoPrice(id) {
  const h = hash(id);
  const dollars = Math.round(4 + 296 * ((h % 10007) / 10007) ** 2);
  return dollars + 0.99;
}

const round = (score) => Math.round(score * 1e4) / 1e4;

/**
 * The shop's logic over an array of catalog items, without HTTP.
 * `rotation` picks the campaign's category (default: the UTC day number).
 */
export function createShop(catalog, { rotation = Math.floor(Date.now() / 86_400_000) } = {}) {
  const items = catalog.map((item) => ({
    id: String(item.id),
    title: String(item.title ?? ''),
    category: item.category ?? null,
    brand: item.brand ?? null,
    popularity: Number(item.popularity) || 0,
    demoPrice: demoPrice(String(item.id)),
  }));
  const byId = new Map(items.map((item) => [item.id, item]));

  const index = new MiniSearch({
    idField: 'id',
    fields: ['title', 'brand', 'category'],
    processTerm: (term) => {
      const lower = term.toLowerCase();
      return STOP_WORDS.has(lower) ? null : lower;
    },
  });
  index.addAll(items);

  const popular = [...items].sort((a, b) => b.popularity - a.popularity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // The campaign: the most popular item, outside the home page's top shelf, of
  // one of the busiest categories, rotating through them.
  const shelf = new Set(popular.slice(0, 24).map((item) => item.id));
  const categories = new Map();
  for (const item of popular) {
    if (!item.category) continue;
    const entry = categories.get(item.category) ?? { category: item.category, total: 0, items: [] };
    entry.total += item.popularity;
    entry.items.push(item);
    categories.set(item.category, entry);
  }
  const busiest = [...categories.values()]
    .filter((entry) => entry.items.some((item) => !shelf.has(item.id)))
    .sort((a, b) => b.total - a.total || (a.category < b.category ? -1 : 1))
    .slice(0, CAMPAIGN_CATEGORIES);
  const pick = busiest.length ? busiest[((rotation % busiest.length) + busiest.length) % busiest.length] : null;
  const campaignItem = pick?.items.find((item) => !shelf.has(item.id)) ?? popular[0];

  const scored = (hits, limit) => hits.slice(0, limit).map((hit) => ({ ...byId.get(hit.id), serverScore: round(hit.score) }));
  const related = new Map();

  return {
    size: items.length,

    /** Every query term must match (prefix on the last, fuzzy on longer ones); if none does, any term may. */
    search(query, limit = 40) {
      const options = {
        boost: { title: 3, brand: 2 },
        prefix: (term, i, terms) => i === terms.length - 1,
        fuzzy: (term) => (term.length > 3 ? 0.2 : false),
      };
      let match = 'all';
      let hits = index.search(query, { ...options, combineWith: 'AND' });
      if (hits.length === 0) {
        match = 'any';
        hits = index.search(query, { ...options, combineWith: 'OR' });
      }
      return { query, match, total: hits.length, items: scored(hits, limit) };
    },

    popular(limit = 24) {
      return { items: popular.slice(0, limit).map((item) => ({ ...item, serverScore: item.popularity })) };
    },

    /** The item and related items: its title's terms, same category boosted, itself excluded. */
    item(id) {
      const item = byId.get(id);
      if (!item) return null;
      if (!related.has(id)) {
        const hits = index.search(item.title, {
          fields: ['title', 'brand'],
          combineWith: 'OR',
          filter: (hit) => hit.id !== id,
          boostDocument: (other) => (item.category && byId.get(other).category === item.category ? 3 : 1),
        });
        related.set(id, scored(hits, RELATED));
      }
      return { item, related: related.get(id) };
    },

    campaign() {
      const label = pick ? `Featured in ${pick.category.replace(/^Industrial & Scientific\s*/, '')}` : 'Featured';
      return { slot: CAMPAIGN_SLOT, label, item: campaignItem };
    },
  };
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** A list item as a multi-page shop's server renders it, with the attributes shelfrank reads. */
function listItem(item) {
  const attrs = [`data-shelfrank-id="${escapeHtml(item.id)}"`, `data-shelfrank-title="${escapeHtml(item.title)}"`];
  if (item.category) attrs.push(`data-shelfrank-category="${escapeHtml(item.category)}"`);
  if (item.brand) attrs.push(`data-shelfrank-brand="${escapeHtml(item.brand)}"`);
  return `<li ${attrs.join(' ')}><a href="/shop/${encodeURIComponent(item.id)}">${escapeHtml(item.title)}</a> <span class="price">$${item.demoPrice.toFixed(2)}</span> <small data-shelfrank-slot="reason"></small></li>`;
}

/**
 * The demo's multi-page mode: a product page rendered by the server, as on
 * Shopify, Magento or WooCommerce themes, so every product is a full
 * navigation. Its two lists use the README's multi-page integration: held
 * until reranked (no layout shift), with the engine in a service worker
 * that outlives page views. Null for an unknown id.
 */
export function productPage(shop, id) {
  const found = shop.item(id);
  if (!found) return null;
  const { item, related } = found;
  const popular = shop.popular(24).items.filter((other) => other.id !== id);
  const event = { type: 'view', id: item.id, title: item.title, category: item.category ?? undefined, brand: item.brand ?? undefined };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(item.title)} · Benchtop Supply</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/www/demo/demo.css">
<style>
  @keyframes shelfrank-show { from { visibility: hidden } to { visibility: visible } }
  [data-shelfrank-hold] { animation: shelfrank-show 0s linear 300ms both; }
  .shelf li { padding: .25rem 0; }
</style>
</head><body data-page="product-page">
<header><a class="logo" href="/www/demo/">Benchtop Supply <small>demo shop, multi-page mode</small></a></header>
<main id="main">
<h1>${escapeHtml(item.title)}</h1>
<p>${escapeHtml([item.brand, item.category].filter(Boolean).join(' · '))} · <strong>$${item.demoPrice.toFixed(2)}</strong></p>
<p><button type="button" data-shelfrank-id="${escapeHtml(item.id)}" data-shelfrank-title="${escapeHtml(item.title)}" data-shelfrank-action="add_to_cart">Add to cart</button></p>
<p id="ranker-status" role="status"></p>
<h2>Related</h2>
<ul class="shelf" id="related" data-shelfrank-hold>
${related.map(listItem).join('\n')}
</ul>
<h2>Popular right now</h2>
<ul class="shelf" id="popular" data-shelfrank-hold>
${popular.map(listItem).join('\n')}
</ul>
</main>
<script type="module">
  import { createReranker } from '/www/shelfrank.js';
  const status = document.getElementById('ranker-status');
  const shelf = createReranker({
    serviceWorker: true,
    onMetrics(m) {
      if (m.type === 'load') status.textContent = m.ok ? \`Ranker ready in \${Math.round(m.ms)} ms (\${m.host}\${m.shared ? ', loaded by an earlier page' : ''}).\` : 'The ranker could not load: lists stay in the server order.';
      // A first visit: the service worker has loaded the ranker for the next page.
      if (m.type === 'warm') status.dataset.warm = m.ok ? 'loaded' : 'failed';
    },
  });
  window.shelf = shelf;
  shelf.record(${JSON.stringify(event).replace(/</g, '\\u003c')});
  for (const [id, surface] of [['related', 'recommendations'], ['popular', 'popular']]) {
    shelf.attach(document.getElementById(id), { surface, holdMs: 250, explain: true });
  }
</script>
</body></html>`;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function limitParam(url, fallback) {
  const raw = url.searchParams.get('limit');
  if (raw === null) return fallback;
  if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIMIT) {
    throw new HttpError(400, `limit must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return Number(raw);
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

/**
 * Reads the catalog and returns `handle(req, res, url)`, which answers every
 * request under /api/ and returns true, or returns false for anything else.
 */
export async function createDemoBackend(catalogPath, options = {}) {
  const shop = createShop(JSON.parse(await readFile(catalogPath, 'utf8')), options);

  function route(req, url) {
    const { pathname } = url;
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'only GET is supported');
    if (pathname === '/api/search') {
      const query = (url.searchParams.get('q') ?? '').trim();
      if (!query) throw new HttpError(400, 'q must be a non-empty search text');
      if (query.length > 200) throw new HttpError(400, 'q must be at most 200 characters');
      return shop.search(query, limitParam(url, 40));
    }
    if (pathname === '/api/popular') return shop.popular(limitParam(url, 24));
    if (pathname === '/api/campaign') return shop.campaign();
    const match = /^\/api\/item\/([^/]+)$/.exec(pathname);
    if (match) {
      let id;
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        throw new HttpError(400, 'malformed item id');
      }
      if (!/^[A-Za-z0-9_-]{1,40}$/.test(id)) throw new HttpError(400, 'malformed item id');
      const found = shop.item(id);
      if (!found) throw new HttpError(404, `no item ${id}`);
      return found;
    }
    throw new HttpError(404, `no such API route: ${pathname}`);
  }

  return function handle(req, res, url) {
    if (url.pathname === '/shop' || url.pathname === '/shop/') {
      res.writeHead(302, { location: `/shop/${encodeURIComponent(shop.popular(1).items[0].id)}`, 'cache-control': 'no-store' });
      res.end();
      return true;
    }
    const page = /^\/shop\/([A-Za-z0-9_-]{1,40})$/.exec(url.pathname);
    if (page) {
      const html = productPage(shop, page[1]);
      res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(html ?? '<!doctype html><title>Not found</title><p>No such product. <a href="/www/demo/">Back to the shop</a>');
      return true;
    }
    if (url.pathname !== '/api' && !url.pathname.startsWith('/api/')) return false;
    try {
      sendJson(res, 200, route(req, url));
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      sendJson(res, error.status, { error: error.message });
    }
    return true;
  };
}
