#!/usr/bin/env python3
"""lrp-grad against LXT 2.1's efficient mode on a Qwen2-0.5B-shaped checkpoint (hidden 896, 24
layers, 14 heads, 2 key-value heads, MLP 4864, vocabulary 151,936, tied head; random weights,
seed 0, saved in bfloat16 as `save_pretrained` writes it), one explanation of the last
position's predicted token at 128 and 512 tokens (random ids, seed 0, batch 1).

Each measurement runs in its own process (peak resident memory is per process): LXT —
`monkey_patch(modeling_qwen2, patch_map=attnLRP)`, the model in float32 (lrp-grad computes in
float32), `torch.set_num_threads(--threads)`, `logits_to_keep=1` (only the last position's
logits, as a user explaining the next token runs it at its best), one warm-up then the median of
--runs explanations (forward, `backward()` of the top logit, relevance = embeddings × gradient);
lrp-grad — `lrp-grad bench --model DIR --tokens T --batch 1 --modes lrp|gradient` (its own
median after 2 warm-ups). Rounds alternate the candidates; each candidate's fastest round and
largest peak are kept. Prints a Markdown table. Not run by CI: it writes ~1 GB.

Usage (torch, transformers==4.52.4, `pip install --no-deps lxt==2.1`; after `cargo build --release`):
    python3 tools/hf-reference/bench.py --rounds 3 --threads 2
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("LRP_GRAD_BENCH_CACHE", pathlib.Path.home() / ".cache" / "lrp-grad-hf-bench"))


def checkpoint():
    """The random Qwen2-0.5B-shaped checkpoint (written once)."""
    folder = CACHE / "qwen2-0.5b-random"
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1_000_000.0,
                         rms_norm_eps=1e-6, tie_word_embeddings=True,
                         attn_implementation="eager", torch_dtype="bfloat16")
    model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def lxt(tokens, runs, threads):
    """One process: LXT efficient AttnLRP, median ms and peak MiB."""
    import torch
    from lxt.efficient import monkey_patch
    from lxt.efficient.models.qwen2 import attnLRP
    from transformers import Qwen2ForCausalLM
    from transformers.models.qwen2 import modeling_qwen2
    torch.set_num_threads(threads)
    monkey_patch(modeling_qwen2, patch_map=attnLRP, verbose=False)
    model = Qwen2ForCausalLM.from_pretrained(checkpoint(), torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(0, 151936, (1, tokens), generator=torch.Generator().manual_seed(0))

    def explain():
        embeds = model.get_input_embeddings()(ids).requires_grad_()
        logits = model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1).logits
        top, _ = torch.max(logits[0, -1, :], dim=-1)
        top.backward()
        return (embeds * embeds.grad).sum(-1)

    explain()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        explain()
        times.append((time.perf_counter() - start) * 1e3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": statistics.median(times), "peak_mib": peak}))


def ours(binary, tokens, runs, mode, threads, backend=None):
    args = [binary, "bench", "--model", str(checkpoint()), "--tokens", str(tokens), "--batch", "1",
            "--runs", str(runs), "--modes", mode, "--json"]
    if mode == "lrp":
        args += ["--composite", "attn-lrp-efficient"]
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    if backend:
        env["BURN_DEVICE"] = backend
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True,
                                    env=env).stdout)
    return {"ms": out["modes"][0]["median_ms"], "peak_mib": out["peak_rss_mib"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", nargs="?", default="compare")
    parser.add_argument("--tokens", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "lrp-grad"))
    parser.add_argument("--tch-binary", help="an lrp-grad built with --features tch (run with "
                        "BURN_DEVICE=tch; source tools/tch-env.sh first for libtorch's libraries)")
    args = parser.parse_args()
    if args.role == "lxt":
        return lxt(args.tokens[0], args.runs, args.threads)
    checkpoint()
    best = {}
    for _ in range(args.rounds):
        for t in args.tokens:
            runs = {
                "LXT efficient (PyTorch f32)": lambda: json.loads(subprocess.run(
                    [sys.executable, __file__, "lxt", "--tokens", str(t), "--runs", str(args.runs),
                     "--threads", str(args.threads)], check=True, capture_output=True,
                    text=True).stdout.strip().splitlines()[-1]),
                "lrp-grad attn-lrp-efficient (flex)": lambda: ours(args.binary, t, args.runs, "lrp",
                                                                    args.threads),
                "lrp-grad gradient (flex)": lambda: ours(args.binary, t, args.runs, "gradient",
                                                         args.threads),
            }
            if args.tch_binary:
                runs["lrp-grad attn-lrp-efficient (tch)"] = lambda: ours(
                    args.tch_binary, t, args.runs, "lrp", args.threads, "tch")
                runs["lrp-grad gradient (tch)"] = lambda: ours(
                    args.tch_binary, t, args.runs, "gradient", args.threads, "tch")
            for name, run in runs.items():
                r = run()
                key = (t, name)
                old = best.get(key)
                best[key] = {"ms": min(r["ms"], old["ms"]) if old else r["ms"],
                             "peak_mib": max(r["peak_mib"], old["peak_mib"]) if old else r["peak_mib"]}
                print(f"{t} tokens, {name}: {r['ms']:.0f} ms, {r['peak_mib']:.0f} MiB", file=sys.stderr)
    print("| tokens | candidate | ms | peak MiB | ÷ LXT time | ÷ LXT memory |")
    print("|---|---|---|---|---|---|")
    for t in args.tokens:
        anchor = best[(t, "LXT efficient (PyTorch f32)")]
        for (tt, name), r in best.items():
            if tt == t:
                print(f"| {t} | {name} | {r['ms']:.0f} | {r['peak_mib']:.0f} | "
                      f"{r['ms'] / anchor['ms']:.2f} | {r['peak_mib'] / anchor['peak_mib']:.2f} |")
    print(f"\n{args.threads} threads, fastest of {args.rounds} interleaved rounds, each the median of "
          f"{args.runs} runs after a warm-up")


if __name__ == "__main__":
    main()
