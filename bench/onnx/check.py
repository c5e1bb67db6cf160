#!/usr/bin/env python3
"""Checks an ONNX export against the Rust model's scores.

    target/bench-venv/bin/python bench/onnx/check.py target/bench/cases.json target/bench/shelfrank.onnx

CASES.json comes from `cargo run --release --example export_inputs`. Every
case is run through onnxruntime (CPU) as exported, and once more with each
text side trimmed to its own longest text (T != T2), which must not change
the scores. Prints the max |diff| per case; exits 1 if any is above the
tolerance (1e-3, absolute; the scores are standardised, O(1)).
"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-3


def feeds(case, trim=False):
    L, N, T, T2 = case["L"], case["N"], case["T"], case["T2"]
    event_tokens = np.array(case["eventTokens"], dtype=np.int64).reshape(L, T)
    event_mask = np.array(case["eventMask"], dtype=np.float32).reshape(L, T)
    candidate_tokens = np.array(case["candidateTokens"], dtype=np.int64).reshape(N, T2)
    candidate_mask = np.array(case["candidateMask"], dtype=np.float32).reshape(N, T2)
    if trim:
        # The events' texts cut to their own longest one, the candidates'
        # given 7 more padding columns: T != T2, the same scores.
        t = max(1, int(event_mask.sum(axis=1).max()))
        event_tokens, event_mask = event_tokens[:, :t], event_mask[:, :t]
        candidate_tokens = np.pad(candidate_tokens, ((0, 0), (0, 7)))
        candidate_mask = np.pad(candidate_mask, ((0, 0), (0, 7)))
    return {
        "event_rows": np.array(case["eventRows"], dtype=np.int64),
        "event_kinds": np.array(case["eventKinds"], dtype=np.int64),
        "event_tokens": np.ascontiguousarray(event_tokens),
        "event_mask": np.ascontiguousarray(event_mask),
        "candidate_rows": np.array(case["candidateRows"], dtype=np.int64),
        "candidate_tokens": np.ascontiguousarray(candidate_tokens),
        "candidate_mask": np.ascontiguousarray(candidate_mask),
        "affinity_weights": np.array(case["affinityWeights"], dtype=np.float32),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases")
    parser.add_argument("model", nargs="+", help="one or more .onnx files")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)
    doc = json.load(open(args.cases))
    worst_overall = 0.0
    for path in args.model:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        print(f"{path} (onnxruntime {ort.__version__}, CPU)")
        for case in doc["cases"]:
            expected = np.array(case["expectedScores"], dtype=np.float32)
            diffs = []
            for trim in (False, True):
                inputs = feeds(case, trim)
                (scores,) = session.run(["scores"], inputs)
                if scores.shape != expected.shape or not np.all(np.isfinite(scores)):
                    print(f"  {case['name']}: bad output shape {scores.shape} or non-finite scores")
                    return 1
                diffs.append(float(np.max(np.abs(scores - expected))))
            order_same = bool(
                np.array_equal(np.argsort(-scores, kind="stable"), np.argsort(-expected, kind="stable"))
            )
            worst_overall = max(worst_overall, *diffs)
            print(
                f"  {case['name']:<10} L={case['L']:<3} N={case['N']:<4} T={case['T']:<3} "
                f"max|diff| {diffs[0]:.2e} (texts as T={inputs['event_tokens'].shape[1]}, "
                f"T2={inputs['candidate_tokens'].shape[1]}: {diffs[1]:.2e})  same order: {order_same}"
            )
    ok = worst_overall <= args.tolerance
    print(f"max |diff| over all cases: {worst_overall:.3e} (tolerance {args.tolerance:g}): {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
