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
TOKENS = {"encoder": 5, "vit": 9, "vit-cls": 10, "text": 6, "llama": 5, "vit-torchvision": 10,
          "bert": 6}
BLOCKS = {"encoder": 2, "vit": 1, "vit-cls": 1, "text": 1, "llama": 2, "vit-torchvision": 1,
          "bert": 1}
# The libraries' own layer-norm epsilons (torchvision's ViT: 1e-6; BERT: 1e-12).
LN_EPS_OF = {"vit-torchvision": 1e-6, "bert": 1e-12}


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

    def __init__(self, mode, ln_eps=None):
        self.mode, self.ln_eps = mode, LN_EPS if ln_eps is None else ln_eps

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
            return F.layer_norm(x, (D,), w, b, self.ln_eps)
        return lf.layer_norm(x, w, b, self.ln_eps)

    def mul(self, a, b):
        return a * b if self.mode == "plain" else lf.mul2(a, b)

    def rms_norm(self, x, w):
        if self.mode == "plain":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + LN_EPS) * w
        return lf.rms_norm_identity(x, w, LN_EPS)

    def silu(self, x):
        return x * torch.sigmoid(x) if self.mode == "plain" else identity(F.silu, x)

    def tanh(self, x):
        return torch.tanh(x) if self.mode == "plain" else identity(torch.tanh, x)

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
    if kind.startswith("vit"):
        x = ops.conv(x, w["patch.weight"], w["patch.bias"])  # [N, D, 3, 3]
        x = x.flatten(2).transpose(1, 2)  # [N, 9, D]
    if kind in ("vit-cls", "vit-torchvision"):  # a class token first; its output is pooled
        x = torch.cat([w["cls"].expand(x.shape[0], 1, D), x], 1)
    x = ops.add(x, w["pos"].expand_as(x))
    if kind == "bert":
        return bert_body(w, x, ops)
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
    pooled = x[:, 0] if kind in ("vit-cls", "vit-torchvision") else ops.mean(x)
    return ops.linear(pooled, w["head.weight"], w["head.bias"])


def self_attention(w, prefix, h, ops):
    n, t, _ = h.shape
    heads = lambda y: y.reshape(n, t, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
    q, k, v = (heads(ops.linear(h, w[f"{prefix}.{name}.weight"], w[f"{prefix}.{name}.bias"]))
               for name in ("q", "k", "v"))
    context = ops.attention(q, k, v).transpose(1, 2).reshape(n, t, D)
    return ops.linear(context, w[f"{prefix}.o.weight"], w[f"{prefix}.o.bias"])


def bert_body(w, x, ops):
    """BERT after its embedding sums: the embedding norm, post-norm blocks (the residual sum,
    then the norm), the pooler (dense + tanh on the first token), the classifier."""
    p = lambda name: (w[f"{name}.weight"], w[f"{name}.bias"])  # noqa: E731
    x = ops.layer_norm(x, *p("emb_ln"))
    for b in range(BLOCKS["bert"]):
        x = ops.layer_norm(ops.add(x, self_attention(w, f"block{b}", x, ops)), *p(f"block{b}.ln1"))
        m = ops.linear(ops.gelu(ops.linear(x, *p(f"block{b}.fc1"))), *p(f"block{b}.fc2"))
        x = ops.layer_norm(ops.add(x, m), *p(f"block{b}.ln2"))
    pooled = ops.tanh(ops.linear(x[:, 0], *p("pooler")))
    return ops.linear(pooled, *p("head"))


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
    y = forward(kind, w, x, Ops(mode, LN_EPS_OF.get(kind)))
    target = y.argmax(1)
    seed = torch.zeros_like(y).scatter(1, target[:, None], y.gather(1, target[:, None]))
    y.backward(seed.detach())
    return x.grad.detach(), target


def randomize(module, g):
    """Seeded random parameters everywhere (the libraries initialise some to zero or one, which
    would hide mistakes): norm scales near 1, matrices by fan-in, everything else small."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name.lower() or ".ln" in name:
                p.copy_((1 + 0.2 * torch.randn(p.shape, generator=g)) if name.endswith("weight")
                        else 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and "embedding" not in name and "token" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return module.eval()


def torchvision_vit(seed):
    """torchvision's own VisionTransformer (3×12×12, patches 4×4, one block, 2 heads, width 8),
    and its parameters under this script's names (the fused in-projection split into q, k, v)."""
    import torchvision
    net = randomize(torchvision.models.VisionTransformer(
        image_size=12, patch_size=4, num_layers=1, num_heads=HEADS, hidden_dim=D, mlp_dim=HIDDEN,
        num_classes=CLASSES), torch.Generator().manual_seed(seed))
    sd = net.state_dict()
    layer = "encoder.layers.encoder_layer_0"
    q, k, v = sd[f"{layer}.self_attention.in_proj_weight"].chunk(3)
    qb, kb, vb = sd[f"{layer}.self_attention.in_proj_bias"].chunk(3)
    w = {"patch.weight": sd["conv_proj.weight"], "patch.bias": sd["conv_proj.bias"],
         "cls": sd["class_token"].reshape(1, D), "pos": sd["encoder.pos_embedding"].reshape(-1, D),
         "block0.q.weight": q, "block0.q.bias": qb, "block0.k.weight": k, "block0.k.bias": kb,
         "block0.v.weight": v, "block0.v.bias": vb}
    names = {"ln_1": "ln1", "self_attention.out_proj": "o", "ln_2": "ln2", "mlp.0": "fc1",
             "mlp.3": "fc2"}
    for theirs, ours in names.items():
        for p in ("weight", "bias"):
            w[f"block0.{ours}.{p}"] = sd[f"{layer}.{theirs}.{p}"]
    for theirs, ours in {"encoder.ln": "ln", "heads.head": "head"}.items():
        for p in ("weight", "bias"):
            w[f"{ours}.{p}"] = sd[f"{theirs}.{p}"]
    return net, {k: v.clone() for k, v in w.items()}


def hf_bert(seed):
    """`transformers`' BertForSequenceClassification (vocabulary 16, width 8, one layer, 2 heads,
    eager attention), and its parameters under this script's names; `pos` is the position table's
    first rows plus token type 0's vector (what BERT adds to every word embedding)."""
    from transformers import BertConfig, BertForSequenceClassification
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=D, num_hidden_layers=1,
                        num_attention_heads=HEADS, intermediate_size=HIDDEN,
                        max_position_embeddings=16, num_labels=CLASSES, hidden_act="gelu",
                        attn_implementation="eager")
    net = randomize(BertForSequenceClassification(config), torch.Generator().manual_seed(seed))
    sd = net.state_dict()
    t = TOKENS["bert"]
    w = {"embedding.weight": sd["bert.embeddings.word_embeddings.weight"],
         "pos": sd["bert.embeddings.position_embeddings.weight"][:t]
         + sd["bert.embeddings.token_type_embeddings.weight"][0]}
    layer = "bert.encoder.layer.0"
    names = {"bert.embeddings.LayerNorm": "emb_ln", f"{layer}.attention.self.query": "block0.q",
             f"{layer}.attention.self.key": "block0.k", f"{layer}.attention.self.value": "block0.v",
             f"{layer}.attention.output.dense": "block0.o",
             f"{layer}.attention.output.LayerNorm": "block0.ln1",
             f"{layer}.intermediate.dense": "block0.fc1", f"{layer}.output.dense": "block0.fc2",
             f"{layer}.output.LayerNorm": "block0.ln2", "bert.pooler.dense": "pooler",
             "classifier": "head"}
    for theirs, ours in names.items():
        for p in ("weight", "bias"):
            w[f"{ours}.{p}"] = sd[f"{theirs}.{p}"]
    return net, {k: v.clone() for k, v in w.items()}


LIBRARY_MODELS = {"vit-torchvision": torchvision_vit, "bert": hf_bert}


def weights_and_input(kind, shape, seed):
    """The weights, the input LXT explains (for token models: the embeddings) and the ids; for a
    library's model, also checks that this script's forward pass is that model's."""
    net = None
    if kind in LIBRARY_MODELS:
        net, w = LIBRARY_MODELS[kind](seed)
    else:
        w = make_weights(kind, seed)
    g = torch.Generator().manual_seed(seed + 10)
    ids = None
    if kind in ("text", "bert"):
        ids = torch.randint(1, len(VOCAB), (3,) + shape, generator=g)
        x = embed(w, ids)
    else:
        x = torch.randn((3,) + shape, generator=g)
    if net is not None:
        with torch.no_grad():
            theirs = net(ids).logits if kind == "bert" else net(x)
            ours = forward(kind, w, x, Ops("plain", LN_EPS_OF[kind]))
        assert torch.allclose(theirs, ours, atol=1e-5), f"{kind}: the rewritten forward differs"
    return net, w, x, ids


def with_explicit_expand(source, target):
    """The export with its positional tensor as `Expand(pos [T, D], shape [N, T, D])` — the form
    the exporter leaves when the repeated tensor is too large to fold (e.g. 2 × 128 × 256) —
    instead of a folded constant: the loader must take it as the same positional summand."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.load(str(source))
    inits = {i.name: i for i in model.graph.initializer}
    add = next(n for n in model.graph.node if n.op_type == "Add"
               and any(name in inits and len(inits[name].dims) == 3 for name in n.input))
    k = next(i for i, name in enumerate(add.input) if name in inits)
    pos = numpy_helper.to_array(inits[add.input[k]])[0]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    shape = np.array([batch, *pos.shape], dtype=np.int64)
    model.graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(pos), "pos_single"),
                                    numpy_helper.from_array(shape, "pos_shape")])
    expand = helper.make_node("Expand", ["pos_single", "pos_shape"], ["pos_expanded"],
                              name="pos_expand")
    add.input[k] = "pos_expanded"
    model.graph.node.insert(list(model.graph.node).index(add), expand)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def export_library_model(net, example, path):
    torch.onnx.export(net, (example,), str(path), dynamo=True, input_names=["input"],
                      external_data=False)


def export_bert_sdpa():
    """`bert/model-sdpa.onnx`: the committed BERT fixture's model exported with transformers'
    default attention (SDPA), which folds the batch into the heads (`Reshape` to `[-1, T, dh]`)
    — the same weights and math as `model.onnx`, so the same LXT reference applies."""
    from safetensors.torch import load_file
    from transformers import BertForSequenceClassification
    eager, w = hf_bert(7)
    saved = load_file(str(OUT / "bert" / "weights.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in w.items()), "not the committed fixture's weights"
    config = eager.config
    config._attn_implementation = "sdpa"
    net = BertForSequenceClassification(config).eval()
    net.load_state_dict(eager.state_dict())
    ids = torch.randint(1, len(VOCAB), (3, TOKENS["bert"]), generator=torch.Generator().manual_seed(17))
    with torch.no_grad():
        assert torch.allclose(net(ids).logits, eager(ids).logits, atol=1e-6)
    export_library_model(net, ids, OUT / "bert" / "model-sdpa.onnx")


class FusedEncoder(torch.nn.Module):
    """The committed `encoder` fixture's model written as timm's attention writes it: one
    linear for q, k and v (their weights stacked), `reshape(n, t, 3, H, dh).permute(2, 0, 3,
    1, 4).unbind(0)` — what the exporter writes as a rank-5 `Reshape`, a `Transpose` and three
    `Slice`s. The same math as `model.onnx` (LRP-ε of a stacked linear layer is each part's),
    so the same LXT reference applies."""

    def __init__(self, w):
        super().__init__()
        self.names = list(w)
        for name, value in w.items():
            self.register_buffer(name.replace(".", "_"), value)

    def forward(self, x):
        w = {name: getattr(self, name.replace(".", "_")) for name in self.names}
        x = x + w["pos"].expand_as(x)
        n, t, _ = x.shape
        for b in range(BLOCKS["encoder"]):
            p = lambda name: (w[f"block{b}.{name}.weight"], w[f"block{b}.{name}.bias"])  # noqa: E731
            h = F.layer_norm(x, (D,), *p("ln1"), LN_EPS)
            weight = torch.cat([p(name)[0] for name in ("q", "k", "v")])
            bias = torch.cat([p(name)[1] for name in ("q", "k", "v")])
            qkv = F.linear(h, weight, bias).reshape(n, t, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            context = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // HEADS), -1) @ v
            x = x + F.linear(context.transpose(1, 2).reshape(n, t, D), *p("o"))
            h = F.layer_norm(x, (D,), *p("ln2"), LN_EPS)
            x = x + F.linear(F.gelu(F.linear(h, *p("fc1"))), *p("fc2"))
        x = F.layer_norm(x, (D,), w["ln.weight"], w["ln.bias"], LN_EPS)
        return F.linear(x.mean(1), w["head.weight"], w["head.bias"])


def export_fused_encoder():
    """`encoder/model-fused.onnx` from the committed weights (its output checked against the
    committed reference's)."""
    from safetensors.torch import load_file
    folder = OUT / "encoder"
    net = FusedEncoder(load_file(str(folder / "weights.safetensors"))).eval()
    reference = load_file(str(folder / "reference.safetensors"))
    with torch.no_grad():
        assert torch.allclose(net(reference["input"]), reference["output"], atol=1e-5)
    torch.onnx.export(net, (reference["input"],), str(folder / "model-fused.onnx"), dynamo=True,
                      input_names=["input"], external_data=False)


def export_torchvision_vit_script():
    """`vit-torchvision/model-script.onnx`: the committed torchvision ViT exported by the
    TorchScript exporter, with gradients enabled as a plain `torch.onnx.export` runs (under
    `torch.no_grad()` nn.MultiheadAttention takes its fast path, which that exporter cannot
    write). Its in-projection is split by `unflatten`, written as `Shape → Slice → Concat →
    Reshape` with the slice bounds computed by `Mod`; the same weights and math as
    `model.onnx`, so the same LXT reference applies."""
    from safetensors.torch import load_file
    net, w, x, _ = weights_and_input("vit-torchvision", (3, 12, 12), 6)
    folder = OUT / "vit-torchvision"
    saved = load_file(str(folder / "weights.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in w.items()), "not the committed fixture's weights"
    reference = load_file(str(folder / "reference.safetensors"))
    with torch.no_grad():
        assert torch.allclose(net(reference["input"]), reference["output"], atol=1e-5)
    torch.onnx.export(net.eval(), (x,), str(folder / "model-script.onnx"), dynamo=False,
                      input_names=["input"], output_names=["logits"])


def main():
    import sys
    chosen = sys.argv[1:]  # kinds to regenerate; all when none are named
    if chosen == ["bert-sdpa"]:
        return export_bert_sdpa()
    if chosen == ["vit-torchvision-script"]:
        return export_torchvision_vit_script()
    if chosen == ["encoder-fused"]:
        return export_fused_encoder()
    for kind, shape, seed in (("encoder", (5, D), 0), ("vit", (1, 12, 12), 1), ("text", (6,), 2),
                              ("vit-cls", (1, 12, 12), 4), ("llama", (5, D), 5),
                              ("vit-torchvision", (3, 12, 12), 6), ("bert", (6,), 7)):
        if chosen and kind not in chosen:
            continue
        net, w, x, ids = weights_and_input(kind, shape, seed)
        ln_eps = LN_EPS_OF.get(kind, LN_EPS)
        with torch.no_grad():
            plain = forward(kind, w, x, Ops("plain", ln_eps))
            lxt_out = forward(kind, w, x, Ops("attn-lrp", ln_eps))
        assert torch.allclose(plain, lxt_out, atol=1e-5), "LXT's forward differs from PyTorch's"
        folder = OUT / kind
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in w.items()}, str(folder / "weights.safetensors"))
        if net is not None:  # the library's own export (lrp-grad refuses it; see tests/lxt.rs)
            export_library_model(net, ids if ids is not None else x, folder / "model.onnx")
        else:
            export_onnx(kind, w, ids if ids is not None else x, folder / "model.onnx")
        if kind == "encoder":
            # Opset 18 writes GELU as x·0.5·(1 + erf(x/√2)) (Div, Erf, Add, Mul, Mul).
            export_onnx(kind, w, x, folder / "model-opset18.onnx", opset=18)
            with_explicit_expand(folder / "model.onnx", folder / "model-expand.onnx")
        tensors = {"input": x, "output": plain}
        if ids is not None:
            tensors["ids"] = ids.to(torch.float32)
            (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
        cases = {}
        for mode in ("attn-lrp", "cp-lrp"):
            r32, target = relevance(kind, w, x, mode, torch.float32)
            r64, target64 = relevance(kind, w, x, mode, torch.float64)
            assert torch.equal(target, target64)
            tensors[mode] = r32
            if ids is not None:
                tensors[f"{mode}.tokens"] = r32.sum(-1)
            distance = ((r32.double() - r64).abs().max() / r64.abs().max()).item()
            cases[mode] = {"targets": target.tolist(), "lxt_f32_distance": distance}
            print(f"{kind} {mode}: targets {target.tolist()}, LXT f32 vs f64 {distance:.2e}")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "reference.safetensors"))
        meta = {"kind": kind, "input_shape": list(shape), "d_model": D, "heads": HEADS,
                "hidden": HIDDEN, "classes": CLASSES, "layer_norm_eps": ln_eps,
                "blocks": BLOCKS[kind], "cases": cases,
                "torch": torch.__version__, "lxt": "2.1", "onnx": "model.onnx (dynamo exporter)"}
        if net is not None:
            meta["library_model"] = f"{type(net).__module__}.{type(net).__name__}"
        (folder / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")




if __name__ == "__main__":
    main()
