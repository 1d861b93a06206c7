//! Faithfulness for token inputs, as AttnLRP evaluates it (Achtibat et al. 2024): remove the
//! tokens one by one — their embeddings set to 0 — most relevant first (MoRF) or least
//! relevant first (LeRF), and record the target's score; a faithful explanation makes the MoRF
//! curve fall fast and the LeRF curve stay, so the area between them is large.

use burn::tensor::{Tensor, TensorData};

use crate::error::{Error, Result};
use crate::model::AsGraph;

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
            let mut ranked: Vec<usize> = (0..t).collect();
            ranked.sort_by(|&a, &b| {
                let by = r[b].partial_cmp(&r[a]).unwrap_or(std::cmp::Ordering::Equal);
                match order {
                    Order::MostRelevantFirst => by,
                    Order::LeastRelevantFirst => by.reverse(),
                }
            });
            let mut current = x[i * t * d..(i + 1) * t * d].to_vec();
            let mut copies = vec![current.clone()];
            for &token in &ranked {
                current[token * d..(token + 1) * d].fill(0.0);
                copies.push(current.clone());
            }
            let batch = Tensor::<3>::from_data(
                TensorData::new(copies.concat(), [t + 1, t, d]),
                &burn::tensor::Device::default(),
            );
            let logits = graph.try_forward(batch)?;
            let classes = logits.dims()[1];
            if targets[i] >= classes {
                return Err(Error::InvalidMetric {
                    reason: format!("target {} of a model with {classes} classes", targets[i]),
                });
            }
            let flat = (logits.into_data().convert::<f32>())
                .try_into_vec::<f32>()
                .map_err(|e| Error::InvalidMetric {
                    reason: format!("scores: {e:?}"),
                })?;
            Ok(flat
                .chunks(classes)
                .map(|row| f64::from(row[targets[i]]))
                .collect())
        })
        .collect()
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
