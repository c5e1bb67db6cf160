// Prints the model card's tables from `eval --json` output (models/eval.json),
// so the figures in models/README.md are pasted, never retyped:
//   node tools/model-card.mjs models/eval.json
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? 'models/eval.json', 'utf8'));
const f = (x) => (typeof x === 'number' ? x.toFixed(4) : '–');
const line = (cells) => `| ${cells.join(' | ')} |`;

console.log(`Test split, full ranking against all ${report.protocol.ranking.match(/\d+/)?.[0]} items, ${report.protocol.users} users (valid NDCG@10 for model selection).\n`);
console.log(line(['model', 'R@10', 'R@50', 'N@10', 'N@50', 'MRR', 'valid N@10']));
console.log(line(Array(7).fill('---')));
const row = (name, r) => console.log(line([name, f(r.test['recall@10']), f(r.test['recall@50']), f(r.test['ndcg@10']), f(r.test['ndcg@50']), f(r.test.mrr), f(r.valid['ndcg@10'])]));
row(`**shelfrank (shipped, ${report.model.storedAs})**`, report);
for (const [name, r] of Object.entries(report.baselines)) row(name, r);

console.log('\nClassification view (test; target + 99 sampled untouched items per user, threshold = best F1 on validation):\n');
console.log(line(['model', 'accuracy', 'precision', 'recall', 'F1']));
console.log(line(Array(5).fill('---')));
const cls = (name, c) => console.log(line([name, f(c.accuracy), f(c.precision), f(c.recall), f(c.f1)]));
cls('shelfrank', report.classification);
for (const [name, r] of Object.entries(report.baselines)) cls(name, r.classification);

const r = report.rerank;
console.log(`\nReranking view (test): a ${r.listSize}-item server list per user (${r.serverList}); the target is in it for ${(100 * r.targetInList).toFixed(1)}% of users.\n`);
console.log(line(['order', 'NDCG@10']));
console.log(line(['---', '---']));
console.log(line(['server', f(r.serverNdcg10)]));
console.log(line([`shelfrank (serverWeight ${r.shelfrankServerWeight})`, f(r.shelfrankNdcg10)]));
console.log(line(['shelfrank model only (serverWeight 0)', f(r.modelOnlyNdcg10)]));

if (report.coldStart) {
  const c = report.coldStart;
  console.log(`\nCold start: ${c.heldOutItems} items (10%) held out of training entirely; ${c.coldTargetUsers} test users whose target is one of them, scored from text alone.\n`);
  console.log(line(['users', 'model', 'R@10', 'N@10']));
  console.log(line(['---', '---', '---', '---']));
  console.log(line(['cold targets', 'cold-start model', f(c.test['recall@10']), f(c.test['ndcg@10'])]));
  console.log(line(['cold targets', 'popularity', f(c.popularityOnColdUsers['recall@10']), f(c.popularityOnColdUsers['ndcg@10'])]));
  console.log(line(['warm targets', 'cold-start model', f(c.warmTargetTest['recall@10']), f(c.warmTargetTest['ndcg@10'])]));
}
console.log(`\nModel file: ${report.model.file}, ${report.model.bytes} bytes, sha256 ${report.model.sha256}.`);
