#!/usr/bin/env python3
"""Writes the graph-model fixture with Zennit itself: a tiny ResNet (residual blocks with
Zennit's `Sum` module, a strided block with a 1x1 downsampling branch, batch norm after every
conv, max pooling, adaptive average pooling).

Under tests/fixtures/zennit/resnet-tiny/:
  weights.safetensors    the PyTorch state_dict (the Rust test builds the same graph from it)
  reference.safetensors  `input`, `output`, `relevance.<case>` (Zennit's, float32) and
                         `relevance64.<case>` (Zennit run in float64 on the same weights: the
                         float32-vs-float64 distance sets the tolerance)
  cases.json             case -> composite, targets, versions

Run it with ./graph.sh (a virtualenv with torch 2.15.0, torchvision and zennit 1.0.0 from PyPI).
CI does not need Python: the fixture is committed.
"""
import json
import pathlib

import torch
from safetensors.torch import save_file
import zennit
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
)
from zennit.layer import Sum

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "zennit" / "resnet-tiny"
LOW, HIGH = -2.5, 2.5


class Block(torch.nn.Module):
    """relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x)))))), the sum as Zennit's `Sum`."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.down_conv = torch.nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
            self.down_bn = torch.nn.BatchNorm2d(cout)
        else:
            self.down_conv = None
        self.sum = Sum()
        self.relu2 = torch.nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = x if self.down_conv is None else self.down_bn(self.down_conv(x))
        return self.relu2(self.sum(torch.stack([shortcut, out], dim=-1)))


class TinyResNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, 1, 1)
        self.stem_bn = torch.nn.BatchNorm2d(8)
        self.stem_relu = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(3, 2, 1)
        self.block1 = Block(8, 8, 1)
        self.block2 = Block(8, 16, 2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.stem_relu(self.stem_bn(self.stem(x))))
        x = self.block2(self.block1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def model():
    torch.manual_seed(0)
    net = TinyResNet()
    # Non-trivial batch-norm statistics, as after training.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


COMPOSITES = {
    "epsilon-plus": lambda c: EpsilonPlus(canonizers=c),
    "epsilon-plus-flat": lambda c: EpsilonPlusFlat(canonizers=c),
    "epsilon-gamma-box": lambda c: EpsilonGammaBox(low=LOW, high=HIGH, canonizers=c),
    "epsilon-alpha2-beta1": lambda c: EpsilonAlpha2Beta1(canonizers=c),
    "epsilon-alpha2-beta1-flat": lambda c: EpsilonAlpha2Beta1Flat(canonizers=c),
}


def relevance(net, x, name, targets):
    composite = COMPOSITES[name]([SequentialMergeBatchNorm()])
    one_hot = torch.eye(5, dtype=x.dtype)[targets]
    with Gradient(model=net, composite=composite) as attributor:
        output, rel = attributor(x, one_hot)
    return output, rel


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    net = model()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        output = net(x)
    targets = output.argmax(1).tolist()
    tensors = {"input": x.contiguous(), "output": output.contiguous()}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, OUT / "weights.safetensors")
    # A fresh model for every case: Zennit 1.0's SequentialMergeBatchNorm leaves the merged
    # weights in the model after the attribution (seen here: a second case on the same model
    # merged the batch norms twice).
    for name in COMPOSITES:
        _, rel = relevance(model(), x.clone(), name, targets)
        tensors[f"relevance.{name}"] = rel.detach().float().contiguous()
        _, rel64 = relevance(model().double(), x.clone().double(), name, targets)
        tensors[f"relevance64.{name}"] = rel64.detach().float().contiguous()
    save_file(tensors, OUT / "reference.safetensors")
    meta = {
        "model": "TinyResNet of tools/zennit-reference/graph.py",
        "zennit": zennit.__version__ if hasattr(zennit, "__version__") else "1.0.0",
        "torch": torch.__version__,
        "canonizer": "SequentialMergeBatchNorm",
        "output_relevance": "one-hot",
        "bounds": [LOW, HIGH],
        "targets": targets,
        "cases": list(COMPOSITES),
    }
    (OUT / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
