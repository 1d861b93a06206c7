"""Helpers shared by the ONNX reference scripts (shuffle.py, mixer.py, split_bn.py)."""
import torch


def relevance(net, x, targets, composite):
    """Zennit's relevance of `x` for `targets` (the logit as output relevance) under
    `composite`: with Zennit's rules, the input gradient is the relevance."""
    x = x.clone().requires_grad_(True)
    with composite.context(net) as modified:
        out = modified(x)
        grad = torch.zeros_like(out)
        grad[torch.arange(len(targets)), targets] = 1.0
        (g,) = torch.autograd.grad(out, x, grad * out)
    return g.detach()


def export_both(net, x, folder, stem):
    """`folder/{stem}-script.onnx` and `folder/{stem}-dynamo.onnx`, from both exporters."""
    for exporter, dynamo in (("script", False), ("dynamo", True)):
        torch.onnx.export(net, (x,), str(folder / f"{stem}-{exporter}.onnx"), dynamo=dynamo,
                          external_data=False, input_names=["input"], output_names=["logits"])
