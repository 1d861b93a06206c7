//! Text models: token ids in, relevance per token out, and two renderings of it (HTML and a
//! true-colour terminal).
//!
//! A text model's graph starts at its token embeddings `[N, T, D]` (the embedding lookup is
//! not a linear map of anything to explain); the relevance of a token is the sum of its
//! embedding's relevance over `D` (LXT's convention).
//!
//! ```
//! use burn::nn::{EmbeddingConfig, LinearConfig};
//! use burn::tensor::Device;
//! use lrp_grad::{Composite, Explainer, Graph, tokens};
//!
//! let device = Device::default();
//! let embedding = EmbeddingConfig::new(10, 4).init(&device);
//! let mut g = Graph::new();
//! let x = g.input();                                   // [T, D] embeddings
//! let pooled = g.mean("pool", 0, x);
//! g.layer("head", LinearConfig::new(4, 2).init(&device), pooled);
//!
//! let ids = vec![vec![1, 5, 7], vec![2, 2, 9]];
//! let x = tokens::embed(&embedding, &ids, &device)?;    // [2, 3, 4]
//! let e = Explainer::new().composite(Composite::attn_lrp()).explain(&g, x)?;
//! let per_token = tokens::per_token(e.relevance);       // [2, 3]
//! assert_eq!(per_token.dims(), [2, 3]);
//! let words = ["the", "film", "was"];
//! let html = tokens::html(&words, &[0.1, -0.4, 0.9]);
//! assert!(html.contains("film"));
//! # Ok::<(), lrp_grad::Error>(())
//! ```

use burn::nn::Embedding;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// The embeddings `[N, T, D]` of token-id sequences of one length.
pub fn embed(embedding: &Embedding, ids: &[Vec<u32>], device: &Device) -> Result<Tensor<3>> {
    let [vocab, _] = embedding.weight.dims();
    let t = ids.first().map_or(0, Vec::len);
    if ids.is_empty() || t == 0 {
        return Err(Error::EmptyBatch {
            shape: vec![ids.len(), t],
        });
    }
    let mut flat = Vec::with_capacity(ids.len() * t);
    for (n, sequence) in ids.iter().enumerate() {
        if sequence.len() != t {
            return Err(Error::InvalidTokens {
                reason: format!(
                    "sequence {n} has {} tokens, sequence 0 has {t}; pad them to one length",
                    sequence.len()
                ),
            });
        }
        if let Some(bad) = sequence.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::InvalidTokens {
                reason: format!(
                    "sequence {n} holds token id {bad}, outside the vocabulary of {vocab}"
                ),
            });
        }
        flat.extend(sequence.iter().map(|&id| i64::from(id)));
    }
    let ids = Tensor::<2, Int>::from_data(TensorData::new(flat, [ids.len(), t]), device);
    Ok(embedding.forward(ids))
}

/// Relevance per token: the sum over the embedding axis, `[N, T, D]` → `[N, T]`.
pub fn per_token(relevance: Tensor<3>) -> Tensor<2> {
    let [n, t, _] = relevance.dims();
    relevance.sum_dim(2).reshape([n, t])
}

/// A vocabulary: token `i` is line `i` of a text file (as `vocab.txt` files hold them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<String>,
}

impl Vocabulary {
    /// From the file's text, one token per line.
    pub fn from_lines(text: &str) -> Self {
        Self {
            tokens: text.lines().map(str::to_string).collect(),
        }
    }

    /// From each id's text, in id order.
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        Self { tokens }
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Token `id`'s text, or `[id]` for an id the vocabulary does not hold.
    pub fn token(&self, id: u32) -> String {
        self.tokens
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("[{id}]"))
    }
}

/// Zennit's `bwr` at `value` in [-1, 1]: blue for negative, white at 0, red for positive.
fn bwr(value: f32) -> [u8; 3] {
    let v = value.clamp(-1.0, 1.0);
    let fade = |c: f32| (255.0 * (1.0 - c)).round() as u8;
    if v >= 0.0 {
        [255, fade(v), fade(v)]
    } else {
        [fade(-v), fade(-v), 255]
    }
}

/// Each relevance divided by the largest magnitude (1 when all are 0).
fn normalized(relevance: &[f32]) -> Vec<f32> {
    let max = relevance.iter().fold(0.0f32, |m, r| m.max(r.abs()));
    let scale = if max > 0.0 { max } else { 1.0 };
    relevance.iter().map(|r| r / scale).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One sequence as an HTML fragment: each token a `<span>` coloured by its relevance (`bwr`,
/// normalized by the largest magnitude), the value in its tooltip.
///
/// # Panics
/// When `tokens` and `relevance` differ in length.
pub fn html<S: AsRef<str>>(tokens: &[S], relevance: &[f32]) -> String {
    assert_eq!(tokens.len(), relevance.len(), "one relevance per token");
    let spans: Vec<String> = tokens
        .iter()
        .zip(relevance)
        .zip(normalized(relevance))
        .map(|((token, r), v)| {
            let [red, green, blue] = bwr(v);
            format!(
                "<span style=\"background:rgb({red},{green},{blue});padding:0 2px\" title=\"{r:.4}\">{}</span>",
                escape(token.as_ref())
            )
        })
        .collect();
    format!("<p style=\"font-family:monospace\">{}</p>", spans.join(" "))
}

/// One sequence for a true-colour terminal: each token on a background coloured by its
/// relevance (ANSI 24-bit escapes).
///
/// # Panics
/// When `tokens` and `relevance` differ in length.
pub fn terminal<S: AsRef<str>>(tokens: &[S], relevance: &[f32]) -> String {
    assert_eq!(tokens.len(), relevance.len(), "one relevance per token");
    tokens
        .iter()
        .zip(normalized(relevance))
        .map(|(token, v)| {
            let [r, g, b] = bwr(v);
            format!(
                "\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{}\x1b[0m",
                token.as_ref()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_from_blue_through_white_to_red() {
        assert_eq!(bwr(1.0), [255, 0, 0]);
        assert_eq!(bwr(0.0), [255, 255, 255]);
        assert_eq!(bwr(-1.0), [0, 0, 255]);
        assert_eq!(bwr(0.5), [255, 128, 128]);
    }

    #[test]
    fn html_escapes_tokens_and_normalizes_by_the_largest_magnitude() {
        let out = html(&["<b>", "x"], &[-2.0, 1.0]);
        assert!(out.contains("&lt;b&gt;"));
        assert!(out.contains("background:rgb(0,0,255)")); // -2 / 2 = -1: full blue
        assert!(out.contains("background:rgb(255,128,128)")); // 1 / 2: half red
        assert!(out.contains("title=\"-2.0000\""));
    }

    #[test]
    fn unknown_ids_read_as_their_number() {
        let v = Vocabulary::from_lines("a\nb\n");
        assert_eq!(
            (v.len(), v.token(1), v.token(7)),
            (2, "b".into(), "[7]".into())
        );
    }
}
