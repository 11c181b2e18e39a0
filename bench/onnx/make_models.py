#!/usr/bin/env python3
"""Writes the one-node ONNX Runtime baseline models of issue 5's workloads W1-W7 (and X1-X4) into bench/onnx/models/.

Each model is a single com.microsoft contrib operator with fixed float32 shapes (batch 1, token-major [B, S, H*d]
inputs, the same layout FastKernelAttention.ForwardMultiHead takes), no weights, so the files are a few hundred bytes.
Run with Debian's python3-onnx (apt-get install -y python3-onnx):

    /usr/bin/python3 bench/onnx/make_models.py

The output is deterministic; rerun it and `git diff --stat bench/onnx/models` shows nothing.
"""
import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]


def tensor(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def save(name, node, inputs, outputs):
    graph = helper.make_graph([node], name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=OPSETS, producer_name="FastKernelAttention bench")
    model.ir_version = 8
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"{path}: {node.op_type} {[(a.name, helper.get_attribute_value(a)) for a in node.attribute]}")


def mha(name, heads, lq, lk, d, dv=None, causal=False, scale=None):
    """com.microsoft.MultiHeadAttention: query [1, Lq, H*d], key [1, Lk, H*d], value [1, Lk, H*dv] -> output [1, Lq, H*dv].
    unidirectional=1 is the causal (lower-triangular) mask; scale defaults to 1/sqrt(d) in the kernel when omitted."""
    dv = d if dv is None else dv
    attrs = {"num_heads": heads}
    if causal:
        attrs["unidirectional"] = 1
    if scale is not None:
        attrs["scale"] = float(scale)
    node = helper.make_node("MultiHeadAttention", ["query", "key", "value"], ["output"], domain="com.microsoft", **attrs)
    save(name, node,
         [tensor("query", [1, lq, heads * d]), tensor("key", [1, lk, heads * d]), tensor("value", [1, lk, heads * dv])],
         [tensor("output", [1, lq, heads * dv])])


def mha_bnsh_kv(name, heads, lk, d):
    """Decode with the K/V cache already head-major: query [1, 1, H*d], key/value [1, H, Lk, d] (BNSH), so the kernel
    skips the per-call transpose of K and V that the [1, Lk, H*d] form costs."""
    node = helper.make_node("MultiHeadAttention", ["query", "key", "value"], ["output"], domain="com.microsoft", num_heads=heads)
    save(name, node,
         [tensor("query", [1, 1, heads * d]), tensor("key", [1, heads, lk, d]), tensor("value", [1, heads, lk, d])],
         [tensor("output", [1, 1, heads * d])])


def gqa(name, heads, kv_heads, length, d):
    """com.microsoft.GroupQueryAttention, prompt phase without a past cache: query [1, L, H*d], key/value [1, L, Hkv*d],
    seqlens_k = [L - 1] (int32), total_sequence_length = L (int32 scalar). The CPU kernel always applies the causal mask."""
    node = helper.make_node("GroupQueryAttention",
                            ["query", "key", "value", "", "", "seqlens_k", "total_sequence_length"],
                            ["output", "present_key", "present_value"], domain="com.microsoft",
                            num_heads=heads, kv_num_heads=kv_heads)
    save(name, node,
         [tensor("query", [1, length, heads * d]), tensor("key", [1, length, kv_heads * d]),
          tensor("value", [1, length, kv_heads * d]), tensor("seqlens_k", [1], TensorProto.INT32),
          tensor("total_sequence_length", [], TensorProto.INT32)],
         [tensor("output", [1, length, heads * d]), tensor("present_key", [1, kv_heads, length, d]),
          tensor("present_value", [1, kv_heads, length, d])])


def main():
    mha("W1", heads=8, lq=1024, lk=1024, d=64)
    mha("W2", heads=8, lq=1024, lk=1024, d=64, causal=True)
    mha("W3", heads=1, lq=4096, lk=4096, d=64)
    mha("W4", heads=32, lq=1, lk=8192, d=128)
    mha_bnsh_kv("W4-bnsh", heads=32, lk=8192, d=128)
    mha("W5-d8", heads=1, lq=4096, lk=4096, d=8)
    mha("W5-d16", heads=1, lq=4096, lk=4096, d=16)
    # Gaussian kernel, bandwidth h = sqrt(d): -|q-k|^2/(2h^2) = q.k/h^2 - |k|^2/(2h^2) - |q|^2/(2h^2). The last term is
    # constant along a softmax row, so MultiHeadAttention with scale 1/h^2 = 1/d on q' = [q, 1] and k' = [k, -|k|^2/2]
    # (head size d + 1, value head size d) computes the same softmax (the bench builds q' and k').
    mha("W6-d16", heads=1, lq=4096, lk=4096, d=17, dv=16, scale=1.0 / 16)
    mha("W6-d64", heads=1, lq=4096, lk=4096, d=65, dv=64, scale=1.0 / 64)
    # W7 dense: MultiHeadAttention has no kv_num_heads, so the bench repeats each kv head H/Hkv = 4 times.
    mha("W7", heads=32, lq=1024, lk=1024, d=128)
    gqa("W7-causal", heads=32, kv_heads=8, length=1024, d=128)
    # Beyond issue 5: few queries against a long strided KV cache (speculative decoding, chunked prefill).
    mha("X1", heads=32, lq=16, lk=4096, d=128)
    mha("X2", heads=32, lq=64, lk=4096, d=128)
    # Speculative decoding: 4 and 8 draft tokens against the same cache.
    mha("X3", heads=32, lq=4, lk=4096, d=128)
    mha("X4", heads=32, lq=8, lk=4096, d=128)


if __name__ == "__main__":
    main()
