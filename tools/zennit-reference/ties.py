#!/usr/bin/env python3
"""Max-pool near-ties on `vgg-small`: per-sample distance of float32 relevances from Zennit's
float64 one, for Zennit's own float32 run and for lrp-grad on each backend asked for.

For each weight seed: the benchmark's `vgg-small` (tools/zennit-bench/bench.py) with weights
reset under that seed (seed 0: the benchmark's own weights and input), 16 inputs uniform in [0, 1], the predicted class with its logit as output
relevance; Zennit 1.0's EpsilonGammaBox(-3, 3) in float64 (the reference) and float32, and
`lrp-grad explain` with epsilon-gamma-box and epsilon-plus-flat (against Zennit's float64
EpsilonPlusFlat). Prints, per sample, max |Δ| / max |R_reference|, and the smallest relative
gap between the two largest inputs of any positive max-pool window in the float64 forward pass.
A sample whose relevance is off by 1e-4 or more in one float32 run and not in another has a
max-pool winner that float32 round-off decides (README, "Accuracy against Zennit").

Usage (after `cargo build --release`):
    python3 tools/zennit-reference/ties.py --binary $CARGO_TARGET_DIR/release/lrp-grad \
        --backend flex --backend ndarray --seeds 0 1 2 3
"""
import argparse
import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file
from zennit.composites import EpsilonGammaBox, EpsilonPlusFlat

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "zennit-reference"))
from generate import describe, max_pool_margin, vgg_layers  # noqa: E402


def zennit(seq, x, composite, dtype, one_hot):
    seq = copy.deepcopy(seq).to(dtype)
    x = x.to(dtype).clone().requires_grad_(True)
    with composite().context(seq) as modified:
        out = modified(x)
        (relevance,) = torch.autograd.grad(out, x, one_hot.to(dtype) * out)
    return relevance.detach().double().numpy()


def lrp_grad(binary, backend, folder, args):
    out = folder / "r.npy"
    subprocess.run([binary, "explain", "--model", str(folder / "m.json"), "--weights",
                    str(folder / "m.safetensors"), "--input", str(folder / "x.npy"), "--output",
                    str(out), "--quiet", *args], check=True, env={**os.environ, "BURN_DEVICE": backend})
    return np.load(out).astype(np.float64)


def per_sample(r, reference):
    return np.abs(r - reference).reshape(len(r), -1).max(1) / np.abs(reference).max()


def margins(seq, x):
    return [max_pool_margin(seq, x[n:n + 1]) for n in range(len(x))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    torch.set_num_threads(2)
    np.set_printoptions(precision=1, linewidth=200)
    egb = lambda: EpsilonGammaBox(low=-3.0, high=3.0)  # noqa: E731
    for seed in args.seeds:
        # As bench.py's export: the model built, then its parameters reset under the seed.
        seq = vgg_layers((64, 128, 256)).eval()
        torch.manual_seed(seed)
        for m in seq.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        x = torch.rand(16, 3, 64, 64)
        with torch.no_grad():
            one_hot = torch.nn.functional.one_hot(seq(x).argmax(1), 10).float()
        reference = zennit(seq, x, egb, torch.float64, one_hot)
        reference_flat = zennit(seq, x, EpsilonPlusFlat, torch.float64, one_hot)
        print(f"seed {seed}: smallest max-pool margin per sample {np.array(margins(seq, x))}")
        print(f"  Zennit float32, epsilon-gamma-box: "
              f"{per_sample(zennit(seq, x, egb, torch.float32, one_hot), reference)}")
        with tempfile.TemporaryDirectory() as tmp:
            folder = pathlib.Path(tmp)
            (folder / "m.json").write_text(json.dumps(describe(seq, (3, 64, 64))))
            save_file({k: v.contiguous() for k, v in seq.state_dict().items()},
                      str(folder / "m.safetensors"))
            np.save(folder / "x.npy", x.numpy())
            for backend in args.backend or ["flex"]:
                ours = lrp_grad(args.binary, backend, folder,
                                ["--composite", "epsilon-gamma-box", "--low", "-3", "--high", "3"])
                flat = lrp_grad(args.binary, backend, folder, ["--composite", "epsilon-plus-flat"])
                print(f"  lrp-grad {backend}, epsilon-gamma-box: {per_sample(ours, reference)}")
                print(f"  lrp-grad {backend}, epsilon-plus-flat: {per_sample(flat, reference_flat)}")


if __name__ == "__main__":
    main()
