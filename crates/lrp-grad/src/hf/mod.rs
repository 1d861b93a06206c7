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
//! let embeddings = model.embedding.forward(ids);
//! let explanation = Explainer::new()
//!     .composite(Composite::attn_lrp())
//!     .explain(&model.graph(4), embeddings)?;
//! // Relevance of each token: its embedding's relevance summed over the hidden axis.
//! let per_token = explanation.relevance.sum_dim(2);
//! # Ok(())
//! # }
//! ```
//!
//! The causal LM is explained at its last position: the graph's output is that position's
//! logits, and the default target the predicted next token.

mod config;
mod decoder;
mod error;
mod weights;

pub use config::{Config, FAMILIES};
pub use decoder::Decoder;
pub use error::HfError;

use std::path::Path;

use burn::tensor::Device;

/// Reads a checkpoint directory of a supported family ([`FAMILIES`]).
pub fn load(dir: &Path, device: &Device) -> Result<Decoder, HfError> {
    let config = Config::read(&dir.join("config.json"))?;
    let weights = weights::Weights::open(dir)?;
    Decoder::read(config, &weights, device)
}
