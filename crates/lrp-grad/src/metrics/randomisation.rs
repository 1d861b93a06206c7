//! Sanity checks by randomisation (Adebayo et al. 2018): an explanation that does not change
//! when the model's parameters are replaced by random ones cannot be explaining the model.
//! Model parameter randomisation (MPRT) replaces the dense and conv layers' weights and biases,
//! cascading from the top layer down, and compares each explanation with the original one by
//! Spearman's rank correlation (per sample, over all its values).

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Distribution, Tensor};

use crate::error::{Error, Result};
use crate::explain::Explainer;
use crate::model::{Graph, Layer, Op};

/// A copy of `graph` whose last `count` dense and conv layers (in topological order) have
/// weights and biases drawn from `U(−k, k)`, `k = 1/√fan_in` (PyTorch's default initialisation),
/// seeded. Returns the names of the layers randomised.
pub fn randomise_top_layers(graph: &Graph, count: usize, seed: u64) -> (Graph, Vec<String>) {
    let mut nodes = graph.nodes().to_vec();
    let device = burn::tensor::Device::default();
    device.seed(seed);
    let mut names = Vec::new();
    for node in nodes.iter_mut().rev() {
        if names.len() == count {
            break;
        }
        let randomised = match &node.op {
            Op::Layer(Layer::Linear(l)) => Some(Layer::Linear(random_linear(l))),
            Op::Layer(Layer::Conv2d(c)) => Some(Layer::Conv2d(random_conv(c))),
            _ => None,
        };
        if let Some(layer) = randomised {
            node.op = Op::Layer(layer);
            names.push(node.name.clone());
        }
    }
    (Graph::from_nodes(nodes), names)
}

fn uniform<const D: usize>(like: &Tensor<D>, fan_in: usize) -> Tensor<D> {
    let k = 1.0 / (fan_in.max(1) as f64).sqrt();
    Tensor::random(like.dims(), Distribution::Uniform(-k, k), &like.device())
}

fn random_linear(l: &Linear) -> Linear {
    let fan_in = l.weight.dims()[0];
    Linear {
        weight: Param::from_tensor(uniform(&l.weight.val(), fan_in)),
        bias: l
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(uniform(&b.val(), fan_in))),
    }
}

fn random_conv(c: &Conv2d) -> Conv2d {
    let [_, per_group, kh, kw] = c.weight.dims();
    let fan_in = per_group * kh * kw;
    let mut conv = c.clone();
    conv.weight = Param::from_tensor(uniform(&c.weight.val(), fan_in));
    conv.bias = c
        .bias
        .as_ref()
        .map(|b| Param::from_tensor(uniform(&b.val(), fan_in)));
    conv
}

/// Spearman's rank correlation (average ranks for ties; 0 where either series is constant).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    super::pearson(&ra, &rb)
}

/// Ranks from 1, ties sharing their average rank.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && v[order[end + 1]] == v[order[start]] {
            end += 1;
        }
        let rank = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            ranks[i] = rank;
        }
        start = end + 1;
    }
    ranks
}

/// MPRT, cascading: for 1, 2, … of the top dense and conv layers randomised, the last one's
/// name and the mean Spearman correlation between each sample's explanation and its original
/// one (the explainer's targets; its default target is each sample's class on the original
/// model, kept for the randomised ones).
pub fn mprt(
    graph: &Graph,
    explainer: &Explainer,
    x: Tensor<4>,
    seed: u64,
) -> Result<Vec<(String, f64)>> {
    let original = explainer.explain(graph, x.clone())?;
    let targets = original.targets.clone().unwrap_or_default();
    let reference = floats(original.relevance)?;
    let n = x.dims()[0];
    let per = reference.len() / n.max(1);
    let layers = (graph.nodes().iter())
        .filter(|node| matches!(node.op, Op::Layer(Layer::Linear(_) | Layer::Conv2d(_))))
        .count();
    let fixed = explainer.clone().target(crate::Target::PerSample(targets));
    (1..=layers)
        .map(|count| {
            let (randomised, names) = randomise_top_layers(graph, count, seed + count as u64);
            let r = floats(fixed.explain(&randomised, x.clone())?.relevance)?;
            let similarity = (0..n)
                .map(|i| {
                    spearman(
                        &reference[i * per..(i + 1) * per],
                        &r[i * per..(i + 1) * per],
                    )
                })
                .sum::<f64>()
                / n as f64;
            Ok((names.last().cloned().unwrap_or_default(), similarity))
        })
        .collect()
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    (t.into_data().convert::<f32>())
        .try_into_vec::<f32>()
        .map_err(|e| Error::InvalidMetric {
            reason: format!("relevance: {e:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_ranks_with_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[9.0, 4.0, 1.0]) + 1.0).abs() < 1e-12);
    }
}
