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

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d, Relu};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    /// A batch norm with statistics far from the identity, so that a wrong merge shows.
    fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(channels).init(device);
        let uniform =
            |low, high| Tensor::<1>::random([channels], Distribution::Uniform(low, high), device);
        bn.gamma = Param::from_tensor(uniform(0.5, 1.5));
        bn.beta = Param::from_tensor(uniform(-0.5, 0.5));
        bn.running_mean = RunningState::new(uniform(-0.5, 0.5));
        bn.running_var = RunningState::new(uniform(0.5, 2.0));
        bn
    }

    fn conv(c_in: usize, c_out: usize, device: &Device) -> Layer {
        Layer::Conv2d(
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        )
    }

    fn kinds(graph: &Graph) -> Vec<&'static str> {
        graph.nodes().iter().map(|n| n.op.kind()).collect()
    }

    fn max_difference(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// DenseNet's pattern: a batch norm that reads a concatenation stays (and passes
    /// relevance); the batch norm right after a conv merges; a conv whose output is also read
    /// elsewhere keeps its batch norm, since merging would change the other reader's input.
    #[test]
    fn batch_norms_merge_by_data_flow_not_by_order() {
        let device = Device::default();
        device.seed(3);
        let mut g = Graph::new();
        let x = g.input();
        let a = g.layer("conv_a", conv(2, 3, &device), x);
        let a = g.layer("bn_a", batch_norm(3, &device), a); // merges into conv_a
        let b = g.layer("conv_b", conv(3, 3, &device), a);
        let b_bn = g.layer("bn_b", batch_norm(3, &device), b); // conv_b is also read by `cat`
        let cat = g.concat("cat", 0, [b, b_bn]);
        let c = g.layer("bn_cat", batch_norm(6, &device), cat); // reads a concatenation
        let c = g.layer("relu", Relu::new(), c);
        let c = g.layer(
            "pool",
            burn::nn::pool::AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            c,
        );
        let c = g.layer("flatten", super::super::Flatten, c);
        g.layer("fc", burn::nn::LinearConfig::new(6, 2).init(&device), c);

        let canonical = g.canonize();
        assert_eq!(
            kinds(&canonical),
            [
                "conv2d",
                "identity",
                "conv2d",
                "batch_norm",
                "concat",
                "batch_norm",
                "relu",
                "adaptive_avg_pool2d",
                "flatten",
                "linear"
            ]
        );
        // The original graph is untouched, and the canonical one computes the same function.
        assert_eq!(kinds(&g)[1], "batch_norm");
        let input = Tensor::<4>::random([2, 2, 5, 5], Distribution::Default, &device);
        let error = max_difference(g.forward(input.clone()), canonical.forward(input));
        assert!(error < 1e-5, "{error:e}");
    }
}
