#!/usr/bin/env python3
"""ONNX fixtures: small models of the torchvision families, exported with both of PyTorch's
exporters, with Zennit 1.0's relevance for them.

Each family is built from torchvision's own classes (BasicBlock/Bottleneck, DenseNet, Fire,
MobileNetV2, EfficientNet's MBConv with squeeze-excitation, VGG's make_layers) with fewer blocks
and narrower widths: the same ONNX operator patterns as the full-size models, a few hundred KB.
Random weights, non-trivial batch-norm statistics.

Under tests/fixtures/onnx/<family>/:
  dynamo.onnx (+ dynamo.onnx.data)  torch.onnx.export(..., dynamo=True), opset 18
  script.onnx                       torch.onnx.export(..., dynamo=False) (TorchScript)
  reference.safetensors             `input`, `output`, `relevance.<case>` (Zennit in float64 on
                                    the float32 weights, stored as float32)
  cases.json                        case -> composite or rule; Zennit's own float32-vs-float64
                                    distance (max |R32 - R64|) and how far the reference moves
                                    when the batch norms are folded in float64 instead
                                    (max |R64 - R64'|): the tolerance's floors; targets

The Zennit side sees the model as the ONNX graph does (so that both explain the same thing):
functional ReLU/pooling in a forward become modules (`Pass`/`Norm`), residual additions become
Zennit's `Sum` (`Norm`; for the ResNet blocks Zennit's own canonizers), a squeeze-excitation
gives all relevance to `x` (lrp-grad's gate), and batch norms are folded in float32 into the
conv that feeds them, as both exporters fold them, so that Zennit explains the very weights the
ONNX files hold; the other batch norms stay (`Pass`). (Zennit's SequentialMergeBatchNorm pairs by
module order across parents, which is wrong on DenseNet: a layer's last conv with the next
layer's first norm, which reads a concatenation.)

Run with ./models.sh (a virtualenv with torch 2.15.0, torchvision, onnx, onnxscript,
onnxruntime and zennit 1.0.0). CI does not need Python: the fixtures are committed.
"""
import copy
import json
import pathlib
import sys
import types

import numpy as np
import onnxruntime
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import densenet, efficientnet, mobilenetv2, resnet, squeezenet, vgg
from torchvision.ops.misc import SqueezeExcitation
from zennit.attribution import Gradient
from zennit.composites import (
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerMapComposite,
    layer_map_base,
)
from zennit.layer import Sum
from zennit.rules import Epsilon, Gamma, ZPlus
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer
from zennit.types import Linear as AnyLinear

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "onnx"
LOW, HIGH = -3.0, 3.0
CLASSES = 5


def randomize(net, name=None):
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=1.0)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                if name == "densenet":
                    # DenseNet's batch norms after concatenations stay (`Pass`), and relevance
                    # through them cancels: with shifts of both signs Zennit's own float32
                    # result is 1.2e-4 of the largest relevance away from its float64 one (on
                    # epsilon-plus-flat); with non-negative shifts 1.6e-5. Keep it meaningful.
                    m.bias.uniform_(0.0, 0.2)
                    m.running_mean.uniform_(-0.3, 0.0)
    return net.eval()


class Head(nn.Module):
    """Global average pooling (a module, so Zennit gives it `Norm`), flatten, linear."""

    def __init__(self, features):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(features, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny_resnet():
    """Stem, torchvision's BasicBlock twice (one strided, projected) and a Bottleneck."""
    down = lambda cin, cout, s: nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), nn.BatchNorm2d(cout))
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        resnet.BasicBlock(8, 8),
        resnet.BasicBlock(8, 16, 2, down(8, 16, 2)),
        resnet.Bottleneck(16, 8, 1, down(16, 32, 1)),
        Head(32),
    )
    return net, [ResNetBasicBlockCanonizer(), ResNetBottleneckCanonizer()]


def tiny_densenet():
    net = densenet.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2,
                            num_classes=CLASSES)
    return net, []


def fold_batch_norms(module):
    """Every batch norm that directly follows a conv among one parent's children is folded into
    it, in float32, as both exporters do (and exactly where they do: DenseNet's conv1 → norm2,
    never a layer's last conv into the next layer's first norm, which reads a concatenation)."""
    fuse = torch.nn.utils.fusion.fuse_conv_bn_eval
    names = list(module._modules)
    for a, b in zip(names, names[1:]):
        conv, norm = module._modules[a], module._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module._modules[a], module._modules[b] = fuse(conv, norm), nn.Identity()
    for child in module.children():
        fold_batch_norms(child)


def densenet_for_zennit(net):
    """The forward's functional ReLU and pooling as modules."""
    net.relu = nn.ReLU()
    net.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        out = self.pool(self.relu(self.features(x)))
        return self.classifier(torch.flatten(out, 1))

    net.forward = types.MethodType(forward, net)
    return net


def tiny_squeezenet():
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        squeezenet.Fire(16, 4, 8, 8),
        squeezenet.Fire(16, 4, 8, 8),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        squeezenet.Fire(16, 8, 16, 16),
        nn.Dropout(0.5), nn.Conv2d(32, CLASSES, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return net, []


def tiny_mobilenet_v2():
    setting = [[1, 8, 1, 1], [6, 12, 2, 2], [6, 16, 1, 1]]
    net = mobilenetv2.MobileNetV2(num_classes=CLASSES, width_mult=0.5,
                                  inverted_residual_setting=setting)
    return net, []


def tiny_efficientnet():
    cfg = efficientnet.MBConvConfig
    setting = [cfg(1, 3, 1, 16, 8, 1), cfg(4, 3, 2, 8, 12, 2), cfg(4, 5, 1, 12, 16, 1)]
    net = efficientnet.EfficientNet(setting, dropout=0.2, num_classes=CLASSES, last_channel=64)
    return net, []


def tiny_vgg_bn():
    features = vgg.make_layers([8, "M", 16, "M", 32, 32, "M"], batch_norm=True)
    net = nn.Sequential(features, nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(128, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, CLASSES))
    return net, []


def tiny_alexnet():
    """AlexNet's pattern: a large strided kernel, overlapping 3x3/2 max pools, an adaptive
    average pool (here to 1x1, to keep the fixture small)."""
    net = nn.Sequential(
        nn.Conv2d(3, 16, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 24, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(24, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(),
        nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, CLASSES),
    )
    return net, []


def sum_residual(module, inner):
    """`x + inner(x)` as Zennit's `Sum` (Norm), with the block's own residual condition."""
    module.sum = Sum()

    def forward(self, x):
        out = inner(self, x)
        if self.use_res_connect:
            return self.sum(torch.stack([x, out], dim=-1))
        return out

    module.forward = types.MethodType(forward, module)


def for_zennit(name, net, dtype=torch.float32):
    """The model as the ONNX graph presents it to lrp-grad (see the module doc), its batch
    norms folded in `dtype`."""
    net = copy.deepcopy(net).to(dtype)
    fold_batch_norms(net)
    if name == "densenet":
        return densenet_for_zennit(net)
    for m in net.modules():
        if isinstance(m, mobilenetv2.InvertedResidual):
            sum_residual(m, lambda self, x: self.conv(x))
        if isinstance(m, efficientnet.MBConv):
            sum_residual(m, lambda self, x: self.block(x))
        if isinstance(m, SqueezeExcitation):
            # Zennit carries relevance as the gradient: `x · scale.detach()` would scale it by
            # the gate. lrp-grad's gate keeps all of it with `x`: value x·scale, gradient 1.
            m.forward = types.MethodType(lambda self, x: x + (self._scale(x) * x - x).detach(), m)
    if isinstance(net, (mobilenetv2.MobileNetV2, efficientnet.EfficientNet)):
        net.avgpool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

        net.forward = types.MethodType(forward, net)
    return net


FAMILIES = {
    "resnet": (tiny_resnet, 32),
    "densenet": (tiny_densenet, 32),
    "squeezenet": (tiny_squeezenet, 48),
    "mobilenet_v2": (tiny_mobilenet_v2, 32),
    "efficientnet": (tiny_efficientnet, 32),
    "vgg_bn": (tiny_vgg_bn, 32),
    "alexnet": (tiny_alexnet, 67),
}


def uniform(rule):
    return lambda c: LayerMapComposite(layer_map_base() + [(AnyLinear, rule)], canonizers=c)


CASES = {
    "epsilon-plus-flat": ({"composite": "epsilon-plus-flat"}, lambda c: EpsilonPlusFlat(canonizers=c)),
    "epsilon-gamma-box": ({"composite": "epsilon-gamma-box"},
                          lambda c: EpsilonGammaBox(low=LOW, high=HIGH, canonizers=c)),
    "epsilon-alpha2-beta1": ({"composite": "epsilon-alpha2-beta1"},
                             lambda c: EpsilonAlpha2Beta1(canonizers=c)),
    "epsilon-plus": ({"composite": "epsilon-plus"}, lambda c: EpsilonPlus(canonizers=c)),
    "epsilon": ({"rule": "epsilon:1e-6"}, uniform(Epsilon(epsilon=1e-6))),
    "gamma": ({"rule": "gamma:0.25"}, uniform(Gamma(gamma=0.25))),
    "z-plus": ({"rule": "z-plus"}, uniform(ZPlus())),
}


def relevance(net, canonizers, case, x, targets):
    net = copy.deepcopy(net)  # Zennit 1.0's merge leaves merged weights behind
    composite = CASES[case][1]([copy.deepcopy(c) for c in canonizers])
    one_hot = torch.eye(CLASSES, dtype=x.dtype)[targets]
    with Gradient(model=net, composite=composite) as attributor:
        _, rel = attributor(x.clone(), one_hot)
    return rel.detach().float().contiguous()


def export(net, x, folder):
    torch.onnx.export(net, (x,), folder / "dynamo.onnx", dynamo=True, input_names=["input"],
                      output_names=["logits"], external_data=True)
    torch.onnx.export(net, (x,), folder / "script.onnx", dynamo=False, input_names=["input"],
                      output_names=["logits"])
    for name in ("dynamo.onnx", "script.onnx"):
        session = onnxruntime.InferenceSession(str(folder / name))
        (y,) = session.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(y, net(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def write(name):
    build, size = FAMILIES[name]
    net, canonizers = build()
    net = randomize(net, name)
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        output = net(x)
    export(net, x, folder)
    zen = for_zennit(name, net).eval()
    with torch.no_grad():
        assert torch.allclose(zen(x), output, atol=1e-5), f"{name}: the Zennit view differs"
    targets = output.argmax(1).tolist()
    tensors = {"input": x.contiguous(), "output": output.contiguous()}
    # Where relevance is ill-conditioned (a batch norm left to `Pass` divides by the conv
    # output before it), rounding the weights differently moves the reference itself: the
    # same Zennit run on batch norms folded in float64 measures by how much.
    zen_exact = for_zennit(name, net, torch.float64).eval()
    distance, fold_distance = {}, {}
    for case in CASES:
        r32 = relevance(zen, canonizers, case, x, targets)
        r64 = relevance(copy.deepcopy(zen).double(), canonizers, case, x.double(), targets)
        exact = relevance(zen_exact, canonizers, case, x.double(), targets)
        tensors[f"relevance.{case}"] = r64
        distance[case] = float((r32 - r64).abs().max())
        fold_distance[case] = float((exact - r64).abs().max())
    save_file(tensors, folder / "reference.safetensors")
    meta = {
        "family": name,
        "zennit": "1.0.0",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "canonizers": [type(c).__name__ for c in canonizers],
        "batch_norm": "folded into the preceding conv in float32 (as the exporters do)",
        "output_relevance": "one-hot",
        "bounds": [LOW, HIGH],
        "targets": targets,
        "cases": {case: spec for case, (spec, _) in CASES.items()},
        "zennit_f32_distance": distance,
        "zennit_fold_distance": fold_distance,
    }
    (folder / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {folder}")


def write_error_models():
    """Models the loader must refuse with a clear message: an operator it does not translate
    (Softsign, which the exporter writes with `Abs`), and an integer input (token ids into an
    embedding)."""
    folder = OUT / "errors"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softsign(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    torch.onnx.export(net.eval(), (torch.randn(1, 1, 8, 8),), folder / "unsupported.onnx",
                      dynamo=False, input_names=["input"])
    ids = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3))
    torch.onnx.export(ids.eval(), (torch.tensor([[1, 2, 3]]),), folder / "int_input.onnx",
                      dynamo=False, input_names=["ids"])
    print(f"wrote {folder}")


def main():
    names = sys.argv[1:] or [*FAMILIES, "errors"]
    for name in names:
        if name == "errors":
            write_error_models()
        else:
            write(name)


if __name__ == "__main__":
    main()
