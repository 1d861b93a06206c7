#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/shuffle: ShuffleNet's channel shuffle (a rank-5 view, a transpose
of two of its axes, a view back) between two convolutions, exported by both of PyTorch's
exporters, with Zennit 1.0's relevance in float64 as the reference, for `tests/onnx_layouts.rs`.

  shuffle-script.onnx, shuffle-dynamo.onnx   Conv2d(3, 6, 3) -> ReLU -> channel shuffle (3
                                             groups) -> Conv2d(6, 4, 3) -> ReLU -> Flatten ->
                                             Linear(64, 5), exported with a batch of 3
  shuffle.safetensors                        `input` [3, 3, 8, 8], PyTorch's `output`, and
                                             Zennit's relevance `epsilon` (Epsilon(1e-6) on
                                             every layer) and `epsilon-plus` (ZPlus on the
                                             convolutions, Epsilon(1e-6) on the dense layer)
                                             for the targets `targets`, computed in
                                             float64 (all stored as float32)

Usage: python tools/onnx-reference/shuffle.py (torch, onnx, onnxscript, safetensors, zennit 1.0)
"""
import pathlib

import torch
from safetensors.torch import save_file
from zennit.composites import LayerMapComposite
from zennit.rules import Epsilon, ZPlus, Pass
from zennit.types import Convolution, Linear, Activation

import zennit_common

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "shuffle"


class ChannelShuffle(torch.nn.Module):
    """torchvision's `channel_shuffle`."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(n, -1, h, w)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), ChannelShuffle(3), torch.nn.Conv2d(6, 4, 3),
        torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5)).eval()


def relevance(net, x, targets, conv_rule):
    composite = LayerMapComposite([(Activation, Pass()), (Convolution, conv_rule),
                                   (Linear, Epsilon(1e-6))])
    return zennit_common.relevance(net, x, targets, composite)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    zennit_common.export_both(net, x, OUT, "shuffle")
    targets = torch.tensor([0, 2, 4])
    net64, x64 = model().double(), x.double()
    tensors = {"input": x, "output": out, "targets": targets,
               "epsilon": relevance(net64, x64, targets, Epsilon(1e-6)),
               "epsilon-plus": relevance(net64, x64, targets, ZPlus())}
    # Computed in float64, stored as float32 (what the test reads).
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(OUT / "shuffle.safetensors"))
    print(f"targets {targets.tolist()}: {OUT}")


if __name__ == "__main__":
    main()
