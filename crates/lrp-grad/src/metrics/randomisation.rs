//! Sanity checks by randomisation: an explanation that does not change when the model's
//! parameters are replaced by random ones (Adebayo et al. 2018, MPRT), or when another class
//! is explained (Sixt et al. 2020, the random-logit test), cannot be explaining the model.
//! MPRT replaces the dense and conv layers' weights and biases — cascading from the top layer
//! down, or one layer at a time — and compares each explanation with the original one, per
//! sample, by a [`Similarity`].

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::similarity::Similarity;
use crate::Target;
use crate::error::{Error, Result};
use crate::explain::Explainer;
use crate::model::{Graph, Layer, Op};

/// Which layers each MPRT step randomises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOrder {
    /// Step k randomises the top k layers (Quantus' `"top_down"`).
    Cascading,
    /// Step k randomises the k-th layer from the top alone (Quantus' `"independent"`).
    Independent,
}

/// A copy of `graph` whose last `count` dense and conv layers (in topological order) have
/// weights and biases drawn from `U(−k, k)`, `k = 1/√fan_in` (PyTorch's default initialisation),
/// seeded. The draws are made on the host (`StdRng`), so every backend and device randomises
/// alike. Returns the names of the layers randomised.
pub fn randomise_top_layers(graph: &Graph, count: usize, seed: u64) -> (Graph, Vec<String>) {
    randomise(graph, |rank| rank < count, seed)
}

/// A copy of `graph` whose dense and conv layers of the chosen ranks (0 = the last in
/// topological order) are randomised as [`randomise_top_layers`] does; their names, top first.
fn randomise(graph: &Graph, chosen: impl Fn(usize) -> bool, seed: u64) -> (Graph, Vec<String>) {
    let mut nodes = graph.nodes().to_vec();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut names = Vec::new();
    let mut rank = 0;
    for node in nodes.iter_mut().rev() {
        if !matches!(node.op, Op::Layer(Layer::Linear(_) | Layer::Conv2d(_))) {
            continue;
        }
        if chosen(rank) {
            node.op = random_layer(&node.op, &mut rng);
            names.push(node.name.clone());
        }
        rank += 1;
    }
    (Graph::from_nodes(nodes), names)
}

/// A dense or conv layer with fresh weights; any other operation as it is.
fn random_layer(op: &Op, rng: &mut StdRng) -> Op {
    match op {
        Op::Layer(Layer::Linear(l)) => Op::Layer(Layer::Linear(random_linear(l, rng))),
        Op::Layer(Layer::Conv2d(c)) => Op::Layer(Layer::Conv2d(random_conv(c, rng))),
        other => other.clone(),
    }
}

/// A tensor like `like` with values from `U(−k, k)`, `k = 1/√fan_in`.
fn uniform<const D: usize>(like: &Tensor<D>, fan_in: usize, rng: &mut StdRng) -> Tensor<D> {
    let k = 1.0 / (fan_in.max(1) as f32).sqrt();
    let values: Vec<f32> = (0..like.shape().num_elements())
        .map(|_| rng.random_range(-k..k))
        .collect();
    Tensor::from_data(TensorData::new(values, like.dims()), &like.device())
}

fn random_linear(l: &Linear, rng: &mut StdRng) -> Linear {
    let fan_in = l.weight.dims()[0];
    let weight = Param::from_tensor(uniform(&l.weight.val(), fan_in, rng));
    let bias = (l.bias.as_ref()).map(|b| Param::from_tensor(uniform(&b.val(), fan_in, rng)));
    Linear { weight, bias }
}

fn random_conv(c: &Conv2d, rng: &mut StdRng) -> Conv2d {
    let [_, per_group, kh, kw] = c.weight.dims();
    let fan_in = per_group * kh * kw;
    let mut conv = c.clone();
    conv.weight = Param::from_tensor(uniform(&c.weight.val(), fan_in, rng));
    conv.bias = (c.bias.as_ref()).map(|b| Param::from_tensor(uniform(&b.val(), fan_in, rng)));
    conv
}

/// MPRT: per step (one per dense or conv layer, top first), the layer's name and each
/// sample's similarity between the magnitudes of its explanation on the randomised model and
/// on the original one (Quantus' default `abs=True`). The explainer's targets hold
/// throughout; by default each sample's class on the original model.
pub fn mprt(
    graph: &Graph,
    explainer: &Explainer,
    x: Tensor<4>,
    (order, similarity, seed): (LayerOrder, Similarity, u64),
) -> Result<Vec<(String, Vec<f64>)>> {
    let original = explainer.explain(graph, x.clone())?;
    let targets = original.targets.clone().unwrap_or_default();
    // Magnitudes, as Quantus compares them (its `abs=True`).
    let reference = floats(original.relevance.abs())?;
    let layers = (graph.nodes().iter())
        .filter(|node| matches!(node.op, Op::Layer(Layer::Linear(_) | Layer::Conv2d(_))))
        .count();
    if layers == 0 {
        return Err(Error::InvalidMetric {
            reason: "MPRT randomises dense and conv layers; the model has none".into(),
        });
    }
    let fixed = explainer.clone().target(Target::PerSample(targets));
    (0..layers)
        .map(|step| {
            let seed = seed + step as u64 + 1;
            let (randomised, names) = match order {
                LayerOrder::Cascading => randomise(graph, |rank| rank <= step, seed),
                LayerOrder::Independent => randomise(graph, |rank| rank == step, seed),
            };
            let r = floats(fixed.explain(&randomised, x.clone())?.relevance.abs())?;
            let name = names.last().cloned().unwrap_or_default();
            Ok((name, similarities(&reference, &r, x.dims(), similarity)?))
        })
        .collect()
}

/// The random-logit test: each sample's explanation for its target against its explanation
/// for another class drawn uniformly (seeded) — a class-sensitive method scores low.
pub fn random_logit(
    graph: &Graph,
    explainer: &Explainer,
    x: Tensor<4>,
    (similarity, seed): (Similarity, u64),
) -> Result<Vec<f64>> {
    let original = explainer.explain(graph, x.clone())?;
    let targets = original.targets.clone().unwrap_or_default();
    let classes = original.output.dims()[1];
    if classes < 2 {
        return Err(Error::InvalidMetric {
            reason: format!(
                "the random-logit test needs 2 or more classes; the model has {classes}"
            ),
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let others: Vec<usize> = (targets.iter())
        .map(|&t| (t + rng.random_range(1..classes)) % classes)
        .collect();
    let reference = floats(original.relevance)?;
    let other = explainer.clone().target(Target::PerSample(others));
    let r = floats(other.explain(graph, x.clone())?.relevance)?;
    similarities(&reference, &r, x.dims(), similarity)
}

/// Per sample, the similarity of `a` and `b` (`[N, C, H, W]` each).
pub fn similarities(
    a: &[f32],
    b: &[f32],
    [n, c, h, w]: [usize; 4],
    similarity: Similarity,
) -> Result<Vec<f64>> {
    let per = c * h * w;
    (0..n)
        .map(|i| {
            similarity.of(
                &a[i * per..(i + 1) * per],
                &b[i * per..(i + 1) * per],
                [c, h, w],
            )
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
