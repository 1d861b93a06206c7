#!/usr/bin/env python3
"""Writes tests/fixtures/hf/bert/model-sdpa.onnx: the committed tiny BERT checkpoint
(tests/fixtures/hf/bert, `BertForSequenceClassification`) exported by the dynamo exporter with
transformers' default attention (SDPA: the batch folded into the heads), on the committed
`ids` ([2, 7] token ids; no attention mask, token types 0) — so that `tests/hf.rs` can check
the ONNX route against the same LXT 2.1 efficient reference the checkpoint route is checked
against (reference.safetensors, written by generate.py). The export's logits are checked
against the committed ones here (1e-5).

Usage: python tools/hf-reference/bert_onnx.py (torch, transformers 4.52.4, onnx, onnxscript,
       safetensors)
"""
import pathlib

import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

FOLDER = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hf" / "bert"


def main():
    net = BertForSequenceClassification.from_pretrained(FOLDER, attn_implementation="sdpa").eval()
    reference = load_file(str(FOLDER / "reference.safetensors"))
    ids = reference["ids"].to(torch.int64)
    with torch.no_grad():
        logits = net(input_ids=ids).logits
    assert torch.allclose(logits, reference["logits"], atol=1e-5), "not the committed model"

    class Ids(torch.nn.Module):
        """The classifier on token ids alone (the mask and token types left at their defaults)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, input_ids):
            return self.net(input_ids=input_ids).logits

    torch.onnx.export(Ids(net), (ids,), str(FOLDER / "model-sdpa.onnx"), dynamo=True,
                      external_data=False, input_names=["input"], output_names=["logits"])
    print(FOLDER / "model-sdpa.onnx")


if __name__ == "__main__":
    main()
