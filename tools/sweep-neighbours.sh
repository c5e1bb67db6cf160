#!/usr/bin/env bash
# Chooses how items training never saw borrow an ID row (update-catalog's
# --neighbours K and --temperature T, the defaults in src/evaluation.rs's
# Neighbours) on validation only: for the cold-start model (10% random
# items held out) and the category-split model (10% of items by whole
# categories), each setting's validation NDCG@10 on the users whose
# validation target was held out. Prints one JSON line per setting; the
# last line is the setting with the best sum over the two models.
# About 1 minute on 2 cores, once bash tools/reproduce-model.sh has trained
# the two models. Run from the repository root:
#   bash tools/sweep-neighbours.sh
set -euo pipefail
cargo build --release --bin eval --bin update-catalog
teacher=data/scientific/minilm-teacher.bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
best=""
for k in 1 2 3 5 8; do
  for t in 0.05 0.1 0.2; do
    if [ "$k" = 1 ] && [ "$t" != 0.1 ]; then continue; fi # one neighbour: the temperature does nothing
    line="{\"neighbours\":$k,\"temperature\":$t"
    for m in cold-start category-split; do
      ./target/release/update-catalog --model "target/models/$m.bin" --data data/scientific --teacher "$teacher" \
        --neighbours "$k" --temperature "$t" --out "$out/$m.bin" 2>/dev/null
      figure=$(./target/release/eval --model "$out/$m.bin" --data data/scientific --valid-only |
        node -pe 'const j = JSON.parse(require("fs").readFileSync(0)); JSON.stringify({ all: j.valid["ndcg@10"], heldOutTargets: j.heldOutTargets.valid["ndcg@10"], users: j.heldOutTargets.valid.users })')
      line="$line,\"$m\":$figure"
    done
    line="$line}"
    echo "$line"
    best=$(node -e '
      const score = (l) => { const j = JSON.parse(l); return j["cold-start"].heldOutTargets + j["category-split"].heldOutTargets; };
      const [a, b] = process.argv.slice(1);
      console.log(a && score(a) >= score(b) ? a : b);' "$best" "$line")
  done
done
echo "best: $best"
