#!/usr/bin/env bash
# Does the transformer learn from event kinds? On REES46 (a real typed log,
# ../shared/data/typed-events/, written by tools/typed-logs.mjs), models
# trained with the log's kinds against models shown random kinds (as
# one-kind data is), three seeds each; each tuned on validation (affinity
# weight and decay, the repeat prior per kind), then `eval` on test: NDCG@10
# by the kind of the test event, paired bootstrap intervals over users; and
# the logged-kinds model with one repeat-prior row shared by every kind.
# About 15 minutes on 2 cores. Run from the repository root.
set -euo pipefail
cargo build --release --bin train --bin tune --bin eval
[ -f target/typed/rees46-text/events.csv ] || node tools/typed-logs.mjs
rees=(--events target/typed/rees46-text/events.csv --catalog target/typed/rees46-text/catalog.csv)
mkdir -p target/kinds
for seed in 7 8 9; do
  for arm in logged random; do
    extra=()
    [ "$arm" = random ] && extra=(--random-kinds)
    ./target/release/train --id-table int8 "${rees[@]}" --seed "$seed" --minutes 4 --no-manifest "${extra[@]}" --out "target/kinds/rees46-s$seed-$arm.bin" 2> "target/kinds/rees46-s$seed-$arm.log" &
  done
  wait
  for arm in logged random; do
    ./target/release/tune --model "target/kinds/rees46-s$seed-$arm.bin" "${rees[@]}" --weights 0.75,1.5,3,5,8 --decays 0.5,0.7,0.9 --write > /dev/null
  done
  # The logged-kinds model with one repeat-prior row for every kind, at the weight and decay tune chose.
  cp "target/kinds/rees46-s$seed-logged.bin" "target/kinds/rees46-s$seed-shared.bin"
  chosen=$(./target/release/eval --model "target/kinds/rees46-s$seed-logged.bin" "${rees[@]}" --valid-only)
  ./target/release/tune --model "target/kinds/rees46-s$seed-shared.bin" "${rees[@]}" --shared-repeat-prior --write \
    --weights "$(node -p "JSON.parse(process.argv[1]).affinityWeight" "$chosen")" --decays "$(node -p "JSON.parse(process.argv[1]).affinityDecay" "$chosen")" > /dev/null
  ./target/release/eval --model "target/kinds/rees46-s$seed-logged.bin" "${rees[@]}" \
    --ablation "random-kinds=target/kinds/rees46-s$seed-random.bin" --ablation "shared-prior=target/kinds/rees46-s$seed-shared.bin" \
    --json > "target/kinds/rees46-s$seed-eval.json"
done
node -e '
for (const seed of [7, 8, 9]) {
  const e = require(`./target/kinds/rees46-s${seed}-eval.json`);
  for (const [kind, group] of Object.entries(e.byTargetKind)) {
    const s = group.scorers, f = (i) => `${i.value.toFixed(4)} [${i.low.toFixed(4)}, ${i.high.toFixed(4)}]`;
    console.log(`seed ${seed} | next ${kind} (${group.users}) | logged ${f(s.shelfrank["ndcg@10"])} | random ${f(s["random-kinds"]["ndcg@10"])} | random minus logged ${f(s["random-kinds"].minusShelfrank)} | shared prior minus per-kind ${f(s["shared-prior"].minusShelfrank)} | co-occurrence ${f(s.cooccurrence["ndcg@10"])}`);
  }
}'
