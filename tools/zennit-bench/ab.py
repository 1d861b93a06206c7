#!/usr/bin/env python3
"""Two lrp-grad binaries (before / after a change) on ResNet-50 from ONNX (batch 1) and the
width-256 text model of tools/lxt-reference/text_bench.py (batch 8): `lrp-grad bench` in
interleaved rounds, each mode in its own process, each mode's fastest round and the larger peak
resident set kept. (mnist-cnn and vgg-small: `bench.py --candidate before@flex=… --candidate
after@flex=…`.) Prints a Markdown table.

Not run by CI. Usage (torch, torchvision, onnx, onnxscript; `pip install --no-deps lxt==2.1`):
    python3 tools/zennit-bench/ab.py --before BIN --after BIN --rounds 3
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import torch
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "lxt-reference"))
sys.path.insert(0, str(ROOT / "tools" / "onnx-reference"))
import models as M  # noqa: E402  (batch-norm randomisation)
import text_bench  # noqa: E402  (the text model's export)

MODES = {
    "resnet50 b1": (1, 3, [("gradient", ["--modes", "forward,gradient"]),
                           ("epsilon-plus-flat", ["--composite", "epsilon-plus-flat", "--modes", "lrp"]),
                           ("epsilon-gamma-box", ["--composite", "epsilon-gamma-box", "--low=-3",
                                                  "--high=3", "--modes", "lrp"])]),
    "text b8": (8, 5, [("gradient", ["--modes", "forward,gradient"]),
                       ("attn-lrp", ["--composite", "attn-lrp", "--modes", "lrp"]),
                       ("cp-lrp", ["--composite", "cp-lrp", "--modes", "lrp"])]),
}


def export(folder):
    torch.manual_seed(0)
    net = M.randomize(torchvision.models.resnet50(weights=None, num_classes=M.CLASSES)).eval()
    resnet = folder / "resnet50.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 224, 224),), resnet, dynamo=True,
                      input_names=["input"])
    text = folder / "text.onnx"
    text_bench.export(str(text), 256, 4, 4, 128, 1000)
    return {"resnet50 b1": resnet, "text b8": text}


def run(binary, model, batch, runs, extra, threads):
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([binary, "bench", "--model", str(model), "--batch", str(batch), "--runs",
                          str(runs), "--json", *extra], check=True, capture_output=True, text=True,
                         env=env).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    binaries = {"before": args.before, "after": args.after}
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = export(pathlib.Path(tmp))
        for _ in range(args.rounds):
            for model, (batch, runs, modes) in MODES.items():
                for name, binary in binaries.items():
                    for label, extra in modes:
                        report = run(binary, models[model], batch, runs, extra, args.threads)
                        for m in report["modes"]:
                            mode = label if m["mode"].startswith("lrp") else m["mode"]
                            t, mem = best.get((model, mode, name), (float("inf"), 0))
                            best[(model, mode, name)] = (min(t, m["median_ms"]),
                                                         max(mem, report["peak_rss_mib"]))
    print("| model | mode | before ms | after ms | after ÷ before | before peak MiB | after peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for model, mode in sorted({(k[0], k[1]) for k in best}):
        b, a = best[(model, mode, "before")], best[(model, mode, "after")]
        print(f"| {model} | {mode} | {b[0]:.1f} | {a[0]:.1f} | {a[0] / b[0]:.2f} | {b[1]:.0f} | "
              f"{a[1]:.0f} |")
    print(f"\n{args.threads} threads, fastest of {args.rounds} interleaved rounds")


if __name__ == "__main__":
    main()
