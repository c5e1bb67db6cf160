// Writes the real typed logs in ../shared/data/typed-events/ (not in this
// repository) as a shop's events file and catalog file, the format
// `kind-weights`, `train` and `eval` read (--events FILE --catalog FILE):
//   node tools/typed-logs.mjs [DIR]   ->  target/typed/{taobao,rees46,rees46-text}/{events,catalog}.csv
// An item's category is the log's category id. Taobao's `fav` rows keep
// their kind, which the reader counts and leaves out (it is no kind the
// page records).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = process.argv[2] ?? path.join(root, '../shared/data/typed-events');
const lines = (file) => readFileSync(path.join(dir, file), 'utf8').split(/\r?\n/).filter((l) => l.trim());

function write(name, events, items) {
  const out = path.join(root, 'target/typed', name);
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'events.csv'), ['user,item,kind,timestamp', ...events.map((e) => e.join(','))].join('\n') + '\n');
  const catalog = [...items].map(([id, c]) => [id, '', c.category, c.brand ?? '', c.price ?? ''].join(','));
  writeFileSync(path.join(out, 'catalog.csv'), ['id,title,category,brand,price', ...catalog].join('\n') + '\n');
  console.log(`${name}: ${events.length} events, ${items.size} items -> ${path.relative(root, out)}`);
}

// Taobao UserBehavior: user_id,item_id,category_id,behavior,timestamp (no header).
{
  const events = [];
  const items = new Map();
  for (const l of lines('taobao-userbehavior-100k.csv')) {
    const [user, item, category, kind, time] = l.split(',');
    events.push([user, item, kind, time]);
    if (!items.has(item)) items.set(item, { category });
  }
  write('taobao', events, items);
}

// REES46: event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session.
{
  const [head, ...rows] = lines('rees46-2019-10-01-17k.csv');
  const col = Object.fromEntries(head.split(',').map((name, i) => [name, i]));
  const events = [];
  const items = new Map();
  for (const l of rows) {
    const r = l.split(',');
    events.push([r[col.user_id], r[col.product_id], r[col.event_type], `"${r[col.event_time]}"`]);
    if (!items.has(r[col.product_id])) {
      const code = r[col.category_code].replace(/[._]/g, ' ');
      items.set(r[col.product_id], { category: r[col.category_id], code, brand: r[col.brand], price: r[col.price] });
    }
  }
  write('rees46', events, items);
  // The same events with item text: the category code's words
  // ("electronics smartphone") as the category, and the brand. A catalog
  // the Scientific model has never seen, for the any-catalog model.
  const texts = new Map([...items].map(([id, c]) => [id, { ...c, category: c.code }]));
  write('rees46-text', events, texts);
}
