#!/usr/bin/env python3
"""Writes tests/fixtures/onnx/activations: one small MLP per activation, exported by both of
PyTorch's ONNX exporters, for `tests/activations.rs`.

For each activation (ELU, Softplus, Mish, GELU with the tanh approximation):
  <name>-script.onnx, <name>-dynamo.onnx   Linear(6, 9) -> activation -> Linear(9, 4), exported
                                           with a batch of 3 (dynamo=False / dynamo=True, the
                                           weights folded into the file)
  <name>.safetensors                       the PyTorch state_dict (`0.weight`, `0.bias`,
                                           `2.weight`, `2.bias`), the input `input` [3, 6] and
                                           PyTorch's float32 output `output` [3, 4]
The test computes the LRP reference itself, with explicit float64 loops on these weights; this
script only fixes the models, the inputs and PyTorch's forward pass.

Usage: python tools/onnx-reference/activations.py (torch, onnx, onnxscript, safetensors)
"""
import pathlib

import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "onnx" / "activations"

ACTIVATIONS = {
    "elu": lambda: torch.nn.ELU(alpha=0.7),
    "softplus": lambda: torch.nn.Softplus(),
    "mish": lambda: torch.nn.Mish(),
    "gelu-tanh": lambda: torch.nn.GELU(approximate="tanh"),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (name, make) in enumerate(ACTIVATIONS.items()):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(6, 9), make(), torch.nn.Linear(9, 4)).eval()
        x = torch.randn(3, 6) * 2.0
        with torch.no_grad():
            out = model(x)
        for exporter, dynamo in (("script", False), ("dynamo", True)):
            path = OUT / f"{name}-{exporter}.onnx"
            torch.onnx.export(model, (x,), str(path), dynamo=dynamo, external_data=False,
                              input_names=["input"], output_names=["logits"])
        tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
        tensors.update({"input": x, "output": out})
        save_file(tensors, str(OUT / f"{name}.safetensors"))
        print(f"{name}: {OUT}")


if __name__ == "__main__":
    main()
