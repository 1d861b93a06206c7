#!/usr/bin/env python3
"""LXT 2.1's own ViT recipe (its `examples/vit_torch.py`) on the committed torchvision ViT fixture,
written to tests/fixtures/lxt/vit-torchvision/recipe.safetensors.

The recipe is LXT's efficient (gradient × input) mode, not its explicit rules (reference.py):

  monkey_patch(torchvision.models.vision_transformer, patch_map=lxt.efficient.models.vit_torch.cp_LRP)
      patches the forward of the torch.nn classes themselves (so every instance, whenever built):
      nn.LayerNorm   `layer_norm_forward`: (x - mean) / stop_gradient(std) · weight + bias
                     (the identity rule on 1/std; the mean subtraction stays linear)
      nn.GELU        `non_linear_forward`: the identity rule (relevance passes unchanged)
      nn.MultiheadAttention  `cp_multi_head_attention_forward`: query and key detached before
                     the original forward (CP-LRP: the attention probabilities are constants;
                     q and k get no relevance), so the block is linear in value
  monkey_patch_zennit()
      replaces zennit's BasicHook.forward/backward so zennit rules work inside gradient × input
      (the hook multiplies the incoming gradient by the module's output, runs the rule, divides
      by the input, stabilised by 1e-10)
  LayerMapComposite([(nn.Conv2d, Gamma(0.25)), (nn.Linear, Gamma(0.05))]).register(net)
      zennit's generalised Gamma rule (stabiliser 1e-6) on the patch conv (γ = 0.25) and on
      every nn.Linear module that is *called*: the MLP's two layers and the classifier head
      (γ = 0.05). nn.MultiheadAttention's in-projection (a fused parameter) and its out_proj
      (whose weights `F.multi_head_attention_forward` reads directly, never calling the module)
      get no hook: they, softmax·V, the residual sums, the positional add and the class token
      are plain gradient × input (LRP-0).

Then `y = net(x.requires_grad_())`, backward of the target logits with seed 1 (the example's
`y[0, c].backward()`: in gradient × input, the head's hook multiplies that seed by the logit,
so the output relevance is the logit itself; a seed of `one_hot · y` would make it y²), and the
relevance of the image is `x · x.grad`, [3, 3, 12, 12], for the targets of cases.json.

The net is reference.py's `weights_and_input("vit-torchvision", (3, 12, 12), 6)`, checked against
the committed weights and output; the patched forward is checked against the plain one (1e-5).
Run in float32 and in float64 (the same weights, `.double()`), the whole batch at once and
checked against one sample at a time. The seed convention is checked in float64: without the
composite, the patches alone give reference.py's explicit CP-LRP (`cp-lrp` of
reference.safetensors, seeded there with the logit), and a Gamma(0) composite gives the patches
alone (the patched hook is in gradient units). Plain gradient × input (before patching) is printed for
comparison, so a recipe that did not take effect would show.

  recipe.safetensors   `recipe` (the float64 run, stored as float32), `recipe-f32` (the float32
                       run), `targets` (float32)

LXT's patches are global and not undone: run this in a process of its own.
Not run by CI (the fixture is committed).
Usage: python tools/lxt-reference/vit_recipe.py (torch, torchvision, zennit 1.0, safetensors,
       lxt 2.1 installed with --no-deps)
"""
import json
import pathlib
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reference as R  # noqa: E402  (the fixture's model)

FOLDER = R.OUT / "vit-torchvision"
CONV_GAMMA, LINEAR_GAMMA = 0.25, 0.05


def committed_net():
    net, w, x, _ = R.weights_and_input("vit-torchvision", (3, 12, 12), 6)
    saved = load_file(str(FOLDER / "weights.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in w.items()), "not the committed fixture's weights"
    reference = load_file(str(FOLDER / "reference.safetensors"))
    assert torch.equal(reference["input"], x), "not the committed fixture's input"
    with torch.no_grad():
        assert torch.allclose(net(x), reference["output"], atol=1e-5)
    for p in net.parameters():  # as the example: gradients for the input only
        p.requires_grad_(False)
    return net.eval(), x, reference["output"]


def input_times_gradient(net, x, targets):
    """x · ∂(Σ_n y[n, t_n])/∂x: the seed is 1 at each sample's target logit."""
    x = x.clone().requires_grad_(True)
    y = net(x)
    seed = torch.zeros_like(y).scatter(1, targets[:, None], 1.0)
    y.backward(seed)
    return (x * x.grad).detach(), y.detach()


def main():
    meta = json.loads((FOLDER / "cases.json").read_text())
    targets = torch.tensor(meta["cases"]["cp-lrp"]["targets"])
    assert meta["cases"]["attn-lrp"]["targets"] == targets.tolist()

    net, x, output = committed_net()
    assert torch.equal(output.argmax(1), targets)
    plain, _ = input_times_gradient(net, x, targets)  # before LXT touches torch.nn

    import torchvision.models.vision_transformer as vision_transformer
    from zennit.composites import LayerMapComposite
    from zennit.rules import Gamma
    from lxt.efficient import monkey_patch, monkey_patch_zennit
    from lxt.efficient.models.vit_torch import cp_LRP
    from lxt.efficient import patches

    monkey_patch(vision_transformer, patch_map=cp_LRP)
    monkey_patch_zennit()
    nn = torch.nn
    assert nn.LayerNorm.forward is patches.layer_norm_forward
    assert nn.GELU.forward is patches.non_linear_forward
    assert nn.MultiheadAttention.forward is patches.cp_multi_head_attention_forward

    def recipe(net, x):
        composite = LayerMapComposite([(nn.Conv2d, Gamma(CONV_GAMMA)),
                                       (nn.Linear, Gamma(LINEAR_GAMMA))])
        composite.register(net)
        called = set()
        counters = [m.register_forward_hook(lambda m, i, o, name=name: called.add(name))
                    for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            r, y = input_times_gradient(net, x, targets)
        finally:
            composite.remove()
            for handle in counters:
                handle.remove()
        return r, y, called

    r32, y32, called = recipe(net, x)
    print("modules with a Gamma rule that ran:", sorted(called))
    assert called == {"conv_proj", "encoder.layers.encoder_layer_0.mlp.0",
                      "encoder.layers.encoder_layer_0.mlp.3", "heads.head"}, called
    assert torch.allclose(y32, output, atol=1e-5), "the patched forward differs"
    # one sample at a time, with the example's own call: the hooks keep samples apart
    singles = []
    for n in range(x.shape[0]):
        composite = LayerMapComposite([(nn.Conv2d, Gamma(CONV_GAMMA)),
                                       (nn.Linear, Gamma(LINEAR_GAMMA))])
        composite.register(net)
        xn = x[n:n + 1].clone().requires_grad_(True)
        net(xn)[0, targets[n]].backward()  # the example's call
        composite.remove()
        singles.append((xn * xn.grad).detach())
    singles = torch.cat(singles)
    print(f"batch vs one sample at a time (f32): {(singles - r32).abs().max():.2e}")
    assert torch.allclose(singles, r32, atol=1e-6 * r32.abs().max())

    net64 = net.double()
    r64, y64, _ = recipe(net64, x.double())
    # The seed convention, checked two ways in float64: the patches alone (no zennit) are the
    # explicit CP-LRP of reference.py (which seeds its relevance backward with the logit), and
    # zennit's Gamma(0) through the patched hook is the plain gradient of those layers.
    patches_only, _ = input_times_gradient(net64, x.double(), targets)
    committed = load_file(str(FOLDER / "reference.safetensors"))["cp-lrp"].double()
    print(f"patches alone vs reference.py's CP-LRP: {(patches_only - committed).abs().max():.2e}")
    assert torch.allclose(patches_only, committed, atol=1e-4 * committed.abs().max())
    composite = LayerMapComposite([((nn.Conv2d, nn.Linear), Gamma(0.0))])
    composite.register(net64)
    gamma0, _ = input_times_gradient(net64, x.double(), targets)
    composite.remove()
    print(f"Gamma(0) everywhere vs the patches alone: {(gamma0 - patches_only).abs().max():.2e}")
    assert torch.allclose(gamma0, patches_only, atol=1e-4 * committed.abs().max())
    assert torch.allclose(y64.float(), output, atol=1e-5)

    scale = r64.abs().max().item()
    distance = (r32.double() - r64).abs().max().item() / scale
    print(f"targets {targets.tolist()}, logits {y64.gather(1, targets[:, None]).flatten().tolist()}")
    print(f"relevance sums (f64) {r64.sum((1, 2, 3)).tolist()}")
    print(f"max |R| (f64) {scale:.4e}; LXT f32 vs f64: max|Δ| / max|R| = {distance:.3e}")
    plain_distance = (plain.double() - r64).abs().max().item()
    print(f"plain gradient × input vs recipe: max|Δ| = {plain_distance:.4e} "
          f"({plain_distance / scale:.3f} of max|R|); max |plain| {plain.abs().max():.4e}")
    assert plain_distance > 1e-2 * scale, "the recipe equals gradient × input"

    save_file({"recipe": r64.float().contiguous(), "recipe-f32": r32.contiguous(),
               "targets": targets.to(torch.float32)}, str(FOLDER / "recipe.safetensors"))


if __name__ == "__main__":
    main()
