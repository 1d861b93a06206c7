#!/usr/bin/env python3
"""Writes lrp-grad's reference fixtures with Zennit itself.

For each small model (fixed seeds) this writes, under tests/fixtures/zennit/<model>/:
  model.json           the model in lrp-grad's interchange format
  weights.safetensors  the PyTorch state_dict, as `safetensors.torch.save_file` writes it
  reference.safetensors
                       `input`, `output`, and `relevance.<case>` for every case
  cases.json           case name -> what Zennit ran (a rule on every linear/conv layer, or a
                       composite), the target classes and the output relevance used

Run it with ./run.sh (it makes a virtualenv with torch and zennit from PyPI). CI does not need
Python: the fixtures are committed.
"""
import copy
import importlib.metadata
import json
import pathlib
import sys

import torch
from safetensors.torch import save_file
import zennit
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerMapComposite,
)
from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, WSquare, ZBox, ZPlus
from zennit.types import Activation, AvgPool, Linear as AnyLinear

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "zennit"
LOW, HIGH = -2.5, 2.5


def describe(seq, input_shape):
    """The interchange-format description of an nn.Sequential."""
    layers = []
    for name, m in seq.named_children():
        if isinstance(m, torch.nn.Linear):
            layers.append({"kind": "linear", "name": name, "in_features": m.in_features,
                           "out_features": m.out_features, "bias": m.bias is not None})
        elif isinstance(m, torch.nn.Conv2d):
            layers.append({"kind": "conv2d", "name": name, "in_channels": m.in_channels,
                           "out_channels": m.out_channels, "kernel_size": list(m.kernel_size),
                           "stride": list(m.stride), "padding": list(m.padding),
                           "dilation": list(m.dilation), "groups": m.groups,
                           "bias": m.bias is not None})
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            kind = "batch_norm1d" if isinstance(m, torch.nn.BatchNorm1d) else "batch_norm2d"
            layers.append({"kind": kind, "name": name, "num_features": m.num_features, "eps": m.eps})
        elif isinstance(m, torch.nn.ReLU):
            layers.append({"kind": "relu"})
        elif isinstance(m, torch.nn.Tanh):
            layers.append({"kind": "tanh"})
        elif isinstance(m, torch.nn.LeakyReLU):
            layers.append({"kind": "leaky_relu", "negative_slope": m.negative_slope})
        elif isinstance(m, torch.nn.MaxPool2d):
            layers.append({"kind": "max_pool2d", "kernel_size": pair(m.kernel_size), "stride": pair(m.stride),
                           "padding": pair(m.padding)})
        elif isinstance(m, torch.nn.AvgPool2d):
            layers.append({"kind": "avg_pool2d", "kernel_size": pair(m.kernel_size), "stride": pair(m.stride),
                           "padding": pair(m.padding)})
        elif isinstance(m, torch.nn.AdaptiveAvgPool2d):
            layers.append({"kind": "adaptive_avg_pool2d", "output_size": pair(m.output_size)})
        elif isinstance(m, torch.nn.Flatten):
            layers.append({"kind": "flatten"})
        elif isinstance(m, torch.nn.Dropout):
            layers.append({"kind": "dropout", "p": m.p})
        else:
            raise TypeError(f"no interchange kind for {m}")
    return {"input_shape": list(input_shape), "layers": layers}


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def mlp():
    torch.manual_seed(1)
    seq = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.ReLU(),
        torch.nn.Linear(8, 7), torch.nn.BatchNorm1d(7), torch.nn.ReLU(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(7, 4),
    )
    return seq, (6,), 5


def cnn():
    torch.manual_seed(2)
    seq = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2, stride=1),
        torch.nn.Conv2d(6, 8, 1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d((1, 1)),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10), torch.nn.ReLU(),
        torch.nn.Linear(10, 5),
    )
    return seq, (3, 12, 12), 3


def vgg_layers(widths, classes=10):
    """VGG stages of two 3×3 convolutions (with ReLU) and a 2×2 max pool, one per width, then an
    adaptive average pool and a linear head (also `vgg-small` of tools/zennit-bench/bench.py)."""
    layers, c_in = [], 3
    for c in widths:
        layers += [torch.nn.Conv2d(c_in, c, 3, padding=1), torch.nn.ReLU(),
                   torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        c_in = c
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(c_in, classes)]
    return torch.nn.Sequential(*layers)


def vgg():
    """The benchmark's `vgg-small` at half its widths, on 4 inputs of [3, 32, 32] in [0, 1] as the
    benchmark's, bounds ±3 (issue: a parity loss reported for epsilon-gamma-box on that model)."""
    torch.manual_seed(3)
    return vgg_layers((32, 64, 128)), (3, 32, 32), 4


def max_pool_margin(seq, x):
    """The smallest gap between the largest and the second largest value of any positive max-pool
    window, relative to the largest, in a float64 forward pass. Below ~1e-6 a float32 forward
    pass (any implementation's) may pick the other winner, and the sample's relevance then
    differs by up to its whole size from the float64 reference: a tie, not a rule."""
    margins = []

    def hook(module, inputs, _):
        windows = torch.nn.functional.unfold(inputs[0], module.kernel_size, stride=module.stride)
        n, _, count = windows.shape
        c = inputs[0].shape[1]
        top = windows.reshape(n, c, -1, count).topk(2, dim=2).values
        positive = top[:, :, 0] > 0
        margins.append(((top[:, :, 0] - top[:, :, 1]) / top[:, :, 0])[positive].min().item())

    seq = copy.deepcopy(seq).double()
    handles = [m.register_forward_hook(hook) for m in seq.modules()
               if isinstance(m, torch.nn.MaxPool2d)]
    with torch.no_grad():
        seq(x.double())
    for h in handles:
        h.remove()
    return min(margins, default=1.0)


def randomize_batch_norm(seq):
    for m in seq.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)


def uniform(rule):
    """`rule` on every dense and conv layer; the rest as in Zennit's composites."""
    return LayerMapComposite([(Activation, Pass()), (AvgPool, Norm()), (AnyLinear, rule)])


def cases(input_shape, batch, low=LOW, high=HIGH):
    bound_shape = (input_shape[0], 1, 1) if len(input_shape) == 3 else input_shape
    low_t = torch.linspace(-3.0, -2.5, bound_shape[0]).reshape(bound_shape).expand(input_shape).contiguous()
    high_t = torch.linspace(2.5, 3.0, bound_shape[0]).reshape(bound_shape).expand(input_shape).contiguous()
    return {
        # name: (description for the Rust test, zennit composite)
        "zero": ({"rule": "zero"}, uniform(Epsilon(epsilon=1e-9))),
        "epsilon": ({"rule": "epsilon", "epsilon": 1e-6}, uniform(Epsilon(epsilon=1e-6))),
        "epsilon-0.25": ({"rule": "epsilon", "epsilon": 0.25}, uniform(Epsilon(epsilon=0.25))),
        "gamma": ({"rule": "gamma", "gamma": 0.25}, uniform(Gamma(gamma=0.25))),
        "gamma-1": ({"rule": "gamma", "gamma": 1.0}, uniform(Gamma(gamma=1.0))),
        "alpha2-beta1": ({"rule": "alpha-beta", "alpha": 2.0, "beta": 1.0}, uniform(AlphaBeta(alpha=2.0, beta=1.0))),
        "alpha1-beta0": ({"rule": "alpha-beta", "alpha": 1.0, "beta": 0.0}, uniform(AlphaBeta(alpha=1.0, beta=0.0))),
        "z-plus": ({"rule": "z-plus"}, uniform(ZPlus())),
        "z-box": ({"rule": "z-box", "low": low, "high": high}, uniform(ZBox(low=low, high=high))),
        "flat": ({"rule": "flat"}, uniform(Flat())),
        "w-square": ({"rule": "w-square"}, uniform(WSquare())),
        "epsilon-plus": ({"composite": "epsilon-plus"}, EpsilonPlus()),
        "epsilon-plus-flat": ({"composite": "epsilon-plus-flat"}, EpsilonPlusFlat()),
        "epsilon-gamma-box": ({"composite": "epsilon-gamma-box", "low": low, "high": high},
                              EpsilonGammaBox(low=low, high=high)),
        "epsilon-gamma-box-tensor-bounds": (
            {"composite": "epsilon-gamma-box", "low": "low", "high": "high"},
            # Zennit wants batched tensor bounds; lrp-grad takes the per-sample ones.
            EpsilonGammaBox(low=low_t.expand((batch,) + tuple(input_shape)),
                            high=high_t.expand((batch,) + tuple(input_shape))),
        ),
        "epsilon-alpha2-beta1": ({"composite": "epsilon-alpha2-beta1"}, EpsilonAlpha2Beta1()),
        "epsilon-alpha2-beta1-flat": ({"composite": "epsilon-alpha2-beta1-flat"}, EpsilonAlpha2Beta1Flat()),
    }, {"low": low_t, "high": high_t}


class ExactMergeBatchNorm(SequentialMergeBatchNorm):
    """Zennit's SequentialMergeBatchNorm, made exact.

    Zennit 0.5.1 folds the batch norm into the preceding layer and resets the batch norm's
    mean, variance, weight and bias to the identity, but leaves its `eps`: the "identity" then
    divides by sqrt(1 + eps), so the canonized model's outputs and relevances are off by about
    eps / 2 per merged batch norm (5e-6 relative for eps = 1e-5; seen here as ~2e-5 on the MLP
    fixture). lrp-grad's canonizer is exact, so the reference zeroes `eps` while merged.
    """

    def register(self, linears, batch_norm):
        super().register(linears, batch_norm)
        self.original_eps = batch_norm.eps
        batch_norm.eps = 0.0

    def remove(self):
        self.batch_norm.eps = self.original_eps
        super().remove()


def attribute(seq, composite, x, one_hot, logit, dtype=torch.float64):
    """Zennit's relevance for R_out = one_hot * output (logit) or one_hot.

    Zennit runs in float64 on the float32 weights and inputs (both exactly representable), so
    the fixture is the rule's exact value up to float64 round-off; lrp-grad's float32 result is
    then compared with the truth, not with another float32 implementation's round-off.
    `dtype=torch.float32` gives Zennit's own float32 result (how well-conditioned a case is).
    """
    composite.canonizers = [ExactMergeBatchNorm()]
    seq = copy.deepcopy(seq).to(dtype)
    x = x.to(dtype).clone().requires_grad_(True)
    one_hot = one_hot.to(dtype)
    with composite.context(seq) as modified:
        out = modified(x)
        grad_out = one_hot * out if logit else one_hot
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=grad_out)
    return relevance.detach().float()


def relative_distance(ours, reference):
    """max |Δ| / max |reference|, as the Rust tests measure it."""
    scale = reference.abs().max().item()
    return (ours - reference).abs().max().item() / scale if scale > 0 else 0.0


def methods(seq, x, one_hot, input_shape):
    """Zennit's other attributors on the same model (float64, one-hot output relevance)."""
    from zennit.attribution import Gradient, IntegratedGradients, Occlusion, occlude_independent
    seq = copy.deepcopy(seq).double()
    x = x.double()
    one_hot = one_hot.double()
    out = {}
    with Gradient(seq) as attributor:
        out["method.gradient"] = attributor(x, one_hot)[1]
    with IntegratedGradients(seq, n_iter=20) as attributor:
        out["method.integrated-gradients"] = attributor(x, one_hot)[1]
    # Zennit scores the occluded input; lrp-grad reports the score drop f(x) - f(occluded).
    # Occluding inside the window (invert=False keeps the rest) with fill 0.
    window = 4 if len(input_shape) == 3 else 2
    fill_zero = lambda input, mask: occlude_independent(input, mask, fill_fn=torch.zeros_like, invert=True)
    with Occlusion(seq, occlusion_fn=fill_zero, window=window, stride=window) as attributor:
        # A tensor attr_output is used as the score itself; the target score is output * one_hot.
        clean, score = attributor(x, lambda output: output * one_hot)
        out["method.occlusion-score"] = score
        out["method.occlusion-output"] = clean
    return {k: v.detach().float() for k, v in out.items()}


def write(name, seq, input_shape, batch, unit_inputs=False, low=LOW, high=HIGH, only=None):
    """One fixture. `unit_inputs`: inputs uniform in [0, 1] (as the benchmark's) instead of
    normal ones clamped to the bounds; every case then also records Zennit's own float32
    distance from its float64 result (`zennit_f32_distance`), which sets the test's tolerance.
    `only`: the cases to write (default: all)."""
    randomize_batch_norm(seq)
    seq.eval()
    torch.manual_seed(100)
    if unit_inputs:
        # Inputs whose max pools have no near-tie (see `max_pool_margin`).
        x = torch.rand((batch,) + tuple(input_shape))
        while max_pool_margin(seq, x) < 1e-5:
            x = torch.rand((batch,) + tuple(input_shape))
    else:
        x = (torch.randn((batch,) + tuple(input_shape)) * 1.2).clamp(LOW, HIGH)
    with torch.no_grad():
        out = seq(x)
    # Fixed targets (not only the predicted class) so every sample explains a different output.
    targets = torch.arange(batch) % out.shape[1]
    one_hot = torch.nn.functional.one_hot(targets, out.shape[1]).to(out)

    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(describe(seq, input_shape), indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in seq.state_dict().items()}, folder / "weights.safetensors")

    table, bounds = cases(input_shape, batch, low, high)
    tensors = {"input": x, "output": out, "bound.low": bounds["low"], "bound.high": bounds["high"]}
    described = {}
    for case, (desc, composite) in table.items():
        if only is not None and case not in only:
            continue
        for mode in ("logit", "one-hot"):
            key = f"{case}/{mode}"
            logit = mode == "logit"
            tensors[f"relevance.{key}"] = attribute(seq, composite, x, one_hot, logit)
            described[key] = dict(desc, output_relevance=mode)
            if unit_inputs:
                own = attribute(seq, composite, x, one_hot, logit, dtype=torch.float32)
                described[key]["zennit_f32_distance"] = relative_distance(
                    own, tensors[f"relevance.{key}"])
            # Zennit must leave the model as it was (canonizers revert).
            with torch.no_grad():
                assert torch.allclose(seq(x), out)
    if not unit_inputs:
        tensors.update(methods(seq, x, one_hot, input_shape))
    save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "reference.safetensors")
    meta = {
        "zennit": importlib.metadata.version("zennit"),
        "torch": torch.__version__,
        "targets": targets.tolist(),
        "cases": described,
    }
    (folder / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{name}: {len(described)} cases -> {folder}", file=sys.stderr)


def palettes():
    """Zennit's palettes and one symmetric heatmap per colour map, for lrp_grad::heatmap."""
    import numpy as np
    from zennit.image import CMAPS, imgify, palette
    rng = np.random.default_rng(0)
    relevance = rng.normal(size=(2, 5, 7)).astype(np.float32)  # [channels, height, width]
    summed = relevance.sum(0)
    out = {"relevance": relevance.tolist(), "maps": {}}
    for name in ("gray", "wred", "wblue", "hot", "cold", "coldnhot", "bwr", "france", "seismic", "coolio", "coleus"):
        image = imgify(summed, cmap=name, symmetric=True).convert("RGB")
        out["maps"][name] = {
            "palette": palette(name).tolist(),
            "heatmap": np.asarray(image).tolist(),
        }
    (OUT / "colormaps.json").write_text(json.dumps(out) + "\n")


MODELS = {
    "mlp": lambda: (*mlp(), {}),
    "cnn": lambda: (*cnn(), {}),
    # Every composite, and the two rules of epsilon-gamma-box's convolutions (the rules alone
    # are covered by the smaller models).
    "vgg": lambda: (*vgg(), {"unit_inputs": True, "low": -3.0, "high": 3.0, "only": [
        "z-box", "gamma", "epsilon-plus", "epsilon-plus-flat", "epsilon-gamma-box",
        "epsilon-gamma-box-tensor-bounds", "epsilon-alpha2-beta1", "epsilon-alpha2-beta1-flat"]}),
}


def main():
    """`generate.py [MODEL ...]`: the named fixtures (default: every model and the palettes)."""
    torch.set_num_threads(1)
    names = sys.argv[1:] or ["palettes", *MODELS]
    for name in names:
        if name == "palettes":
            palettes()
            continue
        seq, shape, batch, options = MODELS[name]()
        write(name, seq, shape, batch, **options)


if __name__ == "__main__":
    main()
