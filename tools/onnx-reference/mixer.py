#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/mixer: an MLP-Mixer block (timm's `MixerBlock` at toy size) whose
token-mixing MLP applies dense layers across the tokens after a transpose, exported by both of
PyTorch's exporters, with Zennit 1.0's relevance in float64 as the reference, for
`tests/onnx_layouts.rs` (the issue's Mixer explosion: timm's `mixer_b16_224` from dynamo).

  mixer-script.onnx, mixer-dynamo.onnx   Conv2d(3, 8, 4, stride 4) patch embedding -> 16 tokens
                                         of width 8 -> [token mixing: LayerNorm, transpose,
                                         Linear(16, 12), GELU, Linear(12, 16), transpose back,
                                         + residual] -> [channel mixing: LayerNorm,
                                         Linear(8, 16), GELU, Linear(16, 8), + residual] ->
                                         LayerNorm -> mean over tokens -> Linear(8, 5),
                                         exported with a batch of 3
  mixer.safetensors                      `input` [3, 3, 16, 16], PyTorch's `output`, `targets`
                                         and Zennit's relevance `epsilon` (Epsilon(1e-6) on
                                         every conv and dense layer, Norm on the
                                         residual sums and the token mean, the activations
                                         and layer norms passed) in float64, stored as
                                         float32; `epsilon-f32` the same in float32 (the
                                         tolerance is 4 × its distance to float64)

Usage: python tools/onnx-reference/mixer.py (torch, onnx, onnxscript, safetensors, zennit 1.0)
"""
import pathlib

import torch
from safetensors.torch import save_file
from zennit.composites import LayerMapComposite
from zennit.layer import Sum
from zennit.rules import Epsilon, Norm, Pass
from zennit.types import Convolution, Linear, Activation

import zennit_common

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "mixer"


class Mlp(torch.nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = (torch.nn.Linear(width, hidden), torch.nn.GELU(),
                                        torch.nn.Linear(hidden, width))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Mixer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.norm1, self.tokens = torch.nn.LayerNorm(8), Mlp(16, 12)
        self.norm2, self.channels = torch.nn.LayerNorm(8), Mlp(8, 16)
        self.norm, self.head = torch.nn.LayerNorm(8), torch.nn.Linear(8, 5)
        # Random affine layer norms, so their weights and biases matter.
        for norm in (self.norm1, self.norm2, self.norm):
            torch.nn.init.uniform_(norm.weight, 0.5, 1.5)
            torch.nn.init.uniform_(norm.bias, -0.2, 0.2)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)  # [N, T, D]
        x = x + self.tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.channels(self.norm2(x))
        return self.head(self.norm(x).mean(dim=1))


class TokenMean(torch.nn.Module):
    """The mean over tokens as a module, so a rule can be attached to it."""

    def forward(self, x):
        return x.mean(dim=1)


class ReferenceMixer(Mixer):
    """The same model (the same weights: its extra modules hold none) with its residual sums
    and token mean as modules, for Zennit's `Norm` rule — what lrp-grad applies to sums and
    means by default. (Unhooked, Zennit would pass the full relevance into both branches of
    a residual sum and split a mean's evenly, by their gradients.)"""

    def __init__(self):
        super().__init__()
        self.sum1, self.sum2, self.pool = Sum(), Sum(), TokenMean()

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        mixed = self.tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        x = self.sum1(torch.stack([x, mixed], dim=-1))
        x = self.sum2(torch.stack([x, self.channels(self.norm2(x))], dim=-1))
        return self.head(self.pool(self.norm(x)))


def model(reference=False):
    torch.manual_seed(0)
    return (ReferenceMixer() if reference else Mixer()).eval()


def relevance(net, x, targets):
    composite = LayerMapComposite([(Activation, Pass()), (torch.nn.LayerNorm, Pass()),
                                   (Sum, Norm()), (TokenMean, Norm()),
                                   (Convolution, Epsilon(1e-6)), (Linear, Epsilon(1e-6))])
    return zennit_common.relevance(net, x, targets, composite)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    zennit_common.export_both(net, x, OUT, "mixer")
    targets = torch.tensor([0, 2, 4])
    net64, x64 = model(reference=True).double(), x.double()
    with torch.no_grad():
        assert torch.allclose(net64(x64).float(), out, atol=1e-5), "the reference model differs"
    tensors = {"input": x, "output": out, "targets": targets,
               "epsilon": relevance(net64, x64, targets),
               # Zennit's own float32 run: how far float32 alone moves the relevance.
               "epsilon-f32": relevance(model(reference=True), x, targets)}
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(OUT / "mixer.safetensors"))
    print(f"targets {targets.tolist()}: {OUT}")


if __name__ == "__main__":
    main()
