#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS each (default 600), one
# after the other, starting from the committed seeds plus the corpus kept
# from earlier runs (target/fuzz-corpus/, not committed). A crash stops the
# run; save the input under fuzz/regressions/<target>/ so `cargo test` runs it.
#   npm run fuzz                       # all targets, 10 minutes each
#   FUZZ_SECONDS=60 npm run fuzz -- rerank
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(model_file requests rerank)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
rustup toolchain list | grep -q '^nightly' || { echo "a nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 1; }
for target in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$target
  mkdir -p "$corpus" "fuzz/regressions/$target"
  echo "fuzzing $target for ${seconds}s"
  # Panics are the bugs looked for; no sanitizer is needed for safe Rust and
  # the build is far quicker without (FUZZ_SANITIZER=address to add one).
  cargo +nightly fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" "$target" "$corpus" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done
