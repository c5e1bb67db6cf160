#!/usr/bin/env bash
# Chooses the any-catalog model's history-affinity weight on validation
# only, on a catalog the model has not seen: the category-split any model
# (trained with 10% of Scientific's items held out by whole categories,
# `target/models/any-split.bin`) scored on the validation users whose
# validation target lies in a held-out category. Prints one JSON line per
# weight; the last line is the best. Then `tune --weights W --no-repeat-prior
# --write` stores it in the shipped any model (tools/reproduce-model.sh).
# About 1 minute on 2 cores. Run from the repository root:
#   bash tools/sweep-any.sh [MODEL]   (default target/models/any-split.bin)
set -euo pipefail
cargo build --release --bin eval
model=${1:-target/models/any-split.bin}
best=""
for w in 0.75 1.5 3 5 8 12 20 40; do
  line=$(./target/release/eval --model "$model" --data data/scientific --valid-only --affinity-weight "$w" |
    node -pe 'const j = JSON.parse(require("fs").readFileSync(0)); JSON.stringify({ weight: j.affinityWeight, all: j.valid["ndcg@10"], heldOutTargets: j.heldOutTargets.valid["ndcg@10"], users: j.heldOutTargets.valid.users })')
  echo "$line"
  best=$(node -e '
    const score = (l) => JSON.parse(l).heldOutTargets;
    const [a, b] = process.argv.slice(1);
    console.log(a && score(a) >= score(b) ? a : b);' "$best" "$line")
done
echo "best: $best"
