#!/usr/bin/env python3
"""The full-size torchvision models through `lrp-grad explain`, against Zennit 1.0.

For each model (random weights, seeded, non-trivial batch-norm statistics): export with both of
PyTorch's exporters into a scratch folder, run the lrp-grad binary on one 224x224 input, run
Zennit (float32 and float64, the same view of the model as models.py gives it), and print one
Markdown row per model, exporter and composite: max |Δ| / max |R_zennit64| and Zennit's own
float32-vs-float64 distance on the same scale. Too large to commit: run it once, put the table in
the README.

Usage (from the repository root, after `cargo build --release -p lrp-grad-cli`):
    tools/onnx-reference/.venv/bin/python tools/onnx-reference/full.py [--models resnet18,...]
"""
import argparse
import copy
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import models as M  # noqa: E402  (the Zennit view, composites, BN randomisation)
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ["epsilon-plus-flat", "epsilon-gamma-box"]
FAMILY = {  # the Zennit view of models.py each model takes
    "resnet18": "resnet", "resnet50": "resnet", "densenet121": "densenet",
    "mobilenet_v2": "mobilenet_v2", "efficientnet_b0": "efficientnet", "vgg11_bn": "vgg_bn",
    "alexnet": "alexnet", "squeezenet1_1": "squeezenet",
}


def build(name):
    torch.manual_seed(0)
    net = getattr(torchvision.models, name)(weights=None, num_classes=M.CLASSES)
    return M.randomize(net, FAMILY[name])


def zennit(name, net, x, target):
    canonizers = ([ResNetBasicBlockCanonizer(), ResNetBottleneckCanonizer()]
                  if FAMILY[name] == "resnet" else [])
    zen = M.for_zennit(FAMILY[name], net).eval()
    out = {}
    for case in CASES:
        r32 = M.relevance(zen, canonizers, case, x, [target])
        r64 = M.relevance(copy.deepcopy(zen).double(), canonizers, case, x.double(), [target])
        out[case] = (r32.numpy(), r64.numpy())
    return out


def lrp_grad(binary, model, x_path, case, folder):
    out = folder / f"r-{case}.npy"
    args = [binary, "explain", "--model", str(model), "--input", str(x_path), "--output", str(out),
            "--composite", case, "--output-relevance", "one-hot"]
    if case == "epsilon-gamma-box":
        args += [f"--low={M.LOW}", f"--high={M.HIGH}"]
    start = time.perf_counter()
    subprocess.run(args, check=True)
    return np.load(out), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(FAMILY))
    parser.add_argument("--binary", default=str(ROOT / "target/release/lrp-grad"))
    args = parser.parse_args()
    print("| model | exporter | composite | max abs Δ / max abs R | Zennit f32 vs f64 | CLI s |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        net = build(name)
        torch.manual_seed(1)
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            target = int(net(x).argmax(1))
        reference = zennit(name, net, x, target)
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp)
            np.save(folder / "x.npy", x.numpy())
            M.export(net, x, folder)
            for exporter in ("dynamo.onnx", "script.onnx"):
                for case in CASES:
                    r, seconds = lrp_grad(args.binary, folder / exporter, folder / "x.npy", case,
                                          folder)
                    r32, r64 = reference[case]
                    scale = np.abs(r64).max()
                    error = np.abs(r - r64).max() / scale
                    own = np.abs(r32 - r64).max() / scale
                    print(f"| {name} | {exporter.split('.')[0]} | {case} | {error:.1e} | "
                          f"{own:.1e} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
