#!/usr/bin/env python3
"""Quantus 0.6.0's numbers for lrp-grad's metric re-implementations.

What: runs Quantus's own metric classes -- Sparseness, Complexity, EffectiveComplexity,
PixelFlipping, RegionPerturbation, Completeness, Selectivity -- on the Zennit CNN fixture
(tests/fixtures/zennit/cnn: model.json + weights.safetensors, rebuilt here as the same torch
nn.Sequential, eval mode, float32, CPU), with x_batch = `input` [N, C, H, W], y_batch = the
targets of cases.json, and a_batch = Zennit's `relevance.epsilon-plus/logit` passed explicitly
(Quantus does not compute explanations). Writes tests/fixtures/quantus/cnn.json:

    {"quantus": ..., "torch": ..., "numpy": ..., "case": "epsilon-plus/logit",
     "targets": [...], "black": [...], "scores_unperturbed": {...},
     "metrics": {name: {"args": {...}, "defaults": {...}, "values": [...per sample...],
                        "values_stable_ties": [...], "tie_order_matters": bool, ...}}}

PixelFlipping uses features_in_step=36 (one 12-pixel row x 3 channels): the requested 28 (an
MNIST row) fails Quantus's assert for 12 x 12 images (144 % 28 != 0).

Variants (metric names):
  <Metric>                 a_batch as given, [N, 3, 12, 12] (one score per channel value)
  <Metric>/channel-sum     a_batch = relevance summed over channels, [N, 1, 12, 12] (Quantus
                           broadcasts it to every channel; perturbation metrics then perturb
                           all channels of a pixel, see the report in the JSON's notes)
  .../raw                  normalise=False (complexity metrics and Completeness)
  .../logits               softmax=False (perturbation metrics; their default is softmax=True)
Everything else is Quantus's defaults, recorded per metric under "defaults" (read from the
signatures with `inspect`).

Ties: Quantus ranks with `np.argsort(-a, axis=-1)` (default kind "quicksort"; numpy 2.x
dispatches it to x86-simd-sort on AVX-512/AVX2 hosts, so the order of equal values is machine
dependent). This relevance has many exact zeros (and samples 0 and 1 have no positive value),
so the ranking ties matter. "values" is what Quantus gives on this host; "values_stable_ties"
is the same Quantus class run with `np.argsort` forced to kind="stable" (ties: ascending flat
index) -- the reproducible reference for a re-implementation.

numpy >= 2.4 removed `np.trapz`, which Quantus 0.6.0's `calculate_auc` calls; this script
aliases `np.trapz = np.trapezoid` (the same composite trapezoid rule) when it is missing.

Versions used to write the committed fixture: Python 3.11.7, quantus 0.6.0 (pip install
quantus==0.6.0 -- its full dependency set; it did not touch torch or numpy), torch 2.15.0+cu132
(run on CPU), numpy 2.4.6, scipy 1.17.1, scikit-image 0.26.0, pandas 3.1.1, safetensors 0.8.0.

Run (from anywhere; CI does not need Python, the fixture is committed):
    pip install quantus==0.6.0 safetensors     # next to an existing torch
    python3 tools/quantus-reference/quantus_reference.py
"""
import contextlib
import importlib.metadata
import inspect
import json
import pathlib
import warnings

import numpy as np
import torch
from safetensors.numpy import load_file

import quantus
from quantus.helpers import utils as q_utils

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "zennit" / "cnn"
OUT = ROOT / "tests" / "fixtures" / "quantus" / "cnn.json"
CASE = "epsilon-plus/logit"

if not hasattr(np, "trapz"):  # numpy >= 2.4; Quantus 0.6.0's calculate_auc calls np.trapz
    np.trapz = np.trapezoid


def build(model_json, state):
    """The torch nn.Sequential of an lrp-grad interchange model (the kinds the CNN uses and
    tools/zennit-reference/generate.py's `describe` writes), with the state_dict loaded."""
    modules = []
    for layer in model_json["layers"]:
        kind = layer["kind"]
        if kind == "conv2d":
            m = torch.nn.Conv2d(layer["in_channels"], layer["out_channels"], tuple(layer["kernel_size"]),
                                stride=tuple(layer["stride"]), padding=tuple(layer["padding"]),
                                dilation=tuple(layer["dilation"]), groups=layer["groups"], bias=layer["bias"])
        elif kind == "linear":
            m = torch.nn.Linear(layer["in_features"], layer["out_features"], bias=layer["bias"])
        elif kind == "batch_norm2d":
            m = torch.nn.BatchNorm2d(layer["num_features"], eps=layer["eps"])
        elif kind == "batch_norm1d":
            m = torch.nn.BatchNorm1d(layer["num_features"], eps=layer["eps"])
        elif kind == "relu":
            m = torch.nn.ReLU()
        elif kind == "tanh":
            m = torch.nn.Tanh()
        elif kind == "leaky_relu":
            m = torch.nn.LeakyReLU(layer["negative_slope"])
        elif kind == "max_pool2d":
            m = torch.nn.MaxPool2d(tuple(layer["kernel_size"]), stride=tuple(layer["stride"]),
                                   padding=tuple(layer["padding"]))
        elif kind == "avg_pool2d":
            m = torch.nn.AvgPool2d(tuple(layer["kernel_size"]), stride=tuple(layer["stride"]),
                                   padding=tuple(layer["padding"]))
        elif kind == "adaptive_avg_pool2d":
            m = torch.nn.AdaptiveAvgPool2d(tuple(layer["output_size"]))
        elif kind == "flatten":
            m = torch.nn.Flatten()
        elif kind == "dropout":
            m = torch.nn.Dropout(layer["p"])
        else:
            raise TypeError(f"unknown interchange kind {kind}")
        modules.append(m)
    seq = torch.nn.Sequential(*modules)
    seq.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    return seq.float().eval()


@contextlib.contextmanager
def stable_argsort():
    """np.argsort with kind="stable" unless a kind is given (Quantus never gives one)."""
    original = np.argsort

    def argsort(a, axis=-1, kind=None, order=None, **kwargs):
        return original(a, axis=axis, kind="stable" if kind is None else kind, order=order, **kwargs)

    np.argsort = argsort
    try:
        yield
    finally:
        np.argsort = original


def jsonable(v):
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, (list, tuple)):
        return [jsonable(u) for u in v]
    if isinstance(v, dict):
        return {k: jsonable(u) for k, u in v.items()}
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    if v is None or isinstance(v, (int, str)):
        return v
    if callable(v):
        return f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', repr(v))}"
    return repr(v)


def signature_defaults(cls):
    """Every defaulted parameter of the metric's __init__ and __call__, as Quantus declares it."""
    out = {}
    for where, fn in (("init", cls.__init__), ("call", cls.__call__)):
        out[where] = {
            name: jsonable(p.default)
            for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    return out


# What the defaults above resolve to inside Quantus 0.6.0 (read from its source).
RESOLVED = {
    "normalise_func": "quantus.functions.normalise_func.normalise_by_max with normalise_axes=None: "
                      "a / max(|a|) over ALL axes of a_batch, the batch axis included (one scalar for "
                      "the whole batch); skipped if a is all zeros",
    "order_of_preprocessing": "a_batch expanded to x's ndim (missing axes as size 1), then normalise (if "
                              "normalise), then np.abs (if abs)",
    "perturb_func": "quantus.functions.perturb_func.batch_baseline_replacement_by_indices",
    "perturb_baseline_black": "per sample, min over all C*H*W values of the array being perturbed "
                              "(= min of the original x, since replaced values are that min)",
    "argsort": "np.argsort(-scores, axis=-1) with numpy's default kind='quicksort' (not stable)",
    "model_predict": "torch.Tensor(x) (float32) through the model in eval mode under torch.no_grad(); "
                     "softmax=True appends torch.nn.Softmax(dim=-1)",
}


NOTES = [
    "features_in_step=28 is refused for 12x12 images (Quantus asserts H*W % features_in_step == 0: "
    "144 % 28 = 4); 36 = one image row (12 pixels x 3 channels) of the broadcast C*H*W array is used.",
    "PixelFlipping ranks and flips elements of a_batch broadcast to x's shape, flattened in (c, h, w) "
    "order; features_in_step counts those elements, not pixels.",
    "RegionPerturbation with regions_evaluation=10 on 9 patches (12x12, patch 4) gives 9 points.",
    "Curves have no unperturbed point; RegionPerturbation records f(x)[y] - f(x_t)[y], PixelFlipping and "
    "Selectivity f(x_t)[y]. Quantus 0.6.0 has no AOPC; auc_* are np.trapz(curve, dx=1).",
    "values: this host's np.argsort (numpy 2.4.6, AVX-512 x86-simd-sort) tie order, machine dependent; "
    "values_stable_ties: np.argsort(kind='stable'), ties by ascending flat index, -0.0 == +0.0.",
    "Completeness compares sum(a) == f(x)[y] - f(x_black)[y] with exact float equality (False here); with "
    "a channel-summed a_batch it blacks out only the first H*W elements of x (channel 0).",
]


def check(out, model, x, targets, layouts):
    """Re-derives every "values_stable_ties" (and the complexity metrics) with plain numpy from
    the definitions the fixture documents -- what a re-implementation has to do -- and asserts
    Quantus agrees (float32 round-off aside)."""
    n = x.shape[0]
    rows = np.arange(n)
    worst = {}

    def f(xb, softmax):
        with torch.no_grad():
            z = model(torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)))
            return (torch.softmax(z, dim=-1) if softmax else z).numpy()[rows, targets]

    def prep(layout, normalise=True, abs_=False):
        a = layouts[layout].astype(np.float32)
        if normalise:
            a = a / np.abs(a).max()  # one scalar for the whole batch
        return np.abs(a) if abs_ else a

    def close(name, ours, key="values_stable_ties", tol=2e-6):
        theirs = np.asarray(out["metrics"][name][key], dtype=np.float64)
        ours = np.asarray(ours, dtype=np.float64)
        assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
        err = np.abs(ours - theirs).max()
        worst[name + ":" + key] = float(err)
        assert err <= tol * max(1.0, np.abs(theirs).max()), f"{name}: {err}"

    for suffix, layout in (("", "as-given"), ("/raw", "as-given"), ("/channel-sum", "channel-sum")):
        a = prep(layout, normalise=suffix != "/raw", abs_=True).reshape(n, -1).astype(np.float64)
        s = np.sort(a + 1e-7, axis=1)
        k = np.arange(1, a.shape[1] + 1)
        gini = ((2 * k - a.shape[1] - 1) * s).sum(1) / (a.shape[1] * s.sum(1))
        close(f"Sparseness{suffix}", gini, "values")
        p = a / a.sum(1, keepdims=True)
        close(f"Complexity{suffix}", -(p * np.log(p + 1e-12)).sum(1), "values")
        assert out["metrics"][f"EffectiveComplexity{suffix}"]["values"] == (a > 1e-5).sum(1).tolist()

    black = x.reshape(n, -1).min(axis=1)
    for suffix, layout in (("", "as-given"), ("/channel-sum", "channel-sum")):
        a = np.broadcast_to(prep(layout), x.shape).reshape(n, -1)
        for soft_suffix, softmax in (("", True), ("/logits", False)):
            # PixelFlipping: elements of the broadcast C*H*W array, most relevant first, 36 a step.
            order = np.argsort(-a, axis=1, kind="stable")
            xp, curve = x.reshape(n, -1).copy(), []
            for step in range(a.shape[1] // 36):
                idx = order[:, step * 36:(step + 1) * 36]
                xp[rows[:, None], idx] = black[:, None]
                curve.append(f(xp.reshape(x.shape), softmax))
            curve = np.stack(curve, 1)
            close(f"PixelFlipping{suffix}{soft_suffix}", curve)
            auc = ((curve[:, 1:] + curve[:, :-1]) / 2).sum(1)
            close(f"PixelFlipping{suffix}{soft_suffix}", auc, "auc_per_sample_stable_ties")

            # RegionPerturbation / Selectivity: 4x4 patches (all channels), row-major patch index.
            a4 = a.reshape(x.shape)
            sums = np.stack([a4[:, :, i:i + 4, j:j + 4].reshape(n, -1).sum(1)
                             for i in range(0, x.shape[2], 4) for j in range(0, x.shape[3], 4)], 1)
            porder = np.argsort(-sums, axis=1, kind="stable")
            y0 = f(x, softmax)
            xp, drops, scores = x.copy(), [], []
            for t in range(sums.shape[1]):
                for s_ix in range(n):
                    pi, pj = divmod(int(porder[s_ix, t]), x.shape[3] // 4)
                    xp[s_ix, :, 4 * pi:4 * pi + 4, 4 * pj:4 * pj + 4] = black[s_ix]
                y = f(xp, softmax)
                scores.append(y)
                drops.append(y0 - y)
            close(f"RegionPerturbation{suffix}{soft_suffix}", np.stack(drops[:10], 1))
            close(f"Selectivity{suffix}{soft_suffix}", np.stack(scores, 1))

    # Completeness: every element of x (as-given a) to black; logits; exact float equality.
    xb = np.broadcast_to(black[:, None, None, None], x.shape)
    close("Completeness", f(x, False) - f(xb, False), "delta_f")
    print("numpy re-derivation agrees with Quantus (stable ties); largest |difference|:")
    for name, err in worst.items():
        print(f"  {name:60s} {err:.3g}")


def main():
    warnings.filterwarnings("ignore")
    model_json = json.loads((FIXTURE / "model.json").read_text())
    cases = json.loads((FIXTURE / "cases.json").read_text())
    ref = load_file(str(FIXTURE / "reference.safetensors"))
    state = load_file(str(FIXTURE / "weights.safetensors"))
    model = build(model_json, state)

    x = ref["input"].astype(np.float32)
    relevance = ref[f"relevance.{CASE}"].astype(np.float32)
    targets = np.asarray(cases["targets"], dtype=np.int64)
    n, c, h, w = x.shape
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    gap = float(np.abs(logits - ref["output"]).max())
    assert gap < 1e-5, f"rebuilt model's output differs from the fixture's by {gap}"

    layouts = {
        "as-given": relevance,  # [N, C, H, W]
        "channel-sum": relevance.sum(axis=1, keepdims=True, dtype=np.float32),  # [N, 1, H, W]
    }

    def run(cls, init_args, layout, call_args=None, stable=False, extra_init=None):
        metric = cls(**init_args, **(extra_init or {}))
        args = dict(model=model, x_batch=x.copy(), y_batch=targets.copy(),
                    a_batch=layouts[layout].copy(), **(call_args or {}))
        ctx = stable_argsort() if stable else contextlib.nullcontext()
        with ctx:
            values = metric(**args)
        return metric, jsonable(np.asarray(values))

    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    metrics = {}

    def record(name, cls, init_args, layout, call_args=None, ranked=False, auc=False, post=None):
        call_args = {"channel_first": True, "batch_size": 64, **(call_args or {})}
        metric, values = run(cls, {**common, **init_args}, layout, call_args)
        entry = {
            "args": {"init": jsonable({**common, **init_args}), "call": jsonable(call_args),
                     "a_batch": layout, "a_batch_shape": list(layouts[layout].shape)},
            "defaults": signature_defaults(cls),
            "values": values,
        }
        if ranked:
            metric_s, stable_values = run(cls, {**common, **init_args}, layout, call_args, stable=True)
            entry["values_stable_ties"] = stable_values
            entry["tie_order_matters"] = bool(
                not np.allclose(np.asarray(values, dtype=np.float64), np.asarray(stable_values, dtype=np.float64),
                                rtol=0, atol=0))
            if auc:
                entry["auc_mean"] = float(metric.get_auc_score)
                entry["auc_mean_stable_ties"] = float(metric_s.get_auc_score)
        if post:
            post(entry)
        metrics[name] = entry

    # 1. Complexity metrics (abs=True, normalise=True by default).
    for cls in (quantus.Sparseness, quantus.Complexity, quantus.EffectiveComplexity):
        record(cls.__name__, cls, {}, "as-given")
        record(f"{cls.__name__}/raw", cls, {"normalise": False}, "as-given")
        record(f"{cls.__name__}/channel-sum", cls, {}, "channel-sum")
    metrics["EffectiveComplexity"]["eps"] = quantus.EffectiveComplexity().eps

    # 2.-5. Perturbation metrics: softmax=True is their __call__ default.
    for suffix, layout in (("", "as-given"), ("/channel-sum", "channel-sum")):
        for soft_suffix, softmax in (("", True), ("/logits", False)):
            call = {"softmax": softmax}
            # 12 x 12 images: 144 % 28 != 0 fails Quantus's assert_features_in_step, so one image
            # row per step: 12 pixels x 3 channels = 36 elements of the (broadcast) C*H*W array.
            pf_args = {"features_in_step": 36, "perturb_baseline": "black"}
            name = f"PixelFlipping{suffix}{soft_suffix}"
            record(name, quantus.PixelFlipping, pf_args, layout, call, ranked=True, auc=True)
            # Quantus's own per-sample AUC (np.trapz over the curve, dx=1).
            _, auc = run(quantus.PixelFlipping, {**common, **pf_args}, layout,
                         {"channel_first": True, **call}, extra_init={"return_auc_per_sample": True})
            _, auc_s = run(quantus.PixelFlipping, {**common, **pf_args}, layout,
                           {"channel_first": True, **call}, stable=True,
                           extra_init={"return_auc_per_sample": True})
            metrics[name]["auc_per_sample"] = auc
            metrics[name]["auc_per_sample_stable_ties"] = auc_s

            rp_args = {"patch_size": 4, "regions_evaluation": 10, "order": "morf", "perturb_baseline": "black"}
            record(f"RegionPerturbation{suffix}{soft_suffix}", quantus.RegionPerturbation, rp_args, layout, call,
                   ranked=True, auc=True)
            sel_args = {"patch_size": 4, "perturb_baseline": "black"}
            record(f"Selectivity{suffix}{soft_suffix}", quantus.Selectivity, sel_args, layout, call,
                   ranked=True, auc=True)

    # 4. Completeness: softmax=False and output_func=identity by default. The output_func hook
    # only records Quantus's own y_pred - y_pred_baseline, and returns it unchanged.
    for name, init, layout in (("Completeness", {}, "as-given"),
                               ("Completeness/raw", {"normalise": False}, "as-given"),
                               ("Completeness/channel-sum", {}, "channel-sum")):
        seen = []

        def identity_recording(v, seen=seen):
            seen.append(np.asarray(v).copy())
            return v

        def post(entry, seen=seen, init=init, layout=layout):
            entry["delta_f"] = jsonable(np.concatenate(seen))
            a = layouts[layout].reshape(n, -1)
            if init.get("normalise", True):
                a = a / np.abs(layouts[layout]).max()
            entry["sum_a"] = jsonable(a.sum(axis=-1))
            entry["args"]["init"]["output_func"] = "identity (recording y_pred - y_pred_baseline as delta_f)"

        record(name, quantus.Completeness, {**init, "output_func": identity_recording}, layout, post=post)

    scores = {}
    for softmax in (False, True):
        wrapped = q_utils.get_wrapped_model(model=model, channel_first=True, softmax=softmax, device=None,
                                            model_predict_kwargs={})
        scores["softmax" if softmax else "logits"] = jsonable(wrapped.predict(x)[np.arange(n), targets])

    out = {
        "quantus": quantus.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": importlib.metadata.version("scipy"),
        "scikit-image": importlib.metadata.version("scikit-image"),
        "case": CASE,
        "fixture": "tests/fixtures/zennit/cnn",
        "targets": jsonable(targets),
        "input_shape": [n, c, h, w],
        "black": jsonable(x.reshape(n, -1).min(axis=1)),
        "scores_unperturbed": scores,
        "resolved_defaults": RESOLVED,
        "notes": NOTES,
        "metrics": metrics,
    }
    check(out, model, x, targets, layouts)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")
    for name, entry in metrics.items():
        print(f"{name:42s} tie_order_matters={entry.get('tie_order_matters', '-')}")


if __name__ == "__main__":
    main()
