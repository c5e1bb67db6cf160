// Writes a dataset's item catalog as JSON ([{ id, title, category, brand,
// popularity }]) for the demo shop and the browser tests, from the RecBole /
// UniSRec atomic files (`X.item2index`, `X.text`, `X.valid.inter`).
// `popularity` counts the item's interactions in the training part of the
// sequences (what a shop's "popular" shelf would know), never the
// validation or test targets. Plain Node, so `npm start` needs no native
// build; tests/it/main.rs checks its output against the Rust dataset reader
// that training uses (src/dataset.rs).
//
//   node tools/catalog.mjs [--data data/scientific] [--out www/demo/catalog.json]
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Non-empty lines, without the header line (`name:type` columns) when there is one. */
function lines(file) {
  const all = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '');
  if (all.length > 0 && all[0].split('\t').every((column) => column.includes(':'))) all.shift();
  return all;
}

function splitTab(line, file, n) {
  const tab = line.indexOf('\t');
  if (tab < 0) throw new Error(`${file} line ${n + 2} is malformed`);
  return [line.slice(0, tab), line.slice(tab + 1)];
}

/** "title. category path. brand." split from the right, since titles may contain ". ". */
function splitItemText(raw) {
  const trimmed = raw.trim().replace(/\.+$/, '').trim();
  const parts = [];
  let rest = trimmed;
  while (parts.length < 2) {
    const at = rest.lastIndexOf('. ');
    if (at < 0) break;
    parts.push(rest.slice(at + 2));
    rest = rest.slice(0, at);
  }
  parts.push(rest);
  const [brand, category, title] = parts.length === 3 ? parts : parts.length === 2 ? [undefined, parts[0], parts[1]] : [undefined, undefined, parts[0]];
  const clean = (text) => (text === undefined || text.trim() === '' ? null : text.trim());
  return { title: title.trim(), category: clean(category), brand: clean(brand) };
}

export function readCatalog(dir) {
  const index = readdirSync(dir).find((name) => name.endsWith('.item2index'));
  if (!index) throw new Error(`${dir} has no *.item2index file; expected the RecBole/UniSRec atomic format`);
  const prefix = path.join(dir, index.slice(0, -'.item2index'.length));
  const texts = new Map(lines(`${prefix}.text`).map((line, n) => splitTab(line, `${prefix}.text`, n)).map(([id, text]) => [id.trim(), text]));
  const items = [];
  for (const [n, line] of lines(`${prefix}.item2index`).entries()) {
    const [id, at] = splitTab(line, `${prefix}.item2index`, n).map((s) => s.trim());
    items[Number(at)] = { id, ...splitItemText(texts.get(id) ?? ''), popularity: 0 };
  }
  for (let i = 0; i < items.length; i++) if (!items[i]) throw new Error(`${prefix}.item2index gives no item index ${i}`);
  // Training sequences: each user's history before the validation target.
  for (const line of lines(`${prefix}.valid.inter`)) {
    const history = line.split('\t')[1]?.split(/\s+/).filter(Boolean) ?? [];
    if (history.length < 2) continue;
    for (const at of history) items[Number(at)].popularity++;
  }
  return items;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const args = process.argv.slice(2);
  const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const data = flag('--data', path.join(root, 'data/scientific'));
  const out = flag('--out', path.join(root, 'www/demo/catalog.json'));
  const items = readCatalog(data);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(items));
  console.error(`catalog: wrote ${items.length} items to ${path.relative(process.cwd(), out) || out}`);
}
