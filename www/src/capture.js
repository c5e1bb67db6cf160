// Turns what the shopper does on the page into session events: clicks,
// add-to-cart, purchases, searches and dwell views from `data-shelfrank-*`
// markup, and GA4 ecommerce events pushed to `window.dataLayer`. Events go
// to `record`; nothing here touches the network.

const ATTR = 'data-shelfrank-';

/** The item described by an element's `data-shelfrank-*` attributes. */
export function itemFromElement(el) {
  const get = (name) => {
    const v = el.getAttribute(ATTR + name);
    return v === null || v === '' ? undefined : v;
  };
  const item = { id: get('id') };
  for (const key of ['title', 'category', 'brand']) {
    const v = get(key);
    if (v !== undefined) item[key] = v;
  }
  const price = get('price');
  if (price !== undefined && Number.isFinite(Number(price))) item.price = Number(price);
  const score = get('score');
  if (score !== undefined && Number.isFinite(Number(score))) item.serverScore = Number(score);
  const pinned = el.getAttribute(ATTR + 'pinned');
  if (pinned !== null && pinned !== 'false') item.pinned = true;
  return item;
}

function itemEvent(type, item) {
  const event = { type, id: item.id };
  for (const key of ['title', 'category', 'brand']) if (item[key]) event[key] = item[key];
  return event;
}

/**
 * Records clicks, add-to-cart and purchase buttons, search forms and dwell
 * views under `root`. Returns a function that stops it all.
 */
export function captureDom(record, { root = document, viewDwellMs = 1000 } = {}) {
  const doc = root.ownerDocument ?? root;
  const win = doc.defaultView;

  const onClick = (e) => {
    const target = e.target instanceof win.Element ? e.target : null;
    if (!target) return;
    const action = target.closest(`[${ATTR}action]`);
    const itemEl = (action ?? target).closest(`[${ATTR}id]`);
    if (!itemEl || !root.contains(itemEl)) return;
    const item = itemFromElement(itemEl);
    if (action) {
      const type = action.getAttribute(ATTR + 'action');
      if (type === 'add_to_cart' || type === 'purchase') record(itemEvent(type, item));
      return;
    }
    // Only a click that opens the item counts, not a stray one on its box.
    if (target.closest('a[href], button, [role="link"], [role="button"]')) record(itemEvent('click', item));
  };

  const onSubmit = (e) => {
    const form = e.target;
    if (!(form instanceof win.HTMLFormElement) || !form.hasAttribute(ATTR + 'search')) return;
    const input = form.querySelector('input[type="search"], input[name="q"], input[type="text"], input:not([type])');
    const query = input?.value?.trim();
    if (query) record({ type: 'search', query });
  };

  root.addEventListener('click', onClick, { capture: true, passive: true });
  root.addEventListener('submit', onSubmit, { capture: true });

  // Dwell views: an element marked data-shelfrank-view that stays at least
  // half visible, while the page itself is visible, for viewDwellMs.
  const timers = new Map();
  const seen = new WeakSet();
  let observer = null;
  let mutations = null;
  let onVisibility = null;
  if (typeof win.IntersectionObserver === 'function') {
    const stop = (el) => {
      clearTimeout(timers.get(el));
      timers.delete(el);
    };
    observer = new win.IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const el = entry.target;
          if (seen.has(el)) continue;
          if (entry.isIntersecting && entry.intersectionRatio >= 0.5 && doc.visibilityState === 'visible') {
            if (!timers.has(el)) {
              timers.set(
                el,
                setTimeout(() => {
                  timers.delete(el);
                  if (!el.isConnected || seen.has(el)) return;
                  seen.add(el);
                  observer?.unobserve(el);
                  record(itemEvent('view', itemFromElement(el)));
                }, viewDwellMs),
              );
            }
          } else {
            stop(el);
          }
        }
      },
      { threshold: [0, 0.5, 1] },
    );
    const observeAll = (node) => {
      if (!(node instanceof win.Element)) return;
      if (node.matches(`[${ATTR}view][${ATTR}id]`)) observer.observe(node);
      for (const el of node.querySelectorAll(`[${ATTR}view][${ATTR}id]`)) observer.observe(el);
    };
    observeAll(root instanceof win.Document ? root.documentElement : root);
    // Product blocks rendered (or marked) later, as single-page shops do.
    mutations = new win.MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes') observeAll(r.target);
        else for (const node of r.addedNodes) observeAll(node);
      }
    });
    mutations.observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: [`${ATTR}id`, `${ATTR}view`] });
    // Hiding the tab interrupts a dwell: it starts again when visible.
    onVisibility = () => {
      if (doc.visibilityState !== 'visible') {
        for (const el of [...timers.keys()]) {
          clearTimeout(timers.get(el));
          timers.delete(el);
          observer.unobserve(el);
          observer.observe(el);
        }
      }
    };
    doc.addEventListener('visibilitychange', onVisibility);
  }

  return () => {
    root.removeEventListener('click', onClick, { capture: true });
    root.removeEventListener('submit', onSubmit, { capture: true });
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    observer?.disconnect();
    mutations?.disconnect();
    if (onVisibility) doc.removeEventListener('visibilitychange', onVisibility);
  };
}

const GA4 = { view_item: 'view', select_item: 'click', add_to_cart: 'add_to_cart', purchase: 'purchase' };

/** Session events for one GA4 event (`name`, `params`), or []. */
export function eventsFromGa4(name, params) {
  if (name === 'search') {
    const query = typeof params?.search_term === 'string' ? params.search_term.trim() : '';
    return query ? [{ type: 'search', query }] : [];
  }
  const type = GA4[name];
  const items = params?.items ?? params?.ecommerce?.items;
  if (!type || !Array.isArray(items)) return [];
  const events = [];
  for (const it of items) {
    if (!it || typeof it !== 'object') continue;
    const id = it.item_id ?? it.id;
    if (typeof id !== 'string' && typeof id !== 'number') continue;
    const event = { type, id: String(id) };
    if (typeof it.item_name === 'string') event.title = it.item_name;
    if (typeof it.item_category === 'string') event.category = it.item_category;
    if (typeof it.item_brand === 'string') event.brand = it.item_brand;
    events.push(event);
  }
  return events;
}

/** The GA4 event in one dataLayer entry: `{ event, ecommerce }` or a gtag `arguments`. */
function ga4Entry(entry) {
  if (!entry || typeof entry !== 'object') return null;
  if (typeof entry.length === 'number' && entry[0] === 'event' && typeof entry[1] === 'string') {
    return { name: entry[1], params: entry[2] ?? {} };
  }
  if (typeof entry.event === 'string') {
    return { name: entry.event, params: { ...entry, items: entry.ecommerce?.items ?? entry.items } };
  }
  return null;
}

/**
 * Records GA4 ecommerce events from `dataLayer`: the entries already there
 * and every later push. Returns a function that stops listening.
 */
export function captureDataLayer(record, dataLayer) {
  const handle = (entry) => {
    const ga4 = ga4Entry(entry);
    if (ga4) for (const event of eventsFromGa4(ga4.name, ga4.params)) record(event);
  };
  for (const entry of dataLayer) handle(entry);
  const original = dataLayer.push;
  const push = function (...entries) {
    const result = original.apply(this, entries);
    for (const entry of entries) {
      try {
        handle(entry);
      } catch {
        // Never let the shop's analytics push fail because of us.
      }
    }
    return result;
  };
  dataLayer.push = push;
  return () => {
    if (dataLayer.push === push) dataLayer.push = original;
  };
}
