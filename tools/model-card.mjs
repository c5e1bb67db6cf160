// Prints the model card's tables from `eval --json` output (models/eval.json),
// so the figures in models/README.md are pasted, never retyped:
//   node tools/model-card.mjs models/eval.json
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? 'models/eval.json', 'utf8'));
const f = (x) => (typeof x === 'number' ? x.toFixed(4) : '–');
const line = (cells) => `| ${cells.join(' | ')} |`;

const items = report.protocol.ranking.match(/\d+/)?.[0];
console.log(`Test split, **published protocol**: full ranking against all ${items} items with the user's history items left in (RecBole's full sort for sequential models, which the published numbers use), ${report.protocol.users} users (valid N@10 chose the settings).\n`);
console.log(line(['model', 'R@10', 'R@50', 'N@10', 'N@50', 'MRR', 'valid N@10']));
console.log(line(Array(7).fill('---')));
const row = (name, r) => console.log(line([name, f(r.test['recall@10']), f(r.test['recall@50']), f(r.test['ndcg@10']), f(r.test['ndcg@50']), f(r.test.mrr), f(r.valid['ndcg@10'])]));
row(`**shelfrank (shipped, ${report.model.storedAs})**`, report);
for (const [name, r] of Object.entries(report.baselines)) row(name, r);

console.log(`\nThe friendlier variant, labelled: the same scores with each user's history items **masked** before ranking (not the published protocol).\n`);
console.log(line(['model', 'R@10', 'R@50', 'N@10', 'N@50', 'MRR', 'valid N@10']));
console.log(line(Array(7).fill('---')));
row(`shelfrank (shipped, ${report.model.storedAs}), history masked`, report.historyMasked);
for (const [name, r] of Object.entries(report.baselines)) if (r.historyMasked) row(`${name}, history masked`, r.historyMasked);

console.log('\nClassification view (test; target + 99 sampled untouched items per user, threshold = best F1 on validation):\n');
console.log(line(['model', 'accuracy', 'precision', 'recall', 'F1']));
console.log(line(Array(5).fill('---')));
const cls = (name, c) => console.log(line([name, f(c.accuracy), f(c.precision), f(c.recall), f(c.f1)]));
cls('shelfrank', report.classification);
for (const [name, r] of Object.entries(report.baselines)) cls(name, r.classification);

const views = [report.rerank, report.rerankHistoryExcluded].filter(Boolean);
console.log(`\nReranking view (test): a ${views[0].listSize}-item server list per user, top items by co-occurrence with the last item, then popularity; with the user's history items allowed in it (as a real server's list may hold them) or excluded.\n`);
console.log(line(['server list', 'target in list', 'history items in list', 'server N@10', `shelfrank N@10 (serverWeight ${views[0].shelfrankServerWeight})`, 'lift', 'model only N@10', 'history items in shelfrank top 10']));
console.log(line(Array(8).fill('---')));
for (const v of views) {
  const lift = `${v.shelfrankNdcg10 >= v.serverNdcg10 ? '+' : ''}${(100 * (v.shelfrankNdcg10 / v.serverNdcg10 - 1)).toFixed(0)}%`;
  console.log(line([/allowed/.test(v.serverList) ? 'history allowed' : 'history excluded', `${(100 * v.targetInList).toFixed(1)}%`, v.historyItemsInList.toFixed(2), f(v.serverNdcg10), f(v.shelfrankNdcg10), lift, f(v.modelOnlyNdcg10), v.historyItemsInTop10.toFixed(2)]));
}

const heldOut = [
  ['coldStart', (c) => `Cold start: ${c.heldOutItems} random items (10%) held out of training entirely; ${c.coldTargetUsers} test users whose target is one of them.`],
  ['categorySplit', (c) => `A catalog the model has not seen: ${c.heldOutCategories?.length ?? '?'} whole categories (${c.heldOutItems} items, 10%) held out of training; ${c.coldTargetUsers} test users whose target lies in them.`],
];
for (const [key, title] of heldOut) {
  const c = report[key];
  if (!c) continue;
  console.log(`\n${title(c)} The baselines count a log without the held-out items, as the model saw it.${c.idDropout ? ` Trained with ID dropout ${c.idDropout}.` : ''}\n`);
  console.log(line(['users', 'model', 'R@10', 'N@10']));
  console.log(line(['---', '---', '---', '---']));
  const from = c.borrowedIdRows?.from;
  const sources = from && from.neighbours > 1
    ? `a blend of the ${from.neighbours} nearest trained items' rows by text (softmax of cosine at temperature ${+from.temperature.toFixed(3)}; rows opposed to the nearest's left out)`
    : 'the row of the nearest trained item by text';
  const borrowed = c.borrowedIdRows ? `, ID rows borrowed as ${sources} (\`update-catalog\`, median cosine to the nearest ${c.borrowedIdRows.medianCosine?.toFixed(3)})` : '';
  console.log(line(['held-out targets', `model trained without them${borrowed}`, f(c.test['recall@10']), f(c.test['ndcg@10'])]));
  if (c.textOnly) console.log(line(['held-out targets', 'model trained without them, scored from text alone (ID row 0)', f(c.textOnly.test['recall@10']), f(c.textOnly.test['ndcg@10'])]));
  console.log(line(['held-out targets', 'popularity', f(c.popularityOnColdUsers['recall@10']), f(c.popularityOnColdUsers['ndcg@10'])]));
  if (c.cooccurrenceOnColdUsers) console.log(line(['held-out targets', 'co-occurrence', f(c.cooccurrenceOnColdUsers['recall@10']), f(c.cooccurrenceOnColdUsers['ndcg@10'])]));
  if (c.shippedOnColdUsers) console.log(line(['held-out targets', 'shipped model (trained with them)', f(c.shippedOnColdUsers['recall@10']), f(c.shippedOnColdUsers['ndcg@10'])]));
  console.log(line(['other targets', `model trained without them${c.borrowedIdRows ? ', borrowed rows' : ''}`, f(c.warmTargetTest['recall@10']), f(c.warmTargetTest['ndcg@10'])]));
  if (c.textOnly) console.log(line(['other targets', 'model trained without them, text alone', f(c.textOnly.warmTargetTest['recall@10']), f(c.textOnly.warmTargetTest['ndcg@10'])]));
  const pct = (a, b) => `${(100 * a / b).toFixed(0)}%`;
  const warm = report.test['ndcg@10'];
  console.log(`\nHeld-out targets keep ${pct(c.test['ndcg@10'], warm)} of the shipped model's test NDCG@10 (${f(warm)}), ${pct(c.test['ndcg@10'], c.warmTargetTest['ndcg@10'])} of the other targets' and ${c.shippedOnColdUsers ? `${pct(c.test['ndcg@10'], c.shippedOnColdUsers['ndcg@10'])} of the shipped model's on the same users` : ''}${c.textOnly ? ` (from text alone: ${pct(c.textOnly.test['ndcg@10'], warm)}, ${pct(c.textOnly.test['ndcg@10'], c.textOnly.warmTargetTest['ndcg@10'])}, ${pct(c.textOnly.test['ndcg@10'], c.shippedOnColdUsers['ndcg@10'])})` : ''}.`);
}
if (report.qualitySample) {
  const q = report.qualitySample;
  console.log(`\nQuality test sample (\`npm test\` holds the shipped model to it): ${q.rule}, ${q.users} users, N@10 ${f(q['ndcg@10'])}, R@10 ${f(q['recall@10'])}.`);
}
const prior = report.model.config.repeatPrior;
if (prior?.length) {
  const row = prior.slice(3 * 6, 4 * 6).map((v) => v.toFixed(2)).join(', ');
  console.log(`\nRepeat prior (offsets for a candidate already in the session, by how many events back its newest event lies: 0, 1, 2, 3-4, 5-9, 10+; fitted on training sequences): ${row}.`);
}
console.log(`\nModel file: ${report.model.file}, ${report.model.bytes} bytes, sha256 ${report.model.sha256}.`);
