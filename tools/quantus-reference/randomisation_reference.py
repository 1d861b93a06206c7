#!/usr/bin/env python3
"""Quantus 0.6.0's numbers for lrp-grad's ROAD, MPRT and RandomLogit re-implementations.

What: runs Quantus's own code -- `noisy_linear_imputation`, the `ssim` similarity, and the
metric classes ROAD, MPRT and RandomLogit -- on the Zennit CNN fixture (tests/fixtures/zennit/cnn,
rebuilt as a torch nn.Sequential by quantus_reference.py's `build`) and writes, under
tests/fixtures/quantus/:

  imputation.json        noisy_linear_imputation(arr [C, H, W], indices into H*W, noise=0) cases
  ssim.json              quantus.functions.similarity_func.ssim on pairs of arrays
  road.json (+ road.safetensors: x [256, 3, 12, 12] f32, a [256, 1, 12, 12] f32, targets i64,
                         margin.noise-0.stable-ties [256, 50] f32, model/<state_dict key>)
                         ROAD per percentage: per-sample 0/1 results and their mean, noise 0.01
                         (np.random seeded) and noise 0 (deterministic). The fixture's model predicts
                         class 0 for every input (ROAD = 1 everywhere, recorded too), so the runs use
                         it with the last layer's bias centred on these inputs (model/<key>).
  mprt.json (+ mprt.safetensors: every randomised model's full state_dict per step, and the raw
                         explanations)  MPRT, layer_order top_down and independent, similarity
                         correlation_spearman (its default) and ssim
  random_logit.json      RandomLogit (default ssim), the off-class each sample was explained for
  random_logit_spearman.json  RandomLogit with similarity_func=correlation_spearman, same inputs and draws
  faithfulness_correlation.json  FaithfulnessCorrelation on road.safetensors (x, targets, model/<key>;
                         a repeated over the 3 channels), subset_size 36, 100 runs, 'black' baseline,
                         softmax False (its default) and True, np.random seeded; per-sample scores,
                         mean, stderr, and the exact draws/series of the first samples

explain_func (MPRT, RandomLogit) is `explain` below: Zennit's EpsilonPlus composite with output
relevance one_hot(target) * logits, exactly tools/zennit-reference/generate.py's `attribute`
(float64, exact batch-norm merge), i.e. the fixture's `relevance.epsilon-plus/logit`.

Quantus 0.6.0's ROAD cannot run on [N, 3, H, W] inputs: it broadcasts a_batch to x's shape, ranks
the C*H*W elements, and hands those flat indices (up to C*H*W - 1) to noisy_linear_imputation,
which indexes a mask of H*W pixels -> IndexError (recorded in road.json). ROAD here is
`PixelROAD`: Quantus's ROAD class with only evaluate_batch's ranking changed to rank the H*W
pixels of the [N, 1, H, W] explanation (a_size = H*W, what ROAD's custom_batch_preprocess already
assumes); everything else (normalise, top-k count, imputation of all channels of a pixel,
prediction, accuracy) is Quantus's code path.

Ties: Quantus ranks with np.argsort(-a) (default kind "quicksort", machine-dependent order of
equal values). Runs named ".../stable-ties" force kind="stable" (ties: ascending flat index) --
the reproducible reference; the others are what this host gives.

Versions used to write the committed fixtures: Python 3.11.7, quantus 0.6.0, torch 2.15.0 (CPU),
numpy 2.4.6, scipy 1.17.1, scikit-image 0.26.0, zennit 1.0.0, safetensors 0.8.0 (see
requirements.txt; the fixture's relevance was written with zennit 0.5.1 and this script checks
it reproduces it exactly).

Run (from anywhere; CI does not need Python, the fixtures are committed; about 7 minutes on CPU):
    pip install quantus==0.6.0 zennit==1.0.0 safetensors     # next to an existing torch
    python3 tools/quantus-reference/randomisation_reference.py
"""
import contextlib
import copy
import importlib.metadata
import json
import math
import pathlib
import sys
import warnings

import numpy as np
import scipy.stats
import torch
from safetensors.numpy import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "zennit-reference"))
import quantus_reference as qr  # noqa: E402  (build, jsonable, stable_argsort, signature_defaults)
import generate as zennit_reference  # noqa: E402  (attribute: the fixture's Zennit relevance)

import quantus  # noqa: E402
from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: E402
from quantus.functions.similarity_func import correlation_spearman, ssim  # noqa: E402
from quantus.helpers.model.pytorch_model import PyTorchModel  # noqa: E402
from zennit.composites import EpsilonPlus  # noqa: E402

OUT = qr.ROOT / "tests" / "fixtures" / "quantus"
ROAD_N = 256
ROAD_INPUT_SEED = 7  # torch.Generator seed of ROAD's inputs
ROAD_NOISE_SEED = 42  # np.random.seed before each noisy ROAD run
FC_SEED = 31  # np.random.seed before each FaithfulnessCorrelation run
FC_SUBSET, FC_RUNS, FC_BATCH = 36, 100, 64
FC_EXACT = 4  # samples whose drawn subsets and series faithfulness_correlation.json records
OFFSETS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
           ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


# ---------------------------------------------------------------------------------------------
# explain_func
# ---------------------------------------------------------------------------------------------

_RECORDS = []  # explain() appends {"targets", "a"} to the innermost active recording() list


def explain(model, inputs, targets, **kwargs):
    """Quantus explain_func: Zennit EpsilonPlus relevance for R_out = one_hot(targets) * logits,
    numpy float32 [N, C, H, W] (generate.py's `attribute`: float64 on a copy of the model, batch
    norm merged exactly into the preceding conv). `model` is the torch module Quantus passes
    (the original or a randomised copy); it is not modified."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    t = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    with torch.no_grad():
        classes = model(x).shape[-1]
    one_hot = torch.nn.functional.one_hot(t, classes).to(torch.float32)
    a = zennit_reference.attribute(model, EpsilonPlus(), x, one_hot, True).numpy()
    if _RECORDS:
        _RECORDS[-1].append({"targets": t.numpy().copy(), "a": a.copy()})
    return a


@contextlib.contextmanager
def recording():
    calls = []
    _RECORDS.append(calls)
    try:
        yield calls
    finally:
        _RECORDS.pop()


@contextlib.contextmanager
def recording_random_layers():
    """Records (layer name, deep copy of the randomised model's state_dict) at every yield of
    PyTorchModel.get_random_layer_generator -- the exact weights MPRT explains with."""
    original = PyTorchModel.get_random_layer_generator
    steps = []

    def generator(self, *args, **kwargs):
        for name, random_model in original(self, *args, **kwargs):
            steps.append((name, {k: v.detach().cpu().numpy().copy() for k, v in random_model.state_dict().items()}))
            yield name, random_model

    PyTorchModel.get_random_layer_generator = generator
    try:
        yield steps
    finally:
        PyTorchModel.get_random_layer_generator = original


# ---------------------------------------------------------------------------------------------
# Plain numpy re-derivations (what a re-implementation does), used to check Quantus's numbers
# ---------------------------------------------------------------------------------------------

def imputation_ref(arr, indices):
    """Dense float64 solve of the documented system (all channels share the matrix)."""
    c, h, w = arr.shape
    flat = arr.reshape(c, -1).astype(np.float64)
    pos = {int(p): i for i, p in enumerate(indices)}
    k = len(indices)
    m = np.zeros((k, k))
    rhs = np.zeros((k, c))
    for i, p in enumerate(indices):
        r, q = divmod(int(p), w)
        for (dr, dq), wt in OFFSETS:
            rr, qq = r + dr, q + dq
            if not (0 <= rr < h and 0 <= qq < w):
                continue
            m[i, i] += wt  # sum of the in-image neighbours' weights
            j = rr * w + qq
            if j in pos:
                m[i, pos[j]] -= wt
            else:
                rhs[i] += wt * flat[:, j]
    out = flat.copy()
    out[:, np.asarray(indices)] = np.linalg.solve(m, rhs).T
    return out.reshape(arr.shape)


def ssim_ref(a, b, win=7):
    """skimage.metrics.structural_similarity as Quantus calls it, any ndim, float64: uniform
    win^ndim window, only windows entirely inside the array, sample (co)variances (NP/(NP-1)),
    K1=0.01, K2=0.03, data_range = max - min over both arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    r = float(np.abs(max(a.max(), b.max()) - min(a.min(), b.min())))
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    view = lambda v: np.lib.stride_tricks.sliding_window_view(v, (win,) * v.ndim)  # noqa: E731
    axes = tuple(range(a.ndim, 2 * a.ndim))
    wa, wb = view(a), view(b)
    ua, ub = wa.mean(axes), wb.mean(axes)
    n = win ** a.ndim
    va = ((wa - ua[(...,) + (None,) * a.ndim]) ** 2).sum(axes) / (n - 1)
    vb = ((wb - ub[(...,) + (None,) * a.ndim]) ** 2).sum(axes) / (n - 1)
    cov = ((wa - ua[(...,) + (None,) * a.ndim]) * (wb - ub[(...,) + (None,) * a.ndim])).sum(axes) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (2 * ua * ub + c1) * (2 * cov + c2) / ((ua ** 2 + ub ** 2 + c1) * (va + vb + c2))
    return float(s.mean())


def normalise_by_max(a):
    """Quantus's default normalise_func: one scalar max|a| over the whole (chunk of the) batch."""
    return a if np.all(a == 0) else a / np.abs(a).max()


def assert_close(name, ours, theirs, tol):
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{name}: NaN pattern differs"
    ok = ~np.isnan(ours)
    err = float(np.abs(ours[ok] - theirs[ok]).max()) if ok.any() else 0.0
    assert err <= tol, f"{name}: largest difference {err} > {tol}"
    print(f"  check {name:58s} max |diff| {err:.3g}")


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------

def finite(v):
    """qr.jsonable, with NaN/inf as null (JSON has no NaN) and float32 values written with the
    shortest decimal that reads back (as f32) to the same float32."""
    if isinstance(v, np.ndarray) and v.dtype == np.float32:
        v = np.array([float(str(e)) for e in v.ravel()], dtype=np.float64).reshape(v.shape)
    elif isinstance(v, np.float32):
        v = float(str(v))
    if isinstance(v, dict):
        return {k: finite(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(u) for u in v]
    v = qr.jsonable(v)
    if isinstance(v, list):
        return [finite(u) for u in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def dump(name, obj):
    path = OUT / name
    path.write_text(json.dumps(finite(obj), allow_nan=False, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(qr.ROOT)} ({path.stat().st_size} bytes)")


def versions():
    return {p: importlib.metadata.version(p)
            for p in ("quantus", "torch", "numpy", "scipy", "scikit-image", "zennit", "safetensors")}


# ---------------------------------------------------------------------------------------------
# 1. noisy_linear_imputation
# ---------------------------------------------------------------------------------------------

def imputation_fixture():
    rng = np.random.default_rng(11)
    specs = [
        ("interior", (3, 5, 7), [8, 9, 16, 24]),
        ("border-and-corners", (3, 5, 7), [0, 6, 28, 34, 3, 21, 13, 31, 1]),
        ("single-pixel", (3, 5, 7), [17]),
        ("all-but-two", (3, 5, 7), [int(i) for i in rng.permutation([i for i in range(35) if i not in (10, 26)])]),
        ("one-channel", (1, 5, 7), [0, 8, 9, 34]),
        ("rank-order-12x12", (3, 12, 12), [int(i) for i in rng.permutation(144)[:43]]),
        ("all-but-two-12x12", (3, 12, 12), [int(i) for i in rng.permutation(144)[:142]]),
    ]
    cases = []
    print("imputation:")
    for name, shape, indices in specs:
        arr = rng.uniform(-2.5, 2.5, shape).round(3).astype(np.float32)
        idx = np.asarray(indices, dtype=np.int64)
        out = noisy_linear_imputation(arr=arr.copy(), indices=idx.copy(), noise=0.0)
        out64 = noisy_linear_imputation(arr=arr.astype(np.float64), indices=idx.copy(), noise=0.0)
        ref = imputation_ref(arr, idx)
        assert out.dtype == np.float32 and out.shape == arr.shape
        keep = np.setdiff1d(np.arange(shape[1] * shape[2]), idx)
        assert np.array_equal(out.reshape(shape[0], -1)[:, keep], arr.reshape(shape[0], -1)[:, keep])
        assert_close(f"imputation {name} (float64)", ref, out64, 1e-12)
        assert_close(f"imputation {name} (float32)", ref, out, 4e-7 * max(1.0, np.abs(ref).max()))
        cases.append({"name": name, "shape": list(shape), "indices": indices,
                      "input": arr.reshape(-1), "output": out.reshape(-1), "output_f64": out64.reshape(-1)})
    dump("imputation.json", {
        **versions(),
        "function": "quantus.functions.perturb_func.noisy_linear_imputation(arr, indices, noise=0.0)",
        "layout": "arrays are flat, row-major [C, H, W]; indices are flat pixel indices p = row * W + col "
                  "into H*W, in the order passed (ROAD passes them in rank order); every channel of a "
                  "removed pixel is imputed",
        "neighbour_weights": [{"d_row": d[0], "d_col": d[1], "weight": wt} for d, wt in OFFSETS],
        "system": "for every removed pixel i (unknown v_i, solved per channel, one shared sparse matrix): "
                  "S_i * v_i - sum_{j in N(i), j removed} w_ij v_j = sum_{j in N(i), j kept} w_ij x_j, "
                  "N(i) = the 8 neighbours inside the image, w = 1/6 edge-adjacent, 1/12 diagonal, "
                  "S_i = sum_{j in N(i)} w_ij (1 minus the weights of the neighbours outside the image): "
                  "each imputed value is the weighted mean of its in-image neighbours. Solved with "
                  "scipy.sparse.linalg.spsolve in float64; kept pixels unchanged",
        "noise": "Quantus adds noise * np.random.randn(C, k) (k = len(indices), [c][rank order]) to the "
                 "solution, default noise=0.01; these cases use noise=0.0",
        "dtype": "input float32 (JSON float32 values: shortest decimal, parse as f32); `output` is Quantus's result for it (float64 solution rounded to float32 on "
                 "assignment); `output_f64` the same call on the input cast to float64",
        "cases": cases,
    })


# ---------------------------------------------------------------------------------------------
# 2. ssim
# ---------------------------------------------------------------------------------------------

def ssim_fixture():
    rng = np.random.default_rng(12)

    def rnd(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).round(4)

    a12 = rnd(12, 12)
    a28 = rng.uniform(0, 1, (28, 28)).round(4)
    rel = np.abs(rnd(3, 432))
    rel[rng.uniform(size=rel.shape) < 0.4] = 0.0  # abs-normalised relevance: many exact zeros
    rel /= rel.max()
    rel2 = np.abs(rel + rnd(3, 432, scale=0.2))
    rel2 /= rel2.max()
    a3 = rnd(3, 12, 12)
    specs = [
        ("2d-12x12", a12, (0.7 * a12 + 0.5 * rnd(12, 12)).round(4), {}, False),
        ("2d-28x28", a28, (a28 + rnd(28, 28, scale=0.3)).round(4), {}, False),
        ("2d-7x7-one-window", a12[:7, :7], a12[5:, 5:], {}, False),
        ("2d-12x12-b-constant", a12, np.full((12, 12), 0.3), {}, False),
        ("2d-12x12-both-constant-different", np.full((12, 12), 0.2), np.full((12, 12), 0.5), {}, False),
        ("2d-12x12-both-constant-equal", np.full((12, 12), 0.5), np.full((12, 12), 0.5), {}, False),
        ("2d-12x12-identical", a12, a12, {}, False),
        ("2d-12x12-win_size-5", a12, (0.7 * a12 + 0.5 * rnd(12, 12)).round(4), {"win_size": 5}, False),
        ("3x12x12", a3, (a3 + rnd(3, 12, 12, scale=0.5)).round(4), {}, False),
        ("3x12x12-win_size-3", a3, (a3 + rnd(3, 12, 12, scale=0.5)).round(4), {"win_size": 3}, False),
        ("1d-432-batched-float32", rel.astype(np.float32), rel2.astype(np.float32), {}, True),
    ]
    cases = []
    print("ssim:")
    for name, a, b, kwargs, batched in specs:
        entry = {"name": name, "shape": list(a.shape), "dtype": str(a.dtype), "kwargs": kwargs,
                 "batched": batched, "a": a.reshape(-1), "b": b.reshape(-1)}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = ssim(a, b, batched=batched, **kwargs)
            entry["value"] = value
            entry["error"] = None
            win = kwargs.get("win_size", 7)
            ours = [ssim_ref(u, v, win) for u, v in zip(a, b)] if batched else ssim_ref(a, b, win)
            tol = 2e-5 if a.dtype == np.float32 else 1e-9
            assert_close(f"ssim {name}", ours, value, tol)
        except ValueError as e:
            entry["value"] = None
            entry["error"] = f"ValueError: {str(e).split('.')[0]}"
            print(f"  {name}: {entry['error']}")
        cases.append(entry)
    dump("ssim.json", {
        **versions(),
        "function": "quantus.functions.similarity_func.ssim(a, b, batched=False, **kwargs)",
        "call": "skimage.metrics.structural_similarity(im1=a, im2=b, win_size=kwargs.get('win_size', None), "
                "data_range=|max(a, b) - min(a, b)|) -- only win_size is forwarded; batched=True maps it "
                "over the first axis",
        "resolved": {
            "data_range": "float(abs(max - min)) over both arrays together (np.concatenate)",
            "win_size": "None -> 7 (gaussian_weights=False); must be odd and <= every axis, else ValueError",
            "window": "uniform (scipy.ndimage.uniform_filter, size win_size on every axis), NOT gaussian; "
                      "win_size^ndim taps; the result is the float64 mean of the SSIM map over positions "
                      "whose window lies entirely inside the array (crop (win_size-1)//2 per side), so the "
                      "filter's boundary mode never matters",
            "ndim": "any: a [3, 12, 12] pair is one 3-D volume (channel_axis is never passed) -> ValueError "
                    "for the default win_size 7 > 3; MPRT and RandomLogit call it batched on a.reshape(N, -1), "
                    "i.e. 1-D SSIM over the flattened C*H*W explanation (7-tap window along the flat index)",
            "constants": "K1 = 0.01, K2 = 0.03, C1 = (K1 * data_range)^2, C2 = (K2 * data_range)^2",
            "variances": "sample (co)variances: cov_norm = NP / (NP - 1), NP = win_size^ndim",
            "formula": "S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2))",
            "dtype": "computed in float32 when both inputs are float32 (skimage's _supported_float_type), "
                     "float64 otherwise; the mean is accumulated in float64",
            "constant": "one constant array: finite (its variance 0). Both constant and equal: data_range 0 -> "
                        "C1 = C2 = 0 -> 0/0 = NaN (null here). Both constant, different: (2 ux uy + C1) / "
                        "(ux^2 + uy^2 + C1)",
        },
        "cases": cases,
    })


def ssim_as_array(a, b, batched=False, **kwargs):
    """Quantus's ssim with its batched list returned as an np.ndarray (MPRT calls .tolist() on
    the similarity's result, which Quantus's own ssim does not survive)."""
    return np.asarray(ssim(a, b, batched=batched, **kwargs))


# ---------------------------------------------------------------------------------------------
# 3. ROAD
# ---------------------------------------------------------------------------------------------

class PixelROAD(quantus.ROAD):
    """Quantus 0.6.0's ROAD with evaluate_batch ranking the H*W pixels of a [N, 1, H, W]
    explanation instead of the broadcast C*H*W elements (which crash noisy_linear_imputation for
    C > 1). The rest of evaluate_batch is Quantus's, line for line; it also keeps every batch's
    per-sample results and target margins (f_y - max_{c != y} f_c of what ROAD predicts on)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.per_sample, self.margins = [], []

    def evaluate_batch(self, model, x_batch, y_batch, a_batch, **kwargs):
        batch_size = a_batch.shape[0]
        a_batch = a_batch.reshape(batch_size, -1)  # the change: [B, H*W], no broadcast to C*H*W
        assert a_batch.shape[1] == self.a_size == x_batch.shape[-2] * x_batch.shape[-1]
        ordered_indices = np.argsort(-a_batch, axis=1)
        results, margins = [], []
        for p in self.percentages:
            top_k_indices = ordered_indices[:, : int(self.a_size * p / 100)]
            x_perturbed = np.stack([self.perturb_func(arr=x_element, indices=top_k_index)
                                    for x_element, top_k_index in zip(x_batch, top_k_indices)], axis=0)
            x_input = model.shape_input(x_perturbed, x_batch.shape, channel_first=True, batched=True)
            prediction = model.predict(x_input)
            class_pred_perturb = np.argmax(prediction, axis=-1)
            results.append(y_batch == class_pred_perturb)
            rows = np.arange(batch_size)
            others = prediction.copy()
            others[rows, y_batch] = -np.inf
            margins.append(prediction[rows, y_batch] - others.max(axis=1))
        results = np.stack(results, axis=1).astype(int)
        self.per_sample.append(results)
        self.margins.append(np.stack(margins, axis=1))
        return [results]


def road_fixture(model_json, state, classes):
    g = torch.Generator().manual_seed(ROAD_INPUT_SEED)
    x = (torch.randn((ROAD_N, 3, 12, 12), generator=g) * 1.2).clamp(-2.5, 2.5).numpy()
    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    percentages = list(range(1, 100, 2))

    def road_runs(model, variants):
        with torch.no_grad():
            logits = model(torch.from_numpy(x)).numpy()
        targets = logits.argmax(axis=1).astype(np.int64)
        a = explain(model, x, targets).sum(axis=1, keepdims=True, dtype=np.float32)  # [N, 1, H, W]
        call = dict(model=model, x_batch=x, y_batch=targets, a_batch=a, channel_first=True, batch_size=ROAD_N)
        runs, margins = {}, {}
        for noise, stable in variants:
            name = f"noise-{noise:g}" + ("/stable-ties" if stable else "")
            metric = PixelROAD(noise=noise, **common)
            np.random.seed(ROAD_NOISE_SEED)
            with qr.stable_argsort() if stable else contextlib.nullcontext():
                scores = metric(**call)
            per_sample = np.concatenate(metric.per_sample, axis=0)  # [N, P]
            mean = per_sample.mean(axis=0)
            assert list(scores) == percentages and np.allclose([scores[p] for p in percentages], mean)
            runs[name] = {
                "noise": noise,
                "np_random_seed": ROAD_NOISE_SEED if noise else None,
                "argsort": "stable (ties: ascending pixel index)" if stable else "numpy default (quicksort; host tie order)",
                "batch_size": ROAD_N,
                "mean": mean,
                "stderr": per_sample.std(axis=0, ddof=1) / np.sqrt(ROAD_N),
                "quantus_scores": [scores[p] for p in percentages],
                "per_sample": per_sample.T,  # [P][N]
            }
            margins[name] = np.concatenate(metric.margins, axis=0).astype(np.float32)
            print(f"ROAD {name:22s} accuracy at p = 1, 25, 49, 75, 99: "
                  f"{[round(float(mean[percentages.index(p)]), 3) for p in (1, 25, 49, 75, 99)]}")
        return logits, targets, a, call, runs, margins

    # The fixture's own model: its logits barely depend on the input (class 0 for every input here,
    # every margin large), so ROAD's accuracy is 1 everywhere -- recorded, but it tests nothing.
    print("ROAD on the fixture model as is:")
    logits, _, _, _, plain_runs, plain_margins = road_runs(qr.build(model_json, state), ((0.01, False), (0.0, True)))
    plain = {
        "targets_bincount": np.bincount(logits.argmax(axis=1), minlength=classes),
        "logit_std_over_inputs": logits.std(axis=0),
        "logit_mean_over_inputs": logits.mean(axis=0),
        "min_margin": min(float(m.min()) for m in plain_margins.values()),
        "runs": {k: {"mean": v["mean"], "all_ones": bool(np.all(v["per_sample"] == 1))} for k, v in plain_runs.items()},
    }

    # The same model with the last linear layer's bias centred on these inputs (the per-class mean
    # logit subtracted), so the predicted class depends on the input and ROAD's curve moves.
    last = [str(i) for i, layer in enumerate(model_json["layers"]) if layer["kind"] == "linear"][-1]
    centred_state = dict(state)
    centred_state[f"{last}.bias"] = (state[f"{last}.bias"] - logits.mean(axis=0, dtype=np.float64)).astype(np.float32)
    model = qr.build(model_json, centred_state)
    print(f"ROAD on the model with {last}.bias centred:")
    logits, targets, a, call, runs, margins = road_runs(
        model, ((0.01, False), (0.01, True), (0.0, False), (0.0, True)))
    margins = margins["noise-0/stable-ties"]

    # Quantus's own ROAD, unchanged, on these [N, 3, H, W] inputs.
    try:
        quantus.ROAD(**common)(**call)
        unchanged = "ran"
    except IndexError as e:
        unchanged = f"IndexError: {e}"
    print(f"ROAD (unchanged Quantus): {unchanged}")
    for noise in ("noise-0.01", "noise-0"):
        runs[noise]["tie_order_matters"] = bool(
            not np.array_equal(runs[noise]["per_sample"], runs[noise + "/stable-ties"]["per_sample"]))

    # Quantus's custom_postprocess averages evaluation_scores[0]: the FIRST batch only.
    metric = PixelROAD(noise=0.0, **common)
    with qr.stable_argsort():
        scores64 = metric(**{**call, "batch_size": 64})
    first64 = runs["noise-0/stable-ties"]["per_sample"][:, :64].mean(axis=1)
    assert np.allclose([scores64[p] for p in percentages], first64)
    full = runs["noise-0/stable-ties"]["mean"]
    print(f"  check ROAD batch_size=64 reports the first batch's mean only "
          f"(max |first64 - all| = {np.abs(first64 - full).max():.3g})")

    # Re-derive the deterministic run for some samples: rank pixels (stable), impute, predict.
    print("road:")
    a_norm = a / np.abs(a).max()
    same_rank = all(np.array_equal(np.argsort(-a_norm[i].ravel(), kind="stable"),
                                   np.argsort(-a[i].ravel(), kind="stable")) for i in range(ROAD_N))
    check_n = 16
    ours = np.zeros((check_n, len(percentages)), dtype=int)
    for i in range(check_n):
        order = np.argsort(-a_norm[i].ravel(), kind="stable")
        xs = np.stack([imputation_ref(x[i], order[: 144 * p // 100]) for p in percentages]).astype(np.float32)
        with torch.no_grad():
            ours[i] = (model(torch.from_numpy(xs)).argmax(1).numpy() == targets[i]).astype(int)
    theirs = runs["noise-0/stable-ties"]["per_sample"][:, :check_n].T
    near = np.abs(margins[:check_n]) < 1e-6
    assert np.array_equal(ours[~near], theirs[~near])
    print(f"  check ROAD noise-0/stable-ties re-derived for {check_n} samples: equal "
          f"({int(near.sum())} near-ties skipped)")

    save_file({"x": x, "a": a, "targets": targets, "margin.noise-0.stable-ties": margins,
               **{f"model/{k}": np.array(v) for k, v in centred_state.items()}},
              str(OUT / "road.safetensors"))
    print(f"wrote {(OUT / 'road.safetensors').relative_to(qr.ROOT)} ({(OUT / 'road.safetensors').stat().st_size} bytes)")
    dump("road.json", {
        **versions(),
        "fixture": "tests/fixtures/zennit/cnn's model.json with the state_dict road.safetensors `model/<key>` "
                   "(weights.safetensors with the last bias centred, see `model`); inputs, explanations and "
                   "targets in road.safetensors",
        "model": f"weights.safetensors, except {last}.bias := {last}.bias - mean over the 256 inputs x of the "
                 "fixture model's float32 logits (float64 mean, rounded to float32). The fixture's model as "
                 "is predicts class 0 for every input (logits vary ~1e-3 across inputs, the class-0 lead is "
                 "~0.08), so ROAD is 1.0 at every percentage there (`fixture_model_as_is`)",
        "fixture_model_as_is": plain,
        "inputs": f"x = (torch.randn((256, 3, 12, 12), generator=torch.Generator().manual_seed({ROAD_INPUT_SEED})) "
                  "* 1.2).clamp(-2.5, 2.5), as generate.py draws the fixture's input",
        "targets": "argmax of the (centred) model's logits on x",
        "targets_bincount": np.bincount(targets, minlength=classes),
        "a": "explain(model, x, targets) (EpsilonPlus, one_hot * logits) summed over channels (float32), "
             "[N, 1, 12, 12]",
        "num_classes": classes,
        "percentages": percentages,
        "k": [144 * p // 100 for p in percentages],
        "defaults": qr.signature_defaults(quantus.ROAD),
        "settings": {"noise": "0.01 default; 0 for the deterministic runs", "normalise": True, "abs": False,
                     "normalise_func": "normalise_by_max: a / max|a| over the whole a_batch (all N)",
                     "softmax": True, "perturb_func": "noisy_linear_imputation", "batch_size": ROAD_N},
        "unchanged_quantus_road": unchanged,
        "pixel_road_change": "evaluate_batch ranks a.reshape(B, H*W) (Quantus: np.broadcast_to(a, x.shape)"
                             ".reshape(B, C*H*W), whose indices >= H*W crash noisy_linear_imputation)",
        "procedure": "per percentage p (in order): k = floor(H*W*p/100) = floor(144 p / 100) (Quantus: "
                     "int(a_size * p / 100), a_size = a_batch[0].size = 1*H*W); the k pixels with the largest "
                     "normalised a (np.argsort(-a), descending) are imputed on all channels of x (each p "
                     "starts from the original x, not cumulative); result = (argmax softmax(f(x_p)) == target). "
                     "mean = accuracy over the N samples. Noise: after np.random.seed(42) once per run, "
                     "draws go batch by batch, then percentage by percentage, then sample by sample, "
                     "each np.random.randn(C, k)",
        "ranking_on_normalised_equals_raw": same_rank,
        "zero_pixels_fraction": float((a == 0).mean()),
        "margin": "road.safetensors margin.noise-0.stable-ties [N, P]: softmax f_y - max_{c != y} f_c on the "
                  "imputed input; |margin| tiny -> the 0/1 result may flip between implementations",
        "runs": runs,
        "notes": [
            "Quantus 0.6.0 ROAD.custom_postprocess averages self.evaluation_scores[0], i.e. only the first "
            "batch (batch_size defaults to 64): with N > batch_size its returned accuracies cover the first "
            "64 samples only. These runs use batch_size = N, so quantus_scores == mean.",
            "ROAD's a_size assumes a per-pixel explanation: a_batch[0, :, :].size = H*W only for a [N, 1, H, W] "
            "a_batch; a [N, C, H, W] a_batch gives C*H*W (and the same crash).",
            "A single score per percentage has no unperturbed point and no AUC; lower is better "
            "(ScoreDirection.LOWER) for MoRF.",
        ],
    })


# ---------------------------------------------------------------------------------------------
# 4. MPRT
# ---------------------------------------------------------------------------------------------

def mprt_fixture(model, model_json, x, targets):
    layer_of = {str(i): layer for i, layer in enumerate(model_json["layers"])}
    for i, layer in layer_of.items():
        assert layer.get("name", i) == i  # the fixture's layer names are torch's module indices
    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    call = dict(model=model, x_batch=x.copy(), y_batch=targets.copy(), a_batch=None, channel_first=True,
                explain_func=explain, batch_size=64)
    sims = {"correlation_spearman": correlation_spearman, "ssim": ssim_as_array}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantus.MPRT(similarity_func=ssim, **common)(**call)
        ssim_unchanged = "ran"
    except AttributeError as e:
        ssim_unchanged = f"AttributeError: {e}"
    print(f"MPRT with Quantus's ssim as is: {ssim_unchanged}")
    tensors, orders = {}, {}
    print("mprt:")
    for order in ("top_down", "independent"):
        entry = {"similarity": {}, "steps": None}
        weights = None
        for sim_name, sim in sims.items():
            with recording_random_layers() as steps, recording() as calls, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = quantus.MPRT(similarity_func=sim, layer_order=order, **common)(**call)
            entry["similarity"][sim_name] = {k: list(v) for k, v in scores.items()}
            if weights is None:
                weights = steps
                # calls: a_batch (original), "original" step, then one per randomised layer
                assert len(calls) == len(steps) + 2
                explanations = [c["a"] for c in calls]
            else:
                assert [n for n, _ in steps] == [n for n, _ in weights]
                assert all(np.array_equal(s[k], w[k]) for (_, s), (_, w) in zip(steps, weights) for k in s)
                assert all(np.array_equal(c["a"], e) for c, e in zip(calls, explanations))
        for average, last in ((True, False), (False, True)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = quantus.MPRT(layer_order=order, return_average_correlation=average,
                                      return_last_correlation=last, **common)(**call)
            entry["return_average_correlation" if average else "return_last_correlation"] = values
        tensors["explanation/original"] = explanations[0]
        assert np.array_equal(explanations[0], explanations[1])
        step_entries = []
        randomised = []
        for step, (name, state) in enumerate(weights):
            layer = layer_of[name]
            randomised = randomised + [name] if order == "top_down" else [name]
            prefix = f"{order}/step{step}-{name}/"
            tensors.update({prefix + k: np.array(v) for k, v in state.items()})
            key = f"explanation/{order}/step{step}-{name}"
            tensors[key] = explanations[step + 2]
            step_entries.append({"step": step, "layer": name, "kind": layer["kind"], "weights_prefix": prefix,
                                 "randomised_so_far": list(randomised), "explanation": key})
        entry["steps"] = step_entries
        orders[order] = entry
        check_mprt(order, entry, weights, explanations, model_json, x, targets)

    save_file(tensors, str(OUT / "mprt.safetensors"))
    print(f"wrote {(OUT / 'mprt.safetensors').relative_to(qr.ROOT)} ({(OUT / 'mprt.safetensors').stat().st_size} bytes)")
    dump("mprt.json", {
        **versions(),
        "fixture": "tests/fixtures/zennit/cnn: x = reference.safetensors `input`, targets = cases.json targets",
        "targets": targets,
        "explain_func": "EpsilonPlus, R_out = one_hot(target) * logits (relevance.epsilon-plus/logit), raw "
                        "float32 [N, C, H, W]; raw explanations in mprt.safetensors",
        "defaults": qr.signature_defaults(quantus.MPRT),
        "settings": {
            "seed": 42, "abs": True, "normalise": True, "skip_layers": False, "batch_size": 64,
            "order_of_preprocessing": "a = explain(...); a = a / max|a| over the whole chunk of up to batch_size "
                                      "samples (one scalar; skipped if all zero); a = |a|; then "
                                      "similarity_func(a_ref.reshape(N, -1), a_rand.reshape(N, -1), batched=True)",
            "reference": "a_ref = the ORIGINAL model's explanation (never the previous step's)",
            "correlation_spearman": "scipy.stats.spearmanr per sample on the flattened C*H*W vectors (average "
                                    "ranks for ties; NaN (null) if either vector is constant)",
            "ssim": "quantus ssim on the flattened 1-D C*H*W vectors (see ssim.json), float32",
        },
        "ssim_as_is": ssim_unchanged,
        "ssim_wrapper": "MPRT calls .tolist() on the similarity's result, but ssim(batched=True) returns a list "
                        "-> AttributeError; the ssim runs use np.asarray(ssim(...)), values unchanged",
        "randomisation": "PyTorchModel.get_random_layer_generator: modules with reset_parameters (named_modules "
                         "order: 0 conv, 1 batch_norm2d, 4 conv, 7 conv, 11 linear, 13 linear); top_down = reversed "
                         "and cascading (the same model copy keeps every earlier reset); independent = forward "
                         "order, the original state_dict reloaded before each reset. Before each reset "
                         "torch.manual_seed(seed + 1 = 43); conv/linear: kaiming_uniform_(a=sqrt(5)) weight and "
                         "U(+-1/sqrt(fan_in)) bias; batch_norm2d: reset_parameters is NOT random -- weight 1, "
                         "bias 0, running_mean 0, running_var 1, num_batches_tracked 0",
        "weights": "mprt.safetensors `<order>/step<k>-<layer>/<state_dict key>`: the whole state_dict of the "
                   "model explained at that step (same keys as weights.safetensors)",
        "original": "scores['original'] (first key) = similarity(a_ref, explanation of the unchanged model) -- "
                    "1.0 for every sample (the same deterministic explanation twice), emitted before the first "
                    "randomised layer",
        "orders": orders,
        "notes": [
            "return_average_correlation averages over every key except 'orig', but the key is 'original': "
            "the 1.0 of the original step IS included in the average (Quantus bug).",
            "return_last_correlation = the last step's values (the fully randomised model for top_down; the "
            "last module (13) randomised alone for independent).",
            "normalisation is per chunk of batch_size, so ssim values depend on which samples share a chunk.",
        ],
    })


def check_mprt(order, entry, weights, explanations, model_json, x, targets):
    """The saved weights reproduce the recorded explanations, and the recorded explanations
    reproduce Quantus's similarities with plain numpy/scipy."""
    original = np.abs(normalise_by_max(explanations[0])).reshape(len(x), -1)
    for step, (name, state) in enumerate(weights):
        rebuilt = qr.build(model_json, state)
        a = explain(rebuilt, x, targets)
        assert_close(f"mprt {order} step {step} ({name}) weights -> explanation", a, explanations[step + 2], 0.0)
        rand = np.abs(normalise_by_max(explanations[step + 2])).reshape(len(x), -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = [scipy.stats.spearmanr(u, v)[0] for u, v in zip(original, rand)]
        assert_close(f"mprt {order} step {step} spearman", rho,
                     entry["similarity"]["correlation_spearman"][name], 1e-12)
        assert_close(f"mprt {order} step {step} ssim", [ssim_ref(u, v) for u, v in zip(original, rand)],
                     entry["similarity"]["ssim"][name], 2e-5)


# ---------------------------------------------------------------------------------------------
# 5. RandomLogit
# ---------------------------------------------------------------------------------------------

def random_logit_fixture(model, x, targets, road_model, road_x, road_targets, classes):
    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    results = {}
    print("random_logit:")
    for name, m, xs, ys in (("cnn-fixture", model, x, targets), ("road-inputs", road_model, road_x, road_targets)):
        with recording() as calls, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = quantus.RandomLogit(num_classes=classes, **common)(
                model=m, x_batch=xs.copy(), y_batch=ys.copy(), a_batch=None, channel_first=True,
                explain_func=explain, batch_size=64)
        # per chunk of 64: explain(y), then explain(y_off)
        assert len(calls) == 2 * math.ceil(len(xs) / 64)
        y_off = np.concatenate([c["targets"] for c in calls[1::2]])
        # Re-derive the draw: np.random.seed(42) per batch, idx = randint(0, K - 1, B), the idx-th
        # class of the K - 1 classes != y in ascending order.
        ours, draws = [], []
        for start in range(0, len(xs), 64):
            y = ys[start:start + 64]
            np.random.seed(42)
            idx = np.random.randint(0, classes - 1, len(y))
            draws.append(idx)
            ours.append(idx + (idx >= y))
        assert np.array_equal(np.concatenate(ours), y_off) and not np.any(y_off == ys)
        # Similarities from the recorded explanations: normalise per chunk, no abs, 1-D ssim.
        sims = []
        for a_y, a_off in zip(calls[0::2], calls[1::2]):
            u = normalise_by_max(a_y["a"]).reshape(len(a_y["a"]), -1)
            v = normalise_by_max(a_off["a"]).reshape(len(a_off["a"]), -1)
            sims += [ssim_ref(p, q) for p, q in zip(u, v)]
        assert_close(f"random_logit {name} ssim", sims, values, 2e-5)
        results[name] = {"n": len(xs), "batch_size": 64, "targets": ys, "random_class": y_off,
                         "random_index": np.concatenate(draws),
                         "similarity": values}
    dump("random_logit.json", {
        **versions(),
        "inputs": {"cnn-fixture": "tests/fixtures/zennit/cnn reference.safetensors `input`, cases.json targets",
                   "road-inputs": "road.json's model (road.safetensors model/<key>: the bias-centred CNN), x and "
                                  "targets (its argmax); 4 chunks of 64"},
        "explain_func": "EpsilonPlus, R_out = one_hot(class) * logits (see mprt.json)",
        "num_classes": classes,
        "defaults": qr.signature_defaults(quantus.RandomLogit),
        "settings": {"similarity_func": "ssim (default)", "seed": 42, "abs": False, "normalise": True,
                     "normalise_func": "normalise_by_max per chunk of batch_size (one scalar max|a| over the "
                                       "chunk), applied separately to the target's and the random class's batch",
                     "similarity": "ssim(a_y.reshape(B, -1), a_off.reshape(B, -1), batched=True): 1-D SSIM over "
                                   "the flattened C*H*W explanation (ssim.json), float32"},
        "class_draw": "per chunk of batch_size: np.random.seed(seed); idx = np.random.randint(0, num_classes - 1, "
                      "B) (legacy RandomState, upper bound exclusive); random_class = the idx-th of the classes != "
                      "target in ascending order = idx + (idx >= target). Reseeded every chunk: the idx sequence "
                      "repeats every 64 samples",
        "results": results,
    })


# ---------------------------------------------------------------------------------------------
# 6. RandomLogit with Spearman
# ---------------------------------------------------------------------------------------------

def random_logit_spearman_fixture(model, x, targets, road_model, road_x, road_targets, classes):
    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    previous = json.loads((OUT / "random_logit.json").read_text())["results"]
    results, used = {}, None
    print("random_logit (correlation_spearman):")
    for name, m, xs, ys in (("cnn-fixture", model, x, targets), ("road-inputs", road_model, road_x, road_targets)):
        values = {}
        for normalise in (True, False):
            metric = quantus.RandomLogit(num_classes=classes, similarity_func=correlation_spearman,
                                         normalise=normalise, **common)
            with recording() as calls, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values[normalise] = np.asarray(metric(
                    model=m, x_batch=xs.copy(), y_batch=ys.copy(), a_batch=None, channel_first=True,
                    explain_func=explain, batch_size=64), dtype=np.float64)
            if normalise:
                used = {"abs": metric.abs, "normalise": metric.normalise, "seed": metric.seed,
                        "num_classes": metric.num_classes,
                        "normalise_func": getattr(metric.normalise_func, "__name__", str(metric.normalise_func)),
                        "similarity_func": f"{metric.similarity_func.__module__}.{metric.similarity_func.__name__}"}
                normalised_calls = calls
        assert len(normalised_calls) == 2 * math.ceil(len(xs) / 64)
        y_off = np.concatenate([c["targets"] for c in normalised_calls[1::2]])
        assert y_off.tolist() == previous[name]["random_class"], "spearman run drew other classes than ssim's"
        identical = bool(np.array_equal(values[True], values[False], equal_nan=True))
        assert identical, f"{name}: normalise changed Spearman"
        # Re-derive: per sample spearmanr of the RAW (unnormalised, signed) flattened C*H*W explanations.
        rho = []
        for a_y, a_off in zip(normalised_calls[0::2], normalised_calls[1::2]):
            u = a_y["a"].reshape(len(a_y["a"]), -1).astype(np.float64)
            v = a_off["a"].reshape(len(a_off["a"]), -1).astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rho += [scipy.stats.spearmanr(p, q)[0] for p, q in zip(u, v)]
        assert_close(f"random_logit {name} spearman", rho, values[True], 1e-12)
        sim = values[True]
        results[name] = {"n": len(xs), "batch_size": 64, "targets": ys, "random_class": y_off,
                         "random_index": previous[name]["random_index"],
                         "similarity": sim, "nan_count": int(np.isnan(sim).sum()),
                         "mean": float(np.nanmean(sim)),
                         "stderr": float(np.nanstd(sim, ddof=1) / np.sqrt(np.sum(~np.isnan(sim)))),
                         "normalise_false_identical": identical}
        print(f"  {name}: mean Spearman {results[name]['mean']:.4f} +- {results[name]['stderr']:.4f}, "
              f"normalise=False identical: {identical}")
    dump("random_logit_spearman.json", {
        **versions(),
        "inputs": {"cnn-fixture": "tests/fixtures/zennit/cnn reference.safetensors `input`, cases.json targets",
                   "road-inputs": "road.safetensors: model/<key> (the bias-centred CNN), x, targets; 4 chunks of 64"},
        "explain_func": "EpsilonPlus, R_out = one_hot(class) * logits (see mprt.json); float32 [N, 3, H, W]",
        "num_classes": classes,
        "defaults": qr.signature_defaults(quantus.RandomLogit),
        "settings": {**used, "batch_size": 64, "return_aggregate": False,
                     "call": "RandomLogit(num_classes=K, similarity_func=quantus.similarity_func."
                             "correlation_spearman, disable_warnings=True, return_aggregate=False)"
                             "(model, x, y, a_batch=None, explain_func=explain, batch_size=64)"},
        "similarity": "correlation_spearman(a_y.reshape(B, -1), a_off.reshape(B, -1), batched=True) = "
                      "diag of the cross block of scipy.stats.spearmanr(a, b, axis=1): per sample the Pearson "
                      "correlation of the ranks of the two flattened C*H*W (= 432) SIGNED explanations (abs=False), "
                      "ties get average ranks, NaN (null) if either vector is constant; float64",
        "normalisation": "normalise=True divides each chunk's explanations by one positive scalar (max|a| over the "
                         "chunk, target and random class separately): ranks unchanged, so Spearman is bitwise "
                         "identical with normalise=False (checked, `normalise_false_identical`). Re-derived "
                         "here from the raw explanations to 1e-12",
        "class_draw": "exactly random_logit.json's (checked): per chunk np.random.seed(42); idx = "
                      "randint(0, num_classes - 1, B); random_class = idx + (idx >= target)",
        "results": results,
    })


# ---------------------------------------------------------------------------------------------
# 7. FaithfulnessCorrelation
# ---------------------------------------------------------------------------------------------

def faithfulness_correlation_fixture(road_model, road):
    x, a1, targets = road["x"], road["a"], road["targets"]
    n, c, h, w = x.shape
    features = c * h * w
    a = np.repeat(a1, c, axis=1)  # [N, C, H, W]: the per-pixel relevance on every channel
    common = dict(disable_warnings=True, display_progressbar=False, return_aggregate=False)
    settings = dict(subset_size=FC_SUBSET, nr_runs=FC_RUNS, perturb_baseline="black", abs=False, normalise=True)
    call = dict(model=road_model, x_batch=x.copy(), y_batch=targets.copy(), channel_first=True,
                batch_size=FC_BATCH)

    def run(softmax, a_batch, **over):
        metric = quantus.FaithfulnessCorrelation(**{**settings, **over}, **common)
        perturb, sim = metric.perturb_func, metric.similarity_func
        rec = {"indices": [], "baseline": [], "att_sums": [], "pred_deltas": []}

        def perturb_rec(arr, indices, **kwargs):
            out = perturb(arr=arr, indices=indices, **kwargs)
            rec["indices"].append(indices.copy())
            rec["baseline"].append(out[np.arange(len(out)), indices[:, 0]].copy())
            return out

        def sim_rec(a, b, **kwargs):
            rec["att_sums"].append(a.copy())
            rec["pred_deltas"].append(b.copy())
            return sim(a=a, b=b, **kwargs)

        metric.perturb_func, metric.similarity_func = perturb_rec, sim_rec
        rec["perturb_func"], rec["similarity_func"] = perturb, sim
        np.random.seed(FC_SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.asarray(metric(a_batch=a_batch.copy(), softmax=softmax, **call))
        chunks = len(rec["att_sums"])
        assert chunks == math.ceil(n / FC_BATCH) and len(rec["indices"]) == chunks * FC_RUNS
        rec["indices"] = np.concatenate([np.stack(rec["indices"][k * FC_RUNS:(k + 1) * FC_RUNS], axis=1)
                                         for k in range(chunks)])  # [N, runs, subset]
        rec["baseline"] = np.concatenate([np.stack(rec["baseline"][k * FC_RUNS:(k + 1) * FC_RUNS], axis=1)
                                          for k in range(chunks)])  # [N, runs]
        rec["att_sums"] = np.concatenate(rec["att_sums"])  # [N, runs]
        rec["pred_deltas"] = np.concatenate(rec["pred_deltas"])
        return values, metric, rec

    # The global-RNG stream Quantus consumes, re-derived: per chunk of FC_BATCH, per run, one
    # np.random.choice(F, S, replace=False) (= permutation(F)[:S]) per sample, then get_baseline_dict's
    # np.random.uniform(0, 1, size=B) (its "uniform" entry is drawn even for "black").
    np.random.seed(FC_SEED)
    derived = []
    for start in range(0, n, FC_BATCH):
        b = min(FC_BATCH, n - start)
        per_run = []
        for _ in range(FC_RUNS):
            per_run.append(np.stack([np.random.permutation(features)[:FC_SUBSET] for _ in range(b)]))
            np.random.uniform(0.0, 1.0, size=b)
        derived.append(np.stack(per_run, axis=1))
    derived = np.concatenate(derived)

    black = x.reshape(n, -1).min(axis=1)
    a_norm = a / np.abs(a).max()  # normalise_by_max over the whole a_batch: one scalar
    x_flat = x.reshape(n, -1)
    print("faithfulness_correlation:")
    runs, exact, used = {}, {}, None
    indices_ref = None
    for softmax in (False, True):
        name = f"softmax-{str(softmax).lower()}"
        values, metric, rec = run(softmax, a)
        if used is None:
            used = {"subset_size": metric.subset_size, "nr_runs": metric.nr_runs, "abs": metric.abs,
                    "normalise": metric.normalise,
                    "normalise_func": getattr(metric.normalise_func, "__name__", str(metric.normalise_func)),
                    "similarity_func": f"{rec['similarity_func'].__module__}.{rec['similarity_func'].__name__}",
                    "perturb_func": f"{rec['perturb_func'].func.__module__}.{rec['perturb_func'].func.__name__}",
                    "perturb_func_kwargs": dict(rec["perturb_func"].keywords),
                    "batch_size": FC_BATCH, "return_aggregate": metric.return_aggregate}
        assert np.array_equal(rec["indices"], derived), "re-derived RNG stream differs"
        assert np.all((rec["indices"] >= 0) & (rec["indices"] < features))
        assert all(len(set(r.tolist())) == FC_SUBSET for r in rec["indices"].reshape(-1, FC_SUBSET))
        assert np.array_equal(rec["baseline"], np.broadcast_to(black[:, None], rec["baseline"].shape))
        if indices_ref is None:
            indices_ref = rec["indices"]
        assert np.array_equal(indices_ref, rec["indices"])
        # Quantus's own similarity on its own series, float32 (scipy keeps float32) vs float64.
        p64 = np.array([scipy.stats.pearsonr(u, v)[0] for u, v in
                        zip(rec["att_sums"].astype(np.float64), rec["pred_deltas"].astype(np.float64))])
        assert_close(f"fc {name} pearson float64 of Quantus's series", p64, values, 1e-5)
        # Re-derive everything: att sums of the normalised a, black-baseline perturbation, deltas.
        rows = np.arange(n)[:, None, None]
        att = a_norm.reshape(n, -1)[rows, derived].astype(np.float64).sum(axis=-1)  # [N, runs]
        assert_close(f"fc {name} attribution sums", att, rec["att_sums"], 1e-5)
        xp = np.repeat(x_flat[:, None, :], FC_RUNS, axis=1)  # [N, runs, F]
        xp[rows, np.arange(FC_RUNS)[None, :, None], derived] = black[:, None, None]
        with torch.no_grad():
            out = road_model(torch.from_numpy(np.concatenate([x, xp.reshape(-1, c, h, w)])))
            if softmax:
                out = torch.softmax(out, dim=-1)
            out = out.numpy().astype(np.float64)
        f_x = out[np.arange(n), targets]
        f_p = out[n:].reshape(n, FC_RUNS, -1)[np.arange(n)[:, None], np.arange(FC_RUNS)[None, :], targets[:, None]]
        deltas = f_x[:, None] - f_p
        assert_close(f"fc {name} prediction deltas", deltas, rec["pred_deltas"], 1e-5)
        ours = np.array([scipy.stats.pearsonr(u, v)[0] for u, v in zip(att, deltas)])
        assert_close(f"fc {name} per-sample Pearson re-derived (float64)", ours, values, 1e-4)
        # Sensitivity to the model's float32 arithmetic: the deltas are small (~1e-3 logits), so
        # the same draws through a float64 copy of the model move the scores by this much.
        model64 = copy.deepcopy(road_model).double()
        with torch.no_grad():
            out64 = model64(torch.from_numpy(np.concatenate([x, xp.reshape(-1, c, h, w)]).astype(np.float64)))
            if softmax:
                out64 = torch.softmax(out64, dim=-1)
            out64 = out64.numpy()
        d64 = out64[np.arange(n), targets][:, None] - out64[n:].reshape(n, FC_RUNS, -1)[
            np.arange(n)[:, None], np.arange(FC_RUNS)[None, :], targets[:, None]]
        ours64 = np.array([scipy.stats.pearsonr(u, v)[0] for u, v in zip(att, d64)])
        model64_diff = float(np.nanmax(np.abs(ours64 - values)))
        # Normalisation: a positive scalar -> the same Pearson (up to float32 rounding of the sums).
        np_values, _, _ = run(softmax, a, normalise=False)
        norm_diff = float(np.nanmax(np.abs(np_values - values)))
        # The un-repeated [N, 1, H, W] a is broadcast by evaluate_batch: identical.
        one_values, _, _ = run(softmax, a1)
        same_one = bool(np.array_equal(one_values, values, equal_nan=True))
        ok = ~np.isnan(values)
        runs[name] = {
            "softmax": softmax,
            "np_random_seed": FC_SEED,
            "values": values.astype(np.float32),
            "nan_count": int((~ok).sum()),
            "mean": float(values[ok].astype(np.float64).mean()),
            "stderr": float(values[ok].astype(np.float64).std(ddof=1) / np.sqrt(ok.sum())),
            "values_float64_pearson": p64,
            "f_x": f_x.astype(np.float32),
            "normalise_false_max_abs_diff": norm_diff,
            "float64_model_max_abs_diff": model64_diff,
            "a_unrepeated_identical": same_one,
        }
        exact[name] = {"att_sums": rec["att_sums"][:FC_EXACT], "pred_deltas": rec["pred_deltas"][:FC_EXACT]}
        print(f"  FaithfulnessCorrelation {name}: mean {runs[name]['mean']:.4f} +- {runs[name]['stderr']:.4f} "
              f"(NaN {runs[name]['nan_count']}), normalise=False max |diff| {norm_diff:.3g}, "
              f"float64 model max |diff| {model64_diff:.3g}, "
              f"[N,1,H,W] a identical: {same_one}")

    dump("faithfulness_correlation.json", {
        **versions(),
        "inputs": "road.safetensors: model/<key> (the bias-centred CNN of road.json), x [256, 3, 12, 12] f32, "
                  "targets i64 (the model's argmax)",
        "attributions": "road.safetensors `a` [256, 1, 12, 12] (EpsilonPlus relevance summed over channels) "
                        "repeated over the 3 channels: np.repeat(a, 3, axis=1) -> [256, 3, 12, 12] (passing the "
                        "[256, 1, 12, 12] a as is gives identical values, `a_unrepeated_identical`: Quantus "
                        "np.broadcast_to's it to x's shape)",
        "n": n,
        "n_features": features,
        "defaults": qr.signature_defaults(quantus.FaithfulnessCorrelation),
        "settings": {**used, "np_random_seed": FC_SEED,
                     "call": f"np.random.seed({FC_SEED}); FaithfulnessCorrelation(subset_size={FC_SUBSET}, "
                             f"nr_runs={FC_RUNS}, perturb_baseline='black', abs=False, normalise=True, "
                             "return_aggregate=False, disable_warnings=True)(model, x, y, a_batch=a, "
                             f"channel_first=True, softmax=<run>, batch_size={FC_BATCH}); the seed is set "
                             "before each run"},
        "softmax_default": "__call__'s softmax defaults to False (logits), see defaults.call",
        "procedure": {
            "normalise": "a_batch / max|a_batch| over ALL N samples (one positive scalar, before batching); "
                         "abs=False: signed attributions",
            "flatten": "a and x are flattened per sample to F = C*H*W = 432 values, row-major (c, h, w): flat "
                       "index = c*144 + h*12 + w; every channel value is its own feature (with the repeated a, "
                       "the 3 channel values of a pixel carry the same attribution but are drawn independently)",
            "subset": "per run and per sample, S = subset_size = 36 distinct flat indices drawn uniformly WITHOUT "
                      "replacement from the F = 432 C*H*W values (np.random.choice(F, S, replace=False) = "
                      "np.random.permutation(F)[:S], legacy global RandomState); a fresh subset every run; runs "
                      "are independent (each perturbs the original x). Quantus's check: subset_size < H*W",
            "baseline": "'black' = per-sample min of the ORIGINAL x over all C*H*W values "
                        "(x.reshape(B, -1).min(axis=1); `black_baseline`), written into the S chosen values",
            "prediction": "f = the model's logits (softmax=False) or torch.softmax(logits, -1) (softmax=True), "
                          "at the target class; float32",
            "series": "per run r: att_sum_r = sum of the normalised a over the S chosen values; delta_r = "
                      "f(x)_y - f(x_perturbed)_y (positive when removing the values lowers the target score)",
            "score": "per sample: Pearson correlation of (att_sum_r)_r and (delta_r)_r over the nr_runs = 100 runs "
                     "(scipy.stats.pearsonr(att_sums, deltas, axis=1), computed in float32 since both series are "
                     "float32; `values_float64_pearson` is the same on the float64-cast series). NaN if either "
                     "series is constant. Higher is better; range [-1, 1]",
            "rng_stream": f"after np.random.seed({FC_SEED}): for each chunk of batch_size = {FC_BATCH} samples (in "
                          "order), for each run: B draws np.random.choice(432, 36, replace=False) (sample by "
                          "sample), then np.random.uniform(0, 1, size=B) (get_baseline_dict computes its 'uniform' "
                          "entry even for 'black'). Re-derived and checked; the subsets therefore depend on "
                          "batch_size",
        },
        "normalisation_and_pearson": "Pearson is invariant to a positive scale of one series, and the attribution "
                                     "sums are linear in a, so normalise_by_max (one positive scalar) cannot "
                                     "change the score except by float32 rounding "
                                     "(runs.*.normalise_false_max_abs_diff; a per-sample normaliser would not "
                                     "change it either)",
        "black_baseline": black,
        "runs": runs,
        "exact_samples": {
            "samples": list(range(FC_EXACT)),
            "what": "Quantus's own draws and series for samples 0..K-1 (the same subsets in both runs): indices "
                    "[K][runs][S] flat C*H*W indices in draw order; att_sums and pred_deltas [K][runs] as Quantus "
                    "passed them to the Pearson (float32), series.<run>.{att_sums, pred_deltas}; Pearson of a row pair = runs.<run>.values[k]",
            "indices": derived[:FC_EXACT],
            "series": exact,
        },
        "notes": [
            "Quantus's random subsets cannot be reproduced without numpy's legacy MT19937 + permutation "
            "algorithm; compare a re-implementation by mean +- stderr over the 256 samples (or per sample for "
            "exact_samples given the same indices).",
            "The mean over samples is what return_aggregate=True (np.mean) would return.",
            "The deltas are small (~1e-3 logits, ~1e-4 probabilities: the model reacts weakly to its input), so "
            "float32 cancellation in f(x) - f(x_perturbed) matters: runs.*.float64_model_max_abs_diff is how far "
            "the per-sample scores move when the same draws go through a float64 copy of the model.",
        ],
    })


def main():
    warnings.filterwarnings("ignore")
    model_json = json.loads((qr.FIXTURE / "model.json").read_text())
    cases = json.loads((qr.FIXTURE / "cases.json").read_text())
    ref = load_file(str(qr.FIXTURE / "reference.safetensors"))
    state = load_file(str(qr.FIXTURE / "weights.safetensors"))
    model = qr.build(model_json, state)
    x = ref["input"].astype(np.float32)
    targets = np.asarray(cases["targets"], dtype=np.int64)
    classes = int(ref["output"].shape[1])
    gap = float(np.abs(explain(model, x, targets) - ref[f"relevance.{qr.CASE}"]).max())
    assert gap == 0.0, f"explain() differs from the fixture's relevance.{qr.CASE} by {gap}"
    OUT.mkdir(parents=True, exist_ok=True)

    imputation_fixture()
    ssim_fixture()
    road_fixture(model_json, state, classes)
    mprt_fixture(model, model_json, x, targets)
    road = load_file(str(OUT / "road.safetensors"))
    road_model = qr.build(model_json, {k[len("model/"):]: v for k, v in road.items() if k.startswith("model/")})
    random_logit_fixture(model, x, targets, road_model, road["x"], road["targets"], classes)
    random_logit_spearman_fixture(model, x, targets, road_model, road["x"], road["targets"], classes)
    faithfulness_correlation_fixture(road_model, road)


if __name__ == "__main__":
    main()
