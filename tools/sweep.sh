#!/usr/bin/env bash
# Chooses the shipped model's scoring settings on validation only: the
# history-affinity weight and decay over the grid below, with the repeat
# prior fitted on the training sequences for each (see src/bin/tune.rs).
# Prints one JSON line per setting; writes the best into the model file.
# About 5 minutes on 2 cores. Run from the repository root:
#   bash tools/sweep.sh [MODEL_FILE]
set -euo pipefail
model="${1:-models/shelfrank-scientific.bin}"
cargo build --release --bin tune
./target/release/tune --model "$model" --data data/scientific \
  --tokenizer models/minilm-tokenizer.json \
  --weights 0.25,0.35,0.5,0.75,1,1.25,1.5 --decays 0.6,0.7,0.8,0.9 --write
