#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/swin (and maxvit, below): a tiny torchvision `SwinTransformer` (patch 2, embed dim 8,
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

tests/fixtures/onnx/maxvit: a tiny torchvision `MaxVit` (32×32 images, stem 8 channels, one block
of 8 channels, partition 2, head dim 4, 5 classes; seed 0), the same way — its attention is
`Einsum` (`B G H I D, B G H J D -> B G H I J` and back) on rank-5 values with the relative
position bias added, its block and grid partitions rank-6 permutes.

  maxvit-dynamo.onnx (+ .data), maxvit.safetensors   as above, `input` [2, 3, 32, 32]

tests/fixtures/onnx/swin-v2: the Swin above with Swin v2's blocks (cosine attention: q and k
L2-normalized, a per-head logit scale, the relative position bias from an MLP on a constant
table; patch merging v2) and 3×3 windows, so that its 8×8 and 4×4 maps are padded with zeros.

  swin-v2-dynamo.onnx (+ .data), swin-v2.safetensors   as above, `input` [2, 3, 16, 16]

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


def maxvit():
    from torchvision.models.maxvit import MaxVit
    torch.manual_seed(0)
    return MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8],
                  block_layers=[1], head_dim=4, stochastic_depth_prob=0.0, num_classes=5).eval()


def swin_v2():
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformerBlockV2
    torch.manual_seed(0)
    net = SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                          window_size=[3, 3], num_classes=5, block=SwinTransformerBlockV2,
                          downsample_layer=PatchMergingV2)
    with torch.no_grad():
        net.head.weight.normal_(0, 0.5)
    return net.eval()


def write(build, stem, size):
    out_dir = OUT.parent / stem
    out_dir.mkdir(parents=True, exist_ok=True)
    net = build()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(net, (x,), str(out_dir / f"{stem}-dynamo.onnx"), dynamo=True,
                      external_data=True, input_names=["input"], output_names=["logits"])
    net64, x64 = build().double(), x.double().requires_grad_(True)
    out = net64(x64)
    targets = out.argmax(1)
    (gradient,) = torch.autograd.grad(out[torch.arange(2), targets].sum(), x64)
    tensors = {"input": x, "output": out.detach(), "targets": targets, "gradient": gradient}
    save_file({k: v.float().contiguous() for k, v in tensors.items()},
              str(out_dir / f"{stem}.safetensors"))
    print(f"targets {targets.tolist()}: {out_dir}")


def main():
    write(model, "swin", 16)
    write(maxvit, "maxvit", 32)
    write(swin_v2, "swin-v2", 16)


if __name__ == "__main__":
    main()
