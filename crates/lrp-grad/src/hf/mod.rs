//! Hugging Face checkpoint directories: `config.json` and `model.safetensors` (or shards named
//! by `model.safetensors.index.json`; F32, F16 or BF16), as `save_pretrained` writes them.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use burn::tensor::{Device, Int, Tensor, TensorData};
//! use lrp_grad::{Composite, Explainer};
//!
//! let device = Device::default();
//! let model = lrp_grad::hf::load("Qwen2-0.5B".as_ref(), &device)?;
//! let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![9707i64, 11, 1879, 0], [1, 4]), &device);
//! let embeddings = model.embedding().forward(ids);
//! let explanation = Explainer::new()
//!     .composite(Composite::attn_lrp())
//!     .explain(&model.graph(4)?, embeddings)?;
//! // Relevance of each token: its embedding's relevance summed over the hidden axis.
//! let per_token = explanation.relevance.sum_dim(2);
//! # Ok(())
//! # }
//! ```
//!
//! The causal LM is explained at its last position: the graph's output is that position's
//! logits, and the default target the predicted next token.

mod bert;
mod config;
mod decoder;
mod error;
mod gpt2;
mod weights;

pub use bert::Bert;
pub use config::{Config, FAMILIES};
pub use decoder::Decoder;
pub use error::HfError;
pub use gpt2::Gpt2;

use std::path::Path;

use burn::nn::Embedding;
use burn::tensor::Device;

use crate::model::Graph;

/// A model from a checkpoint directory: a causal language model, or a BERT classifier.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HfModel {
    /// LLaMA, Mistral, Qwen2, Qwen3, Phi-3.
    Decoder(Decoder),
    /// GPT-2.
    Gpt2(Gpt2),
    /// A BERT classifier (its graph ends in the class logits).
    Bert(Bert),
}

impl HfModel {
    /// The model on `tokens` positions as a graph: input the token embeddings `[T, D]`, output
    /// the logits — a causal LM's at the last position `[V]`, a classifier's `[classes]`.
    /// `tokens` must be at least 1 and at most the learned positions (GPT-2, BERT).
    pub fn graph(&self, tokens: usize) -> Result<Graph, HfError> {
        let most = self.max_tokens();
        if tokens == 0 || most.is_some_and(|most| tokens > most) {
            return Err(HfError::Length {
                tokens,
                most: most.map_or("any number of".to_string(), |m| m.to_string()),
            });
        }
        Ok(match self {
            HfModel::Decoder(m) => m.graph(tokens),
            HfModel::Gpt2(m) => m.graph(tokens),
            HfModel::Bert(m) => m.graph(tokens),
        })
    }

    /// The token embedding table (token ids `[N, T]` → the graph's input `[N, T, D]`).
    pub fn embedding(&self) -> &Embedding {
        match self {
            HfModel::Decoder(m) => &m.embedding,
            HfModel::Gpt2(m) => &m.embedding,
            HfModel::Bert(m) => &m.embedding,
        }
    }

    /// The most positions the model takes (GPT-2's learned positions), `None` without a limit
    /// (rotary embeddings).
    pub fn max_tokens(&self) -> Option<usize> {
        match self {
            HfModel::Decoder(_) => None,
            HfModel::Gpt2(m) => Some(m.positions()),
            HfModel::Bert(m) => Some(m.positions()),
        }
    }

    /// The architecture.
    pub fn config(&self) -> &Config {
        match self {
            HfModel::Decoder(m) => &m.config,
            HfModel::Gpt2(m) => &m.config,
            HfModel::Bert(m) => &m.config,
        }
    }
}

/// Reads a checkpoint directory of a supported family ([`FAMILIES`]).
pub fn load(dir: &Path, device: &Device) -> Result<HfModel, HfError> {
    let config = Config::read(&dir.join("config.json"))?;
    let weights = weights::Weights::open(dir)?;
    Ok(match config.model_type.as_str() {
        "gpt2" => HfModel::Gpt2(Gpt2::read(config, &weights, device)?),
        "bert" => HfModel::Bert(Bert::read(config, &weights, device)?),
        _ => HfModel::Decoder(Decoder::read(config, &weights, device)?),
    })
}
