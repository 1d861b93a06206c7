#!/usr/bin/env bash
# GPU check (issue "Speed"): lrp-grad's backend-generic tests and the Zennit benchmarks on a
# GPU through Burn's Vulkan backend (CubeCL, SPIR-V), against Zennit 1.0 on PyTorch CUDA, same GPU.
#
#   tools/gpu-check.sh build      on any x86-64 Linux machine (no GPU, no SDK needed); writes
#                                 .gpu/lrp-grad-gpu.tar.xz (the CLI and the test binaries, built
#                                 with --features vulkan), and fetches the Vulkan loader into .gl/
#   tools/gpu-check.sh run DIR    on the GPU machine, from the repository root; writes logs and
#                                 the benchmark tables to DIR. Needs python3 with torch (CUDA),
#                                 torchvision, onnx, onnxscript and safetensors; Zennit 1.0.0 is
#                                 installed from .whl/ when python3 lacks it
#                                 (pip download --no-deps -d .whl zennit==1.0.0).
#
# Why Vulkan and not Burn's `cuda` backend: cubecl-cuda 0.11 depends on cubecl-llvm, whose build
# script downloads an LLVM bundle from GitHub, which machines that reach only crates.io cannot.
# Not run by CI. The tests are the suite's own: every test reads `Device::default()`, which
# `BURN_DEVICE=vulkan` points at the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# The suite's binaries are ~80 MB each with the GPU backend (~12 MB compressed); the device
# takes 64 MB per call, so three: Zennit's sequential fixtures, the ONNX graphs, LXT's transformers.
TESTS=(zennit_reference onnx lxt)

build() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lrp-grad-gpu}"
  local stage=.gpu/bin
  rm -rf "$stage" && mkdir -p "$stage"
  # One invocation (the workspace's feature set) builds the CLI and the tests: Burn compiles once.
  cargo test --release --workspace --features vulkan --no-run --message-format=json 2>/dev/null \
    | python3 -c '
import json, shutil, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["target"]["kind"] == ["test"] and msg["target"]["name"] in wanted:
        shutil.copy(msg["executable"], ".gpu/bin/" + msg["target"]["name"])
' "${TESTS[@]}"
  cp "$CARGO_TARGET_DIR/release/lrp-grad" "$stage/"
  strip .gpu/bin/*
  # The tests find their fixtures under the path they were compiled in (CARGO_MANIFEST_DIR).
  pwd >"$stage/build-root"
  XZ_OPT=-T0 tar -C .gpu -cJf .gpu/lrp-grad-gpu.tar.xz bin
  ls -la .gpu/lrp-grad-gpu.tar.xz
  # The Vulkan loader (the GPU machine has the NVIDIA driver's ICD but may lack libvulkan).
  mkdir -p .gl /tmp/apt-lists/partial
  local apt=(-oAPT::Architecture=amd64 -oDir::State::Lists=/tmp/apt-lists)
  apt-get "${apt[@]}" update >/dev/null
  (cd .gl && apt-get "${apt[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
}

run() {
  local out="${1:?usage: tools/gpu-check.sh run OUT_DIR}"
  mkdir -p "$out"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
  tar -C .gpu -xJf .gpu/lrp-grad-gpu.tar.xz
  # The Vulkan loader and the GL vendor-neutral dispatch the NVIDIA driver's ICD needs.
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  local icd
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
    /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
  done
  local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -f "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
  if [ -n "${VK_DRIVER_FILES:-}" ]; then cat "$VK_DRIVER_FILES"; fi
  local root
  root=$(cat .gpu/bin/build-root)
  if [ "$root" != "$PWD" ] && [ ! -e "$root" ]; then
    mkdir -p "$(dirname "$root")" && ln -s "$PWD" "$root"
  fi
  if ! python3 -c 'import zennit' 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/zennit-site .whl/zennit-*.whl
    export PYTHONPATH="/tmp/zennit-site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export BURN_DEVICE=vulkan
  # Each stage has its own time limit (the device time is short); a stage that fails or runs
  # out of time is reported and the next one runs.
  local failed=0
  echo "== Zennit benchmark (mnist-cnn, vgg-small)"
  timeout "${BENCH_SECONDS:-200}" python3 tools/zennit-bench/bench.py --device cuda \
    --binary .gpu/bin/lrp-grad --runs 10 >"$out/bench-sequential.md" 2>"$out/bench-sequential.err" \
    || { echo "   (failed or timed out: see bench-sequential.err)"; failed=1; }
  cat "$out/bench-sequential.md"
  for t in "${TESTS[@]}"; do
    echo "== $t (BURN_DEVICE=$BURN_DEVICE)"
    timeout "${TEST_SECONDS:-90}" ".gpu/bin/$t" --test-threads 1 >"$out/test-$t.log" 2>&1 || failed=1
    grep -E "^test |^test result|panicked" "$out/test-$t.log" | head -20
  done
  echo "== ResNet-50 (ONNX)"
  timeout "${RESNET_SECONDS:-150}" python3 tools/zennit-bench/resnet50.py --device cuda \
    --binary .gpu/bin/lrp-grad --batches "${RESNET_BATCHES:-8}" --runs 5 --rounds 1 \
    >"$out/bench-resnet50.md" 2>"$out/bench-resnet50.err" \
    || { echo "   (failed or timed out: see bench-resnet50.err)"; failed=1; }
  cat "$out/bench-resnet50.md"
  return $failed
}

case "${1:-}" in
  build) build ;;
  run) shift; run "$@" ;;
  *) echo "usage: tools/gpu-check.sh build | run OUT_DIR" >&2; exit 2 ;;
esac
