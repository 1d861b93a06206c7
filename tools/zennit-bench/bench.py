#!/usr/bin/env python3
"""lrp-grad against Zennit on the two benchmark models, same weights, same thread count.

Builds `mnist-cnn` (batch 64 of [1, 28, 28]) and `vgg-small` (batch 16 of [3, 64, 64]) in
PyTorch with fixed seeds, exports them in lrp-grad's interchange format, times Zennit in process
(forward, input gradient, LRP with epsilon / epsilon-plus-flat / epsilon-gamma-box; median of
--runs after 2 warm-ups, torch.set_num_threads(--threads)), runs `lrp-grad bench` on the same
files, and prints both tools' medians side by side as a Markdown table.

Not run by CI. Usage (from the repository root, after `cargo build --release`):
    tools/zennit-reference/.venv/bin/python tools/zennit-bench/bench.py --threads 2
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import save_file
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, LayerMapComposite
from zennit.rules import Epsilon, Norm, Pass
from zennit.types import Activation, AvgPool, Linear as AnyLinear

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "zennit-reference"))
from generate import describe  # noqa: E402  (the interchange description of an nn.Sequential)


def mnist_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    ), (1, 28, 28), 64


def vgg_small():
    layers, c_in = [], 3
    for c in (64, 128, 256):
        layers += [torch.nn.Conv2d(c_in, c, 3, padding=1), torch.nn.ReLU(),
                   torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        c_in = c
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(256, 10)]
    return torch.nn.Sequential(*layers), (3, 64, 64), 16


def synchronize():
    """Waits for queued GPU work (a no-op on the CPU), so that a timing covers the work itself."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_ms(fn, runs):
    for _ in range(2):
        fn()
    synchronize()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def lrp_grad_env(device, threads):
    """The environment of an `lrp-grad bench` process: its thread count, and `BURN_DEVICE=vulkan`
    for the GPU (a binary built with `--features vulkan`)."""
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
    if device == "cuda":
        env["BURN_DEVICE"] = "vulkan"
    return env


def zennit_times(seq, x, runs):
    seq.eval()
    for p in seq.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target = seq(x).argmax(1)
    one_hot = torch.nn.functional.one_hot(target, 10).to(x)

    def forward():
        with torch.no_grad():
            seq(x)

    def gradient(composite=None):
        def run():
            inp = x.clone().requires_grad_(True)
            if composite is None:
                out = seq(inp)
                torch.autograd.grad(out, inp, one_hot * out)
            else:
                with composite.context(seq) as modified:
                    out = modified(inp)
                    torch.autograd.grad(out, inp, one_hot * out)
        return run

    epsilon = LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()), (AnyLinear, Epsilon(1e-6))])
    return {
        "forward": median_ms(forward, runs),
        "gradient": median_ms(gradient(), runs),
        "lrp epsilon": median_ms(gradient(epsilon), runs),
        "lrp epsilon-plus-flat": median_ms(gradient(EpsilonPlusFlat()), runs),
        "lrp epsilon-gamma-box": median_ms(gradient(EpsilonGammaBox(low=0.0, high=1.0)), runs),
    }


def lrp_grad_times(binary, model_json, weights, batch, runs, threads, device):
    out = {}
    runs_by_mode = [
        (["--rule", "epsilon", "--modes", "forward,gradient,lrp"], "lrp epsilon"),
        (["--composite", "epsilon-plus-flat", "--modes", "lrp"], "lrp epsilon-plus-flat"),
        (["--composite", "epsilon-gamma-box", "--low", "0", "--high", "1", "--modes", "lrp"], "lrp epsilon-gamma-box"),
    ]
    env = lrp_grad_env(device, threads)
    for args, label in runs_by_mode:
        cmd = [binary, "bench", "--model", model_json, "--weights", weights, "--batch", str(batch),
               "--runs", str(runs), "--json", *args]
        report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                           env=env).stdout)
        for mode in report["modes"]:
            name = mode["mode"] if not mode["mode"].startswith("lrp") else label
            out[name] = mode["median_ms"]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lrp-grad"))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: Zennit on PyTorch CUDA, lrp-grad on the same GPU through Vulkan "
                             "(built with --features vulkan)")
    parser.add_argument("--keep", help="write the exported models to this directory and keep them")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        pathlib.Path(tmp).mkdir(parents=True, exist_ok=True)
        for name, (seq, shape, batch) in {"mnist-cnn": mnist_cnn(), "vgg-small": vgg_small()}.items():
            torch.manual_seed(0)
            for m in seq.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
            model_json = pathlib.Path(tmp) / f"{name}.json"  # noqa: E501
            weights = pathlib.Path(tmp) / f"{name}.safetensors"
            model_json.write_text(json.dumps(describe(seq, shape)))
            save_file({k: v.contiguous() for k, v in seq.state_dict().items()}, str(weights))
            x = torch.rand((batch,) + shape)
            zennit = zennit_times(seq.to(args.device), x.to(args.device), args.runs)
            ours = lrp_grad_times(args.binary, str(model_json), str(weights), batch, args.runs,
                                  args.threads, args.device)
            for mode in zennit:
                rows.append((name, mode, zennit[mode], ours[mode], zennit["gradient"], ours["gradient"]))
    print(f"| model | mode | Zennit ms | lrp-grad ms | Zennit ÷ its gradient | lrp-grad ÷ its gradient |")
    print("|---|---|---|---|---|---|")
    for name, mode, z, o, zg, og in rows:
        print(f"| {name} | {mode} | {z:.1f} | {o:.1f} | {z / zg:.2f} | {o / og:.2f} |")
    where = (f"{torch.cuda.get_device_name()}" if args.device == "cuda"
             else f"{args.threads} threads")
    print(f"\n{where}, median of {args.runs} runs after 2 warm-ups; torch {torch.__version__}")


if __name__ == "__main__":
    main()
