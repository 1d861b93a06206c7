#!/usr/bin/env python3
"""The metrics' cost: `lrp-grad evaluate` (flex and tch builds) against Quantus 0.6.0.

What: one interleaved run per model and metric -- [ours flex, ours tch, Quantus] in turn -- of
pixel flipping, region perturbation, MPRT and ROAD on

  mnist     the trained MNIST CNN (/tmp/mm/cnn.json + cnn.safetensors, the interchange format;
            rebuilt for Quantus as the same torch nn.Sequential by quantus_reference.py's `build`),
            100 test digits /tmp/mnist100.npy [100, 1, 28, 28] in [0, 1];
  resnet18  torchvision resnet18(weights=None) after torch.manual_seed(0), eval, exported once with
            torch.onnx.export(dynamo=False) for lrp-grad; inputs torch.randn(3, 224, 224) seeded.
            Timed on RESNET_N = 20 samples (the runtime budget: Quantus' ResNet-18 runs take
            minutes each on 2 CPU cores) and scaled x5 to 100 in the table, both tools equally.

Ours: `lrp-grad evaluate --methods lrp --composite epsilon-plus --metrics <one>` as a subprocess,
wall clock. Every run also loads the model and explains the inputs once; a `--metrics complexity`
run (no forward pass beyond the explanation) is that fixed overhead, timed the same way, and
metric time = total - overhead (both recorded).

Quantus: its own classes PixelFlipping, RegionPerturbation, ROAD, MPRT (layer_order top_down,
similarity correlation_spearman), torch.set_num_threads(2), CPU, default batch_size 64. a_batch =
Zennit 1.0.0 EpsilonPlus (float32, R_out = one_hot(predicted) * logits; the ResNet with Zennit's
ResNetCanonizer), computed before timing; only the metric's __call__ is timed. MPRT's explain_func
runs that Zennit explanation inside Quantus (timed, as it is part of the metric). ROAD: Quantus'
class for the 1-channel MNIST; for the 3-channel ResNet randomisation_reference.py's PixelROAD
(Quantus 0.6.0's ROAD crashes on C > 1; PixelROAD ranks the H*W pixels of the channel-summed map).

Timing: per model and metric, round 1 runs flex, tch, Quantus in turn; round 2 repeats (same
order) every tool whose round-1 run took < 60 s; the minimum per tool is reported. The overhead
runs are interleaved the same way (two rounds). Nothing else should run on the machine.

Writes tools/quantus-reference/speed-results.json (raw timings, settings, versions, step counts,
sample counts, headline metric values) and prints a markdown table.

Run (from the repository root; ~30 minutes on 2 cores; needs both release builds):
    python3 tools/quantus-reference/speed.py
Options: --quick (2 ResNet / 10 MNIST samples, one round, writes speed-results.quick.json),
--flex PATH, --tch PATH (the two lrp-grad binaries).
"""
import argparse
import contextlib
import copy
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import quantus_reference as qr  # noqa: E402  (build, jsonable; aliases np.trapz on numpy >= 2.4)
import randomisation_reference as rr  # noqa: E402  (PixelROAD)

import quantus  # noqa: E402
from quantus.functions.similarity_func import correlation_spearman  # noqa: E402
from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from zennit.composites import EpsilonPlus  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402

if not hasattr(np, "trapz"):  # numpy >= 2.4 (quantus_reference does this too)
    np.trapz = np.trapezoid

ROOT = qr.ROOT
FLEX = pathlib.Path("/root/.cache/lrp-grad-target/release/lrp-grad")
TCH = pathlib.Path("/root/.cache/lrp-grad-tch-target/release/lrp-grad")
MNIST_MODEL = pathlib.Path("/tmp/mm/cnn.json")
MNIST_WEIGHTS = pathlib.Path("/tmp/mm/cnn.safetensors")
MNIST_INPUT = pathlib.Path("/tmp/mnist100.npy")
RESNET_N = 20
RESNET_INPUT_SEED = 1  # torch.Generator seed of the ResNet inputs
ROAD_SEED = 0  # np.random.seed before each Quantus ROAD run (its noise); ours: --seed 0
THREADS = 2
ROUND2_BELOW_S = 60.0
METRICS = ["pixel-flipping", "region-perturbation", "road", "mprt"]


# ---------------------------------------------------------------------------------------------
# Explanations (Zennit, the way a Quantus user writes explain_func)
# ---------------------------------------------------------------------------------------------

def make_explain(canonizers):
    """A Quantus explain_func: Zennit EpsilonPlus, R_out = one_hot(targets) * logits, float32."""

    def explain(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).requires_grad_(True)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
        composite = EpsilonPlus(canonizers=[c() for c in canonizers])
        model.eval()
        with composite.context(model) as modified:
            out = modified(x)
            grad_out = torch.nn.functional.one_hot(t, out.shape[-1]).to(out.dtype) * out
            (relevance,) = torch.autograd.grad(out, x, grad_outputs=grad_out)
        return relevance.detach().numpy()

    return explain


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def mnist_case(work, n):
    model = qr.build(json.loads(MNIST_MODEL.read_text()), load_file(str(MNIST_WEIGHTS)))
    x = np.load(MNIST_INPUT).astype(np.float32)[:n]
    path = work / "mnist.npy"
    np.save(path, x)
    return {
        "name": "mnist", "label": "MNIST CNN", "torch": model, "x": x, "input": path,
        "model_args": ["--model", str(MNIST_MODEL), "--weights", str(MNIST_WEIGHTS)],
        "canonizers": [], "scale": 1,
        "settings": {
            "features_in_step": 28, "patch": 4, "regions": 49,
            "road_percentages": list(range(1, 100, 2)), "road_noise": 0.01,
            "mprt": "cascading (top_down), Spearman",
        },
        "source": f"{MNIST_MODEL} + {MNIST_WEIGHTS}, inputs {MNIST_INPUT}[:{n}]",
    }


def resnet_case(work, n):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    onnx = work / "resnet18.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(onnx), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    g = torch.Generator().manual_seed(RESNET_INPUT_SEED)
    x = torch.stack([torch.randn(3, 224, 224, generator=g) for _ in range(n)]).numpy()
    path = work / "resnet.npy"
    np.save(path, x)
    return {
        "name": "resnet18", "label": "ResNet-18 224²", "torch": model, "x": x, "input": path,
        "model_args": ["--model", str(onnx)], "canonizers": [ResNetCanonizer],
        "scale": 100 // n if n else 1,
        "settings": {
            # 224*224*3/64 = 2352 fails Quantus' assert (features_in_step must divide H*W = 50176 =
            # 2^10 * 7^2); 1792 = 2^8 * 7 is the nearest divisor: 84 steps of the C*H*W = 150528 values.
            "features_in_step": 1792, "patch": 16, "regions": 100,
            "road_percentages": [10, 30, 50, 70, 90], "road_noise": 0.01,
            "mprt": "cascading (top_down), Spearman",
        },
        "source": "torchvision resnet18(weights=None), torch.manual_seed(0), eval; "
                  "torch.onnx.export(dynamo=False, opset default, dynamic batch); inputs "
                  f"torch.randn(3, 224, 224) x {n}, torch.Generator seed {RESNET_INPUT_SEED}",
    }


# ---------------------------------------------------------------------------------------------
# Ours
# ---------------------------------------------------------------------------------------------

def tch_env():
    """tools/tch-env.sh's environment (LD_LIBRARY_PATH to its torch 2.9 venv), captured once."""
    out = subprocess.run(["bash", "-c", "source tools/tch-env.sh >/dev/null && env -0"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    return dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)


def ours_args(case, metric):
    s = case["settings"]
    return [*case["model_args"], "--input", str(case["input"]), "--methods", "lrp",
            "--composite", "epsilon-plus", "--metrics", metric,
            "--features-in-step", str(s["features_in_step"]), "--patch", str(s["patch"]),
            "--regions", str(s["regions"]),
            "--road-percentages", ",".join(str(p) for p in s["road_percentages"]),
            "--road-noise", str(s["road_noise"]), "--mprt-order", "cascading",
            "--similarity", "spearman", "--seed", "0"]


def run_ours(binary, env, case, metric, work):
    out = work / "ours.json"
    cmd = [str(binary), "evaluate", *ours_args(case, metric), "--json", str(out)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    result = json.loads(out.read_text())["methods"][0]
    headline = result["metrics"]
    if metric == "mprt":
        headline = {**headline, "steps": len(result["mprt"]), "step_names": result["mprt_steps"]}
    return elapsed, headline


def ours_check(binary, env, case, a, logits, work):
    """lrp-grad explain on the same inputs: predictions, target logits and relevance vs torch/Zennit."""
    rel, summary = work / "check-r.npy", work / "check-s.json"
    subprocess.run([str(binary), "explain", *case["model_args"], "--input", str(case["input"]),
                    "--composite", "epsilon-plus", "--output-relevance", "logit",
                    "--output", str(rel), "--summary", str(summary), "--quiet"],
                   env=env, check=True, capture_output=True)
    samples = json.loads(summary.read_text())["samples"]
    pred = np.array([s["predicted"] for s in samples])
    score = np.array([s["score"] for s in samples])
    t_pred = logits.argmax(1)
    t_score = logits[np.arange(len(pred)), t_pred]
    r = np.load(rel)
    return {
        "predictions_agree": int((pred == t_pred).sum()), "of": len(pred),
        "target_logit_max_abs_diff": float(np.abs(score - t_score).max()),
        "relevance_max_abs_diff_over_max_abs": float(np.abs(r - a).max() / np.abs(a).max()),
    }


# ---------------------------------------------------------------------------------------------
# Quantus
# ---------------------------------------------------------------------------------------------

def run_quantus(case, metric, a, targets):
    s = case["settings"]
    model, x = case["torch"], case["x"]
    common = dict(disable_warnings=True, display_progressbar=False)
    call = dict(model=model, x_batch=x, y_batch=targets, a_batch=a, channel_first=True, device="cpu")
    if metric == "pixel-flipping":
        m = quantus.PixelFlipping(features_in_step=s["features_in_step"], return_auc_per_sample=True,
                                  **common)
        t0 = time.perf_counter()
        scores = m(**call)
        elapsed = time.perf_counter() - t0
        return elapsed, {"pixel-flipping AUC (mean)": float(np.mean(scores))}
    if metric == "region-perturbation":
        m = quantus.RegionPerturbation(patch_size=s["patch"], regions_evaluation=s["regions"], **common)
        t0 = time.perf_counter()
        curves = np.asarray(m(**call), dtype=np.float64)
        elapsed = time.perf_counter() - t0
        return elapsed, {"region-perturbation AUC (mean, curve without the unperturbed 0)":
                         float(np.trapezoid(curves, axis=1).mean()),
                         "points": int(curves.shape[1])}
    if metric == "road":
        cls = quantus.ROAD if x.shape[1] == 1 else rr.PixelROAD
        m = cls(percentages=list(s["road_percentages"]), noise=s["road_noise"], **common)
        a1 = a.sum(axis=1, keepdims=True, dtype=np.float32)  # [N, 1, H, W]
        np.random.seed(ROAD_SEED)
        t0 = time.perf_counter()
        scores = m(**{**call, "a_batch": a1})
        elapsed = time.perf_counter() - t0
        curve = [float(scores[p]) for p in s["road_percentages"]]
        return elapsed, {"ROAD AUC": float(np.trapezoid(curve)), "curve": curve, "class": cls.__name__}
    if metric == "mprt":
        m = quantus.MPRT(layer_order="top_down", similarity_func=correlation_spearman, **common)
        t0 = time.perf_counter()
        scores = m(**call, explain_func=make_explain(case["canonizers"]))
        elapsed = time.perf_counter() - t0
        layers = [k for k in scores if k != "original"]
        per_layer = [float(np.mean(scores[k])) for k in layers]
        return elapsed, {"MPRT mean similarity": float(np.mean(per_layer)),
                         "MPRT last layer": per_layer[-1], "steps": len(layers),
                         "step_names": layers}
    raise ValueError(metric)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def versions(flex, tch, env):
    v = {p: importlib.metadata.version(p) for p in ("quantus", "torch", "torchvision", "numpy", "scipy",
                                                    "zennit", "onnx")}
    v["python"] = platform.python_version()
    v["lrp-grad flex"] = subprocess.run([str(flex), "--version"], capture_output=True, text=True).stdout.strip()
    v["lrp-grad tch"] = subprocess.run([str(tch), "--version"], env=env, capture_output=True,
                                       text=True).stdout.strip()
    v["tch libtorch"] = subprocess.run([env.get("VIRTUAL_ENV", "") + "/bin/python", "-c",
                                        "import torch; print(torch.__version__)"],
                                       capture_output=True, text=True).stdout.strip()
    v["git"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    v["git dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                         cwd=ROOT, capture_output=True, text=True).stdout.strip())
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flex", type=pathlib.Path, default=FLEX)
    ap.add_argument("--tch", type=pathlib.Path, default=TCH)
    ap.add_argument("--models", default="mnist,resnet18")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    env_flex = dict(os.environ)
    env_tch = tch_env()
    tools = {"flex": (args.flex, env_flex), "tch": (args.tch, env_tch)}
    out_path = HERE / ("speed-results.quick.json" if args.quick else "speed-results.json")
    results = {
        "what": "lrp-grad evaluate (flex and tch builds) vs Quantus 0.6.0: wall-clock seconds per metric run",
        "host": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                 "platform": platform.platform(), "processor": platform.processor()},
        "versions": versions(args.flex, args.tch, env_tch),
        "protocol": (
            "Per model and metric: round 1 runs [ours flex, ours tch, Quantus] in turn; round 2 repeats, "
            f"same order, every tool whose round-1 run took < {ROUND2_BELOW_S:.0f} s; min per tool. Ours: "
            "`lrp-grad evaluate` subprocess wall clock (model load + one explanation + the metric); "
            "overhead = the same command with --metrics complexity (two interleaved rounds, min); metric "
            "time = min total - min overhead. Quantus: the metric object's __call__ only (a_batch from "
            "Zennit precomputed, untimed); MPRT includes its explain_func (Zennit) calls."),
        "quantus_explain_func": "Zennit 1.0.0 EpsilonPlus(canonizers=[] for the MNIST CNN, [ResNetCanonizer()] "
                                "for the ResNet), R_out = one_hot(predicted) * logits, float32",
        "ours_command": "lrp-grad evaluate --methods lrp --composite epsilon-plus --metrics <m> "
                        "--features-in-step F --patch P --regions R --road-percentages ... --road-noise 0.01 "
                        "--mprt-order cascading --similarity spearman --seed 0",
        "models": {},
    }
    models = args.models.split(",")
    with tempfile.TemporaryDirectory(prefix="lrp-grad-speed-") as tmp:
        work = pathlib.Path(tmp)
        for name in models:
            mwork = work / name
            mwork.mkdir()
            case = (mnist_case(mwork, 10 if args.quick else 100) if name == "mnist"
                    else resnet_case(mwork, 2 if args.quick else RESNET_N))
            model, x = case["torch"], case["x"]
            with torch.no_grad():
                logits = model(torch.from_numpy(x)).numpy()
            targets = logits.argmax(1).astype(np.int64)
            t0 = time.perf_counter()
            a = make_explain(case["canonizers"])(copy.deepcopy(model), x, targets)
            zennit_s = time.perf_counter() - t0
            check = {k: ours_check(b, e, case, a, logits, mwork) for k, (b, e) in tools.items()}
            print(f"[{name}] {len(x)} samples; Zennit a_batch {zennit_s:.2f} s; check vs lrp-grad explain: {check}",
                  flush=True)
            rec = {
                "label": case["label"], "source": case["source"], "samples_timed": len(x),
                "scale_to_100": case["scale"], "settings": case["settings"],
                "settings_quantus": {
                    "pixel-flipping": f"PixelFlipping(features_in_step={case['settings']['features_in_step']}, "
                                      "return_auc_per_sample=True), perturb_baseline 'black', softmax=True (defaults)",
                    "region-perturbation": f"RegionPerturbation(patch_size={case['settings']['patch']}, "
                                           f"regions_evaluation={case['settings']['regions']}), order morf, "
                                           "'black', softmax=True (defaults)",
                    "road": f"{'ROAD' if x.shape[1] == 1 else 'PixelROAD (randomisation_reference.py)'}"
                            f"(percentages={case['settings']['road_percentages']}, noise=0.01), a_batch summed "
                            f"over channels [N, 1, H, W], np.random.seed({ROAD_SEED})",
                    "mprt": "MPRT(layer_order='top_down', similarity_func=correlation_spearman, seed=42), "
                            "abs=True, normalise=True (defaults), a_batch given, explain_func = Zennit EpsilonPlus",
                    "all": "disable_warnings=True, display_progressbar=False, channel_first=True, batch_size=64 "
                           "(default), device='cpu'",
                },
                "quantus_random_layers": PyTorchModel(model=model, channel_first=True).random_layer_generator_length,
                "targets_bincount": np.bincount(targets, minlength=logits.shape[1]).tolist()
                if logits.shape[1] <= 10 else int(len(set(targets.tolist()))),
                "zennit_a_batch_s": zennit_s,
                "check_vs_lrp_grad_explain": check,
                "overhead": {"flex": [], "tch": []},
                "metrics": {},
            }
            results["models"][name] = rec
            # Overhead: two interleaved rounds.
            for _ in range(1 if args.quick else 2):
                for tool, (binary, env) in tools.items():
                    t, _ = run_ours(binary, env, case, "complexity", mwork)
                    rec["overhead"][tool].append(t)
            print(f"[{name}] overhead (complexity run) s: {rec['overhead']}", flush=True)
            for metric in METRICS:
                runs = {"flex": [], "tch": [], "quantus": []}
                head = {}
                for rnd in range(1 if args.quick else 2):
                    for tool in ("flex", "tch", "quantus"):
                        if rnd == 1 and runs[tool][0] >= ROUND2_BELOW_S:
                            continue
                        if tool == "quantus":
                            t, h = run_quantus(case, metric, a, targets)
                        else:
                            t, h = run_ours(*tools[tool], case, metric, mwork)
                        runs[tool].append(t)
                        head.setdefault(tool, h)
                        print(f"[{name}] {metric:20s} round {rnd + 1} {tool:7s} {t:8.2f} s", flush=True)
                ov = {tool: min(rec["overhead"][tool]) for tool in ("flex", "tch")}
                best = {tool: min(v) for tool, v in runs.items()}
                rec["metrics"][metric] = {
                    "runs_s": runs,
                    "min_s": best,
                    "ours_metric_only_s": {tool: best[tool] - ov[tool] for tool in ("flex", "tch")},
                    "headline": head,
                }
                out_path.write_text(json.dumps(qr.jsonable(results), indent=1) + "\n")
    results["total_wall_s"] = time.perf_counter() - start
    out_path.write_text(json.dumps(qr.jsonable(results), indent=1) + "\n")
    print(table(results))
    print(f"wrote {out_path.relative_to(ROOT)}; total {results['total_wall_s'] / 60:.1f} min")


def ratio(q, ours):
    if ours <= 0:
        return "–"
    r = q / ours
    return f"{r:.1f}×" if r < 10 else f"{r:.0f}×"


def table(results):
    rows = ["| model | metric | samples | Quantus s | ours flex s (metric only) | ours tch s (metric only) "
            "| Quantus ÷ flex | Quantus ÷ tch |", "|---|---|---|---|---|---|---|---|"]
    for rec in results["models"].values():
        k = rec["scale_to_100"]
        n = rec["samples_timed"]
        samples = f"{n * k} ({n} timed, ×{k})" if k != 1 else f"{n}"
        for metric, m in rec["metrics"].items():
            q = m["min_s"]["quantus"] * k
            f = m["ours_metric_only_s"]["flex"] * k
            t = m["ours_metric_only_s"]["tch"] * k
            ft = m["min_s"]["flex"] * k
            tt = m["min_s"]["tch"] * k
            rows.append(f"| {rec['label']} | {metric} | {samples} | {q:.1f} | {f:.2f} (total {ft:.2f}) "
                        f"| {t:.2f} (total {tt:.2f}) | {ratio(q, f)} | {ratio(q, t)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
