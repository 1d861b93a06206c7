//! Faithfulness for token inputs, as AttnLRP evaluates it (Achtibat et al. 2024): remove the
//! tokens one by one — their embeddings set to 0 — most relevant first (MoRF) or least
//! relevant first (LeRF), and record the target's score; a faithful explanation makes the MoRF
//! curve fall fast and the LeRF curve stay, so the area between them is large.

use burn::tensor::{Tensor, TensorData};

use super::perturbation::{Score, descending, target_scores};
use crate::error::{Error, Result};
use crate::model::{AsGraph, Graph};

/// Which tokens go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Most relevant first.
    MostRelevantFirst,
    /// Least relevant first.
    LeastRelevantFirst,
}

/// Per sample, the target's logit with 0, 1, …, T tokens removed (`T + 1` points): `x` the
/// embeddings `[N, T, D]`, `relevance` one value per token `[N, T]`.
pub fn token_removal(
    model: &impl AsGraph,
    (x, dims): (&[f32], [usize; 3]),
    relevance: &[f32],
    targets: &[usize],
    order: Order,
) -> Result<Vec<Vec<f64>>> {
    let [n, t, d] = dims;
    check((x, dims), relevance, targets)?;
    let graph = model.as_graph();
    (0..n)
        .map(|i| {
            let r = &relevance[i * t..(i + 1) * t];
            // Ties by position either way.
            let ranked = match order {
                Order::MostRelevantFirst => descending(r),
                Order::LeastRelevantFirst => descending(&r.iter().map(|v| -v).collect::<Vec<_>>()),
            };
            let x = &x[i * t * d..(i + 1) * t * d];
            removal_scores(&graph, (x, [t, d]), &ranked, targets[i])
        })
        .collect()
}

/// The target's logit on `x` `[T, D]` with 0, 1, … of the `ranked` tokens zeroed: the copies
/// made 64 at a time, so memory stays bounded.
fn removal_scores(
    graph: &Graph,
    (x, [t, d]): (&[f32], [usize; 2]),
    ranked: &[usize],
    target: usize,
) -> Result<Vec<f64>> {
    let device = super::device_of(graph);
    let mut current = x.to_vec();
    let mut pending = vec![current.clone()];
    let mut out = Vec::with_capacity(t + 1);
    for (k, &token) in ranked.iter().enumerate() {
        current[token * d..(token + 1) * d].fill(0.0);
        pending.push(current.clone());
        if pending.len() == 64 || k + 1 == ranked.len() {
            let batch = Tensor::<3>::from_data(
                TensorData::new(pending.concat(), [pending.len(), t, d]),
                &device,
            );
            out.extend(target_scores(
                graph.try_forward(batch)?,
                target,
                Score::Logit,
            )?);
            pending.clear();
        }
    }
    Ok(out)
}

/// Finite values of the shapes `[N, T, D]` and `[N, T]`, a target per sample.
fn check((x, dims): (&[f32], [usize; 3]), relevance: &[f32], targets: &[usize]) -> Result<()> {
    let [n, t, d] = dims;
    if let Some(v) = x.iter().chain(relevance).find(|v| !v.is_finite()) {
        return Err(Error::InvalidMetric {
            reason: format!("the embeddings or relevance hold {v}; expected finite values"),
        });
    }
    if t == 0 || x.len() != n * t * d || relevance.len() != n * t || targets.len() != n {
        return Err(Error::InvalidMetric {
            reason: format!(
                "embeddings ({}), relevance per token ({}) and targets ({}) must fit [N, T, D] = {dims:?}",
                x.len(),
                relevance.len(),
                targets.len()
            ),
        });
    }
    Ok(())
}

/// The area between the LeRF and MoRF curves (trapezoids, unit steps): large for a faithful
/// explanation.
pub fn area_between(lerf: &[f64], morf: &[f64]) -> f64 {
    super::auc(lerf) - super::auc(morf)
}
