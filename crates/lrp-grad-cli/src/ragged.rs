//! Checkpoint inputs of different lengths — token ids padded (left or right) with an attention
//! mask, or texts that tokenise to different lengths: each sample is explained on its own real
//! tokens (positions from 0 at its first one, padding never attended, its last real position's
//! next token explained — as `generate` runs a left-padded batch, and as any forward pass with
//! the mask does for rotary models; a plain GPT-2 or BERT forward pass on left padding shifts
//! the learned positions instead), samples of one length together; the padding gets relevance 0.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use burn::tensor::Device;
use lrp_grad::FeatureShape;
use lrp_grad::hf::HfModel;

use crate::explain::ChunkResult;
use crate::inputs::Inputs;
use crate::model::CliModel;

/// Per sample, the positions of its real tokens in the padded rows.
pub(crate) struct Ragged {
    pub real: Vec<Vec<usize>>,
}

impl Ragged {
    /// From an attention mask `[N, T]` (1: a token, 0: padding), checked against the ids' shape.
    pub(crate) fn from_mask(mask: &[f32], shape: &[usize], ids: &[usize]) -> Result<Self> {
        if shape != ids {
            bail!("--attention-mask has shape {shape:?}; the token ids have {ids:?}");
        }
        let t = shape.last().copied().unwrap_or(0);
        let real: Vec<Vec<usize>> = (mask.chunks(t.max(1)))
            .map(|row| (0..t).filter(|&j| row[j] != 0.0).collect())
            .collect();
        if let Some(i) = real.iter().position(Vec::is_empty) {
            bail!("--attention-mask: sample {i} has no token (a row of zeros)");
        }
        Ok(Ragged { real })
    }
}

/// Explains the padded ids `[N, T]` group by group: `run` explains one group (a graph for its
/// length, the embeddings of its real tokens, its targets). Relevance comes back per token,
/// `[N, T]`, in the padded layout.
pub(crate) fn explain(
    lm: &HfModel,
    ragged: &Ragged,
    inputs: &Inputs,
    targets: Option<&[usize]>,
    device: &Device,
    run: &mut dyn FnMut(&CliModel, &Inputs, Option<Vec<usize>>) -> Result<ChunkResult>,
) -> Result<ChunkResult> {
    let (n, t) = (inputs.n, inputs.data.len() / inputs.n.max(1));
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, real) in ragged.real.iter().enumerate() {
        groups.entry(real.len()).or_default().push(i);
    }
    check_ids(lm, ragged, inputs, t)?;
    let mut out = Rows::new(n, t);
    for (len, samples) in groups {
        let rows: Vec<Vec<u32>> = (samples.iter())
            .map(|&i| {
                ragged.real[i]
                    .iter()
                    .map(|&j| inputs.data[i * t + j] as u32)
                    .collect()
            })
            .collect();
        let embedded = lrp_grad::tokens::embed(lm.embedding(), &rows, device)?;
        let d = lm.config().hidden_size;
        let group_inputs = Inputs {
            data: embedded
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            n: samples.len(),
            names: samples.iter().map(|&i| inputs.names[i].clone()).collect(),
            stems: samples.iter().map(|&i| inputs.stems[i].clone()).collect(),
            shape: vec![samples.len(), len, d],
            recipe: None,
            integer: false,
        };
        let model = CliModel {
            graph: lm.graph(len)?,
            input_shape: FeatureShape::sequence(len, d),
            spec: None,
            dropped_softmax: None,
            embedding: None,
        };
        let group_targets = targets.map(|all| samples.iter().map(|&i| all[i]).collect());
        let result = run(&model, &group_inputs, group_targets)?;
        out.place(&samples, &ragged.real, result, d);
    }
    Ok(out.finish())
}

/// Every real token id within the vocabulary (named by sample and position).
fn check_ids(lm: &HfModel, ragged: &Ragged, inputs: &Inputs, t: usize) -> Result<()> {
    let vocab = lm.embedding().weight.dims()[0];
    if let Some(i) = (0..inputs.n * t)
        .find(|&i| inputs.data[i] as usize >= vocab && ragged.real[i / t].contains(&(i % t)))
    {
        bail!(
            "{}: token id {} (sample {}, position {}) is outside the vocabulary of {vocab}",
            inputs.names[i / t],
            inputs.data[i],
            i / t,
            i % t
        );
    }
    Ok(())
}

/// The results of all groups, in the samples' order.
struct Rows {
    t: usize,
    relevance: Vec<f32>,
    outputs: Vec<Vec<f32>>,
    targets: Vec<usize>,
    sums: Vec<f32>,
}

impl Rows {
    fn new(n: usize, t: usize) -> Self {
        Rows {
            t,
            relevance: vec![0.0; n * t],
            outputs: vec![Vec::new(); n],
            targets: vec![0; n],
            sums: vec![0.0; n],
        }
    }

    /// One group's result (relevance `[n_g, len, d]`) at its samples' places.
    fn place(&mut self, samples: &[usize], real: &[Vec<usize>], r: ChunkResult, d: usize) {
        let classes = r.outputs.len() / samples.len().max(1);
        for (g, &i) in samples.iter().enumerate() {
            let len = real[i].len();
            for (j, &pos) in real[i].iter().enumerate() {
                let at = (g * len + j) * d;
                self.relevance[i * self.t + pos] = r.relevance[at..at + d].iter().sum();
            }
            self.outputs[i] = r.outputs[g * classes..(g + 1) * classes].to_vec();
            self.targets[i] = r.targets.get(g).copied().unwrap_or(0);
            self.sums[i] = r.sums[g];
        }
    }

    fn finish(self) -> ChunkResult {
        ChunkResult {
            relevance: self.relevance,
            outputs: self.outputs.concat(),
            targets: self.targets,
            sums: self.sums,
        }
    }
}
