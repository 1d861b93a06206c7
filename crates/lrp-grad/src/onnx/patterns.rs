//! Activations that exporters write as several nodes, found before translation so that each
//! becomes one activation node (relevance passes through it) instead of a product or a
//! selection the engine would have to route:
//! - `x · sigmoid(x)`: SiLU;
//! - `x · tanh(softplus(x))`: Mish (the TorchScript exporter's form);
//! - `where(x > t, x, softplus(x))`: PyTorch's softplus with its threshold `t` (the dynamo
//!   exporter's form).

use std::collections::HashMap;

use onnx_ir::Node as OnnxNode;

use super::params::scalar;
use crate::model::Activation;

/// An activation found: the node that ends it, its input's name, the function, and the other
/// nodes it folds.
pub(super) struct Found {
    pub last: String,
    pub x: String,
    pub activation: Activation,
    pub folded: Vec<String>,
}

/// Every such activation of `nodes`. A folded node must have no other reader.
pub(super) fn find_activations(nodes: &[&OnnxNode]) -> Vec<Found> {
    let producer: HashMap<&str, &OnnxNode> = nodes
        .iter()
        .flat_map(|n| n.outputs().iter().map(move |o| (o.name.as_str(), *n)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for input in nodes.iter().flat_map(|n| n.inputs()) {
        *readers.entry(input.name.as_str()).or_default() += 1;
    }
    // The node producing `name`, when `name` has no other reader.
    let only = |name: &str| {
        producer
            .get(name)
            .copied()
            .filter(|_| readers.get(name) == Some(&1))
    };
    nodes
        .iter()
        .filter_map(|node| {
            match node {
                OnnxNode::Mul(mul) => {
                    let [a, b] = [mul.inputs[0].name.as_str(), mul.inputs[1].name.as_str()];
                    [(a, b), (b, a)]
                        .into_iter()
                        .find_map(|(x, gate)| self_gated(&only, x, gate))
                }
                OnnxNode::Where(select) => softplus_threshold(&only, select.inputs.as_slice()),
                _ => None,
            }
            .map(|(x, activation, folded)| Found {
                last: node.name().to_string(),
                x: x.to_string(),
                activation,
                folded,
            })
        })
        .collect()
}

type Match<'a> = (&'a str, Activation, Vec<String>);

/// `x · sigmoid(x)` or `x · tanh(softplus(x))`, with `gate` the second factor.
fn self_gated<'a>(
    only: &dyn Fn(&str) -> Option<&'a OnnxNode>,
    x: &'a str,
    gate: &str,
) -> Option<Match<'a>> {
    let input = |n: &OnnxNode| n.inputs()[0].name.clone();
    match only(gate)? {
        OnnxNode::Sigmoid(s) if s.inputs[0].name == x => {
            Some((x, Activation::Silu, vec![s.name.clone()]))
        }
        OnnxNode::Tanh(t) => match only(&input(only(gate)?))? {
            OnnxNode::Softplus(sp) if sp.inputs[0].name == x => {
                Some((x, Activation::Mish, vec![t.name.clone(), sp.name.clone()]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `where(x > t, x, softplus(x))` with a scalar constant `t`.
fn softplus_threshold<'a>(
    only: &dyn Fn(&str) -> Option<&'a OnnxNode>,
    inputs: &'a [onnx_ir::ir::Argument],
) -> Option<Match<'a>> {
    let [condition, x, otherwise] = inputs else {
        return None;
    };
    let (OnnxNode::Greater(greater), OnnxNode::Softplus(softplus)) =
        (only(&condition.name)?, only(&otherwise.name)?)
    else {
        return None;
    };
    let threshold = scalar(&greater.inputs[1])?;
    let same_x = greater.inputs[0].name == x.name && softplus.inputs[0].name == x.name;
    same_x.then(|| {
        let activation = Activation::Softplus {
            beta: 1.0,
            threshold: threshold as f64,
        };
        let folded = vec![greater.name.clone(), softplus.name.clone()];
        (x.name.as_str(), activation, folded)
    })
}
