#!/usr/bin/env python3
"""Zoo coverage: which real image classifiers does `lrp-grad explain` explain? (issue 23)

Exports every model of the zoo with both of PyTorch's ONNX exporters, runs onnxruntime on each
export for the reference logits, explains the export with the lrp-grad CLI

    <lrp-grad> explain --model M.onnx --input x.npy --output r.npy --summary s.json --quiet

(default composite, LRP), checks the answer against onnxruntime and writes a table (markdown
and JSON): model | source | parameters | size | exporter | status | seconds | reason.

Usage
-----
    python3 tools/zoo/coverage.py                          # the whole zoo (hours, see below)
    python3 tools/zoo/coverage.py --models resnet18,vit_tiny_patch16_224 --exporters dynamo
    python3 tools/zoo/coverage.py --resume                 # go on with an interrupted run

Options: --models a,b,c  --exporters script,dynamo  --max-params 150e6
         --out tools/zoo/coverage.md  --json tools/zoo/coverage.json
         --binary /root/.cache/lrp-grad-target/release/lrp-grad  --timeout 600 (explain call, s)
         --export-timeout 1800 (building + exporting + onnxruntime, s)  --resume

Needs torch (2.15), torchvision, timm, onnx, onnxscript (dynamo exporter), onnxruntime, numpy;
runs on the CPU.

The zoo
-------
* torchvision: every classification model, `torchvision.models.list_models(module=
  torchvision.models)` (the top-level module only, so no detection / segmentation / video /
  optical-flow / quantized models), built with `weights=None` (random weights), with at most
  --max-params parameters (150 M: this leaves out convnext_large, regnet_y_128gf, vit_h_14,
  vit_l_16, vit_l_32; 75 models with torchvision 0.29).
* timm (`pretrained=False`): resnet50, convnext_tiny, deit_tiny_patch16_224,
  vit_tiny_patch16_224, efficientnet_b0, mobilenetv3_small_100, regnetx_002,
  swin_tiny_patch4_window7_224, levit_128s, mixer_b16_224.

Which library a name of --models belongs to: `timm:NAME` or `torchvision:NAME` (or `tv:NAME`)
says so; a bare name is torchvision's when it is one of torchvision's classification models,
else timm's when timm knows it (`timm.is_model`), else an error. So `resnet50` and
`convnext_tiny`, which both libraries have, are torchvision's unless written `timm:resnet50`.
--max-params filters the default zoo only; models named with --models run whatever their size.

Each model: `torch.manual_seed(0)` right before it is built, eval mode. A timm model whose
classifier weight comes out all zero (timm zero-initialises some heads: mixer_b16_224 with
timm 1.0.31; the task that asked for this tool expected vit/deit too, but their heads are
trunc-normal already) gets `torch.nn.init.normal_(head.weight, std=0.02)` right after it is
built (still under that seed), so that its logits are not all 0 and its prediction means
something. One input per model: `torch.randn(1, 3, S, S, generator=torch.Generator()
.manual_seed(1234))`, S the input size:
  * 224 for the ViT family (names starting vit, deit, swin, maxvit, levit, mixer), for timm
    models whose config says `fixed_input_size`, and for AlexNet / VGG with the TorchScript
    exporter (their adaptive average pooling from 4×4 / 5×5 to 6×6 / 7×7 is a pooling the
    TorchScript exporter refuses);
  * 160 for the other (convolutional) models, unless the PyTorch forward at 160 raises (a model
    that asserts a fixed size): then 224.

Exporters (opset: the exporter's default; `input_names=['input'], output_names=['logits']`;
`external_data=False` for models under 2 GB, which is every model of the zoo):
  script  torch.onnx.export(..., dynamo=False)   (the TorchScript exporter)
  dynamo  torch.onnx.export(..., dynamo=True)    (torch.export + onnxscript)

Status of a (model, exporter) row:
  explains        the CLI exits 0, samples[0].predicted is onnxruntime's argmax, samples[0].score
                  is onnxruntime's largest logit within 1e-4·max(1, |logit|) (absolute for
                  logits under 1: random-weight MobileNetV3 / ShuffleNet logits are ~1e-9 /
                  ~0.03, so there the prediction is what is checked), r.npy has the
                  input's shape, is finite, and its sum agrees with samples[0].relevance_sum
                  within 1e-3 relative (1e-3·max(|Σ|, |relevance_sum|) + 1e-6·Σ|r|; the second
                  term is float32 rounding of a sum with cancellation)
  wrong           the CLI exits 0 but one of those checks fails (reason: which, with numbers)
  refused         the CLI exits non-zero (reason: the first non-empty line of its stderr,
                  trimmed; for a Rust panic, the panic message line too)
  timed out       the explain call ran past --timeout
  export failed   PyTorch's exporter raised (or onnxruntime could not run what it wrote, or the
                  worker building / exporting the model died): no explain call. These rows are
                  counted apart: the summary gives each exporter's share both excluding and
                  including them.
`seconds` is the wall clock of the explain call alone (process start to exit).

Every (model, exporter) runs in its own Python worker process (this script with --_worker), so
that a crash or a leak of one export cannot take the run down or grow its memory; the worker
deletes the model before the explain call and the temporary directory (ONNX file, input,
relevance) after it. The markdown and the JSON are rewritten after every row (atomically), so an
interrupted run keeps what it did; --resume skips the rows the JSON already has.

Runtime (2 CPU cores): a worker spends ~5 s starting (imports) and building, the TorchScript
export of a small CNN takes ~2-5 s and the dynamo export ~5-30 s, large models (VGG,
RegNetY-32GF, EfficientNet-B7, ViT-B) a minute or more, onnxruntime a few seconds; the explain
calls themselves take from under a second to a few tens of seconds (median 1.9 s). The full
zoo (85 models, 170 rows; coverage.md) took 44 minutes on 2 cores on 2026-12-07.
"""
import argparse
import datetime
import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

DEFAULT_BINARY = "/root/.cache/lrp-grad-target/release/lrp-grad"
TIMM_ZOO = [
    "resnet50",
    "convnext_tiny",
    "deit_tiny_patch16_224",
    "vit_tiny_patch16_224",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnetx_002",
    "swin_tiny_patch4_window7_224",
    "levit_128s",
    "mixer_b16_224",
]
EXPORTERS = ["script", "dynamo"]
VIT_FAMILY = ("vit", "deit", "swin", "maxvit", "levit", "mixer")
INPUT_SEED = 1234
CNN_SIZE = 160
FIXED_SIZE = 224
RESULT_MARK = "@@COVERAGE-RESULT@@ "
STAGE_MARK = "@@COVERAGE-STAGE@@ "


# ----------------------------------------------------------------------------------- models --


def torchvision_names():
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def resolve(name, tv_names):
    """`timm:x`, `torchvision:x` / `tv:x`, or a bare name (torchvision first, then timm)."""
    if ":" in name:
        prefix, bare = name.split(":", 1)
        prefix = prefix.lower()
        if prefix in ("tv", "torchvision"):
            if bare not in tv_names:
                raise SystemExit(f"{bare!r} is not a torchvision classification model")
            return "torchvision", bare
        if prefix == "timm":
            import timm

            if not timm.is_model(bare):
                raise SystemExit(f"{bare!r} is not a timm model")
            return "timm", bare
        raise SystemExit(f"unknown source {prefix!r} in {name!r} (torchvision:, tv: or timm:)")
    if name in tv_names:
        return "torchvision", name
    import timm

    if timm.is_model(name):
        return "timm", name
    raise SystemExit(f"{name!r} is neither a torchvision classification model nor a timm model")


def build(source, name):
    """The model, seeded, random weights, eval mode (timm zero heads re-initialised)."""
    import torch

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if source == "torchvision":
            import torchvision

            model = torchvision.models.get_model(name, weights=None)
        else:
            import timm

            model = timm.create_model(name, pretrained=False)
    notes = []
    if source == "timm":
        heads = model.get_classifier()
        heads = heads if isinstance(heads, (tuple, list)) else (heads,)
        for head in heads:
            linear = head if isinstance(head, torch.nn.Linear) else getattr(head, "linear", head)
            weight = getattr(linear, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.numel() and not weight.detach().any():
                with torch.no_grad():
                    torch.nn.init.normal_(weight, std=0.02)
                notes.append("zero classifier weight re-initialised N(0, 0.02²)")
    return model.eval(), notes


def count_params(source, name):
    """Parameter count without allocating the weights (meta device), else the real build."""
    import torch

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            if source == "torchvision":
                import torchvision

                model = torchvision.models.get_model(name, weights=None)
            else:
                import timm

                model = timm.create_model(name, pretrained=False)
    except Exception:  # some builders compute on tensors (RegNet's widths): build it for real
        model, _ = build(source, name)
    n = sum(p.numel() for p in model.parameters())
    del model
    gc.collect()
    return n


def fixed_by_name(source, name, exporter, model):
    base = name.lower()
    if base.startswith(VIT_FAMILY):
        return "ViT family"
    if source == "timm" and getattr(model, "pretrained_cfg", {}).get("fixed_input_size"):
        return "timm fixed_input_size"
    if exporter == "script" and (base == "alexnet" or base.startswith("vgg")):
        return "AlexNet/VGG with the TorchScript exporter"
    return None


# ----------------------------------------------------------------------------------- worker --


def stage(what):
    print(STAGE_MARK + what, flush=True)


def first_line(text, limit=300):
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    # A Rust panic's first line is "thread 'main' panicked at FILE:LINE:COL:"; its message is next.
    if re.match(r"thread '.*' panicked at", line) and len(lines) > 1:
        line = f"{line} {lines[1]}"
    return line[:limit]


def exception_reason(exc):
    return first_line(f"{type(exc).__name__}: {exc}")


def worker(spec):
    """One (model, exporter): build, export, onnxruntime, explain, check. Returns the row."""
    import numpy as np
    import torch

    source, name, exporter = spec["source"], spec["model"], spec["exporter"]
    row = {"model": name, "source": source, "exporter": exporter, "params": None, "size": None,
           "status": None, "seconds": None, "reason": "", "notes": []}
    tmp = tempfile.mkdtemp(prefix=f"zoo-{name}-{exporter}-")
    try:
        stage("build")
        model, notes = build(source, name)
        row["notes"] += notes
        row["params"] = sum(p.numel() for p in model.parameters())
        gen = lambda s: torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(INPUT_SEED))
        why = fixed_by_name(source, name, exporter, model)
        size = FIXED_SIZE if why else CNN_SIZE
        x = gen(size)
        stage("forward")
        with torch.no_grad():
            try:
                y_torch = model(x)
            except Exception as exc:
                if size == FIXED_SIZE:
                    raise
                why = f"forward at {CNN_SIZE} raised ({exception_reason(exc)[:120]})"
                size = FIXED_SIZE
                x = gen(size)
                y_torch = model(x)
        row["size"] = size
        if why:
            row["notes"].append(f"input {size}: {why}")
        if isinstance(y_torch, (tuple, list)):
            y_torch = y_torch[0]
        y_torch = y_torch.detach().numpy()

        onnx_path = os.path.join(tmp, "M.onnx")
        big = row["params"] * 4 >= 2 * 1024**3 * 0.95
        stage("export")
        t0 = time.perf_counter()
        try:
            # Not under `torch.no_grad()`: there nn.MultiheadAttention takes its fast path,
            # `aten::_native_multi_head_attention`, which the TorchScript exporter cannot write
            # (torchvision's vit_b_16); a user's plain `torch.onnx.export(model, ...)` runs
            # with gradients enabled too.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), onnx_path, dynamo=(exporter == "dynamo"),
                                  external_data=big, input_names=["input"],
                                  output_names=["logits"])
        except Exception as exc:
            row.update(status="export failed", reason=exception_reason(exc),
                       detail=traceback.format_exc()[-3000:])
            return row
        row["export_seconds"] = round(time.perf_counter() - t0, 2)
        row["onnx_mb"] = round(sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
                                   if f.startswith("M.onnx")) / 2**20, 1)
        del model
        gc.collect()

        stage("onnxruntime")
        try:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(onnx_path, options,
                                                   providers=["CPUExecutionProvider"])
            feed = {session.get_inputs()[0].name: x.numpy()}
            y_ort = np.asarray(session.run(None, feed)[0], dtype=np.float64).reshape(-1)
            del session
        except Exception as exc:
            row.update(status="export failed", reason="onnxruntime: " + exception_reason(exc))
            return row
        row["ort_vs_torch_max_abs"] = float(np.abs(y_ort - y_torch.reshape(-1)).max())
        ort_argmax = int(np.argmax(y_ort))
        ort_max = float(y_ort[ort_argmax])
        second = float(np.partition(y_ort, -2)[-2]) if y_ort.size > 1 else -math.inf
        row.update(ort_argmax=ort_argmax, ort_max=ort_max, ort_top2_gap=ort_max - second)

        x_path, r_path, s_path = (os.path.join(tmp, f) for f in ("x.npy", "r.npy", "s.json"))
        np.save(x_path, x.numpy())
        stage("explain")
        row["binary_mtime"] = mtime(spec["binary"])
        cmd = [spec["binary"], "explain", "--model", onnx_path, "--input", x_path,
               "--output", r_path, "--summary", s_path, "--quiet"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  timeout=spec["timeout"])
        except subprocess.TimeoutExpired:
            row.update(status="timed out", seconds=round(time.perf_counter() - t0, 2),
                       reason=f"explain ran past {spec['timeout']} s")
            return row
        row["seconds"] = round(time.perf_counter() - t0, 2)
        if proc.returncode != 0:
            reason = first_line(proc.stderr) or first_line(proc.stdout) or "(no output)"
            reason = reason.replace(onnx_path, "M.onnx").replace(tmp, "TMP")
            row.update(status="refused", reason=reason, exit_code=proc.returncode,
                       stderr_tail=proc.stderr[-2000:])
            return row

        problems = []
        try:
            with open(s_path) as f:
                sample = json.load(f)["samples"][0]
            predicted, score = int(sample["predicted"]), float(sample["score"])
            relevance_sum = float(sample["relevance_sum"])
            row.update(predicted=predicted, score=score, relevance_sum=relevance_sum)
        except Exception as exc:
            row.update(status="wrong", reason=f"summary unreadable: {exception_reason(exc)}")
            return row
        if predicted != ort_argmax:
            problems.append(f"predicted {predicted}, onnxruntime {ort_argmax} "
                            f"(top-2 gap {row['ort_top2_gap']:.3g})")
        if not abs(score - ort_max) <= 1e-4 * max(1.0, abs(ort_max)):
            problems.append(f"score {score:.6g} vs onnxruntime {ort_max:.6g}")
        try:
            r = np.load(r_path).astype(np.float64)
        except Exception as exc:
            problems.append(f"r.npy unreadable: {exception_reason(exc)}")
            r = None
        if r is not None:
            if tuple(r.shape) != tuple(x.shape):
                problems.append(f"r.npy shape {list(r.shape)}, input {list(x.shape)}")
            if not np.isfinite(r).all():
                problems.append(f"r.npy has {int((~np.isfinite(r)).sum())} non-finite values")
            else:
                r_sum, r_abs = float(r.sum()), float(np.abs(r).sum())
                row["r_sum"] = r_sum
                tol = 1e-3 * max(abs(r_sum), abs(relevance_sum)) + 1e-6 * r_abs
                if not abs(r_sum - relevance_sum) <= tol:
                    problems.append(f"Σ r.npy {r_sum:.6g} vs relevance_sum {relevance_sum:.6g}")
        row.update(status="wrong" if problems else "explains", reason="; ".join(problems))
        return row
    except Exception as exc:
        row.update(status="export failed", reason=f"worker: {exception_reason(exc)}",
                   detail=traceback.format_exc()[-3000:])
        return row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------- parent --


def run_worker(spec, export_timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--_worker", json.dumps(spec)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    last_stage = "start"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                              timeout=spec["timeout"] + export_timeout)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, rc = "", None
    for line in out.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
        if line.startswith(STAGE_MARK):
            last_stage = line[len(STAGE_MARK):].strip()
    row = {"model": spec["model"], "source": spec["source"], "exporter": spec["exporter"],
           "params": spec.get("params"), "size": None, "seconds": None, "notes": []}
    what = "timed out" if rc is None else f"exit code {rc}"
    tail = first_line("\n".join(err.strip().splitlines()[-1:]))
    if last_stage == "explain":
        row.update(status="timed out" if rc is None else "refused",
                   reason=f"worker died during the explain call ({what}) {tail}".strip())
    else:
        row.update(status="export failed",
                   reason=f"worker died during {last_stage} ({what}) {tail}".strip())
    return row


def mtime(path):
    try:
        return datetime.datetime.fromtimestamp(os.stat(path).st_mtime).isoformat(timespec="seconds")
    except OSError:
        return None


def fmt_params(n):
    return "" if n is None else f"{n / 1e6:.1f} M"


def md_cell(text, limit=160):
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def sort_key(row):
    order = {e: i for i, e in enumerate(EXPORTERS)}
    return (row["source"], row["model"], order.get(row["exporter"], 99), row["exporter"])


def summary_lines(rows, exporters):
    lines = []
    for label, sel in [(e, [r for r in rows if r["exporter"] == e]) for e in exporters] + [
            ("all", rows)]:
        if not sel:
            continue
        ok = sum(r["status"] == "explains" for r in sel)
        failed = sum(r["status"] == "export failed" for r in sel)
        exported = len(sel) - failed
        pct = lambda a, b: f"{100 * a / b:.0f} %" if b else "n/a"
        counts = {}
        for r in sel:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        lines.append(
            f"- **{label}**: {ok} of {exported} exported models explain ({pct(ok, exported)}, "
            f"excluding the {failed} export failures); {ok} of {len(sel)} including them "
            f"({pct(ok, len(sel))}). Statuses: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    return lines


def write_outputs(rows, meta, args):
    rows = sorted(rows, key=sort_key)
    data = {"meta": meta, "rows": rows}
    for path, text in [(args.json, json.dumps(data, indent=1) + "\n"),
                       (args.out, markdown(rows, meta, args))]:
        if not path:
            continue
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


def markdown(rows, meta, args):
    v = meta["versions"]
    out = [
        "# lrp-grad zoo coverage",
        "",
        f"Written by `tools/zoo/coverage.py` ({meta['command']}), {meta['updated']}: "
        f"torch {v['torch']}, torchvision {v['torchvision']}, timm {v['timm']}, "
        f"onnxruntime {v['onnxruntime']}; lrp-grad `{meta['binary']}` ({v['lrp-grad']}, built {meta.get('binary_mtime')}); "
        f"{meta['machine']}. Random weights (seed 0), one random input; `explain` with its "
        "defaults (LRP, epsilon-plus-flat). `seconds`: wall clock of the explain call. "
        "Statuses are defined in the script's docstring.",
        "",
        "Summary (export failures are rows where PyTorch's exporter, or onnxruntime on its "
        "output, failed: no explain call):",
        "",
        *summary_lines(rows, meta["exporters"]),
        "",
    ]
    builds = sorted({r["binary_mtime"] for r in rows if r.get("binary_mtime")})
    if len(builds) > 1:
        out += [f"**The binary was rebuilt during this run**: rows explained by builds of "
                f"{', '.join(builds)} (each row's `binary_mtime` in the JSON).", ""]
    out += [
        "| model | source | parameters | size | exporter | status | seconds | reason |",
        "|---|---|---:|---:|---|---|---:|---|",
    ]
    for r in rows:
        secs = "" if r.get("seconds") is None else f"{r['seconds']:.1f}"
        size = "" if r.get("size") is None else f"{r['size']}²"
        out.append(f"| {r['model']} | {r['source']} | {fmt_params(r.get('params'))} | {size} | "
                   f"{r['exporter']} | {r['status']} | {secs} | {md_cell(r.get('reason', ''))} |")
    return "\n".join(out) + "\n"


def versions(binary):
    import onnx
    import onnxruntime
    import timm
    import torch
    import torchvision

    try:
        lrp = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip() or "version unknown"
    except Exception as exc:
        lrp = f"not runnable: {exc}"
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "lrp-grad": lrp,
            "python": platform.python_version()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated; default: the zoo (see the docstring)")
    p.add_argument("--exporters", default="script,dynamo")
    p.add_argument("--max-params", type=float, default=150e6)
    p.add_argument("--out", default="tools/zoo/coverage.md")
    p.add_argument("--json", default="tools/zoo/coverage.json")
    p.add_argument("--binary", default=DEFAULT_BINARY)
    p.add_argument("--timeout", type=float, default=600, help="explain call limit, seconds")
    p.add_argument("--export-timeout", type=float, default=1800,
                   help="limit for building + exporting + onnxruntime, seconds")
    p.add_argument("--resume", action="store_true", help="keep the JSON's rows, skip them")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args._worker:
        row = worker(json.loads(args._worker))
        print(RESULT_MARK + json.dumps(row), flush=True)
        return

    exporters = [e.strip() for e in args.exporters.split(",") if e.strip()]
    for e in exporters:
        if e not in EXPORTERS:
            raise SystemExit(f"unknown exporter {e!r} (script, dynamo)")
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        raise SystemExit(f"no lrp-grad binary at {args.binary} (build it, or pass --binary)")

    tv_names = torchvision_names()
    if args.models:
        entries = [resolve(n.strip(), tv_names) for n in args.models.split(",") if n.strip()]
        filtered = False
    else:
        entries = [("torchvision", n) for n in tv_names] + [("timm", n) for n in TIMM_ZOO]
        filtered = True
    zoo = []
    for source, name in entries:
        n = count_params(source, name)
        if filtered and n > args.max_params:
            print(f"skip {source}:{name}: {n / 1e6:.1f} M parameters > {args.max_params / 1e6:g} M",
                  flush=True)
            continue
        zoo.append((source, name, n))

    rows = []
    if args.resume and args.json and os.path.exists(args.json):
        with open(args.json) as f:
            rows = json.load(f)["rows"]
    done = {(r["source"], r["model"], r["exporter"]) for r in rows}
    meta = {
        "command": "python3 tools/zoo/coverage.py " + " ".join(
            a for a in sys.argv[1:]),
        "exporters": exporters,
        "binary": args.binary,
        "binary_mtime": mtime(args.binary),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": versions(args.binary),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "input_seed": INPUT_SEED,
        "max_params": args.max_params if filtered else None,
    }
    todo = [(s, n, c, e) for s, n, c in zoo for e in exporters if (s, n, e) not in done]
    print(f"{len(zoo)} models, {len(todo)} rows to run", flush=True)
    t_run = time.perf_counter()
    for i, (source, name, n, exporter) in enumerate(todo, 1):
        t0 = time.perf_counter()
        spec = {"source": source, "model": name, "exporter": exporter, "params": n,
                "binary": args.binary, "timeout": args.timeout}
        row = run_worker(spec, args.export_timeout)
        row["row_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        meta["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
        meta["run_seconds"] = round(time.perf_counter() - t_run, 1)
        write_outputs(rows, meta, args)
        print(f"[{i}/{len(todo)}] {source}:{name} {exporter}: {row['status']}"
              f"{' (' + row['reason'][:100] + ')' if row.get('reason') else ''}"
              f" [{row['row_seconds']} s]", flush=True)
    meta["updated"] = datetime.datetime.now().isoformat(timespec="seconds")
    write_outputs(rows, meta, args)
    print("\n".join(summary_lines(sorted(rows, key=sort_key), exporters)))


if __name__ == "__main__":
    main()
