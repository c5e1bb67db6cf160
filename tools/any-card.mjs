// Prints the any-catalog model's tables for models/README.md from `eval
// --json` output, so its figures are pasted, never retyped:
//   node tools/any-card.mjs models/any-eval.json models/eval.json
// (models/any-eval.json is written by tools/reproduce-model.sh; eval.json is
// the catalog-specific model's report, for its category-split figure.)
import { readFileSync } from 'node:fs';

const any = JSON.parse(readFileSync(process.argv[2] ?? 'models/any-eval.json', 'utf8'));
const specific = JSON.parse(readFileSync(process.argv[3] ?? 'models/eval.json', 'utf8'));
const f = (x) => (typeof x === 'number' ? x.toFixed(4) : '–');
const share = (a, b) => (typeof a === 'number' && b > 0 ? `${Math.round((100 * a) / b)}%` : '–');
const line = (cells) => console.log(`| ${cells.join(' | ')} |`);
const header = (...cells) => {
  line(cells);
  line(cells.map(() => '---'));
};

const sci = any.scientific;
console.log(`Scientific test, ${sci.test.users} users, published protocol (history left in) and history masked:\n`);
header('model', 'N@10', 'R@10', 'N@10 masked', 'R@10 masked');
const row = (name, r) => line([name, f(r.test['ndcg@10']), f(r.test['recall@10']), f(r.historyMasked?.test['ndcg@10']), f(r.historyMasked?.test['recall@10'])]);
row('**any-catalog model** (text only)', sci);
row('catalog-specific (shipped)', specific);
for (const name of ['popularity', 'cooccurrence']) row(name, sci.baselines[name]);

const split = sci.categorySplit;
const own = specific.categorySplit;
console.log(`\nA catalog it has not seen: both models trained without ${split.heldOutItems} items (${split.heldOutCategories.length} whole categories), scored on the ${split.coldTargetUsers} test users whose target is one of them (published protocol):\n`);
header('model', 'N@10', 'R@10', 'N@10 share of catalog-specific');
line(['**any-catalog model**', f(split.test['ndcg@10']), f(split.test['recall@10']), share(split.test['ndcg@10'], own.test['ndcg@10'])]);
line(['catalog-specific, new items borrowing ID rows', f(own.test['ndcg@10']), f(own.test['recall@10']), '100%']);
line(['catalog-specific, new items from text alone', f(own.textOnly?.test['ndcg@10']), f(own.textOnly?.test['recall@10']), share(own.textOnly?.test['ndcg@10'], own.test['ndcg@10'])]);
line(['popularity', f(split.popularityOnColdUsers['ndcg@10']), f(split.popularityOnColdUsers['recall@10']), '–']);
line(['co-occurrence', f(split.cooccurrenceOnColdUsers['ndcg@10']), f(split.cooccurrenceOnColdUsers['recall@10']), '–']);

const rees = any.rees46;
const reesOwn = any.rees46OwnModel;
console.log(`\nAnother shop: REES46 (${rees.test.users} users with 3 or more events, ${rees.protocol.ranking.match(/\d+/)?.[0]} items; text = category words and brand), never seen in training, next to a model trained and tuned on REES46's own events:\n`);
header('model', 'N@10', 'R@10', 'N@10 masked', 'R@10 masked', 'masked N@10 share of own model');
const reesRow = (name, r) =>
  line([name, f(r.test['ndcg@10']), f(r.test['recall@10']), f(r.historyMasked?.test['ndcg@10']), f(r.historyMasked?.test['recall@10']), share(r.historyMasked?.test['ndcg@10'], reesOwn.historyMasked.test['ndcg@10'])]);
reesRow('**any-catalog model** (no REES46 data)', rees);
reesRow("REES46's own model (trained and tuned on it)", reesOwn);
for (const name of ['popularity', 'cooccurrence']) reesRow(name, rees.baselines[name]);
