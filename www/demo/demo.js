import { createReranker } from '../shelfrank.js';

const $ = (id) => document.getElementById(id);
const catalog = await (await fetch('catalog.json')).json();

// The "server": a fixed, mixed list of 40 items from six common categories,
// in a deterministic order, with one campaign slot pinned at position 3.
function serverList() {
  const byCategory = new Map();
  for (const item of catalog) {
    if (!item.category) continue;
    if (!byCategory.has(item.category)) byCategory.set(item.category, []);
    byCategory.get(item.category).push(item);
  }
  const top = [...byCategory.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, 6);
  const list = [];
  for (let i = 0; list.length < 40; i++) {
    const [, items] = top[i % top.length];
    const item = items[Math.floor(i / top.length)];
    if (item) list.push({ ...item });
  }
  list[3].pinned = true;
  return list;
}

const candidates = serverList();
let ranker = null;

function shortCategory(category = '') {
  return category.replace(/^Industrial & Scientific\s*/, '');
}

function renderItem(item, extra = '') {
  const li = document.createElement('li');
  if (item.pinned) li.className = 'pinned';
  li.innerHTML = `<span class="title"></span> ${extra}<span class="cat"></span>`;
  li.querySelector('.title').textContent = item.title.slice(0, 90) + (item.pinned ? ' (campaign)' : '');
  li.querySelector('.cat').textContent = shortCategory(item.category);
  for (const type of ['view', 'add_to_cart']) {
    const button = document.createElement('button');
    button.textContent = type === 'view' ? 'view' : 'add to cart';
    button.addEventListener('click', () => record(type, item));
    li.querySelector('.cat').before(button);
  }
  return li;
}

function record(type, item) {
  if (!ranker) return;
  ranker.record({ type, id: item.id, title: item.title, category: item.category, brand: item.brand });
  refresh();
}

async function refresh() {
  $('server').replaceChildren(...candidates.map((item) => renderItem(item)));
  if (!ranker) return;
  const result = await ranker.rerank(candidates);
  const moved = (item, slot) => {
    const from = candidates.indexOf(item);
    if (from === slot) return '';
    return from > slot ? `<span class="moved-up">▲${from - slot}</span> ` : `<span class="moved-down">▼${slot - from}</span> `;
  };
  $('ranked').replaceChildren(...result.items.map((item, slot) => renderItem(item, moved(item, slot))));
  $('history').replaceChildren(...ranker.history().map((e) => {
    const li = document.createElement('li');
    li.textContent = `${e.type}: ${(e.title ?? e.query ?? e.id).slice(0, 60)}`;
    return li;
  }));
  const backend = ranker.backend;
  const adapter = backend.adapter ? ` on ${backend.adapter.name || backend.adapter.deviceType}` : '';
  $('status').textContent = `${backend.name}${adapter}, rerank ${result.ms.toFixed(1)} ms${result.fallback ? ' (fallback: ' + result.error.message + ')' : ''}`;
}

async function load() {
  $('status').textContent = 'loading…';
  try {
    ranker = await createReranker({ backend: $('backend').value });
  } catch (error) {
    ranker = null;
    $('status').textContent = `could not load the ranker (${error.name}: ${error.message}); showing server order`;
  }
  refresh();
}

$('reload').addEventListener('click', load);
$('forget').addEventListener('click', () => { ranker?.forget(); refresh(); });
load();
