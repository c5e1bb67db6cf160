// Benchtop Supply, the shelfrank demo shop: a small single-page storefront
// over the demo backend (tools/demo-backend.mjs). The server renders each
// list in its own order; shelfrank reorders it on this device.
//
// How the shopper's events reach shelfrank (one source per kind, since the
// shim de-duplicates nothing):
//   click        the shim's DOM capture: item links inside [data-shelfrank-id]
//   add_to_cart  the shim's DOM capture: [data-shelfrank-action="add_to_cart"]
//   view         a GA4 `view_item` push on the product page (no data-shelfrank-view)
//   purchase     a GA4 `purchase` push at checkout
//   search       attach(…, { surface: 'search', query }) on the results list
import { createReranker } from '../shelfrank.js';

window.dataLayer = window.dataLayer || [];

const params = new URLSearchParams(location.search);
const consentMode = params.get('consent') === 'required' ? 'required' : 'not-required';
const CART_KEY = 'benchtop-cart';
const CONSENT_KEY = 'benchtop-consent';
const CURRENCY = 'USD';
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: CURRENCY });

const $ = (selector) => document.querySelector(selector);
const main = $('#main');

const state = {
  personalised: true,
  lists: [],
  items: new Map(),
  cart: loadCart(),
  renderToken: 0,
  loadMs: null,
  campaign: null,
};

/** Builds an element: attributes with null/undefined/false values are left out. */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

function shortCategory(category) {
  return category ? category.replace(/^Industrial & Scientific\s*/, '') : '';
}

function hue(text = '') {
  let h = 0;
  for (const char of text) h = (h * 31 + char.charCodeAt(0)) % 360;
  return h;
}

// ---------------------------------------------------------------- ranker --

let shelf = null;
try {
  // ?backend=cpu|webgpu|auto and ?budget=<ms> are there to try the shop out.
  const budget = Number(params.get('budget'));
  shelf = createReranker({
    consent: consentMode,
    backend: ['auto', 'webgpu', 'cpu'].includes(params.get('backend')) ? params.get('backend') : 'auto',
    budgetMs: budget > 0 ? budget : 100,
    onMetrics(metrics) {
      if (metrics.type === 'load') state.loadMs = metrics.ms;
    },
    onError(error) {
      console.warn('shelfrank:', error);
    },
  });
} catch (error) {
  showRankerFailure(error);
}

function describeBackend(info) {
  const adapter = info.adapter ? ` on ${info.adapter.name || info.adapter.deviceType || 'an unnamed adapter'}` : '';
  return `${info.name}${adapter}`;
}

function showRankerFailure(error) {
  const status = $('#status');
  status.dataset.state = 'failed';
  status.dataset.backend = 'none';
  status.textContent = `Ranker unavailable (${error?.name ?? 'Error'}: ${error?.message ?? error}). Lists stay in the server's order.`;
}

shelf?.ready.then(
  (info) => {
    const status = $('#status');
    status.dataset.state = 'ready';
    status.dataset.backend = info.name;
    const loaded = state.loadMs === null ? '' : `, loaded in ${Math.round(state.loadMs)} ms`;
    status.replaceChildren(
      h('strong', {}, 'Ranker ready: '),
      `${describeBackend(info)}${loaded} `,
      h('span', { class: 'reason-text', title: info.reason }, info.reason),
    );
    // Lists attached while the model loaded may have kept the server order.
    for (const entry of state.lists) {
      if (entry.handle?.lastResult?.fallback) refreshList(entry);
    }
    refreshHistory();
  },
  (error) => {
    showRankerFailure(error);
    refreshHistory();
  },
);

// ----------------------------------------------------------------- lists --

/** Marks how far each item moved from the server's order; call after every reorder. */
function markMovement(list) {
  [...list.children].forEach((li, index) => {
    const mark = li.querySelector('.move');
    if (!mark) return;
    const moved = Number(li.dataset.serverPos) - index;
    if (list.dataset.state !== 'reranked' || moved === 0) {
      mark.className = 'move';
      mark.replaceChildren();
      return;
    }
    const up = moved > 0;
    mark.className = `move ${up ? 'up' : 'down'}`;
    mark.replaceChildren(
      h('span', { 'aria-hidden': 'true' }, `${up ? '▲' : '▼'}${Math.abs(moved)}`),
      h('span', { class: 'visually-hidden' }, `moved ${up ? 'up' : 'down'} ${Math.abs(moved)} from the server's order`),
    );
  });
}

function showLatency(entry, result) {
  const latency = $('#latency');
  const ms = `${result.ms.toFixed(1)} ms`;
  latency.dataset.fallback = String(result.fallback);
  latency.dataset.ms = result.ms.toFixed(1);
  latency.textContent = result.fallback
    ? `Last rerank (${entry.surface}): kept the server's order after ${ms}: ${result.error?.name ?? 'error'}${result.error?.message ? `: ${result.error.message}` : ''}`
    : `Last rerank (${entry.surface}): ${ms} on ${result.backend ?? 'the ranker'}`;
}

// The shim keeps the list's data-state ('server' / 'reranked'); a fallback
// leaves it 'server', and data-fallback says a rerank came back.
function applyResult(entry, result) {
  if (!state.lists.includes(entry)) return;
  if (!state.personalised) {
    // attach() reranks at once; the toggle says server order.
    entry.handle?.restore();
    markMovement(entry.element);
    return;
  }
  entry.element.dataset.fallback = String(result.fallback);
  markMovement(entry.element);
  showLatency(entry, result);
  scheduleHistoryRefresh();
}

/** Reranks a managed list again; its onRerank shows the result. */
function refreshList(entry) {
  entry.handle?.refresh().catch((error) => console.warn('shelfrank refresh:', error));
}

/** Hands a server-rendered list to shelfrank (when it is there). */
function manage(element, options) {
  const entry = { element, surface: options.surface, handle: null };
  element.dataset.state = 'server';
  state.lists.push(entry);
  if (!shelf || shelf.status === 'failed') return entry;
  try {
    entry.handle = shelf.attach(element, { ...options, explain: true, onRerank: (result) => applyResult(entry, result) });
  } catch (error) {
    console.warn('shelfrank attach:', error);
  }
  return entry;
}

function releaseLists() {
  for (const entry of state.lists) {
    try {
      entry.handle?.detach();
    } catch (error) {
      console.warn('shelfrank detach:', error);
    }
  }
  state.lists = [];
}

$('#personalise').addEventListener('change', (event) => {
  state.personalised = event.target.checked;
  for (const entry of state.lists) {
    if (state.personalised) {
      refreshList(entry);
    } else {
      entry.handle?.restore();
      markMovement(entry.element);
    }
  }
});

function itemCard(item, position, listId) {
  state.items.set(item.id, item);
  const titleId = `${listId}-${item.id}-title`;
  return h(
    'li',
    {
      class: item.pinned ? 'item pinned' : 'item',
      'data-shelfrank-id': item.id,
      'data-shelfrank-title': item.title,
      'data-shelfrank-category': item.category,
      'data-shelfrank-brand': item.brand,
      'data-shelfrank-score': item.pinned ? null : item.serverScore,
      'data-shelfrank-pinned': item.pinned ? 'true' : null,
      'data-server-pos': position,
    },
    h(
      'a',
      { class: 'item-link', href: `#/item/${encodeURIComponent(item.id)}` },
      thumbnail(item),
      h('span', { class: 'item-title', id: titleId }, item.title),
    ),
    item.pinned ? h('p', { class: 'badge', title: item.campaignLabel }, 'Sponsored') : null,
    h('p', { class: 'item-meta' }, [item.brand, shortCategory(item.category)].filter(Boolean).join(' · ')),
    priceTag(item),
    h('p', { class: 'reason', 'data-shelfrank-slot': 'reason' }),
    h('span', { class: 'move' }),
    h('button', { type: 'button', class: 'add', 'data-shelfrank-action': 'add_to_cart', 'aria-describedby': titleId }, 'Add to cart'),
  );
}

function thumbnail(item, large = false) {
  const initials = (item.brand || item.title).replace(/[^\p{L}\p{N} ]/gu, '').split(/\s+/).filter(Boolean).slice(0, 2).map((word) => word[0]).join('');
  return h('span', { class: large ? 'thumb large' : 'thumb', style: `--hue: ${hue(item.category ?? item.title)}`, 'aria-hidden': 'true' }, initials.toUpperCase());
}

function priceTag(item) {
  return h(
    'p',
    { class: 'price' },
    money.format(item.demoPrice),
    ' ',
    h('span', { class: 'price-note', title: 'The dataset has no prices; this one is derived from the item id.' }, 'demo price'),
  );
}

function shelfList(id, items, label) {
  return h('ol', { id, class: 'shelf', 'aria-label': label }, items.map((item, position) => itemCard(item, position, id)));
}

function withCampaign(items, campaign) {
  if (!campaign || items.length === 0) return items;
  const list = items.filter((item) => item.id !== campaign.item.id);
  list.splice(Math.min(campaign.slot, list.length), 0, { ...campaign.item, pinned: true, campaignLabel: campaign.label });
  return list;
}

// ------------------------------------------------------------------- api --

async function api(path) {
  const response = await fetch(`/api/${path}`, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** The campaign slot; a page renders without it if it cannot be had. */
async function campaign() {
  state.campaign ??= api('campaign').catch((error) => {
    console.warn('campaign:', error);
    state.campaign = null;
    return null;
  });
  return state.campaign;
}

// ----------------------------------------------------------------- pages --

const pages = {
  async home() {
    const [popular, pinned] = await Promise.all([api('popular?limit=24'), campaign()]);
    return {
      title: 'Popular right now',
      content: [
        h('h1', { tabindex: '-1' }, 'Popular right now'),
        h('p', { class: 'lede' }, 'The most bought and reviewed lab, workshop and 3D-printing supplies, with the campaign slot pinned third.'),
        shelfList('popular', withCampaign(popular.items, pinned), 'Popular items'),
      ],
      lists: [['#popular', { surface: 'popular' }]],
    };
  },

  async search({ q }) {
    if (!q) {
      return { title: 'Search', content: [h('h1', { tabindex: '-1' }, 'Search'), h('p', {}, 'Type what you are looking for in the search box.')] };
    }
    const [results, pinned] = await Promise.all([api(`search?q=${encodeURIComponent(q)}&limit=40`), campaign()]);
    const matches = `${results.total} ${results.total === 1 ? 'item matches' : 'items match'}${results.match === 'any' ? ' some of the words' : ''}`;
    const summary = results.total === 0
      ? `No items match “${q}”.`
      : results.total > results.items.length ? `${matches}; the first ${results.items.length} are shown.` : `${matches}.`;
    return {
      title: `“${q}”`,
      content: [
        h('h1', { tabindex: '-1' }, `Results for “${q}”`),
        h('p', { class: 'lede' }, summary),
        shelfList('results', withCampaign(results.items, pinned), `Results for ${q}`),
      ],
      lists: results.items.length ? [['#results', { surface: 'search', query: q }]] : [],
    };
  },

  async product({ id }) {
    let data;
    try {
      data = await api(`item/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404 || error.status === 400) return pages['not-found']();
      throw error;
    }
    const { item, related } = data;
    state.items.set(item.id, item);
    const product = h(
      'article',
      {
        id: 'product',
        class: 'product',
        'data-shelfrank-id': item.id,
        'data-shelfrank-title': item.title,
        'data-shelfrank-category': item.category,
        'data-shelfrank-brand': item.brand,
      },
      thumbnail(item, true),
      h(
        'div',
        { class: 'product-details' },
        h('h1', { tabindex: '-1' }, item.title),
        h('dl', { class: 'facts' },
          item.brand ? [h('dt', {}, 'Brand'), h('dd', {}, item.brand)] : null,
          item.category ? [h('dt', {}, 'Category'), h('dd', {}, shortCategory(item.category))] : null,
          h('dt', {}, 'Item id'), h('dd', {}, item.id),
          h('dt', {}, 'Popularity'), h('dd', {}, `${item.popularity} shopper interactions in the training data`)),
        priceTag(item),
        h('button', { type: 'button', id: 'add-to-cart', class: 'primary', 'data-shelfrank-action': 'add_to_cart' }, 'Add to cart'),
        h('p', { id: 'added', class: 'note', role: 'status' }),
      ),
    );
    return {
      title: item.title,
      content: [
        product,
        h('section', { class: 'related', 'aria-labelledby': 'related-title' },
          h('h2', { id: 'related-title' }, 'Related items'),
          shelfList('related', related, 'Related items')),
      ],
      lists: [['#related', { surface: 'recommendations' }]],
      // Before attaching, so the first rerank of #related already sees this view.
      afterRender: () => pushGa4('view_item', { currency: CURRENCY, value: item.demoPrice, items: [ga4Item(item)] }),
    };
  },

  async cart() {
    return { title: 'Your cart', content: cartView() };
  },

  async 'not-found'() {
    return {
      page: 'not-found',
      title: 'Not found',
      content: [h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the shop'))],
    };
  },
};

function cartView(confirmation = null) {
  const total = state.cart.reduce((sum, line) => sum + line.demoPrice * line.qty, 0);
  const rows = state.cart.map((line) =>
    h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/item/${encodeURIComponent(line.id)}` }, line.title)),
      h('td', {}, String(line.qty)),
      h('td', {}, money.format(line.demoPrice * line.qty)),
      h('td', {}, h('button', { type: 'button', class: 'secondary remove', 'data-remove': line.id }, 'Remove'))));
  return [
    h('h1', { tabindex: '-1' }, 'Your cart'),
    confirmation ? h('p', { id: 'order-confirmation', class: 'confirmation', role: 'status' }, confirmation) : null,
    state.cart.length === 0
      ? h('p', { class: 'lede' }, 'Your cart is empty.')
      : h('table', { class: 'cart' },
        h('caption', { class: 'visually-hidden' }, 'Items in your cart'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Qty'), h('th', { scope: 'col' }, 'Demo price'), h('td'))),
        h('tbody', {}, rows),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: '2' }, 'Total'), h('td', {}, money.format(total)), h('td')))),
    h('button', { type: 'button', id: 'checkout', class: 'primary', disabled: state.cart.length === 0 }, 'Check out'),
    h('p', { class: 'note' }, 'Checkout charges nothing: it sends a GA4 purchase event to this page’s dataLayer, which shelfrank reads.'),
  ];
}

// ---------------------------------------------------------------- router --

function parseRoute() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const search = new URLSearchParams(query);
  if (path === '' || path === '/') return { page: 'home' };
  if (path === '/search') return { page: 'search', q: (search.get('q') ?? '').trim() };
  if (path === '/cart') return { page: 'cart' };
  const match = /^\/item\/([^/]+)$/.exec(path);
  if (match) {
    try {
      return { page: 'product', id: decodeURIComponent(match[1]) };
    } catch {
      return { page: 'not-found' };
    }
  }
  return { page: 'not-found' };
}

let firstRender = true;

async function render() {
  const token = ++state.renderToken;
  const route = parseRoute();
  main.setAttribute('aria-busy', 'true');
  let view;
  try {
    view = await pages[route.page](route);
  } catch (error) {
    console.error(error);
    view = {
      page: 'error',
      title: 'Error',
      content: [
        h('h1', { tabindex: '-1' }, 'Something went wrong'),
        h('p', {}, `The shop could not load this page: ${error.message}`),
        h('button', { type: 'button', id: 'retry' }, 'Try again'),
      ],
    };
  }
  if (token !== state.renderToken) return;

  releaseLists();
  $('#q').value = route.page === 'search' ? route.q : '';
  main.replaceChildren(...view.content.flat().filter(Boolean));
  document.title = `${view.title} · Benchtop Supply`;
  view.afterRender?.();
  for (const [selector, options] of view.lists ?? []) manage(main.querySelector(selector), options);
  main.setAttribute('aria-busy', 'false');
  document.body.dataset.page = view.page ?? route.page;
  if (!firstRender) {
    window.scrollTo(0, 0);
    main.querySelector('h1')?.focus();
  }
  firstRender = false;
  scheduleHistoryRefresh();
}

window.addEventListener('hashchange', render);

$('#search').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = $('#q').value.trim();
  if (!q) return;
  const hash = `#/search?q=${encodeURIComponent(q)}`;
  if (location.hash === hash) render();
  else location.hash = hash;
});

// ------------------------------------------------------------------ cart --

function loadCart() {
  try {
    const cart = JSON.parse(sessionStorage.getItem(CART_KEY) ?? '[]');
    return Array.isArray(cart) ? cart : [];
  } catch {
    return [];
  }
}

function saveCart() {
  try {
    sessionStorage.setItem(CART_KEY, JSON.stringify(state.cart));
  } catch {
    // Storage may be off; the cart then lives as long as the page.
  }
  const count = state.cart.reduce((sum, line) => sum + line.qty, 0);
  $('#cart-count').textContent = String(count);
  $('#cart-items').textContent = count === 1 ? ' item' : ' items';
}

function addToCart(item) {
  const line = state.cart.find((entry) => entry.id === item.id);
  if (line) line.qty += 1;
  else state.cart.push({ id: item.id, title: item.title, category: item.category, brand: item.brand, demoPrice: item.demoPrice, qty: 1 });
  saveCart();
}

function ga4Item(item, quantity = 1) {
  const entry = { item_id: item.id, item_name: item.title, price: item.demoPrice, quantity };
  if (item.brand) entry.item_brand = item.brand;
  if (item.category) entry.item_category = item.category;
  return entry;
}

function pushGa4(event, ecommerce) {
  window.dataLayer.push({ ecommerce: null });
  window.dataLayer.push({ event, ecommerce });
  scheduleHistoryRefresh();
}

function checkout() {
  if (state.cart.length === 0) return;
  const value = Math.round(state.cart.reduce((sum, line) => sum + line.demoPrice * line.qty, 0) * 100) / 100;
  const transactionId = `DEMO-${Date.now().toString(36).toUpperCase()}`;
  pushGa4('purchase', { transaction_id: transactionId, currency: CURRENCY, value, items: state.cart.map((line) => ga4Item(line, line.qty)) });
  state.cart = [];
  saveCart();
  main.replaceChildren(...cartView(`Thank you! Order ${transactionId} (${money.format(value)}) is placed. Nothing was charged: this is a demo.`).filter(Boolean));
}

document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const add = target.closest('[data-shelfrank-action="add_to_cart"]');
  if (add) {
    const item = state.items.get(add.closest('[data-shelfrank-id]')?.dataset.shelfrankId);
    if (item) {
      addToCart(item);
      if (add.id === 'add-to-cart') $('#added').textContent = `Added to your cart (${state.cart.find((line) => line.id === item.id).qty} in cart).`;
      else flash(add, 'Added ✓');
    }
    scheduleHistoryRefresh();
  } else if (target.closest('#checkout')) {
    checkout();
  } else if (target.closest('[data-remove]')) {
    state.cart = state.cart.filter((line) => line.id !== target.closest('[data-remove]').dataset.remove);
    saveCart();
    main.replaceChildren(...cartView().filter(Boolean));
  } else if (target.closest('#retry')) {
    render();
  }
});

function flash(button, text) {
  const original = button.textContent;
  button.textContent = text;
  setTimeout(() => {
    button.textContent = original;
  }, 1200);
}

// ------------------------------------------------------- data on device --

const EVENT_LABELS = { view: 'Viewed', click: 'Clicked', add_to_cart: 'Added to cart', purchase: 'Bought', search: 'Searched' };
let historyTimer = null;

function scheduleHistoryRefresh() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(refreshHistory, 150);
}

async function refreshHistory() {
  updateConsentState();
  if (!shelf) return;
  let events;
  try {
    events = await shelf.history();
  } catch (error) {
    $('#data-message').textContent = `Cannot read the history: ${error.message}`;
    return;
  }
  $('#history-count').textContent = String(events.length);
  $('#history').replaceChildren(
    ...events.slice().reverse().map((event) => {
      const what = event.type === 'search'
        ? `“${event.query ?? ''}”`
        : event.title ?? state.items.get(event.id)?.title ?? event.id ?? '';
      const time = event.timestamp ? new Date(event.timestamp) : null;
      return h('li', { 'data-type': event.type },
        h('span', { class: 'event-type' }, EVENT_LABELS[event.type] ?? event.type),
        ' ',
        h('span', { class: 'event-what' }, what),
        time ? h('time', { datetime: time.toISOString() }, time.toLocaleTimeString()) : null);
    }),
  );
}

function storedConsent() {
  try {
    return localStorage.getItem(CONSENT_KEY);
  } catch {
    return null;
  }
}

function updateConsentState() {
  const choice = storedConsent();
  $('#consent-state').textContent = consentMode === 'required'
    ? { granted: 'given', declined: 'declined' }[choice] ?? 'not given yet'
    : 'not required by this shop';
  let recording = 'on';
  if (!shelf || shelf.status === 'failed') recording = 'off (the ranker is not available)';
  else if (!shelf.recording) {
    recording = consentMode === 'required' && choice !== 'granted'
      ? 'off until you consent'
      : 'off (your browser sends Global Privacy Control or Do Not Track)';
  }
  $('#recording-state').textContent = recording;
  $('#consent-change').hidden = consentMode !== 'required';
}

async function decideConsent(granted) {
  try {
    localStorage.setItem(CONSENT_KEY, granted ? 'granted' : 'declined');
  } catch {
    // Without storage the banner simply comes back on the next visit.
  }
  $('#consent-banner').hidden = true;
  try {
    await shelf?.setConsent(granted);
  } catch (error) {
    $('#data-message').textContent = `Could not change consent: ${error.message}`;
  }
  await refreshHistory();
  if (!granted && state.personalised) state.lists.forEach(refreshList);
}

$('#consent-accept').addEventListener('click', () => decideConsent(true));
$('#consent-decline').addEventListener('click', () => decideConsent(false));
$('#consent-change').addEventListener('click', () => {
  $('#consent-banner').hidden = false;
  $('#consent-accept').focus();
});

$('#export').addEventListener('click', async () => {
  if (!shelf) return;
  try {
    const data = await shelf.exportHistory();
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }));
    const link = h('a', { href: url, download: `shelfrank-history-${new Date().toISOString().slice(0, 10)}.json`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    $('#data-message').textContent = `Exported ${data.events.length} events (stored in ${data.storage}).`;
  } catch (error) {
    $('#data-message').textContent = `Export failed: ${error.message}`;
  }
});

$('#forget').addEventListener('click', async () => {
  if (!shelf) return;
  try {
    await shelf.forget();
    $('#data-message').textContent = 'Everything stored about you on this device is erased.';
  } catch (error) {
    $('#data-message').textContent = `Forget failed: ${error.message}`;
  }
  await refreshHistory();
  if (state.personalised) state.lists.forEach(refreshList);
});

// ------------------------------------------------------------------ start --

if (!shelf) {
  $('#export').disabled = true;
  $('#forget').disabled = true;
}
if (consentMode === 'required' && shelf) {
  const choice = storedConsent();
  if (choice === 'granted') shelf.setConsent(true).then(refreshHistory, (error) => console.warn('shelfrank consent:', error));
  else if (choice !== 'declined') $('#consent-banner').hidden = false;
}
saveCart();
render();
