#!/usr/bin/env python3
"""LXT 2.1 efficient-mode reference relevance for tiny Hugging Face causal LMs and a BERT classifier (tests/fixtures/hf/).

For each family in llama, mistral, qwen2, qwen3, phi3, gpt2, gemma3 (causal LMs) and bert (a
sequence classifier, see "BERT" below) this writes tests/fixtures/hf/<family>/ (and for each
variant in VARIANTS, a family's checkpoint with config fields changed, tests/fixtures/hf/<name>/:
gemma3-softcap has Gemma's logit softcaps set):

  config.json, model.safetensors, generation_config.json
      the checkpoint exactly as `save_pretrained` writes it (float32, safetensors). A tiny causal
      LM with seeded random weights: vocab 64, hidden 16, 2 layers, 4 attention heads, 2 key-value
      heads (grouped-query attention, 2 query heads per kv head), head_dim 4, intermediate 24
      (SiLU-gated MLP), max_position_embeddings 64, rms_norm_eps 1e-5, rope_theta 10000,
      attn_implementation "eager".
        llama   untied embeddings, no biases
        mistral as llama, sliding_window 4096 (longer than the sequence: it never masks anything)
        qwen2   tie_word_embeddings=True (model.safetensors then has no lm_head.weight), q/k/v
                biases (its default), use_sliding_window False with sliding_window 4096 (its
                defaults: the window is off)
        qwen3   untied embeddings, q_norm/k_norm RMS norms over head_dim (its default), no biases,
                use_sliding_window False, sliding_window None
        phi3    Phi3ForCausalLM with the sizes above: fused qkv_proj [32, 16] (rows: q 16 =
                4 heads x 4, k 8, v 8) and gate_up_proj [48, 16] (rows: gate 24, then up 24);
                untied embeddings, no biases, resid/embd dropout 0, rope_scaling None,
                partial_rotary_factor 1.0 (the config field; full rotary), sliding_window None,
                original_max_position_embeddings 64, pad_token_id None (Phi3's default 32000
                is outside the vocabulary). Phi3Config has no head_dim argument: head_dim =
                hidden_size / num_attention_heads = 4, and config.json has no head_dim key.
        gpt2    GPT2LMHeadModel: vocab 64, n_embd 16, n_head 4 (head_dim 4), n_layer 2,
                n_positions 64, n_inner None (= 4 * n_embd = 64), activation_function
                "gelu_new", layer_norm_epsilon 1e-5, resid/embd/attn dropout 0,
                scale_attn_weights True, scale_attn_by_inverse_layer_idx False,
                reorder_and_upcast_attn False, tied head (model.safetensors holds
                transformer.wte.weight and no lm_head.weight), learned position embeddings wpe
                [64, 16], Conv1D weights stored [in, out], biases on every Conv1D and LayerNorm.
        bert    BertForSequenceClassification (not a causal LM; no generation_config.json):
                vocab 64, hidden 16, 2 layers, 4 heads (head_dim 4), intermediate 32,
                max_position_embeddings 32, type_vocab_size 2, num_labels 3, hidden_act
                "gelu" (exact, erf), layer_norm_eps 1e-12, hidden/attention-probs dropout 0,
                classifier_dropout None (= hidden_dropout_prob 0), pad_token_id 0,
                position_embedding_type "absolute", eager attention; biases on every Linear and
                LayerNorm. Weights: bert.embeddings.{word,position,token_type}_embeddings.weight
                [64|32|2, 16], bert.embeddings.LayerNorm.{weight,bias},
                bert.encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias},
                ...attention.output.dense, ...attention.output.LayerNorm,
                ...intermediate.dense [32, 16], ...output.dense [16, 32], ...output.LayerNorm,
                bert.pooler.dense [16, 16], classifier [3, 16] (+ biases); nn.Linear layout
                [out, in].
        gemma3  text-only Gemma3ForCausalLM (Gemma3TextConfig, see "Gemma 3" below): vocab 64,
                hidden 16, intermediate 24, 4 layers, 4 heads, 2 kv heads, head_dim 4,
                query_pre_attn_scalar 4, max_position_embeddings 64, rope_theta 1e6,
                rope_local_base_freq 1e4, sliding_window 4 (< T: the local layers mask),
                sliding_window_pattern 2 (layers 0, 2 local, 1, 3 global), hidden_activation
                "gelu_pytorch_tanh", rms_norm_eps 1e-6, softcaps None (the config defaults),
                tie_word_embeddings True, pad/bos/eos 0/2/1 (Gemma's defaults). Weights:
                model.embed_tokens.weight [64, 16] (also the head), per layer
                model.layers.<i>.self_attn.{q_proj [16, 16], k_proj [8, 16], v_proj [8, 16],
                o_proj [16, 16], q_norm [4], k_norm [4]}, .mlp.{gate_proj [24, 16], up_proj
                [24, 16], down_proj [16, 24]}, .{input_layernorm, post_attention_layernorm,
                pre_feedforward_layernorm, post_feedforward_layernorm} [16], model.norm [16].
      Every parameter is randomised with a seeded torch.Generator: RMS-norm and LayerNorm weights
      1 + 0.3·randn (gemma3: 0.3·randn, Gemma3RMSNorm scales by 1 + weight), matrices (linear weights, embeddings incl. wpe, lm_head) randn / sqrt(fan-in)
      = randn / sqrt(shape[1]) for nn.Linear/nn.Embedding layouts and randn / sqrt(shape[0]) for
      GPT-2's Conv1D [in, out] weights, biases (incl. LayerNorm biases) 0.1·randn.
  reference.safetensors (all float32)
      ids               [2, 7] the token ids (seeded, in 1..63), stored as float32
      embeddings        [2, 7, 16] the input embeddings (embed_tokens(ids); bert:
                        bert.embeddings.word_embeddings(ids); gemma3: embed_tokens(ids) =
                        embed_tokens.weight[ids] * sqrt(16), the SCALED embeddings)
      logits            [2, 64] the plain (unpatched) model's logits at the last position
                        (bert: [2, 3], the class logits)
      relevance.attnlrp [2, 7] and relevance.attnlrp.embeddings [2, 7, 16]
      relevance.cplrp   [2, 7] and relevance.cplrp.embeddings   [2, 7, 16]   (not for bert)
      gpt2 only: relevance.attnlrp.positions, relevance.cplrp.positions [2, 7, 16] = wpe[:7] *
                        gradient, the learned position embeddings' share, which is NOT part of
                        relevance.<mode> (see below)
      bert only: relevance.attnlrp.positions [2, 7, 16] = position_embeddings[:7] * gradient and
                        relevance.attnlrp.token_types [2, 7, 16] = token_type_embeddings[0] *
                        gradient, the shares of the embeddings BertEmbeddings adds inside the
                        model, NOT part of relevance.attnlrp
  cases.json
      family, config summary, the target per sample, the versions, and per mode the float32
      relevance's distance to LXT's own float64 relevance, lxt_f32_distance =
      max|R_f32 - R_f64| / max|R_f64| over the per-token relevance [2, 7], plus the relevance
      sums next to the explained logits (conservation, for information). For phi3, gpt2 and bert
      also "rules": what LXT's map does per module (the contract for the Rust implementation),
      and for gpt2 and bert per mode the summed position share (bert: and token-type share) and
      its float32-vs-float64 distance. gemma3 also has "rules", "layers" (per layer: local or
      global, sliding window, rope base, the keys each query position sees) and "embed_scale".

The relevance is LXT 2.1's efficient mode (Gradient x Input on a monkey-patched model):
  from lxt.efficient import monkey_patch
  import lxt.efficient.models.<llama|qwen2|qwen3> as rules     # rules.attnLRP / rules.cp_LRP
  monkey_patch(transformers.models.<family>.modeling_<family>, patch_map=rules.attnLRP, verbose=False)
  (resp. patch_map=rules.cp_LRP; rules.attnLRP is what monkey_patch uses when patch_map is None).
LXT 2.1 has no Mistral patch: for mistral the script builds the same two maps as
lxt/efficient/models/llama.py with Mistral's classes (MistralMLP -> gated_mlp_forward resp.
cp_gated_mlp_forward, MistralRMSNorm -> rms_norm_forward, torch.nn.Dropout -> dropout_forward,
the module modeling_mistral -> patch_attention resp. patch_cp_attention, all from
lxt.efficient.patches) and passes them to monkey_patch(modeling_mistral, patch_map=...).
Mistral's modeling code in transformers 4.52.4 is LLaMA's (identical eager_attention_forward,
MLP and RMS norm) apart from the sliding_window argument, which eager attention ignores and
which the causal mask only uses beyond 4096 positions.

Phi3: LXT 2.1 has no Phi3 map either; patch_map builds LLaMA's two maps for modeling_phi3:
  Phi3RMSNorm -> rms_norm_forward (Phi3RMSNorm.forward has the same source as LlamaRMSNorm's),
  torch.nn.Dropout -> dropout_forward, the module modeling_phi3 -> patch_attention resp.
  patch_cp_attention (modeling_phi3.eager_attention_forward and repeat_kv have the same source
  as LLaMA's and the same signature (module, query, key, value, attention_mask, scaling,
  dropout, **kwargs); the wrapper thus sees q and k after the rotary embedding, before
  repeat_kv, exactly as for LLaMA. Phi3's apply_rotary_pos_emb differs only by its
  partial-rotary split, which is empty with partial_rotary_factor 1.0.)
  Phi3MLP cannot take LXT's gated_mlp_forward (that calls gate_proj/up_proj/act_fn; Phi3MLP
  has one fused gate_up_proj, chunked into gate = first half, up = second half, and
  activation_fn), so the two forwards are written here with lxt.efficient.rules' own functions:
    attnLRP (phi3_gated_mlp_forward):
      gate, up = gate_up_proj(x).chunk(2, -1)
      down_proj(divide_gradient(up * identity_rule_implicit(activation_fn, gate), 2))
      = gated_mlp_forward: identity rule on the SiLU, the product's gradient divided by 2
      (uniform rule: up and act(gate) each receive half), down_proj plain.
    cp_LRP (phi3_cp_gated_mlp_forward):
      gate, up = gate_up_proj(x).chunk(2, -1)
      down_proj(up * activation_fn(stop_gradient(gate)))
      = cp_gated_mlp_forward: the gate branch is a constant, plain gradient through up.
  The product is written up * act(gate) in HF's order, so the patched logits equal the plain
  ones bit for bit; detaching/identity-ruling the gate chunk is the same as doing it on
  gate_proj(x) for LLaMA, since the chunk is a view of gate_up_proj's output.
GPT-2 uses LXT's own map (lxt.efficient.models.gpt2.attnLRP / cp_LRP, module modeling_gpt2):
  torch.nn.LayerNorm.forward -> layer_norm_forward (GLOBAL: the key is modeling_gpt2.nn.LayerNorm,
  i.e. torch.nn.LayerNorm; (x - mean) / stop_gradient(sqrt(var + eps)) * weight + bias), GPT2MLP
  -> c_proj(identity_rule_implicit(gelu_new, c_fc(x))) in both maps, Dropout -> identity, and
  patch_attention (q/4, k/4, v/2) resp. patch_cp_attention (detached q, k) on
  modeling_gpt2.eager_attention_forward. Relevance convention for GPT-2: the explained input is
  inputs_embeds = transformer.wte(ids) (model.get_input_embeddings()), as for the other
  families; GPT2Model adds wpe(arange(T)) to it inside forward (a plain sum), so the position
  embeddings' share wpe[:T] * gradient is not in relevance.<mode> (stored separately as
  relevance.<mode>.positions). The per-module rules are spelled out in RULES below and in
  cases.json ("rules"); both were checked by an independent float64 re-implementation of the
  rules (plain torch, no transformers/lxt), which reproduces the fixtures' relevance to ~3e-7.

BERT uses LXT's own map lxt.efficient.models.bert.attnLRP, its only rule set (LXT 2.1 has no
CP-LRP map for BERT, so only relevance.attnlrp is written):
  {torch.nn.LayerNorm: layer_norm_forward (global, as for GPT-2), torch.nn.Dropout: identity,
   modeling_bert: replace_module(lxt.efficient.models.bert)}. replace_module copies every
  attribute of LXT's copy of modeling_bert (transformers 4.52.4's code plus the lines marked LXT)
  onto transformers.models.bert.modeling_bert, so the model is built (from_pretrained) after
  patching. Per module (eager attention; notation as for GPT-2 / the shared note):
    embeddings   LayerNorm((e + token_type_embeddings[0]) + position_embeddings[t]), plain sums,
                 dropout identity
    LayerNorm    (x - mean) / SG(sqrt(var + 1e-12)) * weight + bias (embeddings.LayerNorm and every
                 attention.output.LayerNorm / output.LayerNorm)
    attention    q, k, v = query/key/value(h) (Linear + bias); scores = DIV(q @ k^T, 2) / sqrt(4)
                 + extended mask (0 here), softmax plain (compute dtype), dropout identity,
                 context = DIV(probs @ v, 2): net q/4, k/4, v/2 as LLaMA's patch_attention
    self-output  LayerNorm(dense(context) + h), plain residual
    intermediate ID(gelu, dense(x)), gelu exact (erf)
    output       LayerNorm(dense(i) + attention_output), plain residual
    pooler       ID(tanh, dense(h[:, 0])) (first token)
    classifier   Linear(16, 3) + bias, plain (after an identity dropout)
  The rules are spelled out in RULES["bert"] (cases.json "rules"); an independent float64
  re-implementation (plain torch) reproduces relevance.attnlrp, .positions and .token_types to
  ~5e-7 (f32 noise), and LXT's BertSdpaSelfAttention patch (DIV(q, 2), DIV(k, 2), DIV(out, 2)) gives
  the same relevance to ~5e-7.
  Relevance convention for BERT (LXT's quickstart, docs/source/quickstart.rst, "BERT Classifier"):
    inputs_embeds = model.bert.get_input_embeddings()(input_ids)     # word embeddings only
    logits = model(inputs_embeds=inputs_embeds.requires_grad_(True)).logits      # [1, 3]
    max_logits, max_indices = torch.max(logits, dim=-1)
    max_logits.backward()                       # = logits[0, target].backward()
    relevance = (inputs_embeds * inputs_embeds.grad).float().sum(-1)
  Here attention_mask = ones and token_type_ids = zeros are passed explicitly (identical to
  BertModel's defaults, asserted); the target is the arg-max class of each sample. The token-type
  and position embeddings enter inside the model; their shares are stored separately (above).

Gemma 3 uses LXT's own map lxt.efficient.models.gemma3.attnLRP / cp_LRP on modeling_gemma3
(transformers 4.52.4, text-only Gemma3ForCausalLM, eager):
  {Gemma3MLP: gated_mlp_forward resp. cp_gated_mlp_forward (gelu_pytorch_tanh instead of SiLU),
   Gemma3RMSNorm: _norm -> x * SG(rsqrt(mean(x^2) + eps)) (HF's forward kept: _norm(x.float())
   * (1 + weight), type_as(x): a linear elementwise map, identity in relevance), Dropout:
   identity, modeling_gemma3: patch_attention (q/4, k/4, v/2) resp. patch_cp_attention (SG(q),
   SG(k))}. Sandwich norms: h = x + post_attention_layernorm(attn(input_layernorm(x))), out = h
  + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))); q_norm/k_norm (over head_dim)
  before rotary; scores scaled by query_pre_attn_scalar^-0.5; layer i local iff (i + 1) %
  sliding_window_pattern != 0 (4.52.4 has no layer_types): local layers use rope base
  rope_local_base_freq and, in a plain forward without cache, the key window i - 3 <= j <= i
  (Gemma3DecoderLayer sets j <= i - sliding_window to finfo.min on top of the causal mask; checked
  on the attention probabilities); global layers rope_theta and the plain causal mask. The head
  is tied to the UNSCALED embed_tokens.weight; no softcaps (final_logit_softcapping and
  attn_logit_softcapping None; 4.52.4's Gemma3Attention does not pass softcap to the attention
  function anyway). Relevance at inputs_embeds = embed_tokens(ids) = weight[ids] * sqrt(hidden)
  (the scale is inside the lookup, as in LXT's examples/quantized_gemma3.py). The per-module
  rules are in RULES["gemma3"] (cases.json "rules"); an independent float64 re-implementation
  (plain torch) reproduces relevance.attnlrp / .cplrp to ~2.5e-7 per token (~6e-7 per unit).

The backward follows LXT's examples (examples/quantized_llama.py, quantized_qwen3.py), one
sample at a time (batch 1), with parameters frozen (requires_grad False) so the embeddings are
a leaf:
  input_embeds = model.get_input_embeddings()(input_ids)
  logits = model(inputs_embeds=input_embeds.requires_grad_(), use_cache=False).logits
  max_logits, max_indices = torch.max(logits[0, -1, :], dim=-1)
  max_logits.backward()                  # seed: gradient 1 on the selected (arg-max) logit
  relevance = (input_embeds * input_embeds.grad).float().sum(-1)
The target is therefore the arg-max of each sample's last-position logits; relevance.<mode>
is that sum, relevance.<mode>.embeddings is input_embeds * input_embeds.grad before the sum.
(The models are in eval() mode; the examples' train() + gradient checkpointing only save memory.)
The script also checks that one batched forward/backward (sum of the two selected logits) gives
the same relevance.

monkey_patch changes classes and module globals for the whole process (and LXT's CP-LRP
attention patch even mutates transformers' global ALL_ATTENTION_FUNCTIONS), so every
(family, mode) runs in a fresh Python subprocess (this script re-invoked with `--worker`), and
the parent process, which computes the plain logits, never imports lxt. The workers reload the
checkpoint from the fixture folder, so the relevance belongs to exactly the committed weights.
float64 runs load the same checkpoint with torch_dtype=float64. Note that transformers keeps
some float32 islands even then (RMSNorm, and LXT's patched RMSNorm, cast to float32; softmax
is taken with dtype=float32; rotary cos/sin are computed in float32), so R_f64 is "LXT run in
float64", not an exact-arithmetic result.

Checks (assertions): float64 logits match float32 within 1e-4 (relative to max |logit|); the
patched forward's logits equal the plain logits within 1e-5 (GPT-2: ~3e-7, LXT's LayerNorm is
not torch's fused kernel); the patched targets equal the plain targets; batched and per-sample
relevance agree; the patched MLP/final-norm forwards and the module's eager_attention_forward
are the patched ones.

Versions: torch 2.15.0, transformers 4.52.4, lxt 2.1 (pip install --no-deps), safetensors,
numpy; CPU. LXT 2.1's efficient mode needs transformers 4.x (with 5.x `import lxt.efficient`
fails). Not run by CI (the fixtures are committed).
Usage: tools/hf-reference/run.sh   (a virtualenv with the pinned versions), or directly
       python3 tools/hf-reference/generate.py [family ...]
"""
import argparse
import importlib
import json
import math
import pathlib
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "hf"
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gpt2", "bert", "gemma3"]
# A family's checkpoint with config fields changed: name -> (family, fields). The same seed and
# weights as the family; its own folder. gemma3-softcap: the logits' softcap cap·tanh(x/cap)
# small enough to bend the tiny model's O(1) logits far from linear; attn_logit_softcapping set
# too, which transformers 4.52.4's Gemma 3 stores and never applies (its attention passes no
# softcap to the attention function), so a loader must ignore it to match.
VARIANTS = {"gemma3-softcap": ("gemma3", {"attn_logit_softcapping": 1.5,
                                          "final_logit_softcapping": 2.0})}
VARIANT_NOTES = {
    "gemma3-softcap": "the gemma3 checkpoint (same seed and weights) with final_logit_softcapping "
                      "2.0: logits = 2 tanh(lm_head / 2), which LXT leaves unpatched (its plain "
                      "gradient); attn_logit_softcapping 1.5 is stored and never applied by "
                      "transformers 4.52.4's Gemma 3 (checked: the logits equal those with it None)",
}
MODES = {"attnlrp": "attnLRP", "cplrp": "cp_LRP"}  # fixture name -> LXT rule-set name
# LXT 2.1's BERT map (lxt/efficient/models/bert.py) defines attnLRP only (no cp_LRP)
FAMILY_MODES = {"bert": ["attnlrp"]}
N, T = 2, 7
SEEDS = {"llama": 101, "mistral": 202, "qwen2": 303, "qwen3": 404, "phi3": 505, "gpt2": 606,
         "bert": 707, "gemma3": 808}

COMMON = dict(
    vocab_size=64,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=4,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    attention_dropout=0.0,
    bos_token_id=1,
    eos_token_id=2,
)


def family_modes(family):
    return FAMILY_MODES.get(family, list(MODES))


def modeling_module(family):
    return importlib.import_module(f"transformers.models.{family}.modeling_{family}")


def make_config(family):
    import transformers

    if family == "llama":
        return transformers.LlamaConfig(**COMMON, tie_word_embeddings=False, attention_bias=False,
                                        mlp_bias=False)
    if family == "mistral":
        return transformers.MistralConfig(**COMMON, tie_word_embeddings=False, sliding_window=4096)
    if family == "qwen2":
        return transformers.Qwen2Config(**COMMON, tie_word_embeddings=True, use_sliding_window=False)
    if family == "qwen3":
        # sliding_window None as in Qwen3's released configs (its 4096 default is unused with
        # use_sliding_window False, but makes Qwen3DecoderLayer warn)
        return transformers.Qwen3Config(**COMMON, tie_word_embeddings=False, attention_bias=False,
                                        use_sliding_window=False, sliding_window=None)
    if family == "phi3":
        # Phi3Config has no head_dim argument: head_dim = hidden_size // num_attention_heads = 4
        # (as in Microsoft's released configs). pad_token_id: Phi3's default 32000 is outside the
        # vocabulary (nn.Embedding refuses it), so None. partial_rotary_factor 1.0 = full rotary
        # (the config field of that name; Phi3Config's default, set explicitly). No rope_scaling
        # (plain RoPE, rope_type "default"); sliding_window None (Phi3Config's default).
        common = {k: v for k, v in COMMON.items() if k != "head_dim"}
        return transformers.Phi3Config(**common, tie_word_embeddings=False, rope_scaling=None,
                                       partial_rotary_factor=1.0, pad_token_id=None,
                                       resid_pdrop=0.0, embd_pdrop=0.0, sliding_window=None,
                                       original_max_position_embeddings=64)
    if family == "gpt2":
        # n_inner None = 4 * n_embd = 64 (GPT-2's convention)
        return transformers.GPT2Config(vocab_size=64, n_embd=16, n_head=4, n_layer=2, n_positions=64,
                                       n_inner=None, activation_function="gelu_new",
                                       layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0,
                                       attn_pdrop=0.0, scale_attn_weights=True,
                                       scale_attn_by_inverse_layer_idx=False,
                                       reorder_and_upcast_attn=False, tie_word_embeddings=True,
                                       bos_token_id=1, eos_token_id=2)
    if family == "bert":
        # BertForSequenceClassification, 3 labels; pad_token_id 0 (BertConfig's default: row 0 of
        # word_embeddings is the padding row, never used by the ids 1..63); every dropout 0
        # (classifier_dropout None -> hidden_dropout_prob); absolute position embeddings; encoder
        # only (is_decoder False, no cross-attention)
        return transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                                       num_attention_heads=4, intermediate_size=32,
                                       hidden_act="gelu", hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0,
                                       max_position_embeddings=32, type_vocab_size=2,
                                       layer_norm_eps=1e-12, pad_token_id=0,
                                       position_embedding_type="absolute", classifier_dropout=None,
                                       num_labels=3, is_decoder=False)
    if family == "gemma3":
        # text-only Gemma3ForCausalLM. transformers 4.52.4's Gemma3TextConfig has no layer_types:
        # layer i is local (sliding window) iff (i + 1) % sliding_window_pattern != 0, so with
        # pattern 2 layers 0 and 2 are local, 1 and 3 global. sliding_window 4 < T = 7 (the local
        # layers really mask). final_logit_softcapping / attn_logit_softcapping: the config
        # defaults (None). pad/bos/eos: Gemma's defaults (0 / 2 / 1); ids are drawn from 1..63.
        return transformers.Gemma3TextConfig(
            vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=2, head_dim=4, query_pre_attn_scalar=4,
            max_position_embeddings=64, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
            rope_scaling=None, sliding_window=4, sliding_window_pattern=GEMMA3_PATTERN,
            hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, attention_bias=False,
            attention_dropout=0.0, tie_word_embeddings=True)
    raise ValueError(family)


GEMMA3_PATTERN = 2


def gemma3_layer_kinds(config):
    """transformers 4.52.4 Gemma3Attention: is_sliding = bool((layer_idx + 1) %
    config.sliding_window_pattern); sliding layers use rotary_emb_local (rope_local_base_freq)."""
    return ["local" if (i + 1) % config.sliding_window_pattern else "global"
            for i in range(config.num_hidden_layers)]


def causal_lm_class(family):
    return {
        "llama": "LlamaForCausalLM",
        "mistral": "MistralForCausalLM",
        "qwen2": "Qwen2ForCausalLM",
        "qwen3": "Qwen3ForCausalLM",
        "phi3": "Phi3ForCausalLM",
        "gpt2": "GPT2LMHeadModel",
        "bert": "BertForSequenceClassification",  # not a causal LM: a sequence classifier
        "gemma3": "Gemma3ForCausalLM",
    }[family]


def load(family, folder, dtype):
    cls = getattr(modeling_module(family), causal_lm_class(family))
    model = cls.from_pretrained(folder, torch_dtype=dtype, attn_implementation="eager")
    model.eval()
    for p in model.parameters():
        p.requires_grad = False
    assert model.config._attn_implementation == "eager"
    return model


# ---------------------------------------------------------------- parent: checkpoint + plain


def build(family, folder, fields=None):
    """Seeded random checkpoint + ids; saved with save_pretrained."""
    config = make_config(family)
    for key, value in (fields or {}).items():
        setattr(config, key, value)
    config._attn_implementation = "eager"
    cls = getattr(modeling_module(family), causal_lm_class(family))
    torch.manual_seed(0)
    model = cls(config).eval()
    g = torch.Generator().manual_seed(SEEDS[family])
    from transformers.pytorch_utils import Conv1D
    norm_params, conv1d_params = set(), set()
    for name, module in model.named_modules():
        if type(module).__name__.endswith("RMSNorm") or isinstance(module, torch.nn.LayerNorm):
            norm_params.add(f"{name}.weight")
        if isinstance(module, Conv1D):  # GPT-2: weight [in, out], fan-in is shape[0]
            conv1d_params.add(f"{name}.weight")
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head appears once (as embed_tokens)
            if name in norm_params and family == "gemma3":
                # Gemma3RMSNorm scales by (1 + weight): weights around 0
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif name in norm_params:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name in conv1d_params:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[0]))
            else:
                assert p.dim() == 2, name
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
    if family == "bert":
        assert model.get_output_embeddings() is None  # classifier head, nothing tied
    elif config.tie_word_embeddings:
        assert model.get_output_embeddings().weight.data_ptr() == \
            model.get_input_embeddings().weight.data_ptr()
    else:
        assert model.get_output_embeddings().weight.data_ptr() != \
            model.get_input_embeddings().weight.data_ptr()
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    model.save_pretrained(folder, safe_serialization=True)
    ids = torch.randint(1, 64, (N, T), generator=g)
    return ids


def bert_inputs(ids):
    """BERT's explicit side inputs: attention_mask all 1, token_type_ids all 0 (both equal to what
    BertModel builds when they are omitted, checked in plain())."""
    return dict(attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))


def plain(family, folder, ids):
    out = {}
    for dtype in (torch.float32, torch.float64):
        model = load(family, folder, dtype)
        with torch.no_grad():
            e = model.get_input_embeddings()(ids)
            if family == "bert":  # class logits [N, num_labels]; no use_cache argument
                logits = model(inputs_embeds=e, **bert_inputs(ids)).logits
                logits_ids = model(input_ids=ids, **bert_inputs(ids)).logits
                assert torch.equal(logits, model(inputs_embeds=e).logits)  # default mask/types
            else:
                logits = model(inputs_embeds=e, use_cache=False).logits[:, -1, :]
                logits_ids = model(input_ids=ids, use_cache=False).logits[:, -1, :]
        assert torch.equal(logits, logits_ids)
        if family == "gemma3":
            gemma3_checks(model, ids, e)
        out[dtype] = (e, logits)
    e32, l32 = out[torch.float32]
    _, l64 = out[torch.float64]
    rel = ((l32.double() - l64).abs().max() / l64.abs().max()).item()
    assert rel < 1e-4, f"{family}: float64 vs float32 logits {rel}"
    return e32, l32, rel


def gemma3_visible(kind, i, window):
    """Keys a query at position i attends to in a plain forward (no cache, no attention_mask) of
    transformers 4.52.4's eager Gemma 3: global j <= i; local i - window < j <= i."""
    lo = max(0, i - window + 1) if kind == "local" else 0
    return list(range(lo, i + 1))


def gemma3_checks(model, ids, e):
    """Embedding scale, layer kinds, rope bases and the sliding-window pattern of the attention
    probabilities (exact zeros where masked, non-zero elsewhere)."""
    cfg = model.config
    emb = model.get_input_embeddings()
    assert float(emb.embed_scale) == cfg.hidden_size ** 0.5 == 4.0
    assert torch.equal(e, emb.weight[ids] * 4.0)  # the explained input is the SCALED embedding
    assert model.lm_head.weight.data_ptr() == emb.weight.data_ptr()  # tied, unscaled
    kinds = gemma3_layer_kinds(cfg)
    assert "local" in kinds and "global" in kinds
    inner = model.model
    assert inner.rotary_emb.config.rope_theta == 1_000_000.0
    assert inner.rotary_emb_local.config.rope_theta == 10_000.0
    for layer, kind in zip(inner.layers, kinds):
        assert layer.self_attn.is_sliding == (kind == "local")
        assert layer.self_attn.scaling == cfg.query_pre_attn_scalar ** -0.5
        # 4.52.4 stores the attention softcap but passes none to the attention function
        assert layer.self_attn.attn_logit_softcapping == cfg.attn_logit_softcapping
    if cfg.attn_logit_softcapping is not None:  # ... so the logits do not depend on it
        with torch.no_grad():
            capped = model(inputs_embeds=e, use_cache=False).logits
            for layer in inner.layers:
                layer.self_attn.attn_logit_softcapping = None
            uncapped = model(inputs_embeds=e, use_cache=False).logits
            for layer in inner.layers:
                layer.self_attn.attn_logit_softcapping = cfg.attn_logit_softcapping
        assert torch.equal(capped, uncapped), "attn_logit_softcapping changed the logits"
    with torch.no_grad():
        att = model(inputs_embeds=e, use_cache=False, output_attentions=True).attentions
    for kind, a in zip(kinds, att):  # a: [N, heads, T, T]
        for i in range(a.shape[-2]):
            seen = gemma3_visible(kind, i, cfg.sliding_window)
            for j in range(a.shape[-1]):
                if j in seen:
                    assert (a[:, :, i, j] > 0).all(), (kind, i, j)
                else:
                    assert (a[:, :, i, j] == 0).all(), (kind, i, j)


# ---------------------------------------------------------------- worker: LXT in a fresh process


def phi3_gated_mlp_forward(self, x):
    """AttnLRP on Phi3MLP (fused gate_up_proj): LXT's gated_mlp_forward rule, written for the
    fused projection. HF: up_states = gate_up_proj(x); gate, up = chunk(2); up * act(gate)."""
    from lxt.efficient.rules import divide_gradient, identity_rule_implicit
    gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
    gate = identity_rule_implicit(self.activation_fn, gate)  # identity rule on the SiLU
    weighted = divide_gradient(up * gate, 2)                 # uniform rule on the product
    return self.down_proj(weighted)


def phi3_cp_gated_mlp_forward(self, x):
    """CP-LRP on Phi3MLP: LXT's cp_gated_mlp_forward for the fused projection (gate detached)."""
    from lxt.efficient.rules import stop_gradient
    gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
    gate = self.activation_fn(stop_gradient(gate))
    return self.down_proj(up * gate)


def patch_map(family, rule_set):
    if family == "bert":
        # LXT's own BERT map: {torch.nn.LayerNorm: layer_norm_forward, torch.nn.Dropout:
        # dropout_forward, modeling_bert: replace_module(lxt.efficient.models.bert)}; attnLRP only
        rules = importlib.import_module("lxt.efficient.models.bert")
        assert rule_set == "attnLRP" and not hasattr(rules, "cp_LRP")
        return rules.attnLRP
    if family in ("llama", "qwen2", "qwen3", "gpt2", "gemma3"):
        rules = importlib.import_module(f"lxt.efficient.models.{family}")
        return getattr(rules, rule_set)
    if family == "phi3":
        # LXT 2.1 has no Phi3 map: lxt/efficient/models/llama.py mirrored onto modeling_phi3,
        # with the gated-MLP rule rewritten for Phi3MLP's fused gate_up_proj (above).
        from functools import partial
        from torch.nn import Dropout
        from transformers.models.phi3 import modeling_phi3
        from transformers.models.phi3.modeling_phi3 import Phi3MLP, Phi3RMSNorm
        from lxt.efficient.patches import (patch_method, patch_attention, patch_cp_attention,
                                           rms_norm_forward, dropout_forward)
        mlp = phi3_gated_mlp_forward if rule_set == "attnLRP" else phi3_cp_gated_mlp_forward
        return {
            Phi3MLP: partial(patch_method, mlp),
            Phi3RMSNorm: partial(patch_method, rms_norm_forward),
            Dropout: partial(patch_method, dropout_forward),
            modeling_phi3: patch_attention if rule_set == "attnLRP" else patch_cp_attention,
        }
    assert family == "mistral"
    # LXT 2.1 has no Mistral map: mirror lxt/efficient/models/llama.py with Mistral's classes.
    from functools import partial
    from torch.nn import Dropout
    from transformers.models.mistral import modeling_mistral
    from transformers.models.mistral.modeling_mistral import MistralMLP, MistralRMSNorm
    from lxt.efficient.patches import (patch_method, patch_attention, patch_cp_attention,
                                       rms_norm_forward, gated_mlp_forward, cp_gated_mlp_forward,
                                       dropout_forward)
    if rule_set == "attnLRP":
        return {
            MistralMLP: partial(patch_method, gated_mlp_forward),
            MistralRMSNorm: partial(patch_method, rms_norm_forward),
            Dropout: partial(patch_method, dropout_forward),
            modeling_mistral: patch_attention,
        }
    return {
        MistralMLP: partial(patch_method, cp_gated_mlp_forward),
        MistralRMSNorm: partial(patch_method, rms_norm_forward),
        Dropout: partial(patch_method, dropout_forward),
        modeling_mistral: patch_cp_attention,
    }


def lxt_relevance(model, ids, family):
    """LXT's example convention, one sample at a time. BERT follows LXT's BERT-classifier
    quickstart (docs/source/quickstart.rst, "BERT Classifier"): inputs_embeds =
    model.bert.get_input_embeddings()(input_ids), logits = model(inputs_embeds=...).logits [1, 3],
    max_logits, max_indices = torch.max(logits, dim=-1); max_logits.backward()."""
    rel, targets, selected, last_logits, grads = [], [], [], [], []
    for b in range(ids.shape[0]):
        input_ids = ids[b:b + 1]
        input_embeds = model.get_input_embeddings()(input_ids)
        if family == "bert":
            assert model.get_input_embeddings() is model.bert.embeddings.word_embeddings
            output_logits = model(inputs_embeds=input_embeds.requires_grad_(),
                                  **bert_inputs(input_ids)).logits
            max_logits, max_indices = torch.max(output_logits, dim=-1)  # shape [1]
            max_logits.backward()  # = output_logits[0, target].backward()
            output_logits = output_logits[:, None, :]  # [1, 1, 3]: the "last position" below
        else:
            output_logits = model(inputs_embeds=input_embeds.requires_grad_(), use_cache=False).logits
            max_logits, max_indices = torch.max(output_logits[0, -1, :], dim=-1)
            max_logits.backward()
        rel.append((input_embeds * input_embeds.grad).detach()[0])
        grads.append(input_embeds.grad.detach()[0])
        targets.append(int(max_indices))
        selected.append(max_logits.item())
        last_logits.append(output_logits[0, -1, :].detach())
    return torch.stack(rel), targets, selected, torch.stack(last_logits), torch.stack(grads)


def lxt_relevance_batched(model, ids, targets, family):
    e = model.get_input_embeddings()(ids).requires_grad_()
    if family == "bert":
        logits = model(inputs_embeds=e, **bert_inputs(ids)).logits
        logits[torch.arange(ids.shape[0]), torch.tensor(targets)].sum().backward()
        return (e * e.grad).detach()
    logits = model(inputs_embeds=e, use_cache=False).logits
    logits[torch.arange(ids.shape[0]), -1, torch.tensor(targets)].sum().backward()
    return (e * e.grad).detach()


def worker(family, mode, folder, out_path):
    from lxt.efficient import monkey_patch

    torch.set_num_threads(1)
    monkey_patch(modeling_module(family), patch_map=patch_map(family, MODES[mode]), verbose=False)
    ids = load_file(str(folder / "reference.ids.tmp.safetensors"))["ids"]
    result = {}
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        model = load(family, folder, dtype)
        # the patched classes must be the ones in use
        if family == "bert":
            # replace_module copied LXT's classes into transformers' modeling_bert, so the model
            # (built after patching) is LXT's copy; LayerNorm/Dropout are patched globally
            from lxt.efficient.patches import layer_norm_forward, dropout_forward
            lxt_bert = "lxt.efficient.models.bert"
            layer = model.bert.encoder.layer[0]
            for m in (model, model.bert.embeddings, layer.attention.self, layer.intermediate,
                      layer.output, layer.attention.output, model.bert.pooler):
                assert type(m).__module__ == lxt_bert, type(m)
            assert type(layer.attention.self).__name__ == "BertSelfAttention"  # eager
            assert torch.nn.LayerNorm.forward is layer_norm_forward
            assert torch.nn.Dropout.forward is dropout_forward
            assert isinstance(model.bert.embeddings.LayerNorm, torch.nn.LayerNorm)
        elif family == "gpt2":
            mlp, final_norm = model.transformer.h[0].mlp, model.transformer.ln_f
        else:
            mlp, final_norm = model.model.layers[0].mlp, model.model.norm
        expected_mlp = {"gpt2": "lxt.efficient.models.gpt2", "phi3": __name__}
        if family == "gemma3":
            # LXT patches Gemma3RMSNorm._norm (forward stays HF's (1 + weight) form)
            from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm
            assert type(final_norm)._norm.__module__ == "lxt.efficient.models.gemma3"
            assert Gemma3RMSNorm.forward.__module__ == "transformers.models.gemma3.modeling_gemma3"
            assert type(mlp).forward.__module__ == "lxt.efficient.patches"
            assert modeling_module(family).eager_attention_forward.__module__ == \
                "lxt.efficient.patches"
        elif family != "bert":
            assert type(mlp).forward.__module__ == expected_mlp.get(family, "lxt.efficient.patches")
            assert type(final_norm).forward.__module__ == "lxt.efficient.patches"
            assert modeling_module(family).eager_attention_forward.__module__ == \
                "lxt.efficient.patches"
        rel, targets, selected, last_logits, grads = lxt_relevance(model, ids, family)
        batched = lxt_relevance_batched(model, ids, targets, family)
        scale = rel.abs().max()
        assert (batched - rel).abs().max() <= (1e-5 if dtype == torch.float32 else 1e-12) * scale, \
            f"{family}/{mode}/{tag}: batched vs per-sample relevance"
        result[f"rel.{tag}"] = rel.contiguous()
        result[f"logits.{tag}"] = last_logits.contiguous()
        result[f"targets.{tag}"] = torch.tensor(targets)
        result[f"selected.{tag}"] = torch.tensor(selected, dtype=torch.float64)
        if family == "gpt2":
            # GPT2Model adds wpe(positions) to inputs_embeds (plain sum, embd dropout 0), so the
            # gradient at the position embeddings is the one at the word embeddings.
            wpe = model.transformer.wpe.weight[:ids.shape[1]]
            result[f"posrel.{tag}"] = (wpe * grads).contiguous()
        if family == "bert":
            # BertEmbeddings: LayerNorm(inputs_embeds + token_type_embeddings(0) +
            # position_embeddings(arange(T))), a plain sum: the same gradient reaches all three
            emb = model.bert.embeddings
            pos = emb.position_embeddings.weight[:ids.shape[1]]
            tok = emb.token_type_embeddings.weight[0].expand_as(pos)
            result[f"posrel.{tag}"] = (pos * grads).contiguous()
            result[f"typerel.{tag}"] = (tok * grads).contiguous()
    save_file(result, str(out_path))


# ---------------------------------------------------------------- parent: one family

EXTRA_CONFIG_KEYS = {
    "phi3": ["partial_rotary_factor", "rope_scaling", "original_max_position_embeddings",
             "pad_token_id", "resid_pdrop", "embd_pdrop", "attention_dropout"],
    "gpt2": ["n_embd", "n_head", "n_layer", "n_positions", "n_inner", "activation_function",
             "layer_norm_epsilon", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
             "reorder_and_upcast_attn", "resid_pdrop", "embd_pdrop", "attn_pdrop"],
    "bert": ["type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
             "attention_probs_dropout_prob", "classifier_dropout", "position_embedding_type",
             "pad_token_id", "is_decoder", "id2label"],
    "gemma3": ["hidden_activation", "query_pre_attn_scalar", "sliding_window_pattern",
               "rope_local_base_freq", "rope_scaling", "final_logit_softcapping",
               "attn_logit_softcapping", "attention_dropout", "pad_token_id", "bos_token_id",
               "eos_token_id", "cache_implementation"],
}

# What LXT's map does per module (written into cases.json for phi3 and gpt2). Notation as in
# /work/shared/notes/lxt-efficient-2.1.md: plain = ordinary autograd gradient; SG(x) = x.detach();
# DIV(x, k) = identity forward, gradient / k backward (lxt.efficient.rules.divide_gradient);
# ID(f, x) = f(x) forward, gradient * f(x) / (x + 1e-10) backward (identity_rule_implicit).
_NOTATION = ("plain = ordinary autograd gradient (Gradient x Input = LRP-0, biases absorb their "
             "share, no epsilon); SG(x) = x.detach(); DIV(x, k) = identity forward, gradient / k "
             "backward (lxt.efficient.rules.divide_gradient); ID(f, x) = f(x) forward, backward "
             "gradient * f(x) / (x + 1e-10) (lxt.efficient.rules.identity_rule_implicit)")
RULES = {
    "phi3": {
        "notation": _NOTATION,
        "source": "LXT 2.1 has no Phi3 map: lxt/efficient/models/llama.py mirrored onto "
                  "transformers.models.phi3.modeling_phi3 (generate.py patch_map); the MLP "
                  "forwards are written in generate.py with lxt.efficient.rules' functions",
        "relevance_input": "inputs_embeds = model.embed_tokens(ids); R = sum_d e * de",
        "rms_norm": "input_layernorm, post_attention_layernorm, final norm: "
                    "lxt.efficient.patches.rms_norm_forward: weight * (x.float() * "
                    "SG(rsqrt(mean(x^2) + eps))) -> the normaliser is a constant (identity rule), "
                    "weight multiply plain",
        "qkv_proj": "plain linear, no bias; output columns [0:16) = q (4 heads x 4), [16:24) = k "
                    "(2 kv heads x 4), [24:32) = v (2 kv heads x 4)",
        "rotary": "full rotary (partial_rotary_factor 1.0, rotary dim = head_dim = 4), default RoPE "
                  "(theta 10000, rotate_half convention, cos/sin in float32), no scaling: plain",
        "attention.attnlrp": "lxt patch_attention on modeling_phi3 (eager_attention_forward has "
                             "the same source as LLaMA's): query = DIV(q, 4), key = DIV(k, 4), "
                             "value = DIV(v, 2), applied after rotary and before repeat_kv; "
                             "inside plain: repeat_kv (GQA, 2 query heads per kv head), "
                             "q k^T * head_dim^-0.5, + additive causal mask (finfo.min), softmax "
                             "(dtype float32), A @ V",
        "attention.cplrp": "lxt patch_cp_attention: query = SG(q), key = SG(k) (attention "
                           "weights constant), value and A @ V plain, no DIV",
        "o_proj": "plain linear, no bias",
        "mlp.attnlrp": "gate, up = gate_up_proj(x).chunk(2, -1) (gate = output columns [0:24), "
                       "up = [24:48)); down_proj(DIV(up * ID(silu, gate), 2)): identity rule on "
                       "the SiLU, the product's output gradient halved (so up and act(gate) each "
                       "get 1/2), down_proj plain; = lxt gated_mlp_forward with gate_proj/up_proj "
                       "replaced by the two halves of gate_up_proj",
        "mlp.cplrp": "down_proj(up * silu(SG(gate))): gate branch constant, plain gradient through "
                     "up, no DIV; = lxt cp_gated_mlp_forward on the fused projection",
        "dropout": "torch.nn.Dropout.forward -> identity (resid_attn_dropout, resid_mlp_dropout)",
        "residuals": "plain",
        "lm_head": "plain linear, no bias, untied",
    },
    "gpt2": {
        "notation": _NOTATION,
        "source": "LXT 2.1's own map lxt.efficient.models.gpt2 (attnLRP resp. cp_LRP)",
        "relevance_input": "inputs_embeds = transformer.wte(ids) (word embeddings only); "
                           "GPT2Model then adds wpe(arange(T)) (plain sum, embd dropout identity), "
                           "so the position embeddings' share wpe[:T] * grad is NOT in "
                           "relevance.<mode>; it is stored as relevance.<mode>.positions [2, 7, 16]",
        "layer_norm": "torch.nn.LayerNorm.forward replaced globally (ln_1, ln_2, ln_f) by "
                      "lxt.efficient.patches.layer_norm_forward: mean = mean(x), var = "
                      "mean((x - mean)^2) (biased), y = (x - mean) / SG(sqrt(var + eps)) * weight "
                      "+ bias: the mean subtraction is plain (gradient goes through the mean), the "
                      "std is a constant, weight plain, bias included (absorbs its share); no "
                      "float32 cast",
        "conv1d": "c_attn, attn.c_proj, c_fc, mlp.c_proj: transformers Conv1D, y = x @ W + b with W "
                  "stored [in, out] (the transpose of nn.Linear); plain, biases included",
        "attention_split": "q, k, v = c_attn(x).split(n_embd, -1) in that order (output columns "
                           "[0:16) q, [16:32) k, [32:48) v), each viewed [T, 4 heads, 4]; no "
                           "rotary, no GQA",
        "attention.attnlrp": "lxt patch_attention wraps modeling_gpt2.eager_attention_forward: "
                             "query = DIV(q, 4), key = DIV(k, 4), value = DIV(v, 2); inside plain: "
                             "q k^T / sqrt(head_dim) (= / 2), causal mask torch.where(tril, w, "
                             "finfo.min) and additionally + the 4D additive causal mask "
                             "(0 / finfo.min) -> masked scores -inf, softmax (compute dtype, no "
                             "float32 upcast), A @ V",
        "attention.cplrp": "lxt patch_cp_attention: query = SG(q), key = SG(k); value, A @ V "
                           "plain, no DIV (the only difference between the two maps)",
        "attn.c_proj": "plain Conv1D with bias",
        "mlp": "both modes (LXT's gpt2 mlp_forward): mlp.c_proj(ID(gelu_new, c_fc(x))): identity "
               "rule on gelu_new, no DIV (no gated product); gelu_new(x) = 0.5 x (1 + "
               "tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        "dropout": "torch.nn.Dropout.forward -> identity (drop, attn_dropout, resid_dropout, "
                   "mlp dropout)",
        "residuals": "plain",
        "lm_head": "after ln_f: Linear(n_embd, vocab, bias=False) tied to transformer.wte; plain",
    },
    "bert": {
        "notation": _NOTATION,
        "source": "LXT 2.1's own map lxt.efficient.models.bert.attnLRP = {torch.nn.LayerNorm: "
                  "layer_norm_forward, torch.nn.Dropout: dropout_forward, modeling_bert: "
                  "replace_module(lxt.efficient.models.bert)}: every attribute of "
                  "transformers.models.bert.modeling_bert is replaced by LXT's copy of the file "
                  "(identical code to transformers 4.52.4's apart from the lines marked LXT), so "
                  "the model is built after patching. LXT 2.1 has NO cp_LRP map for BERT: only "
                  "relevance.attnlrp is written",
        "relevance_input": "inputs_embeds = bert.embeddings.word_embeddings(ids) "
                           "(model.get_input_embeddings(), the word embeddings only), R = sum_d e "
                           "* de. BertEmbeddings adds token_type_embeddings(token_type_ids = 0) "
                           "and position_embeddings(arange(T)) before its LayerNorm (plain sums, "
                           "so all three receive the same gradient): the shares "
                           "token_type_embeddings[0] * grad and position_embeddings[:T] * grad "
                           "are NOT in relevance.attnlrp; they are stored as "
                           "relevance.attnlrp.token_types and relevance.attnlrp.positions "
                           "[2, 7, 16]",
        "embeddings": "x = (e + token_type_embeddings.weight[0]) + position_embeddings.weight[t] "
                      "(that order), then embeddings.LayerNorm (rule below), dropout identity; "
                      "all plain",
        "layer_norm": "torch.nn.LayerNorm.forward replaced globally (embeddings.LayerNorm, every "
                      "attention.output.LayerNorm and output.LayerNorm) by "
                      "lxt.efficient.patches.layer_norm_forward: mean = mean(x), var = "
                      "mean((x - mean)^2) (biased), y = (x - mean) / SG(sqrt(var + eps)) * weight "
                      "+ bias with eps = layer_norm_eps = 1e-12: mean subtraction plain, std a "
                      "constant, weight plain, bias included (absorbs its share); no float32 "
                      "cast",
        "attention.attnlrp": "eager BertSelfAttention (LXT's copy): q, k, v = query(h), key(h), "
                             "value(h) (Linear with bias, plain), each viewed [T, 4 heads, 4] "
                             "(head i = output columns [4i, 4i+4)); scores = DIV(q @ k^T, 2) / "
                             "sqrt(head_dim) (= / 2, plain) + extended attention mask ((1 - "
                             "mask) * finfo(dtype).min = 0 here: all ones; plain); softmax over "
                             "the keys in the compute dtype (no float32 upcast), PLAIN gradient; "
                             "attention dropout identity; no head mask; context = DIV(probs @ v, "
                             "2), heads concatenated back to [T, 16]. Net effect: q and k each "
                             "get gradient / 4 (1/2 from the context DIV through probs, 1/2 from "
                             "the scores DIV), v gets / 2 (the same as LLaMA's patch_attention "
                             "q/4, k/4, v/2; LXT's BertSdpaSelfAttention does DIV(q, 2), DIV(k, "
                             "2), DIV(sdpa output, 2), the same net). No causal mask (encoder)",
        "attention.output": "BertSelfOutput: LayerNorm(dense(context) + h) (dense 16 -> 16 with "
                            "bias, plain; dropout identity; residual plain; LayerNorm rule above)",
        "intermediate": "BertIntermediate: ID(gelu, dense(x)) (dense 16 -> 32 with bias, plain; "
                        "identity rule on the activation); hidden_act 'gelu' = transformers' "
                        "GELUActivation = torch.nn.functional.gelu, the exact erf form 0.5 x (1 + "
                        "erf(x / sqrt(2))); ID's ratio gelu(x) / (x + 1e-10)",
        "output": "BertOutput: LayerNorm(dense(i) + attention_output) (dense 32 -> 16 with bias, "
                  "plain; dropout identity; residual plain; LayerNorm rule above)",
        "pooler": "BertPooler: ID(tanh, dense(h[:, 0])): the last layer's hidden state of the "
                  "FIRST token (position 0) only, dense 16 -> 16 with bias plain, identity rule "
                  "on tanh (ratio tanh(x) / (x + 1e-10))",
        "classifier": "dropout identity, then classifier = Linear(16, 3) with bias, plain; the "
                      "explained output is logits[target] (no softmax)",
        "dropout": "torch.nn.Dropout.forward -> identity (embeddings, attention probs, self-output, "
                   "output, classifier; all rates 0 and eval() anyway)",
        "residuals": "plain (inside the LayerNorm's input)",
    },
    "gemma3": {
        "notation": _NOTATION,
        "source": "LXT 2.1's own map lxt.efficient.models.gemma3 (attnLRP resp. cp_LRP) = "
                  "{Gemma3MLP: gated_mlp_forward resp. cp_gated_mlp_forward, Gemma3RMSNorm: "
                  "_norm -> gemma3_norm (method_name='_norm'; forward stays HF's), "
                  "torch.nn.Dropout: dropout_forward, modeling_gemma3: patch_attention resp. "
                  "patch_cp_attention}; applied to transformers 4.52.4's text-only "
                  "Gemma3ForCausalLM (eager attention)",
        "relevance_input": "inputs_embeds = model.model.embed_tokens(ids) "
                           "(model.get_input_embeddings(), a Gemma3TextScaledWordEmbedding): "
                           "embed_tokens.weight[ids] * embed_scale with embed_scale = "
                           "sqrt(hidden_size) = 4.0 (a non-persistent buffer, cast to the weight "
                           "dtype) applied INSIDE the lookup. The explained input (and the stored "
                           "'embeddings') is the SCALED embedding; R = sum_d e * de at it (the "
                           "same number as weight[ids] * d/d(weight[ids]), the scale being linear)",
        "rms_norm": "Gemma3RMSNorm (input_layernorm, post_attention_layernorm, "
                    "pre_feedforward_layernorm, post_feedforward_layernorm, self_attn.q_norm, "
                    "self_attn.k_norm, model.norm): HF forward y = (_norm(x.float()) * (1.0 + "
                    "weight.float())).type_as(x), with LXT's _norm(x) = x * SG(rsqrt(mean(x^2, "
                    "-1) + eps)), eps = rms_norm_eps = 1e-6 (inside the rsqrt). Scale is (1 + w), "
                    "not w; the float32 cast happens also in the float64 run. The normaliser is "
                    "a constant, the (1 + w) multiply plain: y = x * c * (1 + w) is linear "
                    "elementwise, so its Gradient x Input passes each element's relevance "
                    "through unchanged (identity in relevance; the gradient is multiplied by "
                    "c * (1 + w))",
        "block": "Gemma 3 sandwich norms, per decoder layer: h = x + post_attention_layernorm("
                 "self_attn(input_layernorm(x))); out = h + post_feedforward_layernorm(mlp("
                 "pre_feedforward_layernorm(h))); residual sums plain. After the last layer: "
                 "model.norm, then lm_head",
        "attention_projections": "q_proj [16, 16], k_proj [8, 16], v_proj [8, 16], o_proj "
                                 "[16, 16], nn.Linear [out, in], no bias; q viewed [T, 4 heads, "
                                 "4], k and v [T, 2 kv heads, 4] (head h = output rows [4h, "
                                 "4h+4))",
        "qk_norm": "q_norm / k_norm: Gemma3RMSNorm over head_dim (4; weight [4], shared by all "
                   "heads) applied per head to q and k after the projections and BEFORE the "
                   "rotary embedding (rule as rms_norm); v has no norm",
        "rotary": "rotate_half convention (first half / second half of head_dim), full rotary "
                  "(rotary dim 4), inv_freq = base^(-[0, 2] / 4); local layers use "
                  "rotary_emb_local with base rope_local_base_freq = 10000, global layers "
                  "rotary_emb with base rope_theta = 1e6 (rope_scaling None = default); positions "
                  "0..T-1; cos/sin computed in float32 (also in the float64 run), cast to the "
                  "compute dtype: plain",
        "layers": "transformers 4.52.4 (no layer_types field): layer i is local (sliding) iff "
                  "(i + 1) % sliding_window_pattern != 0; sliding_window_pattern 2 -> layers 0, 2 "
                  "local (sliding_window 4, rope base 10000), layers 1, 3 global (full causal, "
                  "rope base 1e6)",
        "sliding_window": "plain forward without cache and without attention_mask: the model "
                          "builds the causal additive mask (0 / finfo.min, j > i masked); "
                          "Gemma3DecoderLayer of a local layer then sets entries with j <= i - "
                          "sliding_window to finfo.min (torch.where(tril(ones, diagonal=-4), "
                          "min, mask); no double addition). A query at position i on a LOCAL "
                          "layer sees the keys j with max(0, i - 3) <= j <= i (its own position "
                          "and the 3 before it: 4 keys); on a GLOBAL layer 0 <= j <= i. Masked "
                          "probabilities are exactly 0 (checked). The sliding_window kwarg passed "
                          "to eager_attention_forward is ignored by it",
        "attention.attnlrp": "lxt patch_attention on modeling_gemma3.eager_attention_forward: "
                             "query = DIV(q, 4), key = DIV(k, 4), value = DIV(v, 2), applied "
                             "after q_norm/k_norm and rotary and before repeat_kv; inside plain: "
                             "repeat_kv (GQA, 2 query heads per kv head: query heads 0, 1 -> kv "
                             "head 0, 2, 3 -> kv head 1), scores = q k^T * scaling with scaling = "
                             "query_pre_attn_scalar^-0.5 = 4^-0.5 = 0.5 (NOT head_dim^-0.5, though "
                             "equal here), no attention softcap (attn_logit_softcapping None; "
                             "Gemma3Attention in 4.52.4 does not even pass softcap to the "
                             "attention function), + additive mask (above), softmax over keys "
                             "(dtype float32, cast back), dropout 0, A @ V, heads concatenated "
                             "[T, 16]",
        "attention.cplrp": "lxt patch_cp_attention: query = SG(q), key = SG(k) (attention "
                           "weights constant), value and A @ V plain, no DIV",
        "o_proj": "plain linear, no bias",
        "mlp.attnlrp": "lxt gated_mlp_forward: down_proj(DIV(ID(gelu_tanh, gate_proj(x)) * "
                       "up_proj(x), 2)): identity rule on the activation (ratio gelu_tanh(g) / "
                       "(g + 1e-10)), the gated product's gradient halved (uniform rule, up and "
                       "act(gate) each 1/2), gate_proj [24, 16], up_proj [24, 16], down_proj "
                       "[16, 24] plain, no bias. hidden_activation 'gelu_pytorch_tanh' = "
                       "torch gelu(approximate='tanh') = 0.5 g (1 + tanh(sqrt(2/pi) (g + "
                       "0.044715 g^3)))",
        "mlp.cplrp": "lxt cp_gated_mlp_forward: down_proj(gelu_tanh(SG(gate_proj(x))) * "
                     "up_proj(x)): gate branch constant, plain gradient through up, no DIV",
        "dropout": "torch.nn.Dropout.forward -> identity (Gemma3 uses functional dropout with p = "
                   "0 in eval; nothing to do)",
        "residuals": "plain",
        "final_norm": "model.norm: rms_norm rule above",
        "lm_head": "Linear(16, 64), no bias, tied to model.embed_tokens.weight (the UNSCALED "
                   "weight: embed_scale only multiplies the lookup), plain; "
                   "final_logit_softcapping None (no tanh on the logits; LXT 2.1 has no rule "
                   "for the tanh softcaps, which would just be plain autograd)",
    },
}


BACKWARD = {
    "bert": "per sample (batch 1), as LXT's BERT-classifier quickstart: input_embeds = "
            "model.bert.embeddings.word_embeddings(ids[b:b+1]); logits = model(inputs_embeds="
            "input_embeds.requires_grad_(), attention_mask=ones, token_type_ids=zeros).logits "
            "([1, 3]); max_logits, max_indices = torch.max(logits, dim=-1); max_logits.backward() "
            "(= logits[0, target].backward(), seed 1 on the arg-max class logit, 0 on the others); "
            "relevance = (input_embeds * input_embeds.grad).sum(-1)",
    "gemma3": "per sample (batch 1), as LXT's examples/quantized_gemma3.py: input_embeds = "
              "model.get_input_embeddings()(ids[b:b+1]) (= embed_tokens.weight[ids] * 4.0, the "
              "scaled embedding); logits = model(inputs_embeds=input_embeds.requires_grad_(), "
              "use_cache=False).logits; max_logits, max_indices = torch.max(logits[0, -1, :], "
              "dim=-1); max_logits.backward() (seed: gradient 1 on the arg-max logit at the last "
              "position, 0 elsewhere); relevance = (input_embeds * input_embeds.grad).sum(-1)",
}


def versions():
    import transformers
    from importlib.metadata import version
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "lxt": version("lxt"), "python": sys.version.split()[0]}


def generate(name):
    family, fields = VARIANTS.get(name, (name, {}))
    folder = OUT / name
    ids = build(family, folder, fields)
    e32, logits32, f64_logit_distance = plain(family, folder, ids)
    targets = logits32.argmax(-1).tolist()
    top2 = logits32.topk(2, dim=-1).values
    margins = (top2[:, 0] - top2[:, 1]).tolist()
    tmp_ids = folder / "reference.ids.tmp.safetensors"
    save_file({"ids": ids.contiguous()}, str(tmp_ids))
    tensors = {
        "ids": ids.float().contiguous(),
        "logits": logits32.contiguous(),
        "embeddings": e32.contiguous(),
    }
    modes = {}
    try:
        for mode in family_modes(family):
            with tempfile.TemporaryDirectory() as tmp:
                out_path = pathlib.Path(tmp) / "out.safetensors"
                subprocess.run([sys.executable, __file__, "--worker", family, mode, str(folder),
                                str(out_path)], check=True)
                r = load_file(str(out_path))
            for tag in ("f32", "f64"):
                assert r[f"targets.{tag}"].tolist() == targets, f"{family}/{mode}/{tag}: targets"
            patched_diff = ((r["logits.f32"] - logits32).abs().max() / logits32.abs().max()).item()
            assert patched_diff <= 1e-5, f"{family}/{mode}: patched logits differ by {patched_diff}"
            r32, r64 = r["rel.f32"], r["rel.f64"]
            tok32, tok64 = r32.sum(-1), r64.sum(-1)
            dist = ((tok32.double() - tok64).abs().max() / tok64.abs().max()).item()
            tensors[f"relevance.{mode}"] = tok32.contiguous()
            tensors[f"relevance.{mode}.embeddings"] = r32.contiguous()
            modes[mode] = {
                "lxt_rule_set": MODES[mode],
                "lxt_f32_distance": dist,
                "patched_logits_distance": patched_diff,
                "relevance_sum": tok32.sum(-1).tolist(),
                "target_logit": r["selected.f32"].tolist(),
            }
            if "posrel.f32" in r:  # gpt2, bert: the learned position embeddings' share (not in R)
                p32, p64 = r["posrel.f32"], r["posrel.f64"]
                tensors[f"relevance.{mode}.positions"] = p32.contiguous()
                modes[mode]["position_relevance_sum"] = p32.sum((-1, -2)).tolist()
                modes[mode]["position_f32_distance"] = (
                    (p32.sum(-1).double() - p64.sum(-1)).abs().max() / p64.sum(-1).abs().max()).item()
            if "typerel.f32" in r:  # bert: the token-type embedding's share (not in R)
                y32, y64 = r["typerel.f32"], r["typerel.f64"]
                tensors[f"relevance.{mode}.token_types"] = y32.contiguous()
                modes[mode]["token_type_relevance_sum"] = y32.sum((-1, -2)).tolist()
                modes[mode]["token_type_f32_distance"] = (
                    (y32.sum(-1).double() - y64.sum(-1)).abs().max() / y64.sum(-1).abs().max()).item()
    finally:
        tmp_ids.unlink()
    save_file(tensors, str(folder / "reference.safetensors"))
    cfg = json.loads((folder / "config.json").read_text())
    keys = ["model_type", "architectures", "vocab_size", "hidden_size", "intermediate_size",
            "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
            "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act",
            "tie_word_embeddings", "attention_bias", "sliding_window", "use_sliding_window",
            "torch_dtype"] + EXTRA_CONFIG_KEYS.get(family, [])
    case = {
        "family": family,
        "config": {k: cfg[k] for k in keys if k in cfg},
        "notes": {
            "llama": "untied embeddings, no biases",
            "mistral": "LXT has no Mistral patch: LXT's llama maps applied to modeling_mistral; "
                       "sliding_window 4096 > T (inactive)",
            "qwen2": "tied embeddings (no lm_head.weight in model.safetensors), q/k/v biases",
            "qwen3": "untied embeddings, q_norm/k_norm RMS norms (head_dim) before rotary",
            "phi3": "untied embeddings, no biases, fused qkv_proj (rows q 16, k 8, v 8) and "
                    "gate_up_proj (rows gate 24, up 24); head_dim = hidden/heads = 4 (not in "
                    "config.json); full rotary (partial_rotary_factor 1.0), no rope_scaling. "
                    "LXT has no Phi3 patch: LXT's llama maps mirrored onto modeling_phi3 with the "
                    "gated-MLP rules rewritten for the fused projection (see rules)",
            "gpt2": "tied head (model.safetensors has transformer.wte.weight, no lm_head.weight), "
                    "learned position embeddings wpe added inside the model, Conv1D weights "
                    "[in, out], biases everywhere, LayerNorm, gelu_new MLP with n_inner None "
                    "(= 4 * n_embd = 64); relevance at inputs_embeds = wte(ids) only, the "
                    "positions' share is relevance.<mode>.positions (not in relevance.<mode>)",
            "bert": "BertForSequenceClassification (encoder, eager attention, no causal mask), "
                    "3 labels; the explained logit is the class logit (logits [N, 3], no position "
                    "axis). LXT 2.1's BERT map offers attnLRP only (lxt/efficient/models/bert.py "
                    "defines no cp_LRP), so only that mode is written. attention_mask all 1, "
                    "token_type_ids all 0. Relevance at inputs_embeds = "
                    "bert.embeddings.word_embeddings(ids) only; BertEmbeddings adds "
                    "token_type_embeddings[0] and position_embeddings[:T] before its LayerNorm: "
                    "their shares are relevance.attnlrp.token_types and "
                    "relevance.attnlrp.positions [2, 7, 16] (not in relevance.attnlrp)",
            "gemma3": "text-only Gemma3ForCausalLM, 4 layers: 0, 2 local (sliding window 4, "
                      "rope base 1e4), 1, 3 global (rope base 1e6); Gemma RMS norms scale by "
                      "(1 + w) (weights randomised around 0); sandwich norms; q_norm/k_norm; "
                      "attention scaling query_pre_attn_scalar^-0.5; gelu_pytorch_tanh gated MLP; "
                      "tied head; no softcaps (defaults None). Relevance at the SCALED embeddings "
                      "embed_tokens(ids) = weight[ids] * sqrt(16). LXT 2.1's own gemma3 maps",
        }[family] if not fields else VARIANT_NOTES[name],
        "shape": {"batch": N, "tokens": T},
        "ids": ids.tolist(),
        "targets": targets,
        "top2_margin": margins,
        "f64_logits_distance": f64_logit_distance,
        "backward": BACKWARD.get(
            family, "per sample (batch 1): torch.max(logits[0, -1, :], dim=-1)[0].backward(), "
                    "relevance = (input_embeds * input_embeds.grad).sum(-1)"),
        "versions": versions(),
        "modes": modes,
    }
    if family == "gemma3":
        config = make_config(family)
        case["layers"] = [
            {"layer": i, "attention": kind,
             "sliding_window": config.sliding_window if kind == "local" else None,
             "rope_theta": config.rope_local_base_freq if kind == "local" else config.rope_theta,
             "visible_keys": [gemma3_visible(kind, q, config.sliding_window) for q in range(T)]}
            for i, kind in enumerate(gemma3_layer_kinds(config))]
        case["embed_scale"] = config.hidden_size ** 0.5
    if fields:
        case["variant"] = fields
    if family in RULES:
        case["rules"] = RULES[family]
    (folder / "cases.json").write_text(json.dumps(case, indent=2) + "\n")
    print(f"{name}: targets {targets}, " + ", ".join(
        f"{m} lxt_f32_distance {v['lxt_f32_distance']:.2e}" for m, v in modes.items()))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, family, mode, folder, out_path = sys.argv
        worker(family, mode, pathlib.Path(folder), pathlib.Path(out_path))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("families", nargs="*", metavar="family",
                        help=f"default: {' '.join(FAMILIES + list(VARIANTS))}")
    args = parser.parse_args()
    names = FAMILIES + list(VARIANTS)
    for name in args.families:
        if name not in names:
            parser.error(f"unknown family {name!r} (one of {', '.join(names)})")
    torch.set_num_threads(1)
    for name in args.families or names:
        generate(name)


if __name__ == "__main__":
    main()
