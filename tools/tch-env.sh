# Source this file to build and run lrp-grad on libtorch (Burn's `tch` backend):
#
#   source tools/tch-env.sh
#   cargo build --release -p lrp-grad-cli --features tch
#   target/release/lrp-grad bench --model ...        # libtorch is the default backend there
#
# tch 0.22 (Burn 0.22's `tch` backend) is written against PyTorch 2.9.0. This installs the pip
# wheel of torch 2.9.0 into a virtualenv of its own (once; ~4 GB with the CUDA libraries the
# PyPI wheel depends on, ~2 minutes on a fast link), points torch-sys's build at it
# (LIBTORCH_USE_PYTORCH) and the dynamic loader at its libraries (LD_LIBRARY_PATH). Users with a
# libtorch 2.9.0 download can set LIBTORCH=/path/to/libtorch instead (see tch's README).
# Override the virtualenv's place with LRP_GRAD_TORCH_VENV.

venv="${LRP_GRAD_TORCH_VENV:-$HOME/.cache/lrp-grad-torch-2.9}"
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.9.0")' 2>/dev/null; then
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet torch==2.9.0 || return 1
fi
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
torch_lib=$("$venv/bin/python" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent / "lib")')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset torch_lib
