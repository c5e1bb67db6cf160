// Writes models/any-eval.json: `eval --json` of the any-catalog model on
// Scientific (with its category-split twin), on REES46 (a shop it never
// saw), and of a model trained and tuned on REES46's own events, for
// tools/any-card.mjs. Run by tools/reproduce-model.sh after the models
// exist (target/models/any-split.bin, target/models/rees46/shelfrank.bin)
// and `node tools/typed-logs.mjs`.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const run = (args) => JSON.parse(execFileSync('./target/release/eval', [...args, '--json'], { maxBuffer: 1 << 28 }));
const rees = ['--events', 'target/typed/rees46-text/events.csv', '--catalog', 'target/typed/rees46-text/catalog.csv'];
const out = {
  scientific: run(['--model', 'models/shelfrank-any.bin', '--data', 'data/scientific', '--category-split', 'target/models/any-split.bin']),
  rees46: run(['--model', 'models/shelfrank-any.bin', ...rees]),
  rees46OwnModel: run(['--model', 'target/models/rees46/shelfrank.bin', ...rees]),
};
writeFileSync('models/any-eval.json', JSON.stringify(out, null, 2) + '\n');
