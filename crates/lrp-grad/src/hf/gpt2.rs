//! GPT-2 (`GPT2LMHeadModel`) as a [`Graph`]: learned positions added to the token embeddings,
//! pre-norm blocks of multi-head attention (the fused `c_attn` sliced into q, k and v) with a
//! causal mask and a GELU (tanh) MLP, `ln_f` and the tied head on the last position. Its
//! `Conv1D` layers store their weight `[in, out]`, as Burn's dense layers do.
//!
//! Relevance is measured at the token embeddings: the positions are a constant summand whose
//! share is not passed on (as LXT, which takes `inputs_embeds` before the model adds them).

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::HfError;
use super::config::Config;
use super::decoder::{grouped_attention, scaled_query};
use super::weights::Weights;
use crate::model::{Activation, AddParam, FeatureShape, Graph, LayerNorm, NodeId};

/// One GPT-2 block's parameters.
#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

/// GPT-2 (see the module docs).
#[derive(Debug, Clone)]
pub struct Gpt2 {
    /// The architecture.
    pub config: Config,
    /// The token embedding table `wte` `[V, D]`.
    pub embedding: Embedding,
    /// The learned positions `wpe` `[P, D]`.
    positions: Tensor<2>,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
}

/// A `Conv1D`: weight `[in, out]`, bias `[out]`.
fn conv1d(
    w: &Weights,
    prefix: &str,
    [d_in, d_out]: [usize; 2],
    device: &Device,
) -> Result<Linear, HfError> {
    let weight = w.read(&format!("{prefix}.weight"), &[d_in, d_out])?;
    Ok(Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [d_in, d_out]),
            device,
        )),
        bias: Some(w.vector(&format!("{prefix}.bias"), d_out, device)?),
    })
}

impl Block {
    fn read(w: &Weights, c: &Config, b: usize, device: &Device) -> Result<Self, HfError> {
        let p = |s: &str| format!("transformer.h.{b}.{s}");
        let (d, m, eps) = (c.hidden_size, c.intermediate(), c.rms_norm_eps);
        Ok(Block {
            ln_1: w.layer_norm(&p("ln_1"), d, eps, device)?,
            c_attn: conv1d(w, &p("attn.c_attn"), [d, 3 * d], device)?,
            attn_proj: conv1d(w, &p("attn.c_proj"), [d, d], device)?,
            ln_2: w.layer_norm(&p("ln_2"), d, eps, device)?,
            c_fc: conv1d(w, &p("mlp.c_fc"), [d, m], device)?,
            mlp_proj: conv1d(w, &p("mlp.c_proj"), [m, d], device)?,
        })
    }
}

impl Gpt2 {
    /// Reads the parameters the config names.
    pub(super) fn read(config: Config, w: &Weights, device: &Device) -> Result<Self, HfError> {
        let c = &config;
        let (v, d) = (c.vocab_size, c.hidden_size);
        let p = c.max_position_embeddings.unwrap_or(1024);
        let table = w.read("transformer.wte.weight", &[v, d])?;
        let table = Tensor::<2>::from_data(TensorData::new(table, [v, d]), device);
        let positions = w.read("transformer.wpe.weight", &[p, d])?;
        let positions = Tensor::<2>::from_data(TensorData::new(positions, [p, d]), device);
        let blocks = (0..c.num_hidden_layers)
            .map(|b| Block::read(w, c, b, device))
            .collect::<Result<_, _>>()?;
        Ok(Gpt2 {
            embedding: Embedding {
                weight: Param::from_tensor(table.clone()),
            },
            head: Linear {
                weight: Param::from_tensor(table.transpose()),
                bias: None,
            },
            ln_f: w.layer_norm("transformer.ln_f", d, c.rms_norm_eps, device)?,
            positions,
            blocks,
            config,
        })
    }

    /// The learned positions there are.
    pub fn positions(&self) -> usize {
        self.positions.dims()[0]
    }

    /// The model on `tokens` positions as a graph: input the token embeddings `[T, D]`, output
    /// the last position's logits `[V]`. The last block computes its keys and values at every
    /// position and the rest at the last query only (nothing else reaches the logits).
    ///
    /// # Panics
    /// When `tokens` exceeds [`Gpt2::positions`].
    pub fn graph(&self, tokens: usize) -> Graph {
        let d = self.config.hidden_size;
        let mut g = Graph::new();
        let positions = self
            .positions
            .clone()
            .narrow(0, 0, tokens)
            .reshape([tokens * d]);
        let wpe = AddParam::new(positions, FeatureShape::sequence(tokens, d));
        let mut x = g.add_param("wpe", wpe, g.input());
        for (b, block) in self.blocks.iter().enumerate() {
            let p = |s: &str| format!("h.{b}.{s}");
            let h = g.layer_norm(p("ln_1"), block.ln_1.clone(), x);
            let last = b + 1 == self.blocks.len();
            let a = self.attention(&mut g, b, block, h, (tokens, last));
            if last {
                x = g.slice("last_position", 0, (tokens - 1, 1), x);
            }
            x = g.add(p("residual_attn"), [x, a]);
            let h = g.layer_norm(p("ln_2"), block.ln_2.clone(), x);
            let m = g.layer(p("mlp.c_fc"), block.c_fc.clone(), h);
            let m = g.layer(p("mlp.act"), Activation::GeluTanh, m);
            let m = g.layer(p("mlp.c_proj"), block.mlp_proj.clone(), m);
            x = g.add(p("residual_mlp"), [x, m]);
        }
        let last = match self.blocks.is_empty() {
            true => g.slice("last_position", 0, (tokens - 1, 1), x),
            false => x,
        };
        let last = g.reshape("last", [d], last);
        let last = g.layer_norm("ln_f", self.ln_f.clone(), last);
        g.layer("lm_head", self.head.clone(), last);
        g
    }

    /// Causal multi-head self-attention of `h` `[T, D]`, with its output projection: `[T, D]`,
    /// or `[1, D]` for the last position's query alone (`last`, no mask: it sees every key).
    fn attention(
        &self,
        g: &mut Graph,
        b: usize,
        block: &Block,
        h: NodeId,
        (t, last): (usize, bool),
    ) -> NodeId {
        let (d, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        let dh = d / heads;
        let p = |s: &str| format!("h.{b}.attn.{s}");
        let qkv = g.layer(p("c_attn"), block.c_attn.clone(), h);
        let mut split = |name: &str, start: usize| {
            let x = g.slice(p(name), 1, (start, d), qkv);
            let x = g.reshape(p(&format!("{name}.heads")), [t, heads, dh], x);
            g.permute(p(&format!("{name}.by_head")), [1, 0, 2], x)
        };
        let (q, k, v) = (split("q", 0), split("k", d), split("v", 2 * d));
        let q = scaled_query(g, &p(""), q, (t, last), 1.0 / (dh as f64).sqrt());
        let rows = if last { 1 } else { t };
        let dims = ([heads, heads, dh], (rows, t));
        let mask = (!last).then_some(None);
        let context = grouped_attention(g, &p(""), [q, k, v], dims, mask);
        let context = g.reshape(p("merged"), [rows, d], context);
        g.layer(p("c_proj"), block.attn_proj.clone(), context)
    }
}
