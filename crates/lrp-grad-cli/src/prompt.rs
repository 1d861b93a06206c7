//! Text for checkpoint directories: `--text` tokenised with the directory's `tokenizer.json`
//! (Hugging Face's `tokenizers`), `--target-token`, and the tokens' texts for the answers and
//! the coloured rendering.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use lrp_grad::tokens::Vocabulary;
use tokenizers::Tokenizer;

use crate::inputs::Inputs;
use crate::ragged::Ragged;

/// The directory's `tokenizer.json`, if it has one.
pub(crate) fn tokenizer(dir: &Path) -> Result<Option<Tokenizer>> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let mut tokenizer = Tokenizer::from_file(&path)
        .map_err(|e| anyhow!("{}: cannot read the tokenizer: {e}", path.display()))?;
    // Each text is explained on its own tokens: no padding, no truncation the file may set.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(Some(tokenizer))
}

/// `texts` as token ids (special tokens added as the tokenizer adds them), as the inputs of
/// one batch; texts of different lengths are padded on the right, with their real positions.
pub(crate) fn encode(tokenizer: &Tokenizer, texts: &[String]) -> Result<(Inputs, Option<Ragged>)> {
    let ids: Vec<Vec<u32>> = (texts.iter())
        .map(|t| {
            let encoding = tokenizer.encode(t.as_str(), true);
            encoding
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| anyhow!("--text {t:?}: {e}"))
        })
        .collect::<Result<_>>()?;
    let t = ids.iter().map(Vec::len).max().unwrap_or(0);
    if ids.iter().any(Vec::is_empty) {
        bail!("--text: a text gives no tokens");
    }
    let ragged = (ids.iter().any(|row| row.len() != t)).then(|| Ragged {
        real: ids.iter().map(|row| (0..row.len()).collect()).collect(),
    });
    let n = ids.len();
    let padded = ids.iter().flat_map(|row| {
        row.iter()
            .copied()
            .chain(std::iter::repeat_n(0, t - row.len()))
    });
    let inputs = Inputs {
        data: padded.map(|id| id as f32).collect(),
        n,
        names: (0..n).map(|i| format!("text[{i}]")).collect(),
        stems: (0..n).map(|i| format!("text{i}")).collect(),
        shape: vec![n, t],
        recipe: None,
        integer: true,
    };
    Ok((inputs, ragged))
}

/// The id of `token`, which must be one token of the vocabulary (`" Paris"`, with its space).
pub(crate) fn target_token(tokenizer: &Tokenizer, token: &str) -> Result<usize> {
    let encoding = tokenizer
        .encode(token, false)
        .map_err(|e| anyhow!("--target-token {token:?}: {e}"))?;
    match encoding.get_ids() {
        [id] => Ok(*id as usize),
        ids => bail!(
            "--target-token {token:?} is {} tokens ({ids:?}); expected one token of the vocabulary",
            ids.len()
        ),
    }
}

/// Each id's text (`decode` of the id alone), for `vocab_size` ids.
pub(crate) fn vocabulary(tokenizer: &Tokenizer, vocab_size: usize) -> Vocabulary {
    let tokens = (0..vocab_size as u32)
        .map(|id| {
            tokenizer
                .decode(&[id], false)
                .unwrap_or_else(|_| format!("[{id}]"))
        })
        .collect();
    Vocabulary::from_tokens(tokens)
}
