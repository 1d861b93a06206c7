//! Activations that exporters write as several nodes, found before translation so that each
//! becomes one activation node (relevance passes through it) instead of a product or a
//! selection the engine would have to route:
//! - `x · sigmoid(x)`: SiLU;
//! - `x · tanh(softplus(x))`: Mish (the TorchScript exporter's form);
//! - `where(x > t, x, softplus(x))`: PyTorch's softplus with its threshold `t` (the dynamo
//!   exporter's form);
//! - `Reshape(x, [N, G, -1])`, InstanceNormalization, `Reshape` back, `· γ`, `+ β`: group norm.

use std::collections::HashMap;

use onnx_ir::Node as OnnxNode;
use onnx_ir::node::clip::ClipInput;
use onnx_ir::node::reduce::ReduceAxes;

use super::params::{Constant, scalar};
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
    let only = sole_producer(nodes);
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

/// For a value's name, the node producing it when no other node reads it (a node a pattern
/// may fold away).
fn sole_producer<'a>(nodes: &[&'a OnnxNode]) -> impl Fn(&str) -> Option<&'a OnnxNode> {
    let producer: HashMap<String, &'a OnnxNode> = nodes
        .iter()
        .flat_map(|n| n.outputs().iter().map(move |o| (o.name.clone(), *n)))
        .collect();
    let mut readers: HashMap<String, usize> = HashMap::new();
    for input in nodes.iter().flat_map(|n| n.inputs()) {
        *readers.entry(input.name.clone()).or_default() += 1;
    }
    move |name: &str| {
        producer
            .get(name)
            .copied()
            .filter(|_| readers.get(name) == Some(&1))
    }
}

type Match<'a> = (&'a str, Activation, Vec<String>);

/// `x · sigmoid(x)` or `x · tanh(softplus(x))`, with `gate` the second factor.
fn self_gated<'a>(
    only: &dyn Fn(&str) -> Option<&'a OnnxNode>,
    x: &'a str,
    gate: &str,
) -> Option<Match<'a>> {
    match only(gate)? {
        OnnxNode::Sigmoid(s) if s.inputs[0].name == x => {
            Some((x, Activation::Silu, vec![s.name.clone()]))
        }
        OnnxNode::Tanh(t) => match only(&t.inputs[0].name)? {
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

/// Group norm as PyTorch's exporters write it: `Reshape(x, [N, G, -1])`, an
/// InstanceNormalization with scale 1 and bias 0 over the `G` groups, `Reshape` back, `· γ` and
/// `+ β` with per-channel constants (`[C]`) or one number each (`[1]`).
pub(super) struct GroupNormFound {
    pub last: String,
    pub x: String,
    pub groups: usize,
    pub epsilon: f64,
    pub gamma: Constant,
    pub beta: Constant,
    pub folded: Vec<String>,
}

/// Every group norm of `nodes` (see [`GroupNormFound`]); a folded node must have no other reader.
pub(super) fn find_group_norms(nodes: &[&OnnxNode]) -> Vec<GroupNormFound> {
    let only = sole_producer(nodes);
    let affine: Vec<GroupNormFound> = nodes
        .iter()
        .filter_map(|node| match node {
            OnnxNode::Add(add) => affine_group_norm(&only, add.name.as_str(), &add.inputs),
            _ => None,
        })
        .collect();
    // Without `· γ + β` (PyTorch's `affine=False`: the parser drops its `· 1 + 0`), the reshape
    // back ends the pattern.
    let plain: Vec<GroupNormFound> = nodes
        .iter()
        .filter_map(|node| match node {
            OnnxNode::Reshape(back) if !affine.iter().any(|f| f.folded.contains(&back.name)) => {
                let (one, zero) = (Constant::scalar(1.0), Constant::scalar(0.0));
                let mut core = normalized_groups(&only, back)?;
                core.folded.retain(|name| *name != back.name); // the node the norm replaces
                Some(core.found(back.name.clone(), one, zero))
            }
            _ => None,
        })
        .collect();
    affine.into_iter().chain(plain).collect()
}

/// The chain ending in the `Add` named `last` with these inputs, when it is a group norm with
/// `· γ + β`.
fn affine_group_norm<'a>(
    only: &dyn Fn(&str) -> Option<&'a OnnxNode>,
    last: &str,
    inputs: &[onnx_ir::ir::Argument],
) -> Option<GroupNormFound> {
    let (product, beta) = constant_operand(inputs)?;
    let OnnxNode::Mul(mul) = only(&product)? else {
        return None;
    };
    let (reshaped, gamma) = constant_operand(&mul.inputs)?;
    let OnnxNode::Reshape(back) = only(&reshaped)? else {
        return None;
    };
    let mut core = normalized_groups(only, back)?;
    // γ and β per channel, or one number for all (TorchScript's 1 and 0 without affine
    // parameters).
    let (gamma, beta) = (per_channel(gamma)?, per_channel(beta)?);
    core.folded.push(mul.name.clone());
    Some(core.found(last.to_string(), gamma, beta))
}

/// `Reshape(x, [N, G, -1])`, InstanceNormalization with scale 1 and bias 0, and the reshape
/// back (`back`) that restores `x`'s shape (with TorchScript's `Shape(x)` for its target).
struct NormalizedGroups {
    x: String,
    groups: usize,
    epsilon: f64,
    folded: Vec<String>,
}

impl NormalizedGroups {
    fn found(self, last: String, gamma: Constant, beta: Constant) -> GroupNormFound {
        GroupNormFound {
            last,
            x: self.x,
            groups: self.groups,
            epsilon: self.epsilon,
            gamma,
            beta,
            folded: self.folded,
        }
    }
}

/// The normalized groups ending in the reshape `back` (see [`NormalizedGroups`]).
fn normalized_groups<'a>(
    only: &dyn Fn(&str) -> Option<&'a OnnxNode>,
    back: &onnx_ir::node::reshape::ReshapeNode,
) -> Option<NormalizedGroups> {
    let OnnxNode::InstanceNormalization(norm) = only(&back.inputs[0].name)? else {
        return None;
    };
    let OnnxNode::Reshape(grouped) = only(&norm.inputs[0].name)? else {
        return None;
    };
    let (scale, bias) = (
        Constant::from_data(norm.inputs[1].value()?).ok()?,
        Constant::from_data(norm.inputs[2].value()?).ok()?,
    );
    let identity = scale.values.iter().all(|v| *v == 1.0) && bias.values.iter().all(|v| *v == 0.0);
    let groups = scale.values.len();
    let x = grouped.inputs[0].name.clone();
    let shape_of = back.inputs[1..]
        .iter()
        .filter_map(|a| match only(&a.name)? {
            OnnxNode::Shape(shape) if shape.inputs[0].name == x => Some(shape.name.clone()),
            _ => None,
        });
    let folded = [grouped.name.clone(), norm.name.clone(), back.name.clone()]
        .into_iter()
        .chain(shape_of)
        .collect();
    let pattern = identity
        && grouped_by(&grouped.outputs[0].ty, groups)
        && same_shape(&back.outputs[0].ty, &grouped.inputs[0].ty);
    pattern.then_some(NormalizedGroups {
        x,
        groups,
        epsilon: norm.config.epsilon,
        folded,
    })
}

/// A constant as one value per channel (`[C]`, from `[C, 1, 1]` or `[1, C, 1, 1]`), or one
/// number for every channel (`[1]`; the converter repeats it for the input's channels).
fn per_channel(c: Constant) -> Option<Constant> {
    match (&c.dims[..], c.values.len()) {
        (_, 1) | ([_, 1, 1] | [1, _, 1, 1], _) => Some(c.flat()),
        _ => None,
    }
}

/// Whether a value is `[N, G, K]` (`G` where its dims are known).
fn grouped_by(ty: &onnx_ir::ir::ArgType, groups: usize) -> bool {
    let onnx_ir::ir::ArgType::Tensor(t) = ty else {
        return false;
    };
    let g = t.static_shape.as_ref().and_then(|dims| *dims.get(1)?);
    t.rank == 3 && g.is_none_or(|g| g == groups)
}

/// The activation operand's name and the constant operand of a binary node, either order.
fn constant_operand(inputs: &[onnx_ir::ir::Argument]) -> Option<(String, Constant)> {
    let [a, b] = inputs else { return None };
    [(a, b), (b, a)].into_iter().find_map(|(x, c)| {
        let constant = Constant::from_data(c.value()?).ok()?;
        x.value().is_none().then(|| (x.name.clone(), constant))
    })
}

/// Whether two tensor types have the same rank and, where both are known, the same dims.
fn same_shape(a: &onnx_ir::ir::ArgType, b: &onnx_ir::ir::ArgType) -> bool {
    use onnx_ir::ir::ArgType;
    let (ArgType::Tensor(a), ArgType::Tensor(b)) = (a, b) else {
        return false;
    };
    let known = |shape: &Option<Vec<Option<usize>>>| shape.clone().unwrap_or_default();
    let dims_agree = known(&a.static_shape)
        .iter()
        .zip(&known(&b.static_shape))
        .all(|(x, y)| x.is_none() || y.is_none() || x == y);
    a.rank == b.rank && dims_agree
}

/// `F.normalize(x, dim=-1)` as the dynamo exporter writes it (Swin v2's cosine attention):
/// `Div(x, Expand(Clip(ReduceL2(y, axes = [-1], keepdims), min = ε), shape))`, with `y` the same
/// values as `x` (often computed a second time). A normalization found: its `Div`, the value, the value of its norm, ε, and the nodes of the
/// norm's chain.
pub(super) struct NormalizeFound {
    pub div: String,
    pub x: String,
    pub y: String,
    pub epsilon: f64,
    pub folded: Vec<String>,
}

/// Every such normalization of `nodes` (the chain's nodes read by nothing else).
pub(super) fn find_normalizations(nodes: &[&OnnxNode]) -> Vec<NormalizeFound> {
    let only = sole_producer(nodes);
    nodes
        .iter()
        .filter_map(|node| {
            let OnnxNode::Div(div) = node else {
                return None;
            };
            let mut folded = Vec::new();
            let mut d = only(&div.inputs[1].name)?;
            if let OnnxNode::Expand(e) = d {
                folded.push(e.name.clone());
                d = only(&e.inputs[0].name)?;
            }
            let mut epsilon = 0.0;
            if let OnnxNode::Clip(c) = d {
                let (Some(ClipInput::Static(min)), None) = (&c.config.min, &c.config.max) else {
                    return None;
                };
                epsilon = *min;
                folded.push(c.name.clone());
                d = only(&c.inputs[0].name)?;
            }
            let OnnxNode::ReduceL2(r) = d else {
                return None;
            };
            let last = matches!(&r.config.axes, ReduceAxes::Static(a) if a.len() == 1);
            (last && r.config.keepdims).then_some(())?;
            folded.push(r.name.clone());
            Some(NormalizeFound {
                div: div.name.clone(),
                x: div.inputs[0].name.clone(),
                y: r.inputs[0].name.clone(),
                epsilon,
                folded,
            })
        })
        .collect()
}
