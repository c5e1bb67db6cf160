// Writes a generated shop of any size as the events file and catalog file
// `train` and `eval` read (--events FILE --catalog FILE), for measuring
// how training scales (time per epoch, peak memory), not its quality:
//   node tools/generate-shop.mjs --items 100000 --users 1000000 [--out DIR] [--seed N]
// -> DIR/events.csv, DIR/catalog.csv (default target/generated/<items>x<users>).
//
// The shop has structure a model can learn: items belong to categories,
// each category has its own words and brands, popularity within a
// category is Zipf-like, and a shopper mostly stays in a category and
// moves to related ones. Each user has at least 3 item events (about 8 on
// average), mostly views, some carts and purchases.
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = args[at + 1];
  if (value === undefined) throw new Error(`${name} needs a value`);
  return value;
};
const items = Number(flag('--items', '100000'));
const users = Number(flag('--users', '1000000'));
let seed = Number(flag('--seed', '7'));
if (!(Number.isInteger(items) && items >= 10 && Number.isInteger(users) && users >= 1)) {
  console.error('usage: node tools/generate-shop.mjs --items N (>= 10) --users N [--out DIR] [--seed N]');
  process.exit(2);
}
const out = flag('--out', path.join(root, 'target/generated', `${items}x${users}`));
mkdirSync(out, { recursive: true });

// Seeded xorshift32 in [0, 1).
function random() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
const pick = (n) => Math.floor(random() * n);
// Zipf-like rank in [0, n): small ranks far more often.
const zipf = (n) => Math.min(n - 1, Math.floor(Math.pow(n + 1, random()) - 1));

const syllables = ['ka', 'lo', 'mi', 'ter', 'van', 'sul', 'dri', 'pex', 'no', 'ran', 'gel', 'tor', 'bi', 'sha', 'qu', 'el', 'mor', 'fin'];
const word = () => Array.from({ length: 2 + pick(2) }, () => syllables[pick(syllables.length)]).join('');

const categories = Math.max(2, Math.round(Math.sqrt(items) / 2));
const catalog = Array.from({ length: categories }, (_, c) => ({
  name: `${word()} ${word()}`,
  words: Array.from({ length: 12 }, word),
  brands: Array.from({ length: 4 }, word),
  related: [pick(categories), pick(categories), (c + 1) % categories],
  members: [],
}));
const itemId = (i) => `G${(i * 2654435761 % 4294967296).toString(36)}${i.toString(36)}`;

const catalogFile = createWriteStream(path.join(out, 'catalog.csv'));
catalogFile.write('id,title,category,brand,price\n');
for (let i = 0; i < items; i++) {
  const c = i < categories ? i : zipf(categories);
  const category = catalog[c];
  category.members.push(i);
  const title = Array.from({ length: 3 + pick(3) }, () => category.words[pick(category.words.length)]).join(' ');
  const line = `${itemId(i)},${title},${category.name},${category.brands[pick(4)]},${(1 + random() * 200).toFixed(2)}\n`;
  if (!catalogFile.write(line)) await new Promise((resolve) => catalogFile.once('drain', resolve));
}
await new Promise((resolve) => catalogFile.end(resolve));

const eventsFile = createWriteStream(path.join(out, 'events.csv'));
eventsFile.write('user,item,kind,timestamp\n');
let lines = 0;
let buffer = '';
const start = 1_700_000_000;
for (let u = 0; u < users; u++) {
  let c = zipf(categories);
  let time = start + pick(30 * 86400);
  const length = 3 + Math.floor(-Math.log(1 - random()) * 5);
  for (let e = 0; e < length; e++) {
    if (random() < 0.3) c = random() < 0.7 ? catalog[c].related[pick(3)] : zipf(categories);
    const members = catalog[c].members;
    const item = members[zipf(members.length)];
    const r = random();
    const kind = r < 0.85 ? 'view' : r < 0.95 ? 'cart' : 'purchase';
    time += 1 + pick(600);
    buffer += `u${u},${itemId(item)},${kind},${time}\n`;
    lines++;
  }
  if (buffer.length > 1 << 20) {
    if (!eventsFile.write(buffer)) await new Promise((resolve) => eventsFile.once('drain', resolve));
    buffer = '';
  }
}
eventsFile.write(buffer);
await new Promise((resolve) => eventsFile.end(resolve));
console.log(`${items} items in ${categories} categories, ${users} users, ${lines} events -> ${path.relative(root, out)}`);
