#!/usr/bin/env python3
"""lrp-grad against Zennit on the two benchmark models, same weights, same thread count.

Builds `mnist-cnn` (batch 64 of [1, 28, 28]) and `vgg-small` (batch 16 of [3, 64, 64]) in
PyTorch with fixed seeds, exports them in lrp-grad's interchange format, times Zennit in process
(forward, input gradient, LRP with epsilon / epsilon-plus-flat / epsilon-gamma-box, the rule
hooks registered once for all timed calls — the comparison — and, for reference, anew in each
call; median of --runs after 2 warm-ups, torch.set_num_threads(--threads)), runs
`lrp-grad bench` on the same files, and prints both tools' medians side by side as a Markdown
table. Time on a quiet machine: PyTorch's OpenMP threads slow down severalfold beside another
busy process.

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
from importlib.metadata import version
from safetensors.torch import save_file
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat, LayerMapComposite
from zennit.rules import Epsilon, Norm, Pass
from zennit.types import Activation, AvgPool, Linear as AnyLinear

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "zennit-reference"))
from generate import describe, vgg_layers  # noqa: E402  (interchange description, VGG stages)


def mnist_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    ), (1, 28, 28), 64


def vgg_small():
    return vgg_layers((64, 128, 256)), (3, 64, 64), 16


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


def lrp_grad_env(device, threads, backend=None):
    """The environment of an `lrp-grad bench` process: its thread count (rayon's for `flex`,
    OpenMP's for libtorch), and `BURN_DEVICE`: `vulkan` for the GPU (a binary built with
    `--features vulkan`), or the `--backend` asked for (`tch`: a binary built with
    `--features tch`)."""
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    if device == "cuda":
        env["BURN_DEVICE"] = "vulkan"
    if backend:
        env["BURN_DEVICE"] = backend
    return env


def zennit_times(seq, x, runs):
    """Zennit's medians: forward, gradient, and each composite's LRP twice — with the rule hooks
    registered once around all timed calls (`lrp …`, as users explaining many batches run it and
    Zennit's documentation shows: `with Gradient(model, composite) as attributor:` around the
    loop), and registered anew inside every call (`lrp … (hooks per call)`, which adds Zennit
    1.0's parameter modification and hook set-up to each batch)."""
    seq.eval()
    for p in seq.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        target = seq(x).argmax(1)
    one_hot = torch.nn.functional.one_hot(target, 10).to(x)

    def forward():
        with torch.no_grad():
            seq(x)

    def attribute(model):
        inp = x.clone().requires_grad_(True)
        out = model(inp)
        torch.autograd.grad(out, inp, one_hot * out)

    epsilon = LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()), (AnyLinear, Epsilon(1e-6))])
    composites = {
        "lrp epsilon": epsilon,
        "lrp epsilon-plus-flat": EpsilonPlusFlat(),
        "lrp epsilon-gamma-box": EpsilonGammaBox(low=0.0, high=1.0),
    }
    times = {"forward": median_ms(forward, runs), "gradient": median_ms(lambda: attribute(seq), runs)}
    times.update(lrp_times(seq, attribute, composites, runs))
    return times


def lrp_times(model, attribute, composites, runs):
    """Each composite's median with its hooks registered once around the timed calls (`name`),
    and registered inside every call (`name (hooks per call)`); `attribute(modified)` runs one
    explanation (forward and input gradient) on the hooked model."""
    times = {}
    for name, composite in composites.items():
        with composite.context(model) as modified:
            times[name] = median_ms(lambda: attribute(modified), runs)

        def per_call():
            with composite.context(model) as modified:
                attribute(modified)
        times[f"{name} (hooks per call)"] = median_ms(per_call, runs)
    return times


def lrp_grad_times(binary, model_json, weights, batch, runs, threads, device, backend=None):
    """Medians and peak memory of one `lrp-grad bench` process per job (forward and gradient
    together, each composite alone, so that a composite's peak resident set is its own)."""
    times, memory = {}, {}
    jobs = [
        (["--modes", "forward,gradient"], None),
        (["--rule", "epsilon", "--modes", "lrp"], "lrp epsilon"),
        (["--composite", "epsilon-plus-flat", "--modes", "lrp"], "lrp epsilon-plus-flat"),
        (["--composite", "epsilon-gamma-box", "--low", "0", "--high", "1", "--modes", "lrp"],
         "lrp epsilon-gamma-box"),
    ]
    env = lrp_grad_env(device, threads, backend)
    for args, label in jobs:
        cmd = [binary, "bench", "--model", model_json, "--weights", weights, "--batch", str(batch),
               "--runs", str(runs), "--json", *args]
        report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                           env=env).stdout)
        for mode in report["modes"]:
            name = label or mode["mode"]
            times[name] = mode["median_ms"]
            memory[name] = report["peak_rss_mib"]
    return times, memory


def candidate(text):
    """`NAME=BINARY`: an lrp-grad binary run with `BURN_DEVICE=NAME` (e.g. `tch=/tmp/lrp-grad-tch`,
    `flex=target/release/lrp-grad`); `LABEL@NAME=BINARY` labels it (two builds on one backend,
    e.g. `before@tch=… after@tch=…`). Returns `(label, device, binary)`."""
    name, _, binary = text.partition("=")
    if not binary:
        raise argparse.ArgumentTypeError(f"expected NAME=BINARY, got {text!r}")
    label, _, device = name.rpartition("@")
    return label or device, device, binary


def export(name, seq, shape, directory):
    torch.manual_seed(0)
    for m in seq.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    model_json = pathlib.Path(directory) / f"{name}.json"
    weights = pathlib.Path(directory) / f"{name}.safetensors"
    model_json.write_text(json.dumps(describe(seq, shape)))
    save_file({k: v.contiguous() for k, v in seq.state_dict().items()}, str(weights))
    return str(model_json), str(weights)


def keep_fastest(best, times):
    for mode, ms in times.items():
        best[mode] = min(ms, best.get(mode, float("inf")))


def per_call_cell(zennit, mode, fmt):
    """Zennit's time with hooks registered in every call, where the mode has hooks."""
    per_call = zennit.get(f"{mode} (hooks per call)")
    return fmt.format(per_call) if per_call is not None else "—"


def print_table(results, names):
    """One row per model and mode: Zennit's time with hooks registered once (and per call), each
    candidate's, and every tool's ratio to its own gradient; peak memory of each candidate's
    process and its ratio to the gradient's."""
    head = " | ".join(f"lrp-grad {n} ms" for n in names)
    ratios = " | ".join(f"{n} ÷ its gradient" for n in names)
    versus = " | ".join(f"{n} ÷ Zennit" for n in names)
    mems = " | ".join(f"{n} peak MiB (÷ gradient's)" for n in names)
    print(f"| model | mode | Zennit ms (hooks once) | Zennit ms (hooks per call) | {head} | "
          f"{versus} | Zennit ÷ its gradient | {ratios} | {mems} |")
    print("|---" * (4 + 4 * len(names) + 1) + "|")
    for model, (zennit, ours, memory) in results.items():
        for mode in ours[names[0]]:
            z = zennit[mode]
            cells = [f"{z:.1f}", per_call_cell(zennit, mode, "{:.1f}")]
            cells += [f"{ours[n][mode]:.1f}" for n in names]
            cells += [f"{ours[n][mode] / z:.2f}" for n in names]
            cells += [f"{z / zennit['gradient']:.2f}"]
            cells += [f"{ours[n][mode] / ours[n]['gradient']:.2f}" for n in names]
            cells += [f"{memory[n][mode]:.0f} ({memory[n][mode] / memory[n]['gradient']:.2f})"
                      for n in names]
            print(f"| {model} | {mode} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds alternating Zennit and every candidate; each mode's fastest "
                             "round is kept")
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lrp-grad"))
    parser.add_argument("--candidate", type=candidate, action="append", default=[],
                        help="NAME=BINARY, repeatable: lrp-grad binaries to compare, each run with "
                             "BURN_DEVICE=NAME (e.g. tch=... for a build with --features tch); "
                             "default: --binary on its default backend")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: Zennit on PyTorch CUDA, lrp-grad on the same GPU through Vulkan "
                             "(built with --features vulkan)")
    parser.add_argument("--keep", help="write the exported models to this directory and keep them")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    candidates = args.candidate or [("default", None, args.binary)]
    names = [label for label, _, _ in candidates]
    if len(set(names)) != len(names):
        parser.error(f"candidate labels must differ, got {names} (use LABEL@NAME=BINARY)")
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        pathlib.Path(tmp).mkdir(parents=True, exist_ok=True)
        for name, (seq, shape, batch) in {"mnist-cnn": mnist_cnn(), "vgg-small": vgg_small()}.items():
            model_json, weights = export(name, seq, shape, tmp)
            x = torch.rand((batch,) + shape)
            zennit, ours, memory = {}, {n: {} for n in names}, {n: {} for n in names}
            for _ in range(args.rounds):
                keep_fastest(zennit, zennit_times(seq.to(args.device), x.to(args.device), args.runs))
                for label, backend, binary in candidates:
                    times, mem = lrp_grad_times(binary, model_json, weights, batch, args.runs,
                                                args.threads, args.device, backend)
                    keep_fastest(ours[label], times)
                    memory[label].update(mem)
            results[name] = (zennit, ours, memory)
    print_table(results, names)
    where = (f"{torch.cuda.get_device_name()}" if args.device == "cuda" else f"{args.threads} threads")
    print(f"\n{where}, fastest of {args.rounds} interleaved rounds, each the median of {args.runs} "
          f"runs after 2 warm-ups; torch {torch.__version__}, zennit {version('zennit')}")


if __name__ == "__main__":
    main()
