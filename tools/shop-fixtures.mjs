// Writes the small shop-data fixtures that `npm test` trains on, from the
// real REES46 log in ../shared/data/typed-events/ (not in this repository):
//   node tools/shop-fixtures.mjs [path/to/rees46-2019-10-01-17k.csv]
// - tests/fixtures/shop/events.csv   user,item,kind,timestamp
// - tests/fixtures/shop/catalog.csv  id,title,category,brand,price
// - tests/fixtures/shop/ga4/events.jsonl  the same events in GA4's export schema
// Kept: the first 300 users (in file order) with 3 or more events. REES46
// has no product names: the catalog's title stays empty and the item text
// is its category path and brand, as a shop without titles would send.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = process.argv[2] ?? path.join(root, '../shared/data/typed-events/rees46-2019-10-01-17k.csv');
const USERS = 300;

const lines = readFileSync(source, 'utf8').split(/\r?\n/).filter((l) => l.trim());
const header = lines[0].split(',');
const col = Object.fromEntries(header.map((name, i) => [name, i]));
const rows = lines.slice(1).map((l) => l.split(','));
const count = new Map();
for (const r of rows) count.set(r[col.user_id], (count.get(r[col.user_id]) ?? 0) + 1);
const users = [];
for (const r of rows) {
  const u = r[col.user_id];
  if (count.get(u) >= 3 && !users.includes(u) && users.length < USERS) users.push(u);
}
const keep = new Set(users);
const kept = rows.filter((r) => keep.has(r[col.user_id]));

const csvCell = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const category = (r) => r[col.category_code].replace(/[._]/g, ' ');
const events = ['user,item,kind,timestamp', ...kept.map((r) => [r[col.user_id], r[col.product_id], r[col.event_type], r[col.event_time]].join(','))];
const items = new Map();
for (const r of kept) if (!items.has(r[col.product_id])) items.set(r[col.product_id], r);
const catalog = ['id,title,category,brand,price', ...[...items.values()].map((r) => [r[col.product_id], '', category(r), r[col.brand], r[col.price]].map(csvCell).join(','))];

const ga4Name = { view: 'view_item', cart: 'add_to_cart', purchase: 'purchase' };
const micros = (t) => String(Date.parse(t.replace(' UTC', 'Z').replace(' ', 'T')) * 1000);
const ga4 = kept.map((r) => {
  const item = { item_id: r[col.product_id], price: Number(r[col.price]) };
  if (r[col.category_code]) item.item_category = category(r);
  if (r[col.brand]) item.item_brand = r[col.brand];
  return JSON.stringify({ event_name: ga4Name[r[col.event_type]], event_timestamp: micros(r[col.event_time]), user_pseudo_id: r[col.user_id], items: [item] });
});

const out = path.join(root, 'tests/fixtures/shop');
mkdirSync(path.join(out, 'ga4'), { recursive: true });
writeFileSync(path.join(out, 'events.csv'), events.join('\n') + '\n');
writeFileSync(path.join(out, 'catalog.csv'), catalog.join('\n') + '\n');
writeFileSync(path.join(out, 'ga4/events.jsonl'), ga4.join('\n') + '\n');
console.log(`shop fixtures: ${users.length} users, ${kept.length} events, ${items.size} items`);
