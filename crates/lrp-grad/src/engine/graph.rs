//! LRP over a graph: the layer-wise walk (reverse topological order, relevance summed over a
//! value's readers) and the one pass (one forward and one backward pass through every node
//! whose rule allows it; autodiff sums fan-out and splits concatenations by itself).
//!
//! Both strategies see the model's own activations bit for bit, so max pooling routes
//! relevance to the winners of the model's forward pass in both.

use burn::tensor::Tensor;

use super::attention::{
    one_pass_identity, one_pass_layer_norm, one_pass_mean, one_pass_product, one_pass_softmax,
    one_pass_uniform, propagate_layer_norm, propagate_mean, propagate_product, propagate_softmax,
};
use super::step::{AttentionStep, Step};
use super::{
    one_pass_add, one_pass_forward, one_pass_pass, propagate, propagate_add, route_by_gradient,
};
use crate::model::lrp::Route;
use crate::model::{FeatureShape, Graph, Operation};

/// A canonical graph resolved against a composite: one step per node, and each value's
/// per-sample shape.
pub(crate) struct LrpGraph<'a> {
    pub graph: &'a Graph,
    pub steps: Vec<Step<'a>>,
    pub shapes: &'a [FeatureShape],
    /// Values no relevance can reach: a blocked node's output, and what only such values
    /// feed. A product gives such a factor no relevance share.
    pub constant: Vec<bool>,
}

/// Which values are constants for the explanation (see [`LrpGraph::constant`]).
pub(crate) fn constant_values(graph: &Graph, steps: &[Step<'_>]) -> Vec<bool> {
    let mut constant = vec![false];
    for (node, step) in graph.nodes().iter().zip(steps) {
        let blocked = matches!(step, Step::Attention(AttentionStep::Block));
        constant.push(blocked || node.inputs.iter().all(|&v| constant[v]));
    }
    constant
}

/// Relevance per value (index 0: the graph input), summed over the value's readers.
struct Relevances(Vec<Option<Tensor<4>>>);

impl Relevances {
    fn add(&mut self, value: usize, r: Tensor<4>) {
        self.0[value] = Some(match self.0[value].take() {
            Some(acc) => acc + r,
            None => r,
        });
    }
}

impl LrpGraph<'_> {
    /// The layer-wise walk over the model's `values` (input first, output last), from the
    /// output relevance `r_out` (`[N, classes, 1, 1]`). Returns the relevance of every value;
    /// a value no relevance reaches (a gate's branch) gets zeros.
    pub fn layer_wise(&self, values: &[Tensor<4>], r_out: Tensor<4>) -> Vec<Tensor<4>> {
        let nodes = self.graph.nodes();
        let mut relevance = Relevances(vec![None; values.len()]);
        relevance.add(nodes.len(), r_out);
        let nonnegative = nonnegative_values(self.graph, &values[0]);
        self.walk_back(0..nodes.len(), values, &mut relevance, &nonnegative);
        relevance
            .0
            .into_iter()
            .zip(values)
            .map(|(r, v)| r.unwrap_or_else(|| v.zeros_like()))
            .collect()
    }

    /// The layer-wise step of `nodes` (in reverse), each from its output's relevance.
    fn walk_back(
        &self,
        nodes: impl DoubleEndedIterator<Item = usize>,
        values: &[Tensor<4>],
        relevance: &mut Relevances,
        nonnegative: &[bool],
    ) {
        for k in nodes.rev() {
            let Some(r) = relevance.0[k + 1].clone() else {
                continue;
            };
            for (value, r_in) in self.step(k, values, r, nonnegative) {
                relevance.add(value, r_in);
            }
        }
    }

    /// The layer-wise step of node `k`: the relevance of each value it reads.
    fn step(
        &self,
        k: usize,
        values: &[Tensor<4>],
        r: Tensor<4>,
        nonnegative: &[bool],
    ) -> Vec<(usize, Tensor<4>)> {
        let node = &self.graph.nodes()[k];
        let inputs = &node.inputs;
        let a = &values[inputs[0]];
        let z = &values[k + 1];
        match &self.steps[k] {
            Step::Pass(_) => vec![(inputs[0], r.reshape(a.dims()))],
            Step::WinnerTakesAll(layer) => vec![(inputs[0], route_by_gradient(*layer, a, &r))],
            Step::Rule(step) => {
                let r_in = propagate(
                    step.rule_layer,
                    &step.groups,
                    a,
                    z,
                    &r,
                    step.bounds.as_ref(),
                    nonnegative[inputs[0]],
                );
                vec![(inputs[0], r_in)]
            }
            Step::Add { stabilizer, .. } => {
                // A learned tensor added (positional embedding) keeps its share.
                let xs: Vec<&Tensor<4>> = inputs.iter().map(|&v| &values[v]).collect();
                let r_in = propagate_add(&xs, z, &r, *stabilizer);
                inputs.iter().copied().zip(r_in).collect()
            }
            Step::Route(routing) => self.route(k, routing, values, r),
            Step::Attention(step) => self.attention_step(k, step, values, r),
            Step::Custom(operation) => vec![(inputs[0], custom_step(*operation, a, z, &r))],
        }
    }

    /// The layer-wise step of a routing node: relevance moved back by position.
    fn route(
        &self,
        k: usize,
        route: &Route<'_>,
        values: &[Tensor<4>],
        r: Tensor<4>,
    ) -> Vec<(usize, Tensor<4>)> {
        let inputs = &self.graph.nodes()[k].inputs;
        let a = &values[inputs[0]];
        // The route's axes are per sample; the values' internal layout places them.
        let internal = |axis: &usize| self.shapes[inputs[0]].internal_axis(*axis);
        match route {
            Route::Concat(axis) => {
                let axis = &internal(axis);
                let mut start = 0;
                inputs
                    .iter()
                    .map(|&v| {
                        let length = values[v].dims()[*axis];
                        let part = r.clone().narrow(*axis, start, length);
                        start += length;
                        (v, part)
                    })
                    .collect()
            }
            // The gate is a constant: all relevance stays with the gated value.
            Route::Gate | Route::Scale => vec![(inputs[0], r)],
            Route::Prepend { axis, skip } => {
                let axis = &internal(axis);
                let length = a.dims()[*axis];
                vec![(inputs[0], r.narrow(*axis, *skip, length))]
            }
            Route::Slice { axis, start } => {
                let axis = &internal(axis);
                let mut ranges: Vec<std::ops::Range<usize>> =
                    a.dims().iter().map(|&d| 0..d).collect();
                ranges[*axis] = *start..*start + r.dims()[*axis];
                let ranges: [std::ops::Range<usize>; 4] = ranges.try_into().expect("rank 4");
                vec![(inputs[0], a.zeros_like().slice_assign(ranges, r))]
            }
            Route::Reshape => vec![(inputs[0], r.reshape(a.dims()))],
            Route::Permute(permute) => {
                vec![(inputs[0], permute.route_back(r, self.shapes[inputs[0]]))]
            }
        }
    }

    /// The layer-wise step of an attention operation (see [`super::attention`]).
    fn attention_step(
        &self,
        k: usize,
        step: &AttentionStep<'_>,
        values: &[Tensor<4>],
        r: Tensor<4>,
    ) -> Vec<(usize, Tensor<4>)> {
        let inputs = &self.graph.nodes()[k].inputs;
        let (a, z) = (&values[inputs[0]], &values[k + 1]);
        match step {
            AttentionStep::Product { stabilizer } => {
                let factors = (a, &values[inputs[1]]);
                let constant = [self.constant[inputs[0]], self.constant[inputs[1]]];
                let [r_a, r_b] = propagate_product(factors, z, &r, *stabilizer, constant);
                [(inputs[0], r_a), (inputs[1], r_b)]
                    .into_iter()
                    .filter_map(|(v, r)| r.map(|r| (v, r)))
                    .collect()
            }
            AttentionStep::Uniform => {
                let live: Vec<usize> = inputs
                    .iter()
                    .copied()
                    .filter(|&v| !self.constant[v])
                    .collect();
                let share = r.div_scalar(live.len().max(1) as f64);
                live.into_iter().map(|v| (v, share.clone())).collect()
            }
            AttentionStep::Softmax { axis } => {
                vec![(inputs[0], propagate_softmax(a, z, &r, *axis))]
            }
            AttentionStep::Block => Vec::new(),
            AttentionStep::Mean { axis, stabilizer } => {
                vec![(inputs[0], propagate_mean(a, &r, *axis, *stabilizer))]
            }
            AttentionStep::LayerNorm {
                norm,
                stabilizer: Some(stabilizer),
            } => {
                let shape = self.shapes[inputs[0]];
                let r_in = propagate_layer_norm(norm, (a, z), &r, *stabilizer, shape);
                vec![(inputs[0], r_in)]
            }
            AttentionStep::Identity | AttentionStep::LayerNorm { .. } => vec![(inputs[0], r)],
        }
    }

    /// Nodes that must take the layer-wise step (their rule has no one-pass form) and every
    /// node before them: the rest, closed under readers, runs as the one pass.
    fn layer_wise_nodes(&self) -> Vec<bool> {
        let nodes = self.graph.nodes();
        let mut marked: Vec<bool> = self
            .steps
            .iter()
            .map(|step| !step.one_pass_able())
            .collect();
        for k in (0..nodes.len()).rev() {
            if marked[k] {
                for &v in &nodes[k].inputs {
                    if v > 0 {
                        marked[v - 1] = true;
                    }
                }
            }
        }
        marked
    }

    /// LRP with the one pass where it applies (see the module docs). `finish` turns the model
    /// output into the backward seed `g` with `R_out = output ⊙ g` (or `None` where no such
    /// seed exists). Returns the input relevance and the output, or `None` when no node can
    /// take part in the one pass.
    pub fn one_pass<E>(
        &self,
        x: Tensor<4>,
        seed: impl FnOnce(&Tensor<4>) -> Result<Option<Tensor<4>>, E>,
    ) -> Result<Option<(Tensor<4>, Tensor<4>)>, E> {
        let nodes = self.graph.nodes();
        let layer_wise = self.layer_wise_nodes();
        if layer_wise.last().is_none_or(|&lw| lw) {
            return Ok(None);
        }
        let nonnegative = nonnegative_values(self.graph, &x);
        // Plain values of the layer-wise part; autodiff leaves where the one pass reads them.
        let mut plain: Vec<Option<Tensor<4>>> = vec![None; nodes.len() + 1];
        plain[0] = Some(x);
        for (k, node) in nodes.iter().enumerate().filter(|(k, _)| layer_wise[*k]) {
            let inputs = node
                .inputs
                .iter()
                .map(|&v| plain[v].clone().expect("computed"))
                .collect();
            plain[k + 1] = Some(node.op.forward(inputs, self.shapes[node.inputs[0]]));
        }
        let mut graph_values: Vec<Option<Tensor<4>>> = plain
            .iter()
            .map(|p| p.as_ref().map(|t| t.clone().autodiff().require_grad()))
            .collect();
        let leaves = graph_values.clone();
        self.one_pass_values(&mut graph_values, &layer_wise, &nonnegative);
        let y = graph_values
            .pop()
            .flatten()
            .expect("the output node takes part in the one pass");
        drop(graph_values);
        let output = y.clone().without_autodiff();
        let Some(g) = seed(&output)? else {
            return Ok(None);
        };
        let gradients = (y * g).sum().backward();
        let mut relevance = Relevances(vec![None; nodes.len() + 1]);
        for (v, leaf) in leaves.iter().enumerate() {
            if let (Some(leaf), Some(value)) = (leaf, &plain[v])
                && let Some(grad) = leaf.grad(&gradients)
            {
                relevance.add(v, value.clone() * grad);
            }
        }
        let input = plain[0].clone().expect("the input");
        self.finish_layer_wise(plain, &layer_wise, &mut relevance, &nonnegative);
        let r = relevance
            .0
            .swap_remove(0)
            .unwrap_or_else(|| input.zeros_like());
        Ok(Some((r, output)))
    }

    /// The layer-wise part's walk back, after the one pass, over its own `plain` values.
    fn finish_layer_wise(
        &self,
        plain: Vec<Option<Tensor<4>>>,
        layer_wise: &[bool],
        relevance: &mut Relevances,
        nonnegative: &[bool],
    ) {
        let lw_nodes: Vec<usize> = (0..layer_wise.len()).filter(|k| layer_wise[*k]).collect();
        if lw_nodes.is_empty() {
            return;
        }
        // The layer-wise part reads only its own values (all before the one pass); one shared
        // placeholder stands for the rest (a fresh zero tensor per value cost a decoder 700
        // fills of its logits).
        let placeholder = plain[0].clone().expect("the input").zeros_like();
        let values: Vec<Tensor<4>> = plain
            .into_iter()
            .map(|p| p.unwrap_or_else(|| placeholder.clone()))
            .collect();
        self.walk_back(lw_nodes.into_iter(), &values, relevance, nonnegative);
    }

    /// The one-pass nodes' values, in order, on autodiff inputs (`values` holds the layer-wise
    /// part's leaves). A value whose last reader has run is released at once: the backward pass
    /// keeps what it needs itself, and holding every value to the end of the forward pass
    /// doubled the peak memory of a transformer.
    fn one_pass_values(
        &self,
        values: &mut [Option<Tensor<4>>],
        layer_wise: &[bool],
        nonnegative: &[bool],
    ) {
        let nodes = self.graph.nodes();
        let last_reader = last_readers(nodes, layer_wise);
        for (k, node) in nodes.iter().enumerate().filter(|(k, _)| !layer_wise[*k]) {
            let inputs: Vec<Tensor<4>> = node
                .inputs
                .iter()
                .map(|&v| values[v].clone().expect("computed before its readers"))
                .collect();
            values[k + 1] = Some(self.one_pass_node(k, inputs, nonnegative[node.inputs[0]]));
            for &v in &node.inputs {
                if last_reader[v] == Some(k) {
                    values[v] = None;
                }
            }
        }
    }

    /// Node `k` in its one-pass form, on autodiff inputs.
    fn one_pass_node(&self, k: usize, mut inputs: Vec<Tensor<4>>, nonnegative: bool) -> Tensor<4> {
        let node = &self.graph.nodes()[k];
        let shape = self.shapes[node.inputs[0]];
        match &self.steps[k] {
            Step::Rule(step) => one_pass_forward(step, inputs.remove(0), nonnegative),
            Step::Pass(layer) => one_pass_pass(layer, inputs.remove(0), shape),
            Step::Add {
                stabilizer,
                constant,
            } => {
                // A learned tensor is a constant input of the sum: no gradient enters it.
                inputs.extend(constant.cloned());
                one_pass_add(inputs, *stabilizer)
            }
            Step::Attention(step) => self.one_pass_attention(k, step, inputs),
            Step::Custom(operation) => operation.lrp_forward(inputs.remove(0)),
            Step::Route(Route::Gate) => {
                // The gate (input 1) is a constant: no gradient, so no relevance, enters its
                // branch.
                let x = inputs.remove(0);
                let gate = inputs.remove(0).without_autodiff();
                node.op.forward(vec![x, gate], shape)
            }
            Step::WinnerTakesAll(_) | Step::Route(_) => node.op.forward(inputs, shape),
        }
    }

    /// Attention node `k` in its one-pass form (see [`super::attention`]).
    fn one_pass_attention(
        &self,
        k: usize,
        step: &AttentionStep<'_>,
        mut inputs: Vec<Tensor<4>>,
    ) -> Tensor<4> {
        let node = &self.graph.nodes()[k];
        let shape = self.shapes[node.inputs[0]];
        let constant = || {
            let c = |i: usize| node.inputs.get(i).is_some_and(|&v| self.constant[v]);
            [c(0), c(1)]
        };
        // The identity rule for any map of one shape: relevance through the operation's own
        // factor where it names one, else through y/x.
        let identity = |x: Tensor<4>| {
            let plain = x.clone().without_autodiff();
            if let Some(factor) = node.op.operator().identity_factor(plain.clone(), shape) {
                return x * factor;
            }
            let y = node.op.forward(vec![plain], shape);
            one_pass_identity(x, y)
        };
        match step {
            AttentionStep::Product { stabilizer } => {
                let b = inputs.pop().expect("two inputs");
                one_pass_product(inputs.remove(0), b, *stabilizer, constant())
            }
            AttentionStep::Uniform => {
                let b = inputs.pop().expect("two inputs");
                one_pass_uniform(inputs.remove(0), b, constant())
            }
            AttentionStep::Softmax { axis } => one_pass_softmax(inputs.remove(0), *axis),
            AttentionStep::Block => node
                .op
                .forward(vec![inputs.remove(0).without_autodiff()], shape),
            AttentionStep::Identity => identity(inputs.remove(0)),
            AttentionStep::Mean { axis, stabilizer } => {
                let n = inputs[0].dims()[0];
                let out = self.shapes[k + 1].batched(n);
                one_pass_mean(inputs.remove(0), *axis, *stabilizer, out)
            }
            AttentionStep::LayerNorm { norm, stabilizer } => match stabilizer {
                Some(stabilizer) => one_pass_layer_norm(norm, inputs.remove(0), *stabilizer, shape),
                None => identity(inputs.remove(0)),
            },
        }
    }
}

/// Which values are non-negative: the input if all its values are (one number read back),
/// every output of ReLU, ReLU6, sigmoid and hard sigmoid, and what pooling, reshaping, sums,
/// concatenations and gates make of non-negative values.
/// For each value, the last node of the one pass that reads it (`None`: none does, or it is read
/// only by layer-wise nodes).
fn last_readers(nodes: &[crate::model::Node], layer_wise: &[bool]) -> Vec<Option<usize>> {
    let mut last = vec![None; nodes.len() + 1];
    for (k, node) in nodes.iter().enumerate().filter(|(k, _)| !layer_wise[*k]) {
        for &v in &node.inputs {
            last[v] = Some(k);
        }
    }
    last
}

/// A user's operation, layer by layer: its LRP form run on a fresh leaf, and the gradient trick
/// on it, `a ⊙ ∂(Σ lrp_forward(a) ⊙ R / z)/∂a` (`R / z` taken as 0 where `z = 0`).
fn custom_step(
    operation: &dyn Operation,
    a: &Tensor<4>,
    z: &Tensor<4>,
    r: &Tensor<4>,
) -> Tensor<4> {
    let zero = z.clone().equal_elem(0.0);
    let s = (r.clone() / z.clone().mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0);
    let leaf = a.clone().autodiff().require_grad();
    let gradients = (operation.lrp_forward(leaf.clone()) * s).sum().backward();
    let c = leaf
        .grad(&gradients)
        .unwrap_or_else(|| Tensor::zeros(a.dims(), &a.device()));
    a.clone() * c
}

pub(crate) fn nonnegative_values(graph: &Graph, x: &Tensor<4>) -> Vec<bool> {
    let mut known = vec![x.clone().min().into_scalar::<f32>() >= 0.0];
    for node in graph.nodes() {
        let all_inputs = node.inputs.iter().all(|&v| known[v]);
        let first = known[node.inputs[0]];
        known.push(node.op.operator().keeps_nonnegative(first, all_inputs));
    }
    known
}
