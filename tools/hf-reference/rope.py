#!/usr/bin/env python3
"""Writes tests/fixtures/hf/rope-llama3.json: LLaMA 3's scaled rotary frequencies as
transformers computes them (`ROPE_INIT_FUNCTIONS["llama3"]`, transformers 4.52.4) for a
head dim of 64 and Llama-3.1's scaling (factor 8, low/high frequency factors 1 and 4, original
context 8192, base 500 000), for tests/rotary.rs.

Usage: python3 tools/hf-reference/rope.py (torch, transformers)
"""
import json
import pathlib

from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hf" / "rope-llama3.json"

scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 8192}
config = LlamaConfig(hidden_size=64 * 4, num_attention_heads=4, head_dim=64, rope_theta=500000.0,
                     rope_scaling=scaling, max_position_embeddings=131072)
inv_freq, attention_factor = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
OUT.write_text(json.dumps({"head_dim": 64, "rope_theta": 500000.0, "rope_scaling": scaling,
                           "inv_freq": inv_freq.double().tolist(),
                           "attention_factor": attention_factor}, indent=1) + "\n")
print(OUT)
