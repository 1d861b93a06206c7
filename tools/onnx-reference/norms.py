#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/norms: a small CNN with group norm, and one with instance norm,
each exported by both of PyTorch's ONNX exporters, for `tests/norms.rs`.

For each norm (`group`: nn.GroupNorm(2, 4); `instance`: nn.InstanceNorm2d(4, affine=True);
`group-plain`: nn.GroupNorm(2, 4, affine=False), without `1.weight`/`1.bias`):
  <norm>-script.onnx, <norm>-dynamo.onnx   Conv2d(3, 4, 3) -> norm -> ReLU -> Flatten ->
                                           Linear(144, 3), exported with a batch of 3
  <norm>.safetensors                       the state_dict (`0.*` conv, `1.weight`/`1.bias` the
                                           norm's affine parameters, random; `4.*` linear), the
                                           input `input` [3, 3, 8, 8] and PyTorch's output
Also `layer-scale`: Conv2d(3, 4, 3) -> ReLU -> `x * gamma[:, None, None]` (ConvNeXt's layer scale,
exported as a `Mul` by a `[4, 1, 1]` constant; `gamma` saved as `2.gamma`) -> Flatten ->
Linear(144, 3). The test computes the LRP reference itself in float64; this script fixes the
models, the inputs and PyTorch's forward pass.

Usage: python tools/onnx-reference/norms.py (torch, onnx, onnxscript, safetensors)
"""
import pathlib

import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "norms"

NORMS = {
    "group": lambda: torch.nn.GroupNorm(2, 4),
    "instance": lambda: torch.nn.InstanceNorm2d(4, affine=True),
    "group-plain": lambda: torch.nn.GroupNorm(2, 4, affine=False),
}


class LayerScale(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.gamma = torch.nn.Parameter(torch.linspace(-1.5, 2.0, channels))

    def forward(self, x):
        return x * self.gamma[:, None, None]


def export(name, model, x):
    with torch.no_grad():
        out = model(x)
    for exporter, dynamo in (("script", False), ("dynamo", True)):
        torch.onnx.export(model, (x,), str(OUT / f"{name}-{exporter}.onnx"), dynamo=dynamo,
                          external_data=False, input_names=["input"], output_names=["logits"])
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors.update({"input": x, "output": out})
    save_file(tensors, str(OUT / f"{name}.safetensors"))
    print(f"{name}: {OUT}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (name, make) in enumerate(NORMS.items()):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), make(), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
        if model[1].affine:
            with torch.no_grad():
                model[1].weight.uniform_(0.5, 1.5)
                model[1].bias.uniform_(-0.5, 0.5)
        export(name, model, torch.randn(3, 3, 8, 8))
    torch.manual_seed(7)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), LayerScale(4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    export("layer-scale", model, torch.randn(3, 3, 8, 8))

if __name__ == "__main__":
    main()
