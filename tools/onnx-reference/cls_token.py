#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/cls-token: a class token prepended by `expand(N, -1, -1)` — which
PyTorch's TorchScript exporter writes as `ConstantOfShape → Mul → Equal → Where → Expand` over
constants (timm's ViT and DeiT) — and an attention-bias table looked up by constant indices
(`GatherND` of constants, LeViT's), exported by both of PyTorch's exporters, with PyTorch's
logits, for `tests/onnx_layouts.rs` (lrp-grad folds those constant subgraphs before onnx-ir
reads the model: `onnx/fold.rs`).

  cls-script.onnx, cls-dynamo.onnx   Conv2d(3, 8, 4, stride 4) on [3, 8, 8] -> 4 tokens of width
                                     8 -> class token prepended -> + positions -> + a bias per
                                     token gathered from a table by constant indices ->
                                     LayerNorm -> the class token -> Linear(8, 3); batch of 2
  cls.safetensors                    `input` [2, 3, 8, 8] and PyTorch's `output`

Usage: python tools/onnx-reference/cls_token.py (torch, onnx, onnxscript, safetensors)
"""
import pathlib

import torch
from safetensors.torch import save_file

import zennit_common

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "cls-token"


class ClassToken(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 8))
        self.pos = torch.nn.Parameter(torch.randn(1, 5, 8) * 0.1)
        self.table = torch.nn.Parameter(torch.randn(7, 8) * 0.1)
        self.register_buffer("idx", torch.tensor([[3], [0], [6], [1], [2]]))
        self.norm, self.head = torch.nn.LayerNorm(8), torch.nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = x + self.table[self.idx[:, 0]]
        return self.head(self.norm(x)[:, 0])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = ClassToken().eval()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net(x)
    zennit_common.export_both(net, x, OUT, "cls")
    save_file({"input": x.contiguous(), "output": out.contiguous()}, str(OUT / "cls.safetensors"))
    print(OUT)


if __name__ == "__main__":
    main()
