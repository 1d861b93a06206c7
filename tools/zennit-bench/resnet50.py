#!/usr/bin/env python3
"""ResNet-50 from ONNX: lrp-grad against Zennit 1.0 on PyTorch CPU, same weights, same threads.

torchvision's resnet50 (random weights, seeded, non-trivial batch-norm statistics), exported
with torch.onnx.export (dynamo) for lrp-grad; Zennit explains the PyTorch model itself (its
ResNetCanonizer; its hooks registered once around the timed calls, and, for reference, anew in
every call). For each batch size, `--rounds` rounds alternate the two tools (Zennit in
process, then `lrp-grad bench` in fresh processes: forward + gradient in one, each composite in
its own, so that every process's peak memory is its mode's); each round gives medians of
`--runs` runs after 2 warm-ups, and the table keeps each mode's fastest round. Also the time
`lrp-grad info` takes to load the model.

Not run by CI. Usage (from the repository root, after `cargo build --release -p lrp-grad-cli`):
    tools/onnx-reference/.venv/bin/python tools/zennit-bench/resnet50.py --threads 2
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import torch
import torchvision
from importlib.metadata import version
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat
from zennit.torchvision import ResNetCanonizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "onnx-reference"))
import models as M  # noqa: E402  (batch-norm randomisation)
from bench import (candidate, keep_fastest, lrp_grad_env, lrp_times, median_ms,  # noqa: E402
                   per_call_cell)  # (shared helpers)

LOW, HIGH = -3.0, 3.0
COMPOSITES = {
    "epsilon-plus-flat": (lambda: EpsilonPlusFlat(canonizers=[ResNetCanonizer()]), []),
    "epsilon-gamma-box": (lambda: EpsilonGammaBox(low=LOW, high=HIGH, canonizers=[ResNetCanonizer()]),
                          [f"--low={LOW}", f"--high={HIGH}"]),
}


def zennit_round(net, x, runs):
    with torch.no_grad():
        one_hot = torch.nn.functional.one_hot(net(x).argmax(1), M.CLASSES).to(x)

    def forward():
        with torch.no_grad():
            net(x)

    def attribute(model):
        inp = x.clone().requires_grad_(True)
        torch.autograd.grad(model(inp), inp, one_hot)

    times = {"forward": median_ms(forward, runs), "gradient": median_ms(lambda: attribute(net), runs)}
    times.update(lrp_times(net, attribute, {n: make() for n, (make, _) in COMPOSITES.items()}, runs))
    return times


def lrp_grad_round(binary, model, batch, runs, threads, device, backend=None):
    env = lrp_grad_env(device, threads, backend)
    jobs = [("forward,gradient", [])] + [("lrp", ["--composite", n, *extra])
                                         for n, (_, extra) in COMPOSITES.items()]
    times, memory = {}, {}
    for modes, extra in jobs:
        cmd = [binary, "bench", "--model", str(model), "--batch", str(batch), "--runs", str(runs),
               "--json", "--modes", modes, *extra]
        report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                           env=env).stdout)
        for mode in report["modes"]:
            name = extra[1] if mode["mode"].startswith("lrp") else mode["mode"]
            times[name] = mode["median_ms"]
            memory[name] = report["peak_rss_mib"]
    return times, memory


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: Zennit on PyTorch CUDA, lrp-grad on the same GPU through Vulkan "
                             "(built with --features vulkan)")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lrp-grad"))
    parser.add_argument("--candidate", type=candidate, action="append", default=[],
                        help="NAME=BINARY, repeatable: lrp-grad binaries to compare, each run with "
                             "BURN_DEVICE=NAME; default: --binary on its default backend")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = M.randomize(torchvision.models.resnet50(weights=None, num_classes=M.CLASSES))
    for p in net.parameters():
        p.requires_grad_(False)
    candidates = args.candidate or [("default", None, args.binary)]
    names = [label for label, _, _ in candidates]
    if len(set(names)) != len(names):
        parser.error(f"candidate labels must differ, got {names} (use LABEL@NAME=BINARY)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = pathlib.Path(tmp) / "resnet50.onnx"
        torch.onnx.export(net, (torch.randn(1, 3, 224, 224),), model, dynamo=True,
                          input_names=["input"])
        start = time.perf_counter()
        subprocess.run([candidates[0][2], "info", "--model", str(model)], check=True,
                       capture_output=True)
        load_s = time.perf_counter() - start
        # Zennit's canonizer merges each batch norm and sets its eps to 0, which torch >= 2.11
        # refuses; the norms are folded here once instead (the same arithmetic; Zennit then
        # skips the merge on every call, so its times can only be lower).
        M.fold_batch_norms(net)
        for batch in map(int, args.batches.split(",")):
            x = torch.randn(batch, 3, 224, 224, device=args.device)
            zennit, ours, memory = {}, {n: {} for n in names}, {n: {} for n in names}
            for _ in range(args.rounds):
                keep_fastest(zennit, zennit_round(net.to(args.device), x, args.runs))
                for label, backend, binary in candidates:
                    times, mem = lrp_grad_round(binary, model, batch, args.runs, args.threads,
                                                args.device, backend)
                    keep_fastest(ours[label], times)
                    memory[label].update(mem)
            for mode in ours[names[0]]:
                rows.append((batch, mode, zennit, ours, memory))
    head = " | ".join(f"{n} ms | {n} ÷ Zennit | {n} ÷ its gradient | {n} peak MiB" for n in names)
    print(f"| batch | mode | Zennit ms (hooks once) | Zennit ms (hooks per call) | "
          f"Zennit ÷ its gradient | {head} |")
    print("|---" * (5 + 4 * len(names)) + "|")
    for batch, mode, zennit, ours, memory in rows:
        z = zennit[mode]
        cells = [f"{ours[n][mode]:.0f} | {ours[n][mode] / z:.2f} | "
                 f"{ours[n][mode] / ours[n]['gradient']:.2f} | {memory[n][mode]:.0f}" for n in names]
        print(f"| {batch} | {mode} | {z:.0f} | {per_call_cell(zennit, mode, '{:.0f}')} | "
              f"{z / zennit['gradient']:.2f} | " + " | ".join(cells) + " |")
    print(f"\n{args.threads} threads, fastest of {args.rounds} interleaved rounds, each the median "
          f"of {args.runs} runs after 2 warm-ups; torch {torch.__version__}, Zennit {version('zennit')}. "
          f"`lrp-grad info` loads and checks the model in {load_s:.2f} s; Zennit's process peaked "
          f"at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.")

if __name__ == "__main__":
    main()
