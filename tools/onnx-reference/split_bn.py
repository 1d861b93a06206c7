#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/split-bn: two operators of timm's LeViT and TorchScript's fused-QKV
exports — ONNX `Split` (here `torch.split` into three equal chunks) and a batch norm over tokens
with the batch folded in (`BatchNorm1d` on `[N·T, C]`) — exported by both of PyTorch's
exporters, with Zennit 1.0's relevance in float64 as the reference, for `tests/onnx_layouts.rs`.

  split-bn-script.onnx, split-bn-dynamo.onnx   on sequences [5, 6]: Linear(6, 12) ->
                                               BatchNorm1d(12) on the tokens flattened with the
                                               batch, reshaped back -> split into three [5, 4]
                                               -> their sum -> flatten -> Linear(20, 3),
                                               exported with a batch of 3
  split-bn.safetensors                         `input` [3, 5, 6], PyTorch's `output`, `targets`
                                               and Zennit's relevance `epsilon` (Epsilon(1e-6)
                                               on both dense layers and on the batch norm, an
                                               affine map; Norm on the three-way sum) in
                                               float64, stored as float32;
                                               `epsilon-f32` the same in float32

Usage: python tools/onnx-reference/split_bn.py (torch, onnx, onnxscript, safetensors, zennit 1.0)
"""
import pathlib

import torch
from safetensors.torch import save_file
from zennit.composites import LayerMapComposite
from zennit.layer import Sum
from zennit.rules import Epsilon, Norm

import zennit_common

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "split-bn"


class SplitBn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.bn, self.head = (torch.nn.Linear(6, 12), torch.nn.BatchNorm1d(12),
                                       torch.nn.Linear(20, 3))
        with torch.no_grad():  # running statistics and an affine part that matter
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.3, 0.3)
        self.sum = Sum()  # holds no weights: exported as additions (see `forward`)

    def forward(self, x, reference=False):
        y = self.fc(x)
        y = self.bn(y.flatten(0, 1)).reshape(y.shape)
        a, b, c = torch.split(y, 4, dim=-1)
        z = self.sum(torch.stack([a, b, c], dim=-1)) if reference else a + b + c
        return self.head(z.flatten(1))


class Reference(torch.nn.Module):
    """The same model with its sum as Zennit's `Sum` module, for the Norm rule."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x, reference=True)


def model():
    torch.manual_seed(0)
    return SplitBn().eval()


def relevance(net, x, targets):
    composite = LayerMapComposite([(torch.nn.Linear, Epsilon(1e-6)),
                                   (torch.nn.BatchNorm1d, Epsilon(1e-6)), (Sum, Norm())])
    return zennit_common.relevance(net, x, targets, composite)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    x = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    zennit_common.export_both(net, x, OUT, "split-bn")
    targets = torch.tensor([0, 1, 2])
    ref64, x64 = Reference(model().double()), x.double()
    with torch.no_grad():
        assert torch.allclose(ref64(x64).float(), out, atol=1e-5), "the reference model differs"
    tensors = {"input": x, "output": out, "targets": targets,
               "epsilon": relevance(ref64, x64, targets),
               # Zennit's own float32 run: how far float32 alone moves the relevance.
               "epsilon-f32": relevance(Reference(model()), x, targets)}
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(OUT / "split-bn.safetensors"))
    print(f"targets {targets.tolist()}: {OUT}")


if __name__ == "__main__":
    main()
