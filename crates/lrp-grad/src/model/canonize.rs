//! The canonizer: batch norm directly after a linear or conv layer is merged into that layer.
//! Pure: the model is never changed; the canonical copy is what explanations run on.
//!
//! LRP rules are defined for linear maps followed by element-wise non-linearities. A batch norm
//! at inference is an affine map per channel, so folding it into the preceding layer's weights
//! gives the same function in canonical form (Zennit's `SequentialMergeBatchNorm`):
//! with `k = γ / √(var + ε)`, `W' = W·k` (per output channel) and `b' = (b − μ)·k + β`.

use burn::module::Param;
use burn::nn::{BatchNorm, Identity};
use burn::tensor::Tensor;

use super::graph::{Graph, Node, Op};
use super::{Layer, Sequential};
use crate::error::{Error, Result};

impl Sequential {
    /// A copy of the model in canonical form for explanation: every batch norm merged into the
    /// linear or conv layer right before it and replaced by an identity (layer indices stay the
    /// same). The copy computes the same outputs as the model in inference mode.
    ///
    /// A batch norm anywhere else (first, or after a non-linear layer) cannot be merged and is
    /// reported as [`Error::UnmergeableBatchNorm`].
    pub fn canonize(&self) -> Result<Sequential> {
        let mut layers: Vec<Layer> = Vec::with_capacity(self.layers.len());
        for (index, layer) in self.layers.iter().enumerate() {
            let Layer::BatchNorm(bn) = layer else {
                layers.push(layer.clone());
                continue;
            };
            let previous = layers
                .last_mut()
                .ok_or_else(|| Error::UnmergeableBatchNorm {
                    index,
                    reason: "it is the first layer; expected a linear or conv2d layer before it"
                        .into(),
                })?;
            *previous = match merge(previous, bn) {
                Some(merged) => merged,
                None => {
                    return Err(Error::UnmergeableBatchNorm {
                        index,
                        reason: format!(
                            "it follows a {} layer; expected a linear or conv2d layer right before it",
                            previous.kind()
                        ),
                    });
                }
            };
            layers.push(Layer::Identity(Identity::new()));
        }
        Ok(Sequential { layers })
    }
}

impl Graph {
    /// A copy of the graph in canonical form for explanation: a batch norm is merged into the
    /// linear or conv node that produces its input when no other node reads that output (a
    /// merge decided by data flow, not by order: DenseNet's batch norm after a concatenation
    /// stays, and takes [`Rule::Pass`](crate::Rule::Pass)). Merged batch norms become
    /// identities, so node indices and names stay. The copy computes the same outputs as the
    /// graph in inference mode; the graph itself is never changed.
    pub fn canonize(&self) -> Graph {
        let consumers = self.consumers();
        let mut nodes: Vec<Node> = self
            .nodes()
            .iter()
            .map(|node| Node {
                name: node.name.clone(),
                op: node.op.clone(),
                inputs: node.inputs.clone(),
            })
            .collect();
        for k in 0..nodes.len() {
            let (Op::Layer(Layer::BatchNorm(bn)), [input]) =
                (&nodes[k].op, nodes[k].inputs.as_slice())
            else {
                continue;
            };
            let (bn, input) = (bn.clone(), *input);
            // Value `input` is node `input - 1`'s output; the input of the graph has no producer.
            let Some(producer) = input.checked_sub(1) else {
                continue;
            };
            if consumers[input].len() != 1 {
                continue;
            }
            let Op::Layer(layer) = &nodes[producer].op else {
                continue;
            };
            if let Some(merged) = merge(layer, &bn) {
                nodes[producer].op = Op::Layer(merged);
                nodes[k].op = Op::Layer(Layer::Identity(Identity::new()));
            }
        }
        Graph::from_nodes(nodes)
    }
}

/// `layer` followed by `bn` as one layer, for linear and conv layers.
fn merge(layer: &Layer, bn: &BatchNorm) -> Option<Layer> {
    let (scale, shift) = affine(bn);
    Some(match layer {
        Layer::Linear(linear) => {
            let mut linear = linear.clone();
            // Burn's linear weight is [in, out]: scale the output (last) dimension.
            let weight = linear.weight.val() * scale.clone().unsqueeze::<2>();
            linear.bias = Some(Param::from_tensor(merged_bias(
                linear.bias.as_ref(),
                &scale,
                shift,
            )));
            linear.weight = Param::from_tensor(weight);
            Layer::Linear(linear)
        }
        Layer::Conv2d(conv) => {
            let mut conv = conv.clone();
            let [out, _, _, _] = conv.weight.dims();
            let weight = conv.weight.val() * scale.clone().reshape([out, 1, 1, 1]);
            conv.bias = Some(Param::from_tensor(merged_bias(
                conv.bias.as_ref(),
                &scale,
                shift,
            )));
            conv.weight = Param::from_tensor(weight);
            Layer::Conv2d(conv)
        }
        _ => return None,
    })
}

/// Batch norm at inference as `y = x·scale + shift`.
fn affine(bn: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let device = bn.gamma.val().device();
    let mean = bn.running_mean.value().to_device(&device);
    let var = bn.running_var.value().to_device(&device);
    let scale = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * scale.clone();
    (scale, shift)
}

fn merged_bias(bias: Option<&Param<Tensor<1>>>, scale: &Tensor<1>, shift: Tensor<1>) -> Tensor<1> {
    match bias {
        Some(bias) => bias.val() * scale.clone() + shift,
        None => shift,
    }
}
