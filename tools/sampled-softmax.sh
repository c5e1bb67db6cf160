#!/usr/bin/env bash
# Does sampled softmax (`train --negatives N`, for large catalogs) reach the
# full softmax's quality? On Scientific, the shipped model's recipe trained
# with 256 sampled negatives a step, with the logQ correction (the default)
# and without it (--no-logq), and with 1,024 (corrected); each tuned on
# validation like the shipped model, then `eval` on test next to the
# shipped (full-softmax) model. About 25 minutes on 2 cores. Run from the repository root; needs
# data/scientific/minilm-teacher.bin (tools/reproduce-model.sh makes it).
set -euo pipefail
cargo build --release --bin train --bin tune --bin eval
mkdir -p target/sampled
teacher=(--teacher data/scientific/minilm-teacher.bin)
for arm in logq uniform logq-1024; do
  extra=(--negatives 256)
  [ "$arm" = uniform ] && extra=(--negatives 256 --no-logq)
  [ "$arm" = logq-1024 ] && extra=(--negatives 1024)
  ./target/release/train --id-table int8 "${teacher[@]}" --no-manifest "${extra[@]}" \
    --out "target/sampled/$arm.bin" 2> "target/sampled/$arm.log"
  grep -E 'epoch|best' "target/sampled/$arm.log" | tail -3
  ./target/release/tune --model "target/sampled/$arm.bin" --data data/scientific --write > /dev/null
done
./target/release/eval --model models/shelfrank-scientific.bin --data data/scientific \
  --ablation sampled-logq=target/sampled/logq.bin --ablation sampled-uniform=target/sampled/uniform.bin \
  --ablation sampled-1024=target/sampled/logq-1024.bin \
  --json > target/sampled/eval.json
node -e '
const e = require("./target/sampled/eval.json");
const row = (name, r) => console.log(`${name} | test N@10 ${r.test["ndcg@10"].toFixed(4)} | R@10 ${r.test["recall@10"].toFixed(4)} | valid N@10 ${r.valid["ndcg@10"].toFixed(4)}`);
row("full softmax (shipped)", e);
for (const [name, r] of Object.entries(e.baselines)) row(name, r);'
