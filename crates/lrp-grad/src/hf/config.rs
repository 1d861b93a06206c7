//! `config.json` of a decoder-only checkpoint (the fields the supported families share).

use std::path::Path;

use serde::Deserialize;

use super::HfError;
use crate::model::{Llama3Scaling, Rotary};

/// The families [`super::load`] builds, by `model_type`.
pub const FAMILIES: [&str; 8] = [
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma3_text",
    "gpt2",
    "bert",
];

/// The architecture fields of `config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// The family (see [`FAMILIES`]).
    pub model_type: String,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Width of the residual stream (GPT-2: `n_embd`).
    #[serde(alias = "n_embd")]
    pub hidden_size: usize,
    /// Width of the MLP (GPT-2: `n_inner`, 4 × the width when `null`).
    #[serde(default, alias = "n_inner")]
    pub intermediate_size: Option<usize>,
    /// Decoder blocks (GPT-2: `n_layer`).
    #[serde(alias = "n_layer")]
    pub num_hidden_layers: usize,
    /// Query heads (GPT-2: `n_head`).
    #[serde(alias = "n_head")]
    pub num_attention_heads: usize,
    /// Learned positions (GPT-2: `n_positions`).
    #[serde(default, alias = "n_positions")]
    pub max_position_embeddings: Option<usize>,
    /// Key and value heads (grouped-query attention; the query heads when absent).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Dims per head (`hidden_size / num_attention_heads` when absent).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// ε of the RMS norms (GPT-2: of its layer norms, `layer_norm_epsilon`).
    #[serde(
        default = "rms_norm_eps",
        alias = "layer_norm_epsilon",
        alias = "layer_norm_eps"
    )]
    pub rms_norm_eps: f64,
    /// Base of the rotary angles.
    #[serde(default = "rope_theta")]
    pub rope_theta: f64,
    /// Rotary scaling: LLaMA 3's (`rope_type: llama3`) is built, others refused.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Whether the LM head is the embedding table (transformers' default when absent: yes).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
    /// Mistral's (and Qwen2's, with `use_sliding_window`) attention window.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// The MLP's activation (`silu`; GPT-2's `activation_function`: `gelu_new`).
    #[serde(default = "silu", alias = "activation_function")]
    pub hidden_act: String,
    /// Phi-3: the share of each head's dims that rotate (only 1 is built).
    #[serde(default = "unit")]
    pub partial_rotary_factor: f64,
    /// Gemma 3: the MLP's activation (`gelu_pytorch_tanh`).
    #[serde(default)]
    pub hidden_activation: Option<String>,
    /// Gemma 3: attention scores are scaled by `query_pre_attn_scalar^-½` (`head_dim^-½`
    /// when absent).
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 3: the rotary base of the local (sliding-window) layers.
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// Gemma 3: every `sliding_window_pattern`-th layer is global, the others local.
    #[serde(default)]
    pub sliding_window_pattern: Option<usize>,
    /// Gemma: the logits' cap `cap · tanh(x / cap)`.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// Gemma 2's cap of the attention scores: read, and unused as transformers' Gemma 3 leaves
    /// it unused (4.52.4: its attention passes no softcap to the attention function).
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// BERT: token types (type 0 is added to every token).
    #[serde(default)]
    pub type_vocab_size: usize,
    /// Qwen2: whether `sliding_window` applies (refused: not supported yet).
    #[serde(default)]
    pub use_sliding_window: bool,
}

fn unit() -> f64 {
    1.0
}

fn silu() -> String {
    "silu".to_string()
}

fn rms_norm_eps() -> f64 {
    1e-6
}

fn rope_theta() -> f64 {
    10_000.0
}

impl Config {
    /// Reads and checks `config.json`.
    pub fn read(file: &Path) -> Result<Self, HfError> {
        let text = std::fs::read_to_string(file).map_err(|e| HfError::Read {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let config: Config = serde_json::from_str(&text).map_err(|e| HfError::Config {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        config.check(file)?;
        Ok(config)
    }

    fn check(&self, file: &Path) -> Result<(), HfError> {
        if !FAMILIES.contains(&self.model_type.as_str()) {
            return Err(HfError::UnknownFamily {
                file: file.to_path_buf(),
                model_type: self.model_type.clone(),
                supported: FAMILIES.join(", "),
            });
        }
        let invalid = |reason: String| HfError::Config {
            file: file.to_path_buf(),
            reason,
        };
        self.check_heads().map_err(invalid)?;
        self.check_settings().map_err(invalid)?;
        self.rotary().map(|_| ()).map_err(invalid)
    }

    /// Heads that divide the width and each other, an even head dim.
    fn check_heads(&self) -> Result<(), String> {
        if self.head_dim.is_none() && self.hidden_size % self.num_attention_heads.max(1) != 0 {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0 || kv == 0 || heads % kv != 0 {
            return Err(format!(
                "num_attention_heads ({heads}) must be a positive multiple of num_key_value_heads ({kv})"
            ));
        }
        if self.head_dim() % 2 != 0 || self.head_dim() == 0 {
            return Err(format!(
                "head_dim {} must be even and positive",
                self.head_dim()
            ));
        }
        Ok(())
    }

    /// The family's activation, and no setting this loader does not build.
    fn check_settings(&self) -> Result<(), String> {
        if self.partial_rotary_factor != 1.0 {
            return Err(format!(
                "partial_rotary_factor {} (rotary embeddings on part of each head) is not supported yet",
                self.partial_rotary_factor
            ));
        }
        let (act, found) = match self.model_type.as_str() {
            "gpt2" => ("gelu_new", self.hidden_act.as_str()),
            "bert" => ("gelu", self.hidden_act.as_str()),
            "gemma3_text" => (
                "gelu_pytorch_tanh",
                self.hidden_activation.as_deref().unwrap_or(""),
            ),
            _ => ("silu", self.hidden_act.as_str()),
        };
        if found != act {
            return Err(format!(
                "the activation `{found}`: {} takes {act}",
                self.model_type
            ));
        }
        self.check_softcaps()?;
        if self.model_type == "qwen2" && self.use_sliding_window {
            return Err(
                "use_sliding_window (Qwen2's window on its upper layers) is not supported yet"
                    .into(),
            );
        }
        Ok(())
    }

    /// The logits' softcap: positive where set, and only on Gemma (the one family here whose
    /// modeling code reads it; transformers would ignore it elsewhere, silently).
    fn check_softcaps(&self) -> Result<(), String> {
        let Some(cap) = self.final_logit_softcapping else {
            return Ok(());
        };
        if self.model_type != "gemma3_text" {
            return Err(format!(
                "final_logit_softcapping is set ({cap}), but {} has no softcap (only gemma3_text reads it)",
                self.model_type
            ));
        }
        match cap > 0.0 && cap.is_finite() {
            true => Ok(()),
            false => Err(format!(
                "final_logit_softcapping must be a positive number, got {cap}"
            )),
        }
    }

    /// The rotary embeddings of the heads: plain, or LLaMA 3's scaling.
    pub fn rotary(&self) -> Result<Rotary, String> {
        let (dh, base) = (self.head_dim(), self.rope_theta);
        let Some(scaling) = self.rope_scaling.as_ref().filter(|s| !s.is_null()) else {
            return Ok(Rotary::new(dh, base));
        };
        let kind = scaling.get("rope_type").or_else(|| scaling.get("type"));
        if kind.and_then(|k| k.as_str()) != Some("llama3") {
            return Err(format!(
                "rope_scaling {scaling}: only LLaMA 3's (rope_type llama3) is supported"
            ));
        }
        let field = |name: &str| {
            scaling
                .get(name)
                .and_then(|v| v.as_f64())
                .ok_or_else(|| format!("rope_scaling.{name} is missing or not a number"))
        };
        let s = Llama3Scaling {
            factor: field("factor")?,
            low_freq_factor: field("low_freq_factor")?,
            high_freq_factor: field("high_freq_factor")?,
            original_context: field("original_max_position_embeddings")?,
        };
        if s.high_freq_factor <= s.low_freq_factor || s.factor <= 0.0 {
            return Err(format!(
                "rope_scaling: high_freq_factor ({}) must exceed low_freq_factor ({}) and factor ({}) be positive",
                s.high_freq_factor, s.low_freq_factor, s.factor
            ));
        }
        Ok(Rotary::llama3(dh, base, s))
    }

    /// Whether layer `b` is a Gemma 3 local layer (a sliding window, its own rotary base):
    /// every layer but each `sliding_window_pattern`-th (transformers' default 6).
    pub fn is_local(&self, b: usize) -> bool {
        let pattern = self.sliding_window_pattern.unwrap_or(6);
        self.model_type == "gemma3_text" && pattern > 0 && (b + 1) % pattern != 0
    }

    /// Width of the MLP.
    pub fn intermediate(&self) -> usize {
        self.intermediate_size.unwrap_or(4 * self.hidden_size)
    }

    /// Key and value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Dims per head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// The attention window, where one applies.
    pub fn window(&self) -> Option<usize> {
        match self.model_type.as_str() {
            "mistral" | "phi3" => self.sliding_window,
            _ => None,
        }
    }
}
