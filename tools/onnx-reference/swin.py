#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/swin: a tiny torchvision `SwinTransformer` (patch 2, embed dim 8,
two stages of two blocks, 2 heads, 2×2 windows shifted by 1, 5 classes; random weights, seed 0)
on 16×16 images, exported by the dynamo exporter with a batch of 2 — the operators of Swin as
exported: window partitions and their reverse through rank-6 views and permutes with the
batch folded into the windows (`[N·W, T, C]`), the relative position bias added to the
scores (a constant `[1, H, T, T]`), the shifted windows' mask built from constants
(`ScatterND`, `Slice`, `Not`, `Where`) and added through a rank-5 view, the roll, the patch
merging's strided slices (`x[..., 0::2, 0::2, :]`), layer norms over channels last — for
`tests/onnx_layouts.rs`. The reference is PyTorch in float64: the logits and each sample's
input gradient of its target logit (every new operator routes values, so the gradient
checks each one's forward and backward).

  swin-dynamo.onnx (+ .data)   the export (weights in external data, as that exporter writes)
  swin.safetensors             `input` [2, 3, 16, 16], `output` (float64 logits), `targets`,
                               `gradient` (float64, stored as float32)

Usage: python tools/onnx-reference/swin.py (torch, torchvision, onnx, onnxscript, safetensors)
"""
import pathlib

import torch
from safetensors.torch import save_file
from torchvision.models.swin_transformer import SwinTransformer

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "swin"


def model():
    torch.manual_seed(0)
    net = SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                          window_size=[2, 2], num_classes=5)
    with torch.no_grad():  # the head starts at zero in torchvision; any weights will do
        net.head.weight.normal_(0, 0.5)
    return net.eval()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(net, (x,), str(OUT / "swin-dynamo.onnx"), dynamo=True, external_data=True,
                      input_names=["input"], output_names=["logits"])
    net64, x64 = model().double(), x.double().requires_grad_(True)
    out = net64(x64)
    targets = out.argmax(1)
    (gradient,) = torch.autograd.grad(out[torch.arange(2), targets].sum(), x64)
    tensors = {"input": x, "output": out.detach(), "targets": targets, "gradient": gradient}
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(OUT / "swin.safetensors"))
    print(f"targets {targets.tolist()}: {OUT}")


if __name__ == "__main__":
    main()
