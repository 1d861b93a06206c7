#!/usr/bin/env python3
"""Writes data/mnist-sample/: the first 500 MNIST test digits as IDX files (the original
format, gzip-compressed), and the trained CNN's weights as float16 safetensors, so that the
README's main command runs on a fresh clone without the full dataset.

Usage: python3 tools/mnist-sample.py MNIST_DIR TRAINED_DIR
  MNIST_DIR    the four original IDX files (t10k-* are read)
  TRAINED_DIR  mnist_train's --out (cnn.json, cnn.safetensors)
Needs numpy and safetensors. Not run by CI (the sample is committed).
"""
import gzip
import json
import pathlib
import shutil
import struct
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

N = 500
mnist, trained = map(pathlib.Path, sys.argv[1:3])
out = pathlib.Path(__file__).resolve().parents[1] / "data" / "mnist-sample"
out.mkdir(parents=True, exist_ok=True)
images = gzip.open(mnist / "t10k-images-idx3-ubyte.gz").read()
labels = gzip.open(mnist / "t10k-labels-idx1-ubyte.gz").read()
# IDX: big-endian magic and dims, then the bytes; mtime 0 keeps the gzip files reproducible.
with gzip.GzipFile(out / "t10k-images-idx3-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">IIII", 0x0803, N, 28, 28) + images[16:16 + N * 784])
with gzip.GzipFile(out / "t10k-labels-idx1-ubyte.gz", "wb", mtime=0) as f:
    f.write(struct.pack(">II", 0x0801, N) + labels[8:8 + N])
weights = load_file(str(trained / "cnn.safetensors"))
save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(out / "cnn.safetensors"))
shutil.copy(trained / "cnn.json", out / "cnn.json")
json.dump({"digits": N, "source": "the first 500 of MNIST's t10k files"}, sys.stdout)
print()
