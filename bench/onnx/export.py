#!/usr/bin/env python3
"""Exports a shelfrank model file to ONNX, for benchmarking against ONNX Runtime.

    target/bench-venv/bin/python bench/onnx/export.py models/shelfrank-scientific.bin target/bench/shelfrank.onnx [--int8]

The graph scores ONE session (batch 1, no padding), like
`SessionRanker::score_explained(..).0` in src/model/network.rs:

  inputs   event_rows        int64   [L]      ID-embedding rows of the events (0: search / unknown)
           event_kinds       int64   [L]      EventKind::index of each event
           event_tokens      int64   [L, T]   token-embedding rows of each event's text
           event_mask        float32 [L, T]   1 for a real token, 0 for padding
           candidate_rows    int64   [N]
           candidate_tokens  int64   [N, T2]
           candidate_mask    float32 [N, T2]
           affinity_weights  float32 [L]      SessionInput::affinity_weights(config.affinityDecay)
  output   scores            float32 [N]      standardise(transformer) + affinityWeight * standardise(affinity)

Events are oldest first; the last event is the newest (position 0).

The weights are the model file's, dequantised to float32 exactly as
src/model/file.rs does (`q as f32 * scale`, one scale per row). With
`--int8` the int8 tables are kept as int8 initializers with a per-row
DequantizeLinear in front (the same product, so the same float32 values;
a smaller .onnx, closer to the size of our own file).

The layer structure follows burn-nn 0.22.1's TransformerEncoder with
norm_first = true: per layer
    x = x + MHA(LayerNorm_2(x), causal mask)     (masked scores set to -1e4)
    x = x + Linear_outer(GELU_erf(Linear_inner(LayerNorm_1(x))))
then the model's final LayerNorm. Only the newest event's state is
scored, so the last layer computes that row alone (keys and values over
all events), as SessionRanker::encode_last does. Note the names: burn's norm_2 is the one
*before* attention and norm_1 the one before the feed-forward block.
Burn's Linear weights are stored [d_in, d_out] (y = x W + b), so they are
used as is by MatMul.
"""

import argparse
import hashlib
import json
import math
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAGIC = b"SHLFRANK"
FORMAT_VERSION = 1
PREFIX = 8 + 4 + 32
OPSET = 17
# Burn's MultiHeadAttention fills masked scores with this (min_float).
MASK_FILL = -1.0e4
LAYER_NORM_EPS = 1e-5
DEFAULT_AFFINITY_WEIGHT = 0.75


class ModelFileError(Exception):
    pass


def read_model_file(path):
    """Parses and verifies a model file. Returns (header, {name: (f32 array, int8 or None, scales or None)})."""
    data = open(path, "rb").read()
    if len(data) < PREFIX + 4 or data[:8] != MAGIC:
        raise ModelFileError(f"{path}: not a shelfrank model file (bad magic)")
    (version,) = struct.unpack("<I", data[8:12])
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version}, this exporter reads version {FORMAT_VERSION}")
    payload = data[PREFIX:]
    if hashlib.sha256(payload).digest() != data[12:PREFIX]:
        raise ModelFileError(f"{path}: sha256 of the payload does not match (corrupted or truncated)")
    (header_len,) = struct.unpack("<I", payload[:4])
    if 4 + header_len > len(payload):
        raise ModelFileError(f"{path}: header length out of range")
    header = json.loads(payload[4 : 4 + header_len].decode("utf-8"))
    offset = 4 + header_len
    tensors = {}
    for record in header["tensors"]:
        name, shape, stored, size = record["name"], record["shape"], record["storedAs"], record["bytes"]
        chunk = payload[offset : offset + size]
        if len(chunk) != size:
            raise ModelFileError(f"{path}: tensor {name!r} runs past the end of the file")
        offset += size
        count = int(np.prod(shape)) if shape else 1
        if stored == "f32":
            if size != count * 4:
                raise ModelFileError(f"{path}: tensor {name!r} has the wrong size")
            values = np.frombuffer(chunk, dtype="<f4").astype(np.float32).reshape(shape)
            tensors[name] = (values, None, None)
        elif stored in ("i8", "i8f16"):
            width = max(shape[-1] if shape else 1, 1)
            rows = count // width
            # Row scales: f32 ("i8") or f16 ("i8f16").
            scale_type, scale_bytes = ("<f4", 4) if stored == "i8" else ("<f2", 2)
            if size != rows * scale_bytes + count:
                raise ModelFileError(f"{path}: tensor {name!r} has the wrong size")
            scales = np.frombuffer(chunk[: rows * scale_bytes], dtype=scale_type).astype(np.float32)
            q = np.frombuffer(chunk[rows * scale_bytes :], dtype=np.int8).reshape(rows, width)
            # value = q as f32 * scale, in float32 (as file.rs does).
            values = (q.astype(np.float32) * scales[:, None]).astype(np.float32).reshape(shape)
            tensors[name] = (values, q.reshape(shape), scales)
        else:
            raise ModelFileError(f"{path}: tensor {name!r} stored as unknown {stored!r}")
    if offset != len(payload):
        raise ModelFileError(f"{path}: trailing bytes after the last tensor")
    return header, tensors


class Graph:
    """A small builder over onnx.helper: named nodes, constants, initializers."""

    def __init__(self, tensors, int8):
        self.nodes = []
        self.initializers = []
        self.tensors = tensors
        self.int8 = int8
        self.counter = 0
        self.consts = {}

    def fresh(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const(self, value, dtype):
        key = (repr(value), np.dtype(dtype).str)
        if key not in self.consts:
            name = self.fresh("const")
            self.initializers.append(numpy_helper.from_array(np.array(value, dtype=dtype), name))
            self.consts[key] = name
        return self.consts[key]

    def weight(self, name):
        """A model tensor as a float32 graph value (dequantised in the graph under --int8)."""
        values, q, scales = self.tensors[name]
        if self.int8 and q is not None:
            q_name, s_name = name + ".int8", name + ".scale"
            self.initializers.append(numpy_helper.from_array(q, q_name))
            self.initializers.append(numpy_helper.from_array(scales, s_name))
            # Per-row scale: rows are every axis but the last (all shapes here are 2-D).
            assert q.ndim == 2, name
            out = name
            self.nodes.append(helper.make_node("DequantizeLinear", [q_name, s_name], [out], name=name + ".dequantize", axis=0))
            return out
        self.initializers.append(numpy_helper.from_array(values, name))
        return name

    # -- layers -------------------------------------------------------------

    def linear(self, x, prefix):
        y = self.op("MatMul", [x, self.weight(prefix + ".weight")], prefix + ".matmul")
        return self.op("Add", [y, self.weight(prefix + ".bias")], prefix + ".out")

    def layer_norm(self, x, prefix):
        return self.op(
            "LayerNormalization",
            [x, self.weight(prefix + ".gamma"), self.weight(prefix + ".beta")],
            prefix + ".out",
            axis=-1,
            epsilon=LAYER_NORM_EPS,
        )

    def gelu(self, x):
        # Exact GELU, as burn's Gelu::new(): 0.5 * x * (1 + erf(x / sqrt(2))).
        inner = self.op("Div", [x, self.const(math.sqrt(2.0), np.float32)])
        inner = self.op("Erf", [inner])
        inner = self.op("Add", [inner, self.const(1.0, np.float32)])
        y = self.op("Mul", [x, inner])
        return self.op("Mul", [y, self.const(0.5, np.float32)], "gelu")

    def unit(self, x):
        """Rows scaled to unit length, the norm clamped to at least 1e-6."""
        sq = self.op("Mul", [x, x])
        norm = self.op("ReduceSum", [sq, self.const([-1], np.int64)], keepdims=1)
        norm = self.op("Sqrt", [norm])
        norm = self.op("Max", [norm, self.const(1e-6, np.float32)])
        return self.op("Div", [x, norm], "unit")

    def standardise(self, x):
        """[1, N] → mean 0, (population) std 1 along the last axis; std clamped to 1e-6."""
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        centred = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Mul", [centred, centred])], axes=[-1], keepdims=1)
        std = self.op("Max", [self.op("Sqrt", [var]), self.const(1e-6, np.float32)])
        return self.op("Div", [centred, std], "standardised")

    def text_vectors(self, tokens, mask, dim, hint):
        """Masked mean of token embeddings, then text_proj. tokens/mask [n, T] → [n, dim]."""
        embedded = self.op("Gather", [self.weight_once("tokens.weight"), tokens], hint + ".embedded", axis=0)  # [n, T, dim]
        mask3 = self.op("Unsqueeze", [mask, self.const([2], np.int64)])  # [n, T, 1]
        summed = self.op("ReduceSum", [self.op("Mul", [embedded, mask3]), self.const([1], np.int64)], keepdims=0)  # [n, dim]
        count = self.op("ReduceSum", [mask, self.const([1], np.int64)], keepdims=1)  # [n, 1]
        count = self.op("Max", [count, self.const(1.0, np.float32)])
        mean = self.op("Div", [summed, count], hint + ".mean")
        return self.linear_once(mean, "text_proj", hint + ".text")

    def item_vectors(self, rows, text):
        ids = self.op("Gather", [self.weight_once("item_ids.weight"), rows], "item_ids", axis=0)
        return self.op("Add", [ids, text], "item_vectors")

    # Shared weights are added to the graph once.
    def weight_once(self, name):
        cache = self.__dict__.setdefault("_weights", {})
        if name not in cache:
            cache[name] = self.weight(name)
        return cache[name]

    def linear_once(self, x, prefix, hint):
        y = self.op("MatMul", [x, self.weight_once(prefix + ".weight")], hint + ".matmul")
        return self.op("Add", [y, self.weight_once(prefix + ".bias")], hint)


def build(header, tensors, int8=False):
    config = header["config"]
    dim, heads, layers = config["dim"], config["heads"], config["layers"]
    d_k = dim // heads
    affinity_weight = float(config.get("affinityWeight", DEFAULT_AFFINITY_WEIGHT))
    g = Graph(tensors, int8)

    inputs = [
        helper.make_tensor_value_info("event_rows", TensorProto.INT64, ["L"]),
        helper.make_tensor_value_info("event_kinds", TensorProto.INT64, ["L"]),
        helper.make_tensor_value_info("event_tokens", TensorProto.INT64, ["L", "T"]),
        helper.make_tensor_value_info("event_mask", TensorProto.FLOAT, ["L", "T"]),
        helper.make_tensor_value_info("candidate_rows", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("candidate_tokens", TensorProto.INT64, ["N", "T2"]),
        helper.make_tensor_value_info("candidate_mask", TensorProto.FLOAT, ["N", "T2"]),
        helper.make_tensor_value_info("affinity_weights", TensorProto.FLOAT, ["L"]),
    ]
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N"])]

    # Text and item vectors.
    event_text = g.text_vectors("event_tokens", "event_mask", dim, "event")  # [L, dim]
    candidate_text = g.text_vectors("candidate_tokens", "candidate_mask", dim, "candidate")  # [N, dim]
    event_vectors = g.item_vectors("event_rows", event_text)  # [L, dim]
    candidates = g.item_vectors("candidate_rows", candidate_text)  # [N, dim]

    # Positions count back from the newest event: [L-1, ..., 1, 0]. Built
    # as (L-1) - [0, 1, ..., L-1], not as a descending Range(L-1, -1, -1):
    # onnxruntime 1.30's GatherToSliceFusion turns Gather(table, Range(..))
    # into a Slice and reads the limit -1 as "the last row", so a descending
    # Range to -1 became an empty slice (and then a SIGFPE in FusedMatMul).
    length = g.op("Shape", ["event_rows"], "L")  # [1]
    length = g.op("Squeeze", [length, g.const([0], np.int64)], "L_scalar")  # []
    last = g.op("Sub", [length, g.const(1, np.int64)], "L_minus_1")
    steps = g.op("Range", [g.const(0, np.int64), length, g.const(1, np.int64)], "steps")  # [L]
    recency = g.op("Sub", [last, steps], "recency")  # [L]
    positions = g.op("Gather", [g.weight_once("positions.weight"), recency], "positions", axis=0)
    kinds = g.op("Gather", [g.weight_once("event_kinds.weight"), "event_kinds"], "kinds", axis=0)
    x = g.op("Mul", [event_vectors, g.const(math.sqrt(dim), np.float32)])
    x = g.op("Add", [g.op("Add", [x, kinds]), positions], "encoder_in")  # [L, dim]

    # Causal mask: query i may not see key j > i.
    rows = g.op("Unsqueeze", [steps, g.const([1], np.int64)])  # [L, 1]
    cols = g.op("Unsqueeze", [steps, g.const([0], np.int64)])  # [1, L]
    future = g.op("Greater", [cols, rows], "causal_mask")  # [L, L] bool
    split_heads = g.const([-1, heads, d_k], np.int64)
    merge_heads = g.const([-1, dim], np.int64)
    scale = g.const(math.sqrt(d_k), np.float32)
    fill = g.const(MASK_FILL, np.float32)

    def newest(t):
        return g.op("Slice", [t, g.const([-1], np.int64), g.const([2**62], np.int64), g.const([0], np.int64)])  # [1, ...]

    for layer in range(layers):
        p = f"encoder.layers.{layer}"
        # Scoring reads only the newest event's state, so the last layer
        # runs its query, residual, feed-forward and norm for that row
        # alone (its keys and values still cover every event), as
        # SessionRanker::encode_last does: the same numbers, less work.
        last_layer = layer == layers - 1
        h = g.layer_norm(x, p + ".norm_2")

        def project(name, source):
            y = g.linear(source, f"{p}.mha.{name}")  # [rows, dim]
            y = g.op("Reshape", [y, split_heads])  # [rows, H, d_k]
            return g.op("Transpose", [y], f"{p}.{name}_heads", perm=[1, 0, 2])  # [H, rows, d_k]

        q = project("query", newest(h) if last_layer else h)
        k, v = project("key", h), project("value", h)
        kt = g.op("Transpose", [k], perm=[0, 2, 1])  # [H, d_k, L]
        scores = g.op("Div", [g.op("MatMul", [q, kt]), scale], f"{p}.scores")  # [H, rows, L]
        if not last_layer:  # the newest event sees every event
            scores = g.op("Where", [future, fill, scores], f"{p}.masked")
            x_rows = x
        else:
            x_rows = newest(x)
        weights = g.op("Softmax", [scores], f"{p}.attention", axis=-1)
        context = g.op("MatMul", [weights, v])  # [H, L, d_k]
        context = g.op("Transpose", [context], perm=[1, 0, 2])  # [L, H, d_k]
        context = g.op("Reshape", [context, merge_heads])  # [L, dim]
        context = g.linear(context, f"{p}.mha.output")
        x = g.op("Add", [x_rows, context], f"{p}.after_attention")

        h = g.layer_norm(x, p + ".norm_1")
        h = g.linear(h, p + ".pwff.linear_inner")
        h = g.gelu(h)
        h = g.linear(h, p + ".pwff.linear_outer")
        x = g.op("Add", [x, h], f"{p}.out")

    state = g.layer_norm(x, "norm")  # [1, dim]: the newest event's state

    # Transformer score: state · candidate item vector.
    transformer = g.op("MatMul", [state, g.op("Transpose", [candidates], perm=[1, 0])], "transformer_scores")  # [1, N]

    # History affinity: cosine of each candidate's text vector with the
    # weighted sum of the events' unit text vectors.
    weights = g.op("Unsqueeze", ["affinity_weights", g.const([1], np.int64)])  # [L, 1]
    profile = g.op("Mul", [g.unit(event_text), weights])
    profile = g.op("ReduceSum", [profile, g.const([0], np.int64)], "profile", keepdims=1)  # [1, dim]
    near = g.op(
        "MatMul", [g.unit(profile), g.op("Transpose", [g.unit(candidate_text)], perm=[1, 0])], "affinity"
    )  # [1, N]

    blended = g.op(
        "Add",
        [g.standardise(transformer), g.op("Mul", [g.standardise(near), g.const(affinity_weight, np.float32)])],
        "blended",
    )
    g.nodes.append(helper.make_node("Reshape", [blended, g.const([-1], np.int64)], ["scores"], name="scores"))

    used = {name for node in g.nodes for name in node.input}
    unused = [name for name in tensors if name not in used and name + ".int8" not in used]
    if unused:
        raise ModelFileError(f"the exporter did not use tensors {unused}; the model has a layout it does not know")

    graph = helper.make_graph(g.nodes, "shelfrank", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="shelfrank-bench-export",
        doc_string=f"shelfrank session ranker ({config['layers']} layers, dim {dim}); "
        f"affinityWeight {affinity_weight}, affinityDecay {config.get('affinityDecay')}",
    )
    # IR 8 is what opset 17 shipped with; every current runtime reads it.
    model.ir_version = 8
    for key, value in (
        ("affinityWeight", affinity_weight),
        ("affinityDecay", config.get("affinityDecay", 0.7)),
        ("maxEvents", config["maxEvents"]),
        ("maxTextTokens", config["maxTextTokens"]),
        ("tokenizerSha256", header.get("tokenizerSha256", "")),
    ):
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_file")
    parser.add_argument("out_onnx")
    parser.add_argument("--int8", action="store_true", help="keep int8 tables as int8 + DequantizeLinear")
    args = parser.parse_args(argv)
    try:
        header, tensors = read_model_file(args.model_file)
        model = build(header, tensors, int8=args.int8)
    except ModelFileError as e:
        print(f"export.py: {e}", file=sys.stderr)
        return 1
    onnx.save(model, args.out_onnx)
    size = len(model.SerializeToString())
    print(f"wrote {args.out_onnx} ({size / 1e6:.2f} MB, opset {OPSET}, {len(model.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
