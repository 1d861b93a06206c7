//! The decoder-only transformer of LLaMA, Mistral, Qwen2, Qwen3, Phi-3 and Gemma 3 as a [`Graph`]: pre-norm
//! blocks of grouped-query attention with rotary embeddings and a causal mask, and a SiLU-gated
//! MLP; the final RMS norm and the LM head on the last position.
//!
//! Per family: Qwen2 has biases on q, k and v (read where the checkpoint has them), Qwen3 RMS
//! norms on each head of q and k before the rotary embedding, Mistral a sliding window.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::HfError;
use super::config::Config;
use super::weights::Weights;
use crate::model::{Activation, Builder, Graph, NodeId, RmsNorm, Rotary};

/// A block's q, k, v projections: three layers, or Phi-3's one (`qkv_proj`, rows q, k, v).
#[derive(Debug, Clone)]
enum Qkv {
    Separate(Linear, Linear, Linear),
    Fused(Linear),
}

/// A gated MLP's gate and up projections: two layers, or Phi-3's one (`gate_up_proj`, the
/// gate's rows first).
#[derive(Debug, Clone)]
enum GateUp {
    Separate(Linear, Linear),
    Fused(Linear),
}

/// One decoder block's parameters.
#[derive(Debug, Clone)]
pub(super) struct Block {
    norms: Norms,
    qkv: Qkv,
    o: Linear,
    /// Qwen3's per-head norms of q and k.
    qk_norms: Option<(RmsNorm, RmsNorm)>,
    gate_up: GateUp,
    down: Linear,
}

/// A decoder-only causal language model (see the module docs).
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The architecture.
    pub config: Config,
    /// The token embedding table `[V, D]` (the graph starts at its output).
    pub embedding: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    head: Linear,
    rotary: Rotary,
    /// Gemma 3's local layers' rotary embeddings.
    local_rotary: Option<Rotary>,
}

/// Reads RMS norms: `γ = w`, or Gemma's `γ = 1 + w`.
struct NormReader<'a> {
    w: &'a Weights,
    eps: f64,
    shift: f32,
    device: &'a Device,
}

impl NormReader<'_> {
    fn read(&self, name: &str, d: usize) -> Result<RmsNorm, HfError> {
        let mut norm = RmsNorm::new(d, self.eps, self.device);
        norm.gamma = self.w.vector(name, d, self.device)?;
        if self.shift != 0.0 {
            norm.gamma = Param::from_tensor(norm.gamma.val().add_scalar(self.shift));
        }
        Ok(norm)
    }
}

/// A block's norms: before attention and before the MLP (LLaMA's two), and Gemma 3's norms of
/// each sublayer's output.
#[derive(Debug, Clone)]
struct Norms {
    input: RmsNorm,
    pre_mlp: RmsNorm,
    post: Option<(RmsNorm, RmsNorm)>,
}

impl Norms {
    fn read(n: &NormReader<'_>, p: &dyn Fn(&str) -> String, d: usize) -> Result<Self, HfError> {
        let w = n.w;
        match w.has(&p("pre_feedforward_layernorm.weight")) {
            true => Ok(Norms {
                input: n.read(&p("input_layernorm.weight"), d)?,
                pre_mlp: n.read(&p("pre_feedforward_layernorm.weight"), d)?,
                post: Some((
                    n.read(&p("post_attention_layernorm.weight"), d)?,
                    n.read(&p("post_feedforward_layernorm.weight"), d)?,
                )),
            }),
            false => Ok(Norms {
                input: n.read(&p("input_layernorm.weight"), d)?,
                pre_mlp: n.read(&p("post_attention_layernorm.weight"), d)?,
                post: None,
            }),
        }
    }
}

impl Block {
    fn read(n: &NormReader<'_>, c: &Config, b: usize) -> Result<Self, HfError> {
        let (w, device) = (n.w, n.device);
        let p = |s: &str| format!("model.layers.{b}.{s}");
        let (d, dh) = (c.hidden_size, c.head_dim());
        let (q_out, kv_out) = (c.num_attention_heads * dh, c.kv_heads() * dh);
        let qk_norms = match w.has(&p("self_attn.q_norm.weight")) {
            true => Some((
                n.read(&p("self_attn.q_norm.weight"), dh)?,
                n.read(&p("self_attn.k_norm.weight"), dh)?,
            )),
            false => None,
        };
        let qkv = match w.has(&p("self_attn.qkv_proj.weight")) {
            true => {
                Qkv::Fused(w.linear(&p("self_attn.qkv_proj"), [d, q_out + 2 * kv_out], device)?)
            }
            false => Qkv::Separate(
                w.linear(&p("self_attn.q_proj"), [d, q_out], device)?,
                w.linear(&p("self_attn.k_proj"), [d, kv_out], device)?,
                w.linear(&p("self_attn.v_proj"), [d, kv_out], device)?,
            ),
        };
        let m = c.intermediate();
        let gate_up = match w.has(&p("mlp.gate_up_proj.weight")) {
            true => GateUp::Fused(w.linear(&p("mlp.gate_up_proj"), [d, 2 * m], device)?),
            false => GateUp::Separate(
                w.linear(&p("mlp.gate_proj"), [d, m], device)?,
                w.linear(&p("mlp.up_proj"), [d, m], device)?,
            ),
        };
        Ok(Block {
            norms: Norms::read(n, &p, d)?,
            qkv,
            o: w.linear(&p("self_attn.o_proj"), [q_out, d], device)?,
            qk_norms,
            gate_up,
            down: w.linear(&p("mlp.down_proj"), [m, d], device)?,
        })
    }
}

impl Decoder {
    /// Reads the parameters the config names.
    pub(super) fn read(config: Config, w: &Weights, device: &Device) -> Result<Self, HfError> {
        let c = &config;
        let (v, d) = (c.vocab_size, c.hidden_size);
        let table = w.read("model.embed_tokens.weight", &[v, d])?;
        let table = Tensor::<2>::from_data(TensorData::new(table, [v, d]), device);
        let gemma = c.model_type == "gemma3_text";
        // Built from the table directly: no random initialisation of V × D values first. Gemma
        // scales its embeddings by √d inside the lookup (relevance is measured after it).
        let embedding = Embedding {
            weight: Param::from_tensor(match gemma {
                true => table.clone().mul_scalar((d as f64).sqrt()),
                false => table.clone(),
            }),
        };
        let n = NormReader {
            w,
            eps: c.rms_norm_eps,
            shift: if gemma { 1.0 } else { 0.0 },
            device,
        };
        // A tied head is the embedding table, shared (also when the checkpoint leaves the head
        // out).
        // A head the config does not tie must be in the checkpoint.
        if c.tie_word_embeddings == Some(false)
            && !w.has("lm_head.weight")
            && c.model_type != "gemma3_text"
        {
            w.read("lm_head.weight", &[v, d])?;
        }
        let head = match c.tie_word_embeddings.unwrap_or(true) || !w.has("lm_head.weight") {
            true => Linear {
                weight: Param::from_tensor(table.transpose()),
                bias: None,
            },
            false => w.linear("lm_head", [d, v], device)?,
        };
        let blocks = (0..c.num_hidden_layers)
            .map(|b| Block::read(&n, c, b))
            .collect::<Result<_, _>>()?;
        let norm = n.read("model.norm.weight", d)?;
        let rotary = c.rotary().map_err(|reason| HfError::Config {
            file: "config.json".into(),
            reason,
        })?;
        // Gemma 3's local layers (transformers' default base 10 000).
        let local_rotary = (c.model_type == "gemma3_text")
            .then(|| Rotary::new(c.head_dim(), c.rope_local_base_freq.unwrap_or(10_000.0)));
        Ok(Decoder {
            config,
            embedding,
            blocks,
            norm,
            head,
            rotary,
            local_rotary,
        })
    }

    /// The model on `tokens` positions as a graph: input the embeddings `[T, D]`, output the
    /// last position's logits `[V]`. Node names follow the checkpoint's
    /// (`layers.3.self_attn.q_proj`, `layers.3.mlp.down_proj`, `lm_head`).
    ///
    /// The last block computes its keys and values at every position but the rest (its
    /// attention scores, output and MLP) at the last query only: nothing else reaches the logits,
    /// so the logits and every relevance are those of the whole block, for ~1/L less work
    /// (unless a sliding window shorter than the sequence masks that query's row).
    pub fn graph(&self, tokens: usize) -> Graph {
        let mut g = Graph::new();
        let mut x = g.input();
        let mut at_last = false;
        for (b, block) in self.blocks.iter().enumerate() {
            let p = |s: &str| format!("layers.{b}.{s}");
            let n = &block.norms;
            let h = g.rms_norm(p("input_layernorm"), n.input.clone(), x);
            let window = self.window(b);
            at_last = b + 1 == self.blocks.len() && window.is_none_or(|w| w >= tokens);
            let mut a = self.attention(&mut g, b, block, h, (tokens, at_last));
            let mut h_name = "post_attention_layernorm";
            if let Some((post_attention, _)) = &n.post {
                a = g.rms_norm(p("post_attention_layernorm"), post_attention.clone(), a);
                h_name = "pre_feedforward_layernorm";
            }
            if at_last {
                x = g.slice("last_position", 0, (tokens - 1, 1), x);
            }
            x = g.add(p("residual_attn"), [x, a]);
            let h = g.rms_norm(p(h_name), n.pre_mlp.clone(), x);
            let mut m = mlp(&mut g, b, block, h, self.activation());
            if let Some((_, post_feedforward)) = &n.post {
                m = g.rms_norm(p("post_feedforward_layernorm"), post_feedforward.clone(), m);
            }
            x = g.add(p("residual_mlp"), [x, m]);
        }
        let last = match at_last {
            true => x,
            false => g.slice("last_position", 0, (tokens - 1, 1), x),
        };
        let last = g.reshape("last", [self.config.hidden_size], last);
        let last = g.rms_norm("norm", self.norm.clone(), last);
        let logits = g.layer("lm_head", self.head.clone(), last);
        if let Some(cap) = self.config.final_logit_softcapping {
            g.softcap("final_logit_softcapping", cap, logits);
        }
        g
    }

    /// The gated MLP's activation.
    fn activation(&self) -> Activation {
        match self.config.model_type.as_str() {
            "gemma3_text" => Activation::GeluTanh,
            _ => Activation::Silu,
        }
    }

    /// The sliding window of block `b`'s attention, if any.
    fn window(&self, b: usize) -> Option<usize> {
        match self.config.is_local(b) {
            true => self.config.sliding_window,
            false => self.config.window(),
        }
    }

    /// Grouped-query self-attention of `h` `[T, D]`, with its output projection: `[T, D]`, or
    /// `[1, D]` for the last position's query alone (`last`, no mask: it sees every key).
    fn attention(
        &self,
        g: &mut Graph,
        b: usize,
        block: &Block,
        h: NodeId,
        (t, last): (usize, bool),
    ) -> NodeId {
        let c = &self.config;
        let (heads, kv, dh) = (c.num_attention_heads, c.kv_heads(), c.head_dim());
        let p = |s: &str| format!("layers.{b}.self_attn.{s}");
        let norms = block.qk_norms.as_ref();
        let (q, k, v) = project_qkv(g, &p(""), &block.qkv, h, [heads * dh, kv * dh]);
        // Gemma 3's local layers rotate with their own base.
        let rotary = match (c.is_local(b), &self.local_rotary) {
            (true, Some(local)) => local,
            _ => &self.rotary,
        };
        let q = self.split_heads(g, &p("q"), q, (t, heads), norms.map(|n| &n.0), Some(rotary));
        let k = self.split_heads(g, &p("k"), k, (t, kv), norms.map(|n| &n.1), Some(rotary));
        let v = self.split_heads(g, &p("v"), v, (t, kv), None, None);
        let scalar = c.query_pre_attn_scalar.unwrap_or(dh as f64);
        let q = scaled_query(g, &p(""), q, (t, last), 1.0 / scalar.sqrt());
        let mask = (!last).then(|| self.window(b));
        let rows = if last { 1 } else { t };
        let dims = ([heads, kv, dh], (rows, t));
        let context = grouped_attention(g, &p(""), [q, k, v], dims, mask);
        let context = g.reshape(p("merged"), [rows, heads * dh], context);
        g.layer(p("o_proj"), block.o.clone(), context)
    }

    /// `[T, H·dh]` → `[H, T, dh]`: the heads' view, their norms (Qwen3) and rotary embedding.
    fn split_heads(
        &self,
        g: &mut Graph,
        name: &str,
        x: NodeId,
        (t, heads): (usize, usize),
        norm: Option<&RmsNorm>,
        rotary: Option<&Rotary>,
    ) -> NodeId {
        let dh = self.config.head_dim();
        let mut x = g.reshape(format!("{name}.heads"), [t, heads, dh], x);
        if let Some(norm) = norm {
            x = g.rms_norm(format!("{name}_norm"), norm.clone(), x);
        }
        let x = g.permute(format!("{name}.by_head"), [1, 0, 2], x);
        match rotary {
            Some(rotary) => g.rotary(format!("{name}.rotary"), rotary.clone(), x),
            None => x,
        }
    }
}

/// The queries `[H, T, dh]` that reach the logits (all, or the last position's alone when
/// `last`), scaled — on q rather than on the scores: the same product, and `T/dh` times fewer
/// numbers to scale at `T` tokens.
pub(super) fn scaled_query(
    g: &mut Graph,
    prefix: &str,
    q: NodeId,
    (t, last): (usize, bool),
    scale: f64,
) -> NodeId {
    let q = match last {
        true => g.slice(format!("{prefix}last_query"), 1, (t - 1, 1), q),
        false => q,
    };
    g.scale(format!("{prefix}scaling"), scale, q)
}

/// `softmax(q·kᵀ)·v` of `q` `[H, R, dh]` (already scaled) on `k`, `v` `[KV, T, dh]`, each
/// key-value head shared by `H/KV` consecutive query heads (as transformers' `repeat_kv` pairs
/// them); `mask`: the causal mask and its window, if any. Returns `[R, H, dh]`.
///
/// The query heads that share a key-value head are stacked into one matrix (`[KV, H/KV·R, dh]`,
/// a view): one product per key-value head, and no copies of k and v — the same entries as the
/// products of repeated heads, so the same relevance.
pub(super) fn grouped_attention(
    g: &mut Graph,
    prefix: &str,
    [q, k, v]: [NodeId; 3],
    ([heads, kv, dh], (rows, t)): ([usize; 3], (usize, usize)),
    mask: Option<Option<usize>>,
) -> NodeId {
    let p = |s: &str| format!("{prefix}{s}");
    let n_rep = heads / kv;
    let q = g.reshape(p("q_groups"), [kv, n_rep * rows, dh], q);
    let kt = g.permute(p("k_t"), [0, 2, 1], k);
    let scores = g.matmul(p("scores"), q, kt);
    let mut scores = g.reshape(p("scores_by_head"), [heads, rows, t], scores);
    if let Some(window) = mask {
        scores = g.causal_mask(p("mask"), window, scores);
    }
    let weights = g.softmax(p("softmax"), 2, scores);
    let weights = g.reshape(p("weights_groups"), [kv, n_rep * rows, t], weights);
    let context = g.matmul(p("context"), weights, v);
    let context = g.reshape(p("context_by_head"), [heads, rows, dh], context);
    g.permute(p("merge_heads"), [1, 0, 2], context)
}

/// q, k and v of `h` (`prefix` ends in `.`), from three projections or slices of one.
fn project_qkv(
    g: &mut Graph,
    prefix: &str,
    qkv: &Qkv,
    h: NodeId,
    [q_out, kv_out]: [usize; 2],
) -> (NodeId, NodeId, NodeId) {
    let p = |s: &str| format!("{prefix}{s}");
    match qkv {
        Qkv::Separate(q, k, v) => (
            g.layer(p("q_proj"), q.clone(), h),
            g.layer(p("k_proj"), k.clone(), h),
            g.layer(p("v_proj"), v.clone(), h),
        ),
        Qkv::Fused(qkv) => {
            let all = g.layer(p("qkv_proj"), qkv.clone(), h);
            (
                g.slice(p("q_proj"), 1, (0, q_out), all),
                g.slice(p("k_proj"), 1, (q_out, kv_out), all),
                g.slice(p("v_proj"), 1, (q_out + kv_out, kv_out), all),
            )
        }
    }
}

/// The gated MLP: `down(act(gate(h)) · up(h))` (SiLU; Gemma's GELU-tanh).
fn mlp(g: &mut Graph, b: usize, block: &Block, h: NodeId, act: Activation) -> NodeId {
    let p = |s: &str| format!("layers.{b}.mlp.{s}");
    let (gate, up) = match &block.gate_up {
        GateUp::Separate(gate, up) => (
            g.layer(p("gate_proj"), gate.clone(), h),
            g.layer(p("up_proj"), up.clone(), h),
        ),
        GateUp::Fused(gate_up) => {
            let m = gate_up.weight.dims()[1] / 2;
            let both = g.layer(p("gate_up_proj"), gate_up.clone(), h);
            (
                g.slice(p("gate_proj"), 1, (0, m), both),
                g.slice(p("up_proj"), 1, (m, m), both),
            )
        }
    };
    let gate = g.layer(p("act_fn"), act, gate);
    // `up` first: CP-LRP holds the second factor (the gate) constant.
    let product = g.mul(p("product"), up, gate);
    g.layer(p("down_proj"), block.down.clone(), product)
}
