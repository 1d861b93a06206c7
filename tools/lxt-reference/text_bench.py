#!/usr/bin/env python3
"""Cost of AttnLRP on a text transformer of a realistic width, against the input gradient.

Exports the `text` model of reference.py (token ids → embeddings, pre-norm blocks with a gated
MLP, the token mean, a classifier) at BERT-small-like sizes — width 256, 4 heads, MLP 1024,
4 blocks, 128 tokens, a 1,000-word vocabulary, random weights — with torch.onnx.export, then runs
`lrp-grad bench` on it: forward and gradient in one process, AttnLRP (one pass and layer-wise)
and CP-LRP each in their own (so each peak resident set is its mode's), `--rounds` rounds alternating, each mode's fastest
round kept. Prints a Markdown table.

Not run by CI. Usage (from the repository root, after `cargo build --release -p lrp-grad-cli`):
    VENV=... tools/lxt-reference/.venv/bin/python tools/lxt-reference/text_bench.py
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import torch

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import reference as R  # noqa: E402  (the models of the LXT fixtures)


def export(path, width, heads, blocks, tokens, vocabulary):
    R.D, R.HEADS, R.HIDDEN = width, heads, 4 * width
    R.TOKENS["text"], R.BLOCKS["text"] = tokens, blocks
    R.VOCAB = [f"w{i}" for i in range(vocabulary)]
    w = R.make_weights("text", 0)
    ids = torch.randint(1, vocabulary, (2, tokens), generator=torch.Generator().manual_seed(1))
    R.export_onnx("text", w, ids, path)


def bench(binary, model, batch, runs, threads, modes, extra):
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    cmd = [binary, "bench", "--model", str(model), "--batch", str(batch), "--runs", str(runs),
           "--json", "--modes", modes, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    report = json.loads(done.stdout)
    return {m["mode"]: (m["median_ms"], report["peak_rss_mib"]) for m in report["modes"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lrp-grad"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    jobs = {"forward, gradient": ("forward,gradient", []),
            "AttnLRP": ("lrp", ["--composite", "attn-lrp"]),
            "CP-LRP": ("lrp", ["--composite", "cp-lrp"]),
            "AttnLRP layer-wise": ("lrp", ["--composite", "attn-lrp", "--strategy", "layer-wise"])}
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = pathlib.Path(tmp) / "text.onnx"
        export(model, width=256, heads=4, blocks=4, tokens=128, vocabulary=1000)
        for _ in range(args.rounds):
            for label, (modes, extra) in jobs.items():
                for mode, (ms, mib) in bench(args.binary, model, args.batch, args.runs,
                                             args.threads, modes, extra).items():
                    name = label if modes == "lrp" else mode
                    if ms < best.get(name, (float("inf"), 0))[0]:
                        best[name] = (ms, mib)
    gradient_ms, gradient_mib = best["gradient"]
    print("| mode | ms | ÷ gradient | peak MiB | ÷ gradient's |")
    print("|---|---|---|---|---|")
    for name, (ms, mib) in best.items():
        print(f"| {name} | {ms:.1f} | {ms / gradient_ms:.2f} | {mib:.0f} | {mib / gradient_mib:.2f} |")
    print(f"\nbatch {args.batch} × 128 tokens, width 256, 4 blocks; {args.threads} threads, fastest "
          f"of {args.rounds} rounds, each the median of {args.runs} runs after 2 warm-ups")


if __name__ == "__main__":
    main()
