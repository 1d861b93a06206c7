//! BERT classifiers (`BertForSequenceClassification`) as a [`Graph`]: the token embeddings plus
//! the position and token-type-0 embeddings (one constant summand: relevance is measured at the
//! token embeddings, as LXT's `inputs_embeds`), the embeddings' layer norm, post-norm encoder
//! blocks (multi-head attention without a mask, GELU MLP), and the pooler (`tanh` of a dense
//! layer on token 0) under the classifier. The output is the class logits.

use burn::nn::{Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::HfError;
use super::config::Config;
use super::weights::Weights;
use crate::model::{Activation, AddParam, FeatureShape, Graph, LayerNorm, NodeId};

/// One encoder block's parameters.
#[derive(Debug, Clone)]
struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

/// A BERT classifier (see the module docs).
#[derive(Debug, Clone)]
pub struct Bert {
    /// The architecture.
    pub config: Config,
    /// The word embedding table `[V, D]`.
    pub embedding: Embedding,
    /// Position embeddings plus token type 0's, `[P, D]`: what BERT adds to every word.
    constant: Tensor<2>,
    norm: LayerNorm,
    blocks: Vec<Block>,
    pooler: Linear,
    classifier: Linear,
}

impl Block {
    fn read(w: &Weights, c: &Config, b: usize, device: &Device) -> Result<Self, HfError> {
        let p = |s: &str| format!("bert.encoder.layer.{b}.{s}");
        let (d, m, eps) = (c.hidden_size, c.intermediate(), c.rms_norm_eps);
        Ok(Block {
            q: w.linear(&p("attention.self.query"), [d, d], device)?,
            k: w.linear(&p("attention.self.key"), [d, d], device)?,
            v: w.linear(&p("attention.self.value"), [d, d], device)?,
            attn_out: w.linear(&p("attention.output.dense"), [d, d], device)?,
            attn_norm: w.layer_norm(&p("attention.output.LayerNorm"), d, eps, device)?,
            intermediate: w.linear(&p("intermediate.dense"), [d, m], device)?,
            out: w.linear(&p("output.dense"), [m, d], device)?,
            out_norm: w.layer_norm(&p("output.LayerNorm"), d, eps, device)?,
        })
    }
}

impl Bert {
    /// Reads the parameters the config names.
    pub(super) fn read(config: Config, w: &Weights, device: &Device) -> Result<Self, HfError> {
        let c = &config;
        let (v, d) = (c.vocab_size, c.hidden_size);
        let p = c.max_position_embeddings.unwrap_or(512);
        let table = |name: &str, rows: usize| -> Result<Tensor<2>, HfError> {
            let values = w.read(name, &[rows, d])?;
            Ok(Tensor::from_data(
                TensorData::new(values, [rows, d]),
                device,
            ))
        };
        let words = table("bert.embeddings.word_embeddings.weight", v)?;
        let positions = table("bert.embeddings.position_embeddings.weight", p)?;
        let types = table(
            "bert.embeddings.token_type_embeddings.weight",
            c.type_vocab_size.max(1),
        )?;
        let classes = w
            .shape("classifier.weight")
            .and_then(|s| s.first().copied())
            .unwrap_or(0);
        Ok(Bert {
            embedding: Embedding {
                weight: burn::module::Param::from_tensor(words),
            },
            constant: positions + types.narrow(0, 0, 1),
            norm: w.layer_norm("bert.embeddings.LayerNorm", d, c.rms_norm_eps, device)?,
            blocks: (0..c.num_hidden_layers)
                .map(|b| Block::read(w, c, b, device))
                .collect::<Result<_, _>>()?,
            pooler: w.linear("bert.pooler.dense", [d, d], device)?,
            classifier: w.linear("classifier", [d, classes], device)?,
            config,
        })
    }

    /// The learned positions there are.
    pub fn positions(&self) -> usize {
        self.constant.dims()[0]
    }

    /// The model on `tokens` positions (token type 0, no padding) as a graph: input the word
    /// embeddings `[T, D]`, output the class logits.
    ///
    /// # Panics
    /// When `tokens` exceeds [`Bert::positions`].
    pub fn graph(&self, tokens: usize) -> Graph {
        let d = self.config.hidden_size;
        let mut g = Graph::new();
        let constant = self
            .constant
            .clone()
            .narrow(0, 0, tokens)
            .reshape([tokens * d]);
        let constant = AddParam::new(constant, FeatureShape::sequence(tokens, d));
        let x = g.add_param("embeddings.position_and_token_type", constant, g.input());
        let mut x = g.layer_norm("embeddings.LayerNorm", self.norm.clone(), x);
        for (b, block) in self.blocks.iter().enumerate() {
            let p = |s: &str| format!("encoder.layer.{b}.{s}");
            let a = self.attention(&mut g, b, block, x, tokens);
            let a = g.add(p("attention.residual"), [x, a]);
            x = g.layer_norm(p("attention.output.LayerNorm"), block.attn_norm.clone(), a);
            let m = g.layer(p("intermediate.dense"), block.intermediate.clone(), x);
            let m = g.layer(p("intermediate.gelu"), Activation::Gelu, m);
            let m = g.layer(p("output.dense"), block.out.clone(), m);
            let m = g.add(p("output.residual"), [x, m]);
            x = g.layer_norm(p("output.LayerNorm"), block.out_norm.clone(), m);
        }
        let first = g.slice("pooler.first_token", 0, (0, 1), x);
        let first = g.reshape("pooler.token", [d], first);
        let pooled = g.layer("pooler.dense", self.pooler.clone(), first);
        let pooled = g.layer("pooler.tanh", Activation::Tanh, pooled);
        g.layer("classifier", self.classifier.clone(), pooled);
        g
    }

    /// Multi-head self-attention of `x` `[T, D]` (no mask), with its output projection.
    fn attention(&self, g: &mut Graph, b: usize, block: &Block, x: NodeId, t: usize) -> NodeId {
        let (d, heads) = (self.config.hidden_size, self.config.num_attention_heads);
        let dh = d / heads;
        let p = |s: &str| format!("encoder.layer.{b}.attention.{s}");
        let mut project = |name: &str, layer: &Linear| {
            let y = g.layer(p(&format!("self.{name}")), layer.clone(), x);
            let y = g.reshape(p(&format!("self.{name}.heads")), [t, heads, dh], y);
            g.permute(p(&format!("self.{name}.by_head")), [1, 0, 2], y)
        };
        let (q, k, v) = (
            project("query", &block.q),
            project("key", &block.k),
            project("value", &block.v),
        );
        // Scaled on q: the same product, fewer numbers than the scores.
        let q = g.scale(p("self.scaling"), 1.0 / (dh as f64).sqrt(), q);
        let kt = g.permute(p("self.key_t"), [0, 2, 1], k);
        let scores = g.matmul(p("self.scores"), q, kt);
        let weights = g.softmax(p("self.softmax"), 2, scores);
        let context = g.matmul(p("self.context"), weights, v);
        let context = g.permute(p("self.merge_heads"), [1, 0, 2], context);
        let context = g.reshape(p("self.merged"), [t, d], context);
        g.layer(p("output.dense"), block.attn_out.clone(), context)
    }
}
