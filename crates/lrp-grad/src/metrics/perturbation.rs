//! Faithfulness by perturbation: replace the inputs an explanation ranks most relevant and
//! watch the target score — pixel flipping and region perturbation (Samek et al. 2017) and
//! selectivity (Montavon et al. 2018), as Quantus 0.6.0 computes them: features ranked by their
//! signed relevance (ties by position), replaced cumulatively by a baseline, every perturbed
//! copy of a sample in one batched forward pass. The curves hold no unperturbed point.
//!
//! Pixel flipping ranks either whole pixels (relevance summed over channels, every channel
//! replaced together: [`Unit::Pixel`]) or single values (`C·H·W` of them, the channels of one
//! pixel moving independently, as Quantus' `PixelFlipping` does with a per-channel map —
//! its issue #75: [`Unit::Value`]); region perturbation and selectivity rank square patches
//! over all channels.

use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};
use crate::model::AsGraph;

/// What replaces a perturbed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
    /// The sample's smallest input value (Quantus' "black").
    Min,
    /// A fixed value.
    Value(f32),
}

/// Which score the curves record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// The target's softmax probability (Quantus' default).
    Softmax,
    /// The target's logit.
    Logit,
}

/// What pixel flipping ranks and replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whole pixels: relevance summed over channels, every channel replaced together.
    Pixel,
    /// Single input values, each channel of a pixel on its own (Quantus' default).
    Value,
}

/// A batch of images and their explanations, `[N, C, H, W]` each (row-major), with targets.
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    /// The inputs.
    pub x: &'a [f32],
    /// The explanations, of the inputs' shape.
    pub a: &'a [f32],
    /// `[N, C, H, W]`.
    pub dims: [usize; 4],
    /// The explained class of each sample.
    pub targets: &'a [usize],
}

impl Baseline {
    /// The value that replaces the sample `x`'s perturbed values.
    pub(super) fn value(self, x: &[f32]) -> f32 {
        match self {
            Baseline::Min => x.iter().copied().fold(f32::INFINITY, f32::min),
            Baseline::Value(v) => v,
        }
    }
}

impl Images<'_> {
    pub(super) fn check(&self) -> Result<()> {
        let numel: usize = self.dims.iter().product();
        let invalid = |reason: String| Error::InvalidMetric { reason };
        if self.x.len() != numel || self.a.len() != numel {
            return Err(invalid(format!(
                "inputs ({}) and explanations ({}) must both hold {:?} = {numel} values",
                self.x.len(),
                self.a.len(),
                self.dims
            )));
        }
        if self.dims.contains(&0) {
            return Err(invalid(format!("the shape {:?} holds no value", self.dims)));
        }
        if let Some(v) = self.x.iter().chain(self.a).find(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "the inputs or explanations hold {v}; expected finite values"
            )));
        }
        if self.targets.len() != self.dims[0] {
            return Err(invalid(format!(
                "{} targets for {} samples",
                self.targets.len(),
                self.dims[0]
            )));
        }
        Ok(())
    }

    pub(super) fn sample(&self, i: usize) -> (&[f32], &[f32]) {
        let per = self.dims[1] * self.dims[2] * self.dims[3];
        (
            &self.x[i * per..(i + 1) * per],
            &self.a[i * per..(i + 1) * per],
        )
    }
}

/// Pixel flipping: the target's score after each step replaces the next `features_in_step`
/// most relevant pixels or values (`unit`) — ⌈H·W / features_in_step⌉ or
/// ⌈C·H·W / features_in_step⌉ points per sample.
pub fn pixel_flipping(
    model: &impl AsGraph,
    images: Images<'_>,
    (features_in_step, unit): (usize, Unit),
    (baseline, score): (Baseline, Score),
) -> Result<Vec<Vec<f64>>> {
    images.check()?;
    let [_, c, h, w] = images.dims;
    let units = match unit {
        Unit::Pixel => h * w,
        Unit::Value => c * h * w,
    };
    if features_in_step == 0 || features_in_step > units {
        return Err(Error::InvalidMetric {
            reason: format!(
                "features_in_step {features_in_step}: expected 1 to {units} (the {} of a sample)",
                if unit == Unit::Pixel {
                    "pixels"
                } else {
                    "values"
                }
            ),
        });
    }
    (0..images.dims[0])
        .map(|i| {
            let (x, a) = images.sample(i);
            let groups: Vec<Vec<usize>> = match unit {
                Unit::Value => (descending(a).chunks(features_in_step))
                    .map(<[usize]>::to_vec)
                    .collect(),
                Unit::Pixel => (descending(&per_pixel(a, [c, h, w])).chunks(features_in_step))
                    .map(|pixels| {
                        (0..c)
                            .flat_map(|ch| pixels.iter().map(move |p| ch * h * w + p))
                            .collect()
                    })
                    .collect(),
            };
            let at = (images.dims, images.targets[i], score);
            cumulative_scores(model, x, (&groups, baseline.value(x)), at, false)
        })
        .collect()
}

/// A `[C, H, W]` map summed over its channels.
pub(super) fn per_pixel(a: &[f32], [c, h, w]: [usize; 3]) -> Vec<f32> {
    (0..h * w)
        .map(|p| (0..c).map(|ch| a[ch * h * w + p]).sum())
        .collect()
}

/// Region perturbation (most relevant first): the drop `f(x) − f(x_t)` of the target's score
/// after each of the first `regions` patches (`patch × patch` over all channels, ranked by
/// their summed relevance) is replaced.
pub fn region_perturbation(
    model: &impl AsGraph,
    images: Images<'_>,
    (patch, regions): (usize, usize),
    (baseline, score): (Baseline, Score),
) -> Result<Vec<Vec<f64>>> {
    let curves = patch_curves(model, images, patch, (baseline, score), Some(regions))?;
    Ok(curves
        .into_iter()
        .map(|(start, curve)| curve.into_iter().map(|c| start - c).collect())
        .collect())
}

/// Selectivity: the target's score after each patch (ranked as in region perturbation) is
/// replaced, every patch in turn.
pub fn selectivity(
    model: &impl AsGraph,
    images: Images<'_>,
    patch: usize,
    (baseline, score): (Baseline, Score),
) -> Result<Vec<Vec<f64>>> {
    let curves = patch_curves(model, images, patch, (baseline, score), None)?;
    Ok(curves.into_iter().map(|(_, curve)| curve).collect())
}

/// The area under a curve by the trapezoid rule with unit steps (Quantus' `auc`).
pub fn auc(curve: &[f64]) -> f64 {
    curve.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum()
}

/// Per sample: the unperturbed score and the scores after each of the first `limit` patches.
fn patch_curves(
    model: &impl AsGraph,
    images: Images<'_>,
    patch: usize,
    (baseline, score): (Baseline, Score),
    limit: Option<usize>,
) -> Result<Vec<(f64, Vec<f64>)>> {
    images.check()?;
    let [_, c, h, w] = images.dims;
    if patch == 0 || h % patch != 0 || w % patch != 0 {
        return Err(Error::InvalidMetric {
            reason: format!("patch size {patch}: expected a divisor of the image's {h} × {w}"),
        });
    }
    let patches = patch_indices([c, h, w], patch);
    (0..images.dims[0])
        .map(|i| {
            let (x, a) = images.sample(i);
            let sums: Vec<f32> = (patches.iter())
                .map(|p| p.iter().map(|&j| a[j]).sum::<f32>())
                .collect();
            let count = limit.map_or(patches.len(), |l| l.min(patches.len()));
            let groups: Vec<Vec<usize>> = descending(&sums)[..count]
                .iter()
                .map(|&p| patches[p].clone())
                .collect();
            let at = (images.dims, images.targets[i], score);
            let curve = cumulative_scores(model, x, (&groups, baseline.value(x)), at, true)?;
            Ok((curve[0], curve[1..].to_vec()))
        })
        .collect()
}

/// The flat indices of each `patch × patch` square (row-major over the squares), every channel.
fn patch_indices([c, h, w]: [usize; 3], patch: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for pi in 0..h / patch {
        for pj in 0..w / patch {
            let mut idx = Vec::with_capacity(c * patch * patch);
            for ch in 0..c {
                for y in pi * patch..(pi + 1) * patch {
                    idx.extend((pj * patch..(pj + 1) * patch).map(|x| (ch * h + y) * w + x));
                }
            }
            out.push(idx);
        }
    }
    out
}

/// Indices sorted by descending value, ties by position (a stable sort; −0 equals 0).
pub(super) fn descending(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| {
        values[j]
            .partial_cmp(&values[i])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order
}

/// The target's score on `x` after each group (and all before it) is set to `value` (after
/// `x` itself too, with `start`): the copies made 64 at a time, so memory stays bounded.
fn cumulative_scores(
    model: &impl AsGraph,
    x: &[f32],
    (groups, value): (&[Vec<usize>], f32),
    (dims, target, score): ([usize; 4], usize, Score),
    start: bool,
) -> Result<Vec<f64>> {
    let mut current = x.to_vec();
    let mut out = Vec::with_capacity(groups.len() + 1);
    let mut pending: Vec<Vec<f32>> = Vec::with_capacity(64);
    if start {
        pending.push(current.clone());
    }
    for group in groups {
        for &j in group {
            current[j] = value;
        }
        pending.push(current.clone());
        if pending.len() == 64 {
            out.extend(scores(model, &pending, dims, target, score)?);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        out.extend(scores(model, &pending, dims, target, score)?);
    }
    Ok(out)
}

/// The target's score per row of `logits` `[B, classes]`: only that column is read back.
pub(super) fn target_scores(logits: Tensor<2>, target: usize, score: Score) -> Result<Vec<f64>> {
    let classes = logits.dims()[1];
    if target >= classes {
        return Err(Error::InvalidMetric {
            reason: format!("target {target} of a model with {classes} classes"),
        });
    }
    let values = match score {
        Score::Softmax => softmax(logits, 1),
        Score::Logit => logits,
    };
    let column = (values.narrow(1, target, 1).into_data().convert::<f32>())
        .try_into_vec::<f32>()
        .map_err(|e| Error::InvalidMetric {
            reason: format!("scores: {e:?}"),
        })?;
    Ok(column.into_iter().map(f64::from).collect())
}

/// The target's score on each copy (`[C, H, W]` each), batched.
pub(super) fn scores(
    model: &impl AsGraph,
    copies: &[Vec<f32>],
    dims: [usize; 4],
    target: usize,
    score: Score,
) -> Result<Vec<f64>> {
    per_chunk(model, copies, dims, |logits| {
        target_scores(logits, target, score)
    })
}

/// The class each copy (`[C, H, W]` each) is predicted as, batched.
pub(super) fn predictions(
    model: &impl AsGraph,
    copies: &[Vec<f32>],
    dims: [usize; 4],
) -> Result<Vec<usize>> {
    per_chunk(model, copies, dims, |logits| {
        let classes = logits.argmax(1).into_data().convert::<i64>();
        let classes = classes
            .try_into_vec::<i64>()
            .map_err(|e| Error::InvalidMetric {
                reason: format!("predictions: {e:?}"),
            })?;
        Ok(classes.into_iter().map(|c| c as usize).collect())
    })
}

/// `read` applied to the logits of the copies, 64 copies per forward pass.
fn per_chunk<T>(
    model: &impl AsGraph,
    copies: &[Vec<f32>],
    [_, c, h, w]: [usize; 4],
    read: impl Fn(Tensor<2>) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let graph = model.as_graph();
    let device = super::device_of(&graph);
    let mut out = Vec::with_capacity(copies.len());
    for chunk in copies.chunks(64) {
        let data: Vec<f32> = chunk.concat();
        let x = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), c, h, w]), &device);
        out.extend(read(graph.try_forward(x)?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_keep_their_positions_and_negative_zero_equals_zero() {
        assert_eq!(descending(&[0.0, 2.0, -0.0, 1.0, 0.0]), vec![1, 3, 0, 2, 4]);
    }

    #[test]
    fn patches_cover_every_channel_row_major() {
        let p = patch_indices([2, 2, 4], 2);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], vec![2, 3, 6, 7, 10, 11, 14, 15]);
    }

    #[test]
    fn auc_is_the_trapezoid_rule() {
        assert_eq!(auc(&[1.0, 3.0, 2.0]), 2.0 + 2.5);
    }
}
