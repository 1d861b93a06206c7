//! Text models on the command line: token ids from an integer `.npy`, relevance per token,
//! and its rendering (`--vocab` in the terminal, `--html`).

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::nn::Embedding;
use burn::tensor::Device;
use lrp_grad::tokens::{self, Vocabulary};

use crate::inputs::Inputs;

/// Replaces the token ids in `inputs` (`[N, T]`, integers) by their embeddings `[N, T, D]`;
/// returns the ids.
pub(crate) fn embed(
    inputs: &mut Inputs,
    embedding: &Embedding,
    input: &Path,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let ids = self::ids(inputs, input)?;
    let x =
        tokens::embed(embedding, &ids, device).with_context(|| format!("{}", input.display()))?;
    inputs.data = x
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("embeddings: {e:?}"))?;
    Ok(ids)
}

/// The token ids of `inputs` (`[N, T]`, integers), checked.
pub(crate) fn ids(inputs: &Inputs, input: &Path) -> Result<Vec<Vec<u32>>> {
    if !inputs.integer {
        bail!(
            "{}: this is a text model; give token ids as an integer .npy [N, T] (int64 or int32)",
            input.display()
        );
    }
    let t = inputs.data.len() / inputs.n.max(1);
    (inputs.data.chunks(t.max(1)))
        .map(|row| {
            row.iter()
                .map(|&v| {
                    if v < 0.0 {
                        bail!("{}: token id {v} is negative", input.display())
                    }
                    Ok(v as u32)
                })
                .collect()
        })
        .collect()
}

/// Relevance `[N, T, D]` summed per token: `[N, T]`.
pub(crate) fn per_token(relevance: &[f32], n: usize, t: usize) -> Vec<f32> {
    let d = relevance.len() / (n * t).max(1);
    relevance.chunks(d.max(1)).map(|c| c.iter().sum()).collect()
}

/// Each sequence's tokens as text (the vocabulary's, or the ids).
pub(crate) fn words(ids: &[Vec<u32>], vocab: Option<&Vocabulary>) -> Vec<Vec<String>> {
    ids.iter()
        .map(|row| {
            row.iter()
                .map(|&id| vocab.map_or_else(|| id.to_string(), |v| v.token(id)))
                .collect()
        })
        .collect()
}

/// Reads a vocabulary file (one token per line).
pub(crate) fn read_vocab(path: &Path) -> Result<Vocabulary> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--vocab {}: cannot read", path.display()))?;
    let vocab = Vocabulary::from_lines(&text);
    if vocab.is_empty() {
        bail!(
            "--vocab {}: no tokens (expected one per line)",
            path.display()
        );
    }
    Ok(vocab)
}

/// A whole HTML page: per sample its name, answer and coloured tokens.
pub(crate) fn html_page(names: &[String], words: &[Vec<String>], relevance: &[f32]) -> String {
    let t = words.first().map_or(0, Vec::len);
    let body: String = names
        .iter()
        .zip(words)
        .enumerate()
        .map(|(i, (name, row))| {
            format!(
                "<h3>{}</h3>\n{}\n",
                name.replace('<', "&lt;"),
                tokens::html(row, &relevance[i * t..(i + 1) * t])
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lrp-grad: relevance per token</title></head>\n<body>\n<p>Red: evidence for the explained class, blue: against (normalized per sequence; the value in each tooltip).</p>\n{body}</body></html>\n"
    )
}

/// Per sample, a line of coloured tokens for the terminal.
pub(crate) fn terminal_lines(names: &[String], words: &[Vec<String>], relevance: &[f32]) -> String {
    let t = words.first().map_or(0, Vec::len);
    names
        .iter()
        .zip(words)
        .enumerate()
        .map(|(i, (name, row))| {
            format!(
                "{name}: {}\n",
                tokens::terminal(row, &relevance[i * t..(i + 1) * t])
            )
        })
        .collect()
}
