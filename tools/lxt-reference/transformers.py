#!/usr/bin/env python3
"""LXT 2.1 reference relevance for tiny transformers (tests/fixtures/lxt/<model>/).

Two models with random weights (seeded), written twice: once in plain PyTorch (the outputs)
and once with LXT's explicit rules (`lxt.explicit.functional`, `lxt.explicit.rules`), whose
backward pass returns relevance instead of gradients:

  encoder  input embeddings [T=5, D=8] + a learned positional tensor, 2 pre-norm blocks
           (layer norm, 2-head self-attention, residual; layer norm, MLP with GELU, residual),
           a final layer norm, the mean over tokens, a classifier (4 classes)
  vit      a one-channel 12×12 image, 4×4 patches by a strided conv (8 channels), flattened
           and transposed to [9, 8] tokens, then as `encoder` with one block
  vit-cls  as `vit`, with a learned class token placed first (torch.cat) whose output feeds the
           classifier (x[:, 0]) instead of the token mean
  llama    embeddings [5, 8], 2 blocks in LLaMA's pattern: RMS norms (LXT's identity rule),
           attention, a SiLU-gated MLP (silu(fc1(h)) · up(h)), a final RMS norm, the token mean
  text     token ids [T=6] from a 16-word vocabulary (vocab.txt), an embedding table, then as
           `encoder` with one block whose MLP is gated (gelu(fc1(h)) · up(h), LXT's `mul2`); relevance is taken at the embeddings [T, 8] (LXT's
           convention: the relevance of a token is the sum over its embedding)

AttnLRP is LXT's rule set as it is: `linear_epsilon` (ε = 1e-6) on dense layers and
`epsilon_lrp` on the patch conv, `add2` (ε = 1e-8) for residuals and the positional tensor,
`matmul` (ε = 1e-8, each factor half) for Q·Kᵀ and softmax·V, `softmax` (Deep Taylor with
bias), `mul2` with the constant attention scale (all relevance to the scores), `layer_norm`
(ε = 1e-6, 1/std constant), `identity` on GELU, `mean` (ε = 1e-6) over tokens.
CP-LRP: the same with the attention probabilities detached (Q and K get no relevance), so
softmax·V is a linear map of V: `epsilon_lrp` with ε = 1e-8 gives V all of its relevance.

The plain model is also exported with `torch.onnx.export` (dynamo) to `model.onnx` (and the
encoder at opset 18, GELU as its erf pattern, to `model-opset18.onnx`), which
lrp-grad's ONNX import reads (LayerNormalization, MatMul of activations, Softmax, Gelu,
ReduceMean over tokens, the positional tensor as a constant summand, the scale as a Mul).
Each case stores LXT's relevance in float32 (what the tests compare with) and the distance of
that float32 result to LXT's own float64 result (`lxt_f32_distance`, relative to max |R|).
Not run by CI (the fixtures are committed). Usage: tools/lxt-reference/run.sh
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
import lxt.explicit.functional as lf
from lxt.explicit.rules import epsilon_lrp, identity

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "lxt"
D, HEADS, HIDDEN, CLASSES, LN_EPS = 8, 2, 16, 4, 1e-5


def block_weights(prefix, g, gated=False):
    def dense(name, i, o):
        return {f"{prefix}.{name}.weight": torch.randn(o, i, generator=g) / math.sqrt(i),
                f"{prefix}.{name}.bias": 0.1 * torch.randn(o, generator=g)}

    def norm(name):
        return {f"{prefix}.{name}.weight": 1 + 0.2 * torch.randn(D, generator=g),
                f"{prefix}.{name}.bias": 0.1 * torch.randn(D, generator=g)}

    w = {}
    for part in (norm("ln1"), dense("q", D, D), dense("k", D, D), dense("v", D, D),
                 dense("o", D, D), norm("ln2"), dense("fc1", D, HIDDEN), dense("fc2", HIDDEN, D)):
        w.update(part)
    if gated:
        w.update(dense("up", D, HIDDEN))
    return w


VOCAB = ["[pad]", "the", "a", "film", "plot", "was", "is", "not", "very", "good", "bad",
         "boring", "great", "and", "but", "!"]
TOKENS = {"encoder": 5, "vit": 9, "vit-cls": 10, "text": 6, "llama": 5}
BLOCKS = {"encoder": 2, "vit": 1, "vit-cls": 1, "text": 1, "llama": 2}


def make_weights(kind, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = TOKENS[kind]
    w = {"pos": 0.5 * torch.randn(tokens, D, generator=g)}
    if kind == "text":
        w["embedding.weight"] = torch.randn(len(VOCAB), D, generator=g)
    if kind == "vit-cls":
        w["cls"] = 0.5 * torch.randn(1, D, generator=g)
    if kind in ("vit", "vit-cls"):
        w["patch.weight"] = torch.randn(D, 1, 4, 4, generator=g) / 4
        w["patch.bias"] = 0.1 * torch.randn(D, generator=g)
    for b in range(BLOCKS[kind]):
        w.update(block_weights(f"block{b}", g, gated=kind in ("text", "llama")))
    w["ln.weight"] = 1 + 0.2 * torch.randn(D, generator=g)
    w["ln.bias"] = 0.1 * torch.randn(D, generator=g)
    w["head.weight"] = torch.randn(CLASSES, D, generator=g) / math.sqrt(D)
    w["head.bias"] = 0.1 * torch.randn(CLASSES, generator=g)
    return w


class Ops:
    """The model's operations: plain PyTorch, or LXT's explicit AttnLRP / CP-LRP rules."""

    def __init__(self, mode):
        self.mode = mode

    def linear(self, x, w, b):
        return F.linear(x, w, b) if self.mode == "plain" else lf.linear_epsilon(x, w, b, 1e-6)

    def conv(self, x, w, b):
        if self.mode == "plain":
            return F.conv2d(x, w, b, stride=4)
        return epsilon_lrp(lambda t: F.conv2d(t, w, b, stride=4), 1e-6, x)

    def add(self, a, b):
        return a + b if self.mode == "plain" else lf.add2(a, b, epsilon=1e-8)

    def layer_norm(self, x, w, b):
        if self.mode == "plain":
            return F.layer_norm(x, (D,), w, b, LN_EPS)
        return lf.layer_norm(x, w, b, LN_EPS)

    def mul(self, a, b):
        return a * b if self.mode == "plain" else lf.mul2(a, b)

    def rms_norm(self, x, w):
        if self.mode == "plain":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + LN_EPS) * w
        return lf.rms_norm_identity(x, w, LN_EPS)

    def silu(self, x):
        return x * torch.sigmoid(x) if self.mode == "plain" else identity(F.silu, x)

    def gelu(self, x):
        return F.gelu(x) if self.mode == "plain" else identity(F.gelu, x)

    def mean(self, x):
        return x.mean(1) if self.mode == "plain" else lf.mean(x, 1, False)

    def attention(self, q, k, v):
        """q, k, v: [N, H, T, dh]."""
        scale = 1 / math.sqrt(q.shape[-1])
        if self.mode == "plain":
            return torch.softmax(q @ k.transpose(-1, -2) * scale, -1) @ v
        if self.mode == "cp-lrp":
            probs = torch.softmax(q @ k.transpose(-1, -2) * scale, -1).detach()
            return epsilon_lrp(lambda t: probs @ t, 1e-8, v)
        scores = lf.mul2(lf.matmul(q, k.transpose(-1, -2), epsilon=1e-8), scale)
        return lf.matmul(lf.softmax(scores, -1), v, epsilon=1e-8)


def forward(kind, w, x, ops):
    """x: the input, or for `text` the embeddings (see `embed`)."""
    if kind in ("vit", "vit-cls"):
        x = ops.conv(x, w["patch.weight"], w["patch.bias"])  # [N, D, 3, 3]
        x = x.flatten(2).transpose(1, 2)  # [N, 9, D]
    if kind == "vit-cls":  # a class token first; its output is the pooled feature
        x = torch.cat([w["cls"].expand(x.shape[0], 1, D), x], 1)
    x = ops.add(x, w["pos"].expand_as(x))
    n, t, _ = x.shape
    for b in range(BLOCKS[kind]):
        p = lambda name: (w[f"block{b}.{name}.weight"], w[f"block{b}.{name}.bias"])  # noqa: E731
        llama = kind == "llama"
        norm = (lambda t, name: ops.rms_norm(t, p(name)[0])) if llama else (  # noqa: E731
            lambda t, name: ops.layer_norm(t, *p(name)))
        h = norm(x, "ln1")
        heads = lambda y: y.reshape(n, t, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = (heads(ops.linear(h, *p(name))) for name in ("q", "k", "v"))
        context = ops.attention(q, k, v).transpose(1, 2).reshape(n, t, D)
        x = ops.add(x, ops.linear(context, *p("o")))
        h = norm(x, "ln2")
        act = ops.silu if llama else ops.gelu
        m = act(ops.linear(h, *p("fc1")))
        if kind in ("text", "llama"):  # a gated MLP: act(fc1(h)) · up(h), uniform (mul2)
            m = ops.mul(m, ops.linear(h, *p("up")))
        x = ops.add(x, ops.linear(m, *p("fc2")))
    if kind == "llama":
        x = ops.rms_norm(x, w["ln.weight"])
    else:
        x = ops.layer_norm(x, w["ln.weight"], w["ln.bias"])
    pooled = x[:, 0] if kind == "vit-cls" else ops.mean(x)
    return ops.linear(pooled, w["head.weight"], w["head.bias"])


def embed(w, ids):
    return F.embedding(ids, w["embedding.weight"])


class Plain(torch.nn.Module):
    """The plain model as a module, for the ONNX export (`text` takes the token ids)."""

    def __init__(self, kind, w):
        super().__init__()
        self.kind, self.names = kind, list(w)
        for name, value in w.items():
            self.register_buffer(name.replace(".", "_"), value)

    def forward(self, x):
        w = {name: getattr(self, name.replace(".", "_")) for name in self.names}
        if self.kind == "text":
            x = embed(w, x)
        return forward(self.kind, w, x, Ops("plain"))


def export_onnx(kind, w, x, path, opset=None):
    torch.onnx.export(Plain(kind, w).eval(), (x,), str(path), dynamo=True, input_names=["input"],
                      external_data=False, opset_version=opset)


def relevance(kind, w, x, mode, dtype):
    """LXT's relevance of the input (for `text`: of the embeddings, `x` being their values)."""
    w = {k: v.to(dtype) for k, v in w.items()}
    x = x.to(dtype).clone().requires_grad_(True)
    y = forward(kind, w, x, Ops(mode))
    target = y.argmax(1)
    seed = torch.zeros_like(y).scatter(1, target[:, None], y.gather(1, target[:, None]))
    y.backward(seed.detach())
    return x.grad.detach(), target


def main():
    for kind, shape, seed in (("encoder", (5, D), 0), ("vit", (1, 12, 12), 1), ("text", (6,), 2),
                              ("vit-cls", (1, 12, 12), 4), ("llama", (5, D), 5)):
        w = make_weights(kind, seed)
        g = torch.Generator().manual_seed(seed + 10)
        if kind == "text":
            ids = torch.randint(1, len(VOCAB), (3,) + shape, generator=g)
            x = embed(w, ids)
        else:
            x = torch.randn((3,) + shape, generator=g)
        with torch.no_grad():
            plain = forward(kind, w, x, Ops("plain"))
            lxt_out = forward(kind, w, x, Ops("attn-lrp"))
        assert torch.allclose(plain, lxt_out, atol=1e-5), "LXT's forward differs from PyTorch's"
        folder = OUT / kind
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in w.items()}, str(folder / "weights.safetensors"))
        export_onnx(kind, w, ids if kind == "text" else x, folder / "model.onnx")
        if kind == "encoder":
            # Opset 18 writes GELU as x·0.5·(1 + erf(x/√2)) (Div, Erf, Add, Mul, Mul).
            export_onnx(kind, w, x, folder / "model-opset18.onnx", opset=18)
        tensors = {"input": x, "output": plain}
        if kind == "text":
            tensors["ids"] = ids.to(torch.float32)
            (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
        cases = {}
        for mode in ("attn-lrp", "cp-lrp"):
            r32, target = relevance(kind, w, x, mode, torch.float32)
            r64, target64 = relevance(kind, w, x, mode, torch.float64)
            assert torch.equal(target, target64)
            tensors[mode] = r32
            if kind == "text":
                tensors[f"{mode}.tokens"] = r32.sum(-1)
            distance = ((r32.double() - r64).abs().max() / r64.abs().max()).item()
            cases[mode] = {"targets": target.tolist(), "lxt_f32_distance": distance}
            print(f"{kind} {mode}: targets {target.tolist()}, LXT f32 vs f64 {distance:.2e}")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "reference.safetensors"))
        meta = {"kind": kind, "input_shape": list(shape), "d_model": D, "heads": HEADS,
                "hidden": HIDDEN, "classes": CLASSES, "layer_norm_eps": LN_EPS,
                "blocks": BLOCKS[kind], "cases": cases,
                "torch": torch.__version__, "lxt": "2.1", "onnx": "model.onnx (dynamo exporter)"}
        (folder / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")




if __name__ == "__main__":
    main()
