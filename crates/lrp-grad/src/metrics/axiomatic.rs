//! Axiomatic checks: properties an explanation method has by construction or not.
//! - **Completeness** (conservation): the relevance sums to the score's difference between the
//!   input and a baseline — exact for LRP-0 through bias-free ReLU networks, approximate with
//!   ε, biases or flat rules; Quantus' `Completeness` compares with `==` (always false in
//!   floats), so we return both sides and leave the tolerance to the reader.
//! - **Input invariance** (Kindermans et al. 2019): shift every input value by a constant and
//!   undo it in the first layer's bias, so the model computes the same function; an
//!   invariant method explains both alike (gradient is, gradient × input is not).

use burn::module::Param;
use burn::tensor::Tensor;

use super::perturbation::{Baseline, Images, Score, scores};
use crate::Target;
use crate::error::{Error, Result};
use crate::explain::Explainer;
use crate::model::{AsGraph, Graph, Layer, Op};

/// Per sample: the relevance's sum and the target score's difference `f(x) − f(x̄)`, where
/// `x̄` replaces every input value by the baseline.
pub fn completeness(
    model: &impl AsGraph,
    images: Images<'_>,
    (baseline, score): (Baseline, Score),
) -> Result<Vec<(f64, f64)>> {
    images.check()?;
    (0..images.dims[0])
        .map(|i| {
            let (x, a) = images.sample(i);
            let flat = vec![baseline.value(x); x.len()];
            let s = scores(
                model,
                &[x.to_vec(), flat],
                images.dims,
                images.targets[i],
                score,
            )?;
            let sum: f64 = a.iter().copied().map(f64::from).sum();
            Ok((sum, s[0] - s[1]))
        })
        .collect()
}

/// Per sample, the largest difference between the explanation of `x` and that of `x + shift`
/// on the model whose first layers absorb the shift (same targets): 0 for an invariant method.
/// Quantus' `InputInvariance` counts a sample invariant when this is at most 1e-4.
///
/// The layers reading the input must be dense or conv layers; a zero-padded convolution
/// absorbs the shift only where its window lies inside the input, so its border outputs change.
pub fn input_invariance(
    graph: &Graph,
    explainer: &Explainer,
    x: Tensor<4>,
    shift: f32,
) -> Result<Vec<f64>> {
    let original = explainer.explain(graph, x.clone())?;
    let targets = original.targets.clone().unwrap_or_default();
    let shifted_model = absorb_shift(graph, shift)?;
    let fixed = explainer.clone().target(Target::PerSample(targets));
    let shifted = fixed.explain(&shifted_model, x.clone().add_scalar(shift))?;
    let n = x.dims()[0];
    let diff = (original.relevance - shifted.relevance)
        .abs()
        .reshape([n as i64, -1])
        .max_dim(1);
    let values = (diff.into_data().convert::<f32>().try_into_vec::<f32>()).map_err(|e| {
        Error::InvalidMetric {
            reason: format!("relevance: {e:?}"),
        }
    })?;
    Ok(values.into_iter().map(f64::from).collect())
}

/// `graph` with each layer that reads the input computing from `x + shift` what it computed
/// from `x`: its bias lowered by `shift ·` the sum of its weights per output.
fn absorb_shift(graph: &Graph, shift: f32) -> Result<Graph> {
    let mut nodes = graph.nodes().to_vec();
    for node in nodes.iter_mut().filter(|n| n.inputs.contains(&0)) {
        node.op = match &node.op {
            Op::Layer(Layer::Linear(l)) => {
                let mut l = l.clone();
                let sums = l.weight.val().sum_dim(0).reshape([-1]);
                l.bias = Some(lowered(l.bias.as_ref(), sums, shift));
                Op::Layer(Layer::Linear(l))
            }
            Op::Layer(Layer::Conv2d(c)) => {
                let mut c = c.clone();
                let out = c.weight.dims()[0] as i64;
                let sums = c.weight.val().reshape([out, -1]).sum_dim(1).reshape([-1]);
                c.bias = Some(lowered(c.bias.as_ref(), sums, shift));
                Op::Layer(Layer::Conv2d(c))
            }
            other => {
                return Err(Error::InvalidMetric {
                    reason: format!(
                        "input invariance shifts the input into the first layer's bias, but node `{}` ({}) reads the input",
                        node.name,
                        other.kind()
                    ),
                });
            }
        };
    }
    Ok(Graph::from_nodes(nodes))
}

/// `bias − shift · weight_sums` (a missing bias counts as zeros).
fn lowered(
    bias: Option<&Param<Tensor<1>>>,
    weight_sums: Tensor<1>,
    shift: f32,
) -> Param<Tensor<1>> {
    let old = match bias {
        Some(b) => b.val(),
        None => weight_sums.zeros_like(),
    };
    Param::from_tensor(old - weight_sums.mul_scalar(shift))
}
