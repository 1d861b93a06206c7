#!/usr/bin/env python3
"""The README's "Explain a PyTorch model" walk-through: a small residual CNN trained in PyTorch
on MNIST (one epoch), exported with `torch.onnx.export` (dynamo, the default), and the first
test digit of each class saved as `digits.npy` — then explained by the lrp-grad binary.

Usage (from the repository root; MNIST's four IDX files in MNIST_DIR):
    tools/onnx-reference/.venv/bin/python tools/onnx-reference/mnist_onnx.py OUT_DIR
    target/release/lrp-grad explain --model OUT_DIR/mnist-resnet.onnx --input OUT_DIR/digits.npy \\
        --output OUT_DIR/relevance.npy --composite epsilon-gamma-box --low 0 --high 1 \\
        --heatmap OUT_DIR/heatmap.png
"""
import gzip
import os
import pathlib
import sys

import numpy as np
import torch
from torch import nn


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.relu(x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        Block(16), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), Block(32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = pathlib.Path(os.environ.get("MNIST_DIR", "../shared/data/mnist"))
    images = torch.tensor(idx(data / "train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    labels = torch.tensor(idx(data / "train-labels-idx1-ubyte.gz"), dtype=torch.long)
    torch.manual_seed(0)
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step, batch in enumerate(torch.randperm(len(images)).split(128)):
        loss = nn.functional.cross_entropy(net(images[batch, None]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    test = torch.tensor(idx(data / "t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255
    test_labels = idx(data / "t10k-labels-idx1-ubyte.gz")
    with torch.no_grad():
        accuracy = (net(test[:, None]).argmax(1).numpy() == test_labels).mean()
    print(f"test accuracy {accuracy:.4f}")
    first = [int(np.flatnonzero(test_labels == k)[0]) for k in range(10)]
    digits = test[first, None].contiguous()
    np.save(out / "digits.npy", digits.numpy())
    torch.onnx.export(net, (digits,), out / "mnist-resnet.onnx", dynamo=True,
                      input_names=["input"], output_names=["logits"])
    print(f"wrote {out}/mnist-resnet.onnx and {out}/digits.npy (test images {first})")


if __name__ == "__main__":
    main()
