#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/norm-head: the pattern PyTorch's dynamo exporter writes for timm
ConvNeXt's classifier head at batch 1 (`as_strided` of the pooled map): the global mean kept as
[1, C, 1, 1], flattened by `Reshape` to [-1], then a `Gather` of every index in order with an
index tensor of shape [1, C, 1, 1] — built here with onnx.helper (the exporter does not write it
for a small hand-made head), with onnxruntime's logits as the reference, for
`tests/onnx_layouts.rs`.

  norm-head.onnx          Conv(3 -> 6, 3×3) on [3, 6, 6] -> Relu -> ReduceMean over H, W (kept)
                          -> Reshape [-1] -> Gather(arange(6) as [1, 6, 1, 1]) -> Flatten ->
                          MatMul + Add (6 -> 4); batch 1
  norm-head.safetensors   `input` [1, 3, 6, 6] and onnxruntime's `output`

Usage: python tools/onnx-reference/norm_head.py (numpy, onnx, onnxruntime, safetensors)
"""
import pathlib

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "norm-head"


def model(rng):
    init = [numpy_helper.from_array(a, name) for name, a in [
        ("w", rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3),
        ("b", rng.standard_normal(6).astype(np.float32) * 0.1),
        ("axes", np.array([2, 3], dtype=np.int64)),
        ("flat", np.array([-1], dtype=np.int64)),
        ("idx", np.arange(6, dtype=np.int64).reshape(1, 6, 1, 1)),
        ("fc_w", rng.standard_normal((6, 4)).astype(np.float32) * 0.5),
        ("fc_b", rng.standard_normal(4).astype(np.float32) * 0.1)]]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ReduceMean", ["r", "axes"], ["m"], keepdims=1),
             helper.make_node("Reshape", ["m", "flat"], ["f"]),
             helper.make_node("Gather", ["f", "idx"], ["g"], axis=0),
             helper.make_node("Flatten", ["g"], ["v"], axis=1),
             helper.make_node("MatMul", ["v", "fc_w"], ["z"]),
             helper.make_node("Add", ["z", "fc_b"], ["logits"])]
    graph = helper.make_graph(
        nodes, "norm-head", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], init)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(m)
    return onnx.shape_inference.infer_shapes(m)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    m = model(rng)
    onnx.save(m, str(OUT / "norm-head.onnx"))
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    out = onnxruntime.InferenceSession(str(OUT / "norm-head.onnx")).run(None, {"input": x})[0]
    save_file({"input": x, "output": out}, str(OUT / "norm-head.safetensors"))
    print(OUT)


if __name__ == "__main__":
    main()
