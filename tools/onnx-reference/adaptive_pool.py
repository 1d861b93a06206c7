#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/adaptive-pool: an adaptive average pool whose output size does not
divide its input — VGG's and AlexNet's at 160² — which PyTorch's dynamo exporter decomposes
into `Transpose`, `GatherND`, `Where` masks, `Gather`s, sums and a `Div` (the TorchScript
exporter refuses such a pool: "output size that are not factor of input size"), with Zennit
1.0's relevance in float64 as the reference, for `tests/onnx_layouts.rs`.

  adaptive-pool-dynamo.onnx (+ .data) on images [3, 10, 10]: Conv(3, 4, 3, padding 1) -> ReLU ->
                                      MaxPool(2) -> AdaptiveAvgPool2d((3, 4)) of the 5×5 map
                                      (uneven, overlapping windows) -> flatten -> Linear(48, 5);
                                      a batch of 2; the dynamo export keeps its weights in
                                      external data (`adaptive-pool-dynamo.onnx.data`), as
                                      that exporter does by default
  adaptive-pool.safetensors           `input` [2, 3, 10, 10], PyTorch's `output`, `targets` and
                                      Zennit's relevance `epsilon` (Epsilon(1e-6) on the conv,
                                      the pool and the dense layer) in float64, stored as
                                      float32; `epsilon-f32` the same in float32

Usage: python tools/onnx-reference/adaptive_pool.py (torch, onnx, onnxscript, safetensors, zennit 1.0)
"""
import pathlib

import torch
from safetensors.torch import save_file
from zennit.composites import LayerMapComposite
from zennit.rules import Epsilon

import zennit_common

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "adaptive-pool"


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.AdaptiveAvgPool2d((3, 4)), torch.nn.Flatten(), torch.nn.Linear(48, 5)).eval()


def relevance(net, x, targets):
    composite = LayerMapComposite([(torch.nn.Conv2d, Epsilon(1e-6)),
                                   (torch.nn.AdaptiveAvgPool2d, Epsilon(1e-6)),
                                   (torch.nn.Linear, Epsilon(1e-6))])
    return zennit_common.relevance(net, x, targets, composite)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    torch.onnx.export(net, (x,), str(OUT / "adaptive-pool-dynamo.onnx"), dynamo=True,
                      external_data=True, input_names=["input"], output_names=["logits"])
    targets = torch.tensor([0, 3])
    net64, x64 = model().double(), x.double()
    tensors = {"input": x, "output": out, "targets": targets,
               "epsilon": relevance(net64, x64, targets),
               # Zennit's own float32 run: how far float32 alone moves the relevance.
               "epsilon-f32": relevance(model(), x, targets)}
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(OUT / "adaptive-pool.safetensors"))
    print(f"targets {targets.tolist()}: {OUT}")


if __name__ == "__main__":
    main()
