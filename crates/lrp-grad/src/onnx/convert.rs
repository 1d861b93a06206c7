//! ONNX nodes to graph nodes, one function per operator family.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};
use onnx_ir::Node as OnnxNode;
use onnx_ir::ir::{ArgType, Argument};
use onnx_ir::node::clip::ClipInput;
use onnx_ir::node::padding::{AutoPad, PaddingConfig2d as OnnxPadding};
use onnx_ir::node::reduce::ReduceAxes;

use super::OnnxError;
use super::adaptive_pool::{DOMAIN as POOL_DOMAIN, OP as POOL_OP};
use super::constant_scale::ConstantScale;
use super::layout::Layout;
use super::params::{self, Constant, ConvGeometry};
use super::patterns::{GroupNormFound, NormalizeFound};
use crate::model::graph::node_shape;
use crate::model::{Activation, Custom, FeatureShape, Flatten, Graph, Layer, NodeId, Op};

/// The operators [`super::load`] translates (in messages).
pub(super) const SUPPORTED: &str = "Conv, Gemm/MatMul with a constant weight (+ Add of a bias), \
MatMul of two activations, Attention (softmax(Q·Kᵀ·s)·V without a mask), Add (of activations, or of a constant of the value's shape), Mul (x·sigmoid(x) as SiLU, \
a uniform product of two activations of one shape, a gate for a broadcast factor, or by a constant: a number or a tensor broadcast over the value), Div by a constant, Concat, Relu, LeakyRelu, Clip(0, 6) and Clip(0, ∞), \
Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu (exact and tanh), Elu, Softplus, Mish, Softmax, LayerNormalization (last axis), InstanceNormalization, MaxPool, AveragePool, \
GlobalAveragePool, ReduceMean (over the spatial axes, or one axis of a sequence), Flatten, Reshape, Squeeze, \
Unsqueeze, Transpose, Slice of one axis (a fused projection's q, k, v), Gather of one constant index (a class token), Concat of a constant before an activation \
(a class token), BatchNormalization, Dropout, Identity; a final Softmax is dropped (the logits are explained)";

/// An activation of the graph being built: its value, the per-sample shape the graph holds
/// it in, and how the export lays it out (where the batch is; see [`Layout`]).
#[derive(Clone, Debug)]
pub(super) struct Value {
    pub id: NodeId,
    pub shape: FeatureShape,
    pub layout: Layout,
}

impl Value {
    /// A value laid out batch first, held in its own per-sample shape.
    fn standard(id: NodeId, shape: FeatureShape) -> Self {
        let layout = Layout::standard(&shape.dims());
        Value { id, shape, layout }
    }

    fn dims(&self) -> Vec<usize> {
        self.shape.dims()
    }
}

pub(super) struct Converter<'a> {
    file: &'a Path,
    device: &'a Device,
    pub graph: Graph,
    pub(super) values: HashMap<String, Value>,
    /// The batch size the model was exported with (where a reshape puts the batch).
    pub(super) batch: usize,
    /// The last nodes of activations written as several nodes (see [`super::patterns`]), with
    /// their input's name and the function.
    composed: HashMap<String, (String, Activation)>,
    /// The last nodes (`+ β`) of group norms written as several nodes, with the pattern.
    group_norms: HashMap<String, GroupNormFound>,
    /// `Mul` nodes that end GELU's erf pattern `x · 0.5 · (1 + erf(x / √2))`, with `x`'s name.
    gelu: HashMap<String, String>,
    /// `Mul` nodes that end RMS norm's pattern `x · 1/√(mean(x²) + ε) (· γ)`.
    rms: HashMap<String, RmsPattern>,
    /// Nodes folded into another one (the sigmoid of a SiLU).
    pub(super) folded: HashSet<String>,
    /// Outputs of `Expand` nodes that repeat a constant along the batch axis (a positional
    /// tensor too large for the exporter to fold), with that constant.
    expanded: HashMap<String, Constant>,
    /// `Div` nodes that end an L2 normalization (see [`super::normalize`]).
    pub(super) normalizations: HashMap<String, NormalizeFound>,
    /// Shape values computed from activations' dims (see [`super::shapes`]).
    pub(super) shapes: HashMap<String, super::constants::Const>,
}

type NodeResult<T> = Result<T, String>;

impl<'a> Converter<'a> {
    pub fn new(
        file: &'a Path,
        device: &'a Device,
        (input, shape): (&str, FeatureShape),
        batch: usize,
    ) -> Self {
        let graph = Graph::new();
        let mut values = HashMap::new();
        values.insert(input.to_string(), Value::standard(graph.input(), shape));
        Converter {
            file,
            device,
            graph,
            values,
            batch,
            composed: HashMap::new(),
            group_norms: HashMap::new(),
            gelu: HashMap::new(),
            rms: HashMap::new(),
            folded: HashSet::new(),
            expanded: HashMap::new(),
            shapes: HashMap::new(),
            normalizations: HashMap::new(),
        }
    }

    /// Finds every operator written as several nodes (activations, GELU, RMS norm, group norm,
    /// L2 normalization), so that each becomes one graph node.
    pub fn find_patterns(&mut self, nodes: &[&OnnxNode]) {
        self.find_activations(nodes);
        self.find_gelu(nodes);
        self.find_rms_norm(nodes);
        self.find_group_norms(nodes);
        self.find_normalizations(nodes);
    }

    /// Finds activations written as several nodes (SiLU, Mish, softplus with its threshold), so
    /// that each becomes one activation (`Pass`) instead of a gate or a selection.
    pub fn find_activations(&mut self, nodes: &[&OnnxNode]) {
        for found in super::patterns::find_activations(nodes) {
            self.folded.extend(found.folded);
            self.composed
                .insert(found.last, (found.x, found.activation));
        }
    }

    /// Finds group norms written as several nodes (see [`super::patterns::GroupNormFound`]).
    pub fn find_group_norms(&mut self, nodes: &[&OnnxNode]) {
        for found in super::patterns::find_group_norms(nodes) {
            self.folded.extend(found.folded.iter().cloned());
            self.group_norms.insert(found.last.clone(), found);
        }
    }

    /// Finds GELU as exporters write it at opset 18, `x · (0.5 · (1 + erf(x / √2)))` (Div, Erf,
    /// Add, Mul, Mul, the constant factor on either side), so that it becomes one GELU
    /// activation (identity rule) instead of a gate.
    pub fn find_gelu(&mut self, nodes: &[&OnnxNode]) {
        let producer: HashMap<&str, &OnnxNode> = nodes
            .iter()
            .flat_map(|n| n.outputs().iter().map(move |o| (o.name.as_str(), *n)))
            .collect();
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for node in nodes {
            for input in node.inputs() {
                *readers.entry(input.name.as_str()).or_default() += 1;
            }
        }
        let only_reader = |name: &str| readers.get(name) == Some(&1);
        for node in nodes {
            let OnnxNode::Mul(last) = node else { continue };
            for (x, half) in [(0, 1), (1, 0)] {
                let (x, half) = (&last.inputs[x].name, &last.inputs[half].name);
                if let Some(chain) = gelu_chain(&producer, x, half)
                    && chain
                        .iter()
                        .all(|n| only_reader(n.outputs()[0].name.as_str()))
                {
                    self.gelu.insert(last.name.clone(), x.clone());
                    self.folded
                        .extend(chain.iter().map(|n| n.name().to_string()));
                }
            }
        }
    }

    /// Finds RMS norm as exporters write it, `x · Reciprocal(Sqrt(ReduceMean(Pow(x, 2)) + ε))`,
    /// optionally `· γ` with a constant `γ`, so that it becomes one RMS norm (identity rule).
    pub fn find_rms_norm(&mut self, nodes: &[&OnnxNode]) {
        let producer: HashMap<&str, &OnnxNode> = nodes
            .iter()
            .flat_map(|n| n.outputs().iter().map(move |o| (o.name.as_str(), *n)))
            .collect();
        let mut readers: HashMap<&str, Vec<&OnnxNode>> = HashMap::new();
        for node in nodes {
            for input in node.inputs() {
                readers.entry(input.name.as_str()).or_default().push(node);
            }
        }
        for node in nodes {
            let OnnxNode::Mul(mul) = node else { continue };
            for (x, r) in [(0, 1), (1, 0)] {
                let (x, r) = (&mul.inputs[x].name, &mul.inputs[r].name);
                let Some((chain, epsilon)) = rms_chain(&producer, x, r) else {
                    continue;
                };
                let out = mul.outputs[0].name.as_str();
                // A following product with a constant vector is γ.
                let gamma = match readers.get(out).map(Vec::as_slice) {
                    Some([OnnxNode::Mul(next)]) => [0, 1].iter().find_map(|&i| {
                        let c = Constant::from_data(next.inputs[i].value()?).ok()?;
                        (c.dims.len() == 1).then(|| (next.name.clone(), c))
                    }),
                    _ => None,
                };
                let (last, gamma) = match gamma {
                    Some((name, c)) => {
                        self.folded.insert(mul.name.clone());
                        (name, Some(c))
                    }
                    None => (mul.name.clone(), None),
                };
                self.folded
                    .extend(chain.iter().map(|n| n.name().to_string()));
                let pattern = RmsPattern {
                    x: x.clone(),
                    epsilon,
                    gamma,
                };
                self.rms.insert(last, pattern);
            }
        }
    }

    /// Translates one node (or skips it when it was folded into another).
    pub fn node(&mut self, node: &OnnxNode) -> Result<(), OnnxError> {
        // Constants are read where they are used (weights); folded nodes live in another.
        if self.folded.contains(node.name()) || matches!(node, OnnxNode::Constant(_)) {
            return Ok(());
        }
        let translated = match (
            self.composed.get(node.name()).cloned(),
            self.group_norms.remove(node.name()),
            self.normalizations.remove(node.name()),
        ) {
            (Some((x, activation)), _, _) => self.activation_on(node, activation, &x),
            (None, Some(found), _) => self.group_norm(node, found),
            (None, None, Some(found)) => self.normalize(node, found),
            (None, None, None) => self.translate(node),
        };
        translated.map_err(|reason| match reason {
            Failure::Unsupported => OnnxError::Unsupported {
                file: self.file.to_path_buf(),
                node: node.name().to_string(),
                op: node.node_type().to_string(),
                supported: SUPPORTED.to_string(),
            },
            Failure::Node(reason) => OnnxError::Node {
                file: self.file.to_path_buf(),
                node: node.name().to_string(),
                op: node.node_type().to_string(),
                reason,
            },
        })
    }

    /// The device the graph's parameters go to.
    pub(super) fn device(&self) -> &Device {
        self.device
    }

    /// The value of an ONNX tensor name, when it is an activation.
    pub fn value_of(&self, name: &str) -> Option<NodeId> {
        self.values.get(name).map(|v| v.id)
    }

    fn translate(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        if let Some(done) = self.shape_arithmetic(node) {
            return done;
        }
        match node {
            OnnxNode::Shape(n) => self.shape_of(node, &n.config),
            OnnxNode::Conv2d(n) => self.conv(node, &n.config),
            OnnxNode::Linear(n) => self.linear(node, n.config.transpose_weight),
            OnnxNode::BatchNormalization(n) => self.batch_norm(node, batch_norm_epsilon(&n.config)),
            OnnxNode::MaxPool2d(n) => self.max_pool(node, &n.config),
            OnnxNode::AveragePool2d(n) => self.avg_pool(node, &n.config),
            OnnxNode::GlobalAveragePool(_) => self.global_mean(node, true),
            OnnxNode::ReduceMean(n) => self.reduce_mean(node, &n.config),
            OnnxNode::Add(_) => self.add(node),
            OnnxNode::Mul(_) => self.mul(node),
            OnnxNode::Concat(n) => self.concat(node, n.config.axis),
            OnnxNode::Flatten(n) => self.flatten_onnx(node, n.config.axis),
            OnnxNode::Reshape(n) => self.reshape(node, &n.config.shape),
            OnnxNode::Squeeze(n) => self.squeeze(node, n.config.axes.as_ref()),
            OnnxNode::Unsqueeze(n) => self.unsqueeze(node, &n.config),
            OnnxNode::Transpose(n) => self.transpose(node, &n.config.perm),
            OnnxNode::Clip(n) => self.clip(node, n.config.min.as_ref(), n.config.max.as_ref()),
            OnnxNode::MatMul(_) => self.matmul(node),
            OnnxNode::Div(_) => self.div(node),
            OnnxNode::Softmax(n) => self.softmax(node, n.config.axis),
            OnnxNode::LayerNormalization(n) => self.layer_norm(node, &n.config),
            OnnxNode::InstanceNormalization(n) => self.instance_norm(node, n.config.epsilon),
            OnnxNode::Gather(n) => self.gather(node, n.config.axis as i64),
            OnnxNode::Dropout(_) | OnnxNode::Identity(_) => self.alias(node),
            OnnxNode::Pad(n) => self.pad(node, &n.config),
            OnnxNode::Einsum(n) => self.einsum(node, &n.config.equation),
            OnnxNode::Expand(_) => self.expand_constant(node),
            OnnxNode::Split(n) => self.split(node, &n.config),
            OnnxNode::Slice(n) => self.slice_onnx(node, &n.config),
            OnnxNode::Attention(n) => self.attention(node, &n.config),
            OnnxNode::Custom(n)
                if (n.domain.as_str(), n.op_type.as_str()) == (POOL_DOMAIN, POOL_OP) =>
            {
                self.adaptive_pool(node, n)
            }
            _ => self.activation(node),
        }
    }

    /// An element-wise activation: any layout.
    fn activation(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let activation = Activation::from_onnx(node).ok_or(Failure::Unsupported)?;
        let x = self.activation_input(node, 0)?;
        self.push_laid(node, Op::Layer(activation.into()), &[x])
    }

    /// Pushes `op` on the node's first input.
    fn unary(&mut self, node: &OnnxNode, op: Op) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        self.push(node, op, &[x])
    }

    /// Pushes `op` on `inputs` laid out batch first; its output shape comes from the graph's
    /// own shape inference, which also checks the inputs (the exporters leave some shapes
    /// symbolic).
    fn push(&mut self, node: &OnnxNode, op: Op, inputs: &[Value]) -> Result<(), Failure> {
        if let Some(x) = inputs.iter().find(|v| !v.layout.is_standard()) {
            return Err(format!(
                "reads a value laid out as {} (the batch moved by an earlier Transpose or Reshape); lrp-grad takes this operator on batch-first values",
                x.layout.describe()
            )
            .into());
        }
        let shape = self.push_node(node, op, inputs)?;
        let id = self.graph.nodes().len();
        let value = Value::standard(NodeId(id), shape);
        self.values.insert(node.outputs()[0].name.clone(), value);
        Ok(())
    }

    /// Pushes `op`, which treats each sample's values alike wherever the batch is (element-wise,
    /// or along the last axes), on `inputs` of one layout; the output keeps it.
    pub(super) fn push_laid(
        &mut self,
        node: &OnnxNode,
        op: Op,
        inputs: &[Value],
    ) -> Result<(), Failure> {
        let first = &inputs[0].layout;
        if let Some(x) = inputs.iter().find(|v| !v.layout.same_structure(first)) {
            return Err(format!(
                "combines values laid out as {} and {}, which pair different samples",
                first.describe(),
                x.layout.describe()
            )
            .into());
        }
        // A sample of more than three axes is held with its leading ones merged.
        let rank = first.sample.len();
        let mut held = Vec::with_capacity(inputs.len());
        for (i, x) in inputs.iter().cloned().enumerate() {
            held.push(self.held(format!("{}.in{i}", unique_name(node)), x)?);
        }
        let shape = self.push_node(node, op, &held)?;
        let mut layout = held[0].layout.clone();
        let dims = shape.dims();
        let kept = match rank {
            0..=3 => dims.len() == rank,
            _ => dims.len() == 3 && dims[0] == held[0].shape.dims()[0],
        };
        if !kept {
            return Err(format!(
                "changes the rank of a sample laid out as {}",
                layout.describe()
            )
            .into());
        }
        match rank {
            0..=3 => layout.sample = dims,
            _ => layout.sample[rank - 2..].copy_from_slice(&dims[1..]),
        }
        let id = NodeId(self.graph.nodes().len());
        self.values
            .insert(node.outputs()[0].name.clone(), Value { id, shape, layout });
        Ok(())
    }

    /// Adds the graph node and returns its output shape.
    fn push_node(&mut self, node: &OnnxNode, op: Op, inputs: &[Value]) -> NodeResult<FeatureShape> {
        let id = self
            .graph
            .push(unique_name(node), op, inputs.iter().map(|v| v.id));
        let shapes: Vec<FeatureShape> = inputs.iter().map(|v| v.shape).collect();
        let index = id.index() - 1;
        node_shape(&self.graph.nodes()[index], index, &shapes).map_err(|e| e.to_string())
    }

    /// `x` held in its own per-sample dims (a rank-4 or -5 sample cannot be).
    pub(super) fn materialized(&self, x: Value) -> NodeResult<Value> {
        if x.shape.dims() == x.layout.sample {
            return Ok(x);
        }
        Err(format!(
            "a sample of shape {:?} (laid out as {}); lrp-grad's graphs hold per-sample ranks 1 to 3",
            x.layout.sample,
            x.layout.describe()
        ))
    }

    /// The per-sample axis of the last ONNX axis, when it is one axis of a sample (what a dense
    /// layer, a norm or a softmax over the last axis needs).
    pub(super) fn last_axis(&self, x: &Value) -> NodeResult<usize> {
        let axis = x.layout.sample_axis(-1)?;
        match axis + 1 == x.layout.sample.len() {
            true => Ok(axis),
            false => Err(format!(
                "the last axis of {} is not a sample's last",
                x.layout.describe()
            )),
        }
    }

    /// The graph axis of ONNX axis `axis` of `x` as [`Converter::held`] holds it: a sample's
    /// own, or one of the last two of a longer sample.
    pub(super) fn graph_axis(x: &Value, axis: i64) -> NodeResult<usize> {
        let s = x.layout.sample_axis(axis)?;
        let len = x.layout.sample.len();
        match (len, s + 2 >= len) {
            (0..=3, _) => Ok(s),
            (_, true) => Ok(s + 3 - len),
            (_, false) => Err(format!(
                "operates along axis {axis} of {}, which lrp-grad holds merged with the axes before it",
                x.layout.describe()
            )),
        }
    }

    /// Dropout and Identity: the output is the input.
    fn alias(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        self.values.insert(node.outputs()[0].name.clone(), x);
        Ok(())
    }

    /// `Flatten` from axis 1 of a batch-first value is a [`Flatten`] layer; any other, a
    /// reshape that follows the batch.
    fn flatten_onnx(&mut self, node: &OnnxNode, axis: usize) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        match axis == 1 && x.layout.is_standard() {
            true => self.unary(node, Op::Layer(Flatten.into())),
            false => self.flatten(node),
        }
    }

    /// The activation of an ONNX tensor name.
    pub(super) fn named_activation(&self, name: &str) -> NodeResult<Value> {
        self.values.get(name).cloned().ok_or_else(|| {
            format!("`{name}` is a constant or comes from outside the explained path; expected an activation")
        })
    }

    pub(super) fn activation_input(&self, node: &OnnxNode, index: usize) -> NodeResult<Value> {
        let arg = node
            .inputs()
            .get(index)
            .ok_or_else(|| format!("input {index} is missing"))?;
        self.values.get(&arg.name).cloned().ok_or_else(|| {
            format!(
                "input {index} (`{}`) is a constant or comes from outside the explained path; expected an activation",
                arg.name
            )
        })
    }

    fn conv(
        &mut self,
        node: &OnnxNode,
        config: &onnx_ir::node::conv2d::Conv2dConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let weight = constant(node, 1)?.ok_or("the weight is not a constant")?;
        let bias = constant(node, 2)?;
        let [height, width] = spatial(&x.dims())?;
        let kernel = [weight.dims.get(2), weight.dims.get(3)].map(|k| k.copied().unwrap_or(1));
        let window = Window::new(kernel, config.stride, config.dilation);
        let geometry = ConvGeometry {
            stride: config.stride,
            padding: window.padding(&config.padding, &config.auto_pad, [height, width]),
            dilation: config.dilation,
            groups: config.groups,
        };
        let conv = params::conv2d(&weight, bias.as_ref(), &geometry, self.device)?;
        self.push(node, Op::Layer(conv.into()), &[x])
    }

    fn linear(&mut self, node: &OnnxNode, transposed: bool) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let weight = constant(node, 1)?.ok_or("the weight is not a constant")?;
        let bias = constant(node, 2)?;
        let linear = params::linear(&weight, bias.as_ref(), transposed, self.device)?;
        self.last_axis(&x)?;
        self.push_laid(node, Op::Layer(linear.into()), &[x])
    }

    fn batch_norm(&mut self, node: &OnnxNode, epsilon: f64) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let mut parts = Vec::with_capacity(4);
        for index in 1..5 {
            parts.push(constant(node, index)?.ok_or_else(|| {
                format!("input {index} (scale, bias, mean, variance) is not a constant")
            })?);
        }
        if !x.layout.is_standard() {
            return self.batch_norm_folded(
                node,
                x,
                [&parts[0], &parts[1], &parts[2], &parts[3]],
                epsilon,
            );
        }
        let bn = params::batch_norm(
            [&parts[0], &parts[1], &parts[2], &parts[3]],
            epsilon,
            self.device,
        )?;
        self.push(node, Op::Layer(bn.into()), &[x])
    }

    /// A batch norm of a value whose batch is folded with its tokens (LeViT's `BatchNorm1d`
    /// on `[N·T, C]`): its per-channel affine map `x · s + t`, `s = γ/√(var + ε)`,
    /// `t = β − μ·s`, as a constant scale and a learned shift on the channel axis, which must
    /// be the sample's last. (Relevance passes the scale unchanged; the shift takes its share
    /// as a bias does.)
    fn batch_norm_folded(
        &mut self,
        node: &OnnxNode,
        x: Value,
        [gamma, beta, mean, var]: [&Constant; 4],
        epsilon: f64,
    ) -> Result<(), Failure> {
        let channels = params::batch_norm_channels([gamma, beta, mean, var])?;
        let last = x.layout.sample.len();
        if x.layout.axes.len() != 2
            || x.layout.axes[1] != (last - 1..last)
            || x.dims().last() != Some(&channels)
        {
            return Err(format!(
                "normalizes a value laid out as {}; lrp-grad takes a batch norm of folded tokens over their last axis ({channels} channels)",
                x.layout.describe()
            )
            .into());
        }
        let scale: Vec<f32> = (0..channels)
            .map(|i| {
                (f64::from(gamma.values[i]) / (f64::from(var.values[i]) + epsilon).sqrt()) as f32
            })
            .collect();
        let shift: Vec<f32> = (0..x.shape.numel())
            .map(|k| beta.values[k % channels] - mean.values[k % channels] * scale[k % channels])
            .collect();
        let scale = Constant {
            dims: vec![channels],
            values: scale,
        };
        let op = ConstantScale::new(&scale, x.shape, false)?;
        let name = unique_name(node);
        let scaled = self
            .graph
            .push(format!("{name}.scale"), Op::Custom(Custom::new(op)), [x.id]);
        let shift = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(shift, [x.shape.numel()]),
            self.device,
        );
        let add = crate::model::AddParam::new(shift, x.shape);
        let id = self
            .graph
            .push(format!("{name}.shift"), Op::AddParam(add), [scaled]);
        self.relabel(node, Value::standard(id, x.shape), x.layout.clone())
    }

    fn max_pool(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::max_pool2d::MaxPool2dConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let window = Window::new(c.kernel_size, c.strides, c.dilation);
        let [t, l, b, r] = window.padding(&c.padding, &c.auto_pad, spatial(&x.dims())?);
        let pool = MaxPool2dConfig::new(c.kernel_size)
            .with_strides(c.strides)
            .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
            .with_dilation(c.dilation)
            .with_ceil_mode(c.ceil_mode)
            .init();
        self.unary(node, Op::Layer(pool.into()))
    }

    fn avg_pool(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::avg_pool2d::AvgPool2dConfig,
    ) -> Result<(), Failure> {
        if c.dilation != [1, 1] {
            return Err(format!("dilation {:?} (average pooling takes none)", c.dilation).into());
        }
        let x = self.activation_input(node, 0)?;
        let window = Window::new(c.kernel_size, c.strides, [1, 1]);
        let [t, l, b, r] = window.padding(&c.padding, &c.auto_pad, spatial(&x.dims())?);
        let pool = AvgPool2dConfig::new(c.kernel_size)
            .with_strides(c.strides)
            .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
            .with_count_include_pad(c.count_include_pad)
            .with_ceil_mode(c.ceil_mode)
            .init();
        self.unary(node, Op::Layer(pool.into()))
    }

    /// The dynamo exporter's decomposed adaptive average pool, found before parsing
    /// (`adaptive_pool.rs`): its input must have the size the pool was recognised for.
    fn adaptive_pool(&mut self, node: &OnnxNode, n: &onnx_ir::CustomNode) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let size = |name: &str| -> Option<[usize; 2]> {
            let s = n.attrs.get_i64s(name)?;
            Some([usize::try_from(s[0]).ok()?, usize::try_from(s[1]).ok()?])
        };
        let (Some(input), Some(output)) = (size("input_size"), size("output_size")) else {
            return Err("expects `input_size` and `output_size` of two sizes each".into());
        };
        let [h, w] = spatial(&x.dims())?;
        if [h, w] != input {
            return Err(format!("was recognised for a {input:?} input, gets {:?}", [h, w]).into());
        }
        let pool = AdaptiveAvgPool2dConfig::new(output).init();
        self.unary(node, Op::Layer(pool.into()))
    }

    /// The mean over the spatial axes (global average pooling), as an adaptive pool to 1×1,
    /// followed by a reshape to `[C]` when the axes are dropped.
    fn global_mean(&mut self, node: &OnnxNode, keep_dims: bool) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let [_, _] = spatial(&x.dims())?;
        let pool = Op::Layer(AdaptiveAvgPool2dConfig::new([1, 1]).init().into());
        if keep_dims {
            return self.push(node, pool, &[x]);
        }
        let id = self
            .graph
            .push(format!("{}.pool", unique_name(node)), pool, [x.id]);
        let pooled = Value::standard(id, FeatureShape::image(x.shape.channels(), 1, 1));
        let shape = vec![x.shape.channels()];
        self.push(
            node,
            Op::Reshape(crate::model::Reshape { shape }),
            &[pooled],
        )
    }

    fn reduce_mean(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::reduce::ReduceConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        if !x.layout.is_standard() {
            return Err(format!(
                "a mean of a value laid out as {}; lrp-grad takes means of batch-first values",
                x.layout.describe()
            )
            .into());
        }
        let ReduceAxes::Static(axes) = &c.axes else {
            return Err("the axes are computed at run time; expected constant axes".into());
        };
        // Axes arrive normalized (non-negative, the batch axis counted).
        let mut axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        axes.sort_unstable();
        match axes.as_slice() {
            [2, 3] if x.dims().len() == 3 => self.global_mean(node, c.keepdims),
            &[axis] if axis >= 1 && x.dims().len() >= 2 => {
                let mean = Op::Mean(crate::model::Mean {
                    axis: axis as usize - 1,
                });
                if !c.keepdims {
                    return self.push(node, mean, &[x]);
                }
                let id = self.graph.push(format!("{}.mean", unique_name(node)), mean, [x.id]);
                let mut dims = x.dims();
                dims.remove(axis as usize - 1);
                let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
                let layout = Layout::standard(&output_dims(node)?);
                self.relabel(node, Value::standard(id, shape), layout)
            }
            // Neighbouring axes (timm's channels-last pooling, `mean((1, 2))` of [N, H, W, C]).
            [first, .., last]
                if *first >= 1
                    && axes.windows(2).all(|w| w[1] == w[0] + 1)
                    && (*last as usize) <= x.dims().len() =>
            {
                let axes = (*first as usize - 1, *last as usize);
                self.mean_of_neighbours(node, x, axes, c.keepdims)
            }
            _ => Err(format!(
                "a mean over axes {axes:?} of per-sample shape {:?}; lrp-grad takes the mean over the spatial axes [2, 3] of an image, or over one axis or neighbouring axes",
                x.dims()
            )
            .into()),
        }
    }

    /// The mean over per-sample axes `a..b`: the mean of one axis of a view that merges them.
    fn mean_of_neighbours(
        &mut self,
        node: &OnnxNode,
        x: Value,
        (a, b): (usize, usize),
        keepdims: bool,
    ) -> Result<(), Failure> {
        let mut dims = x.dims();
        let merged: usize = dims[a..b].iter().product();
        dims.splice(a..b, [merged]);
        let name = unique_name(node);
        let x = self.view(format!("{name}.merged"), x, &dims)?;
        let mean = Op::Mean(crate::model::Mean { axis: a });
        let id = self.graph.push(format!("{name}.mean"), mean, [x.id]);
        dims.remove(a);
        let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
        let layout = match keepdims {
            true => Layout::standard(&output_dims(node)?),
            false => Layout::standard(&dims),
        };
        self.relabel(node, Value::standard(id, shape), layout)
    }

    /// A sum of activations, or an activation plus a constant of its per-sample shape (a
    /// positional embedding), which becomes a learned additive tensor.
    fn add(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let (x, other) = self.activation_and_other(node)?;
        let Some(constant) = other.constant else {
            let b = other.value.expect("an activation or a constant");
            return self.push_laid(node, Op::Add(crate::model::Add), &[x, b]);
        };
        // A leading batch axis (1, or the exported batch with the constant repeated, as an
        // `expand` folded by the exporter gives it) is dropped.
        let per_sample = x.shape.numel();
        let mut dims = constant.dims.clone();
        let repeated = constant
            .values
            .chunks(per_sample.max(1))
            .all(|c| c == &constant.values[..per_sample.min(constant.values.len())]);
        if dims.len() == x.dims().len() + 1 && repeated {
            dims.remove(0);
        }
        // Held otherwise than as its own sample (merged axes), the value keeps its layout
        // through the broadcast path.
        if dims != x.dims() || !x.layout.is_standard() || x.dims() != x.layout.sample {
            return self.add_broadcast(node, x, &constant);
        }
        let values = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(constant.values[..per_sample].to_vec(), [per_sample]),
            self.device,
        );
        let add = crate::model::AddParam::new(values, x.shape);
        self.push(node, Op::AddParam(add), &[x])
    }

    /// `Expand` of a constant that only repeats it along the batch axis: remembered as that
    /// constant, for the `Add` that reads it.
    fn expand_constant(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        // An `Expand` of an activation is an operator lrp-grad does not translate.
        let Ok(Some(c)) = constant(node, 0) else {
            return Err(Failure::Unsupported);
        };
        let mut dims = c.dims.clone();
        while dims.len() > 1 && dims[0] == 1 {
            dims.remove(0);
        }
        if output_dims(node)? != dims {
            return Err(format!(
                "expands a constant of shape {:?} beyond the batch axis; lrp-grad folds only a repetition per sample",
                c.dims
            )
            .into());
        }
        self.expanded.insert(node.outputs()[0].name.clone(), c);
        Ok(())
    }

    /// Input 0 or 1 as the activation (the first that is one), and the other input as an
    /// activation or a constant.
    fn activation_and_other(&self, node: &OnnxNode) -> NodeResult<(Value, Other)> {
        let other = |i: usize| -> NodeResult<Other> {
            match self.activation_input(node, i) {
                Ok(value) => Ok(Other {
                    value: Some(value),
                    constant: None,
                }),
                Err(_) => {
                    let name = node.inputs().get(i).map(|a| a.name.as_str());
                    let shape = name.and_then(|n| self.shapes.get(n)).map(|c| Constant {
                        dims: c.dims.clone(),
                        values: c.values.iter().map(|&v| v as f32).collect(),
                    });
                    let constant = match (name.and_then(|n| self.expanded.get(n)), shape) {
                        (Some(c), _) => c.clone(),
                        // A number computed from shapes (TorchScript's `head_dim ** -0.5`).
                        (None, Some(c)) => c,
                        (None, None) => constant(node, i)?.ok_or("an input is missing")?,
                    };
                    Ok(Other {
                        value: None,
                        constant: Some(constant),
                    })
                }
            }
        };
        match self.activation_input(node, 0) {
            Ok(x) => Ok((x, other(1)?)),
            Err(_) => Ok((self.activation_input(node, 1)?, other(0)?)),
        }
    }

    /// Multiplication (or division, `invert`) by a constant: a [`Scale`] node for a single
    /// number, a [`ConstantScale`] for a tensor that broadcasts over the value.
    fn scale(
        &mut self,
        node: &OnnxNode,
        x: Value,
        c: &Constant,
        invert: bool,
    ) -> Result<(), Failure> {
        let [value] = c.values[..] else {
            if x.layout.is_standard() && x.dims() == x.layout.sample {
                let op = ConstantScale::new(c, x.shape, invert)?;
                return self.push(node, Op::Custom(Custom::new(op)), &[x]);
            }
            // Laid out otherwise (Swin v2's per-head logit scale on windows with the batch
            // folded in): the constant broadcast onto each sample as the graph holds it.
            let held = self.held(format!("{}.in", unique_name(node)), x)?;
            let values = self.per_sample_values(&held.layout, c)?;
            let expanded = Constant {
                dims: held.shape.dims(),
                values,
            };
            let op = ConstantScale::new(&expanded, held.shape, invert)?;
            return self.push_laid(node, Op::Custom(Custom::new(op)), &[held]);
        };
        let factor = if invert {
            1.0 / f64::from(value)
        } else {
            f64::from(value)
        };
        self.push_laid(node, Op::Scale(crate::model::Scale { factor }), &[x])
    }

    fn div(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let divisor = constant(node, 1)
            .ok()
            .flatten()
            .ok_or("divides by an activation; lrp-grad divides by a constant only")?;
        self.scale(node, x, &divisor, true)
    }

    /// The product of two activations (attention's `Q·Kᵀ`, `softmax·V`).
    fn matmul(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let a = self.activation_input(node, 0)?;
        let b = self.activation_input(node, 1)?;
        for x in [&a, &b] {
            let rank = x.layout.axes.len();
            if x.layout.batch_axis + 2 >= rank {
                return Err(format!(
                    "multiplies {} over axes that hold the batch",
                    x.layout.describe()
                )
                .into());
            }
        }
        self.push_laid(node, Op::MatMul(crate::model::MatMul), &[a, b])
    }

    fn softmax(&mut self, node: &OnnxNode, axis: usize) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let softmax = crate::model::Softmax {
            axis: Self::graph_axis(&x, axis as i64)?,
        };
        self.push_laid(node, Op::Softmax(softmax), &[x])
    }

    /// An activation found as several nodes, on the activation named `x` (any layout).
    fn activation_on(&mut self, node: &OnnxNode, f: Activation, x: &str) -> Result<(), Failure> {
        let x = self.values.get(x).cloned();
        let x = x.ok_or_else(|| Failure::Node("its input is not an activation".to_string()))?;
        self.push_laid(node, Op::Layer(f.into()), &[x])
    }

    /// `op` on the activation named `x`.
    fn push_on(&mut self, node: &OnnxNode, op: Op, x: &str) -> Result<(), Failure> {
        match self.values.get(x).cloned() {
            Some(x) => self.push(node, op, &[x]),
            None => Err(Failure::Node(format!("input `{x}` is not an activation"))),
        }
    }

    /// A group norm found as several nodes.
    fn group_norm(&mut self, node: &OnnxNode, found: GroupNormFound) -> Result<(), Failure> {
        let GroupNormFound {
            x,
            groups,
            epsilon,
            gamma,
            beta,
            ..
        } = found;
        let channels = self.values.get(&x).map_or(0, |v| v.shape.dims()[0]);
        let per_channel = |c: Constant| match c.values[..] {
            [value] => Constant {
                dims: vec![channels],
                values: vec![value; channels],
            },
            _ => c,
        };
        let (gamma, beta) = (per_channel(gamma), per_channel(beta));
        let norm = params::group_norm(&gamma, &beta, groups, epsilon, self.device)?;
        self.push_on(node, Op::Layer(norm.into()), &x)
    }

    /// InstanceNormalization of an image: group norm with one group per channel.
    fn instance_norm(&mut self, node: &OnnxNode, epsilon: f64) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let scale = constant(node, 1)?.ok_or("the scale is not a constant")?;
        let bias = constant(node, 2)?.ok_or("the bias is not a constant")?;
        let groups = scale.values.len();
        let norm = params::group_norm(&scale, &bias, groups, epsilon, self.device)?;
        self.push(node, Op::Layer(norm.into()), &[x])
    }

    fn layer_norm(
        &mut self,
        node: &OnnxNode,
        c: &onnx_ir::node::layer_norm::LayerNormConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let rank = x.layout.axes.len() as i64;
        self.last_axis(&x)?;
        if c.axis != -1 && c.axis != rank - 1 {
            return Err(format!(
                "normalizes from axis {}; lrp-grad normalizes the last axis",
                c.axis
            )
            .into());
        }
        let gamma = constant(node, 1)?.ok_or("the scale is not a constant")?;
        let beta = constant(node, 2)?;
        let norm = params::layer_norm(&gamma, beta.as_ref(), c.epsilon, self.device)?;
        self.push_laid(node, Op::LayerNorm(norm), &[x])
    }

    /// `x · sigmoid(x)` becomes SiLU; any other product of two activations is a gate (the
    /// factor with fewer values, a squeeze-excitation's per-channel scale, is the gate).
    fn mul(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        if let Some(pattern) = self.rms.remove(node.name()) {
            return self.rms_norm(node, pattern);
        }
        if let Some(x) = self.gelu.get(node.name()).cloned() {
            let x = self
                .values
                .get(&x)
                .cloned()
                .ok_or("GELU of a value that is not an activation")?;
            return self.push_laid(node, Op::Layer(Activation::Gelu.into()), &[x]);
        }
        let (a, other) = self.activation_and_other(node)?;
        let b = match other {
            Other {
                constant: Some(c), ..
            } => return self.scale(node, a, &c, false),
            Other { value, .. } => value.expect("an activation or a constant"),
        };
        // Factors of one shape (a gated MLP's act(g)·u): AttnLRP's uniform product. A smaller
        // factor broadcast over the other (squeeze-excitation) is a gate.
        if a.shape == b.shape {
            return self.push_laid(node, Op::Mul(crate::model::Mul), &[a, b]);
        }
        let (x, gate) = if b.shape.numel() <= a.shape.numel() {
            (a, b)
        } else {
            (b, a)
        };
        self.push(node, Op::Gate(crate::model::Gate), &[x, gate])
    }

    fn rms_norm(&mut self, node: &OnnxNode, pattern: RmsPattern) -> Result<(), Failure> {
        let x =
            self.values.get(&pattern.x).cloned().ok_or_else(|| {
                format!("RMS norm of `{}`, which is not an activation", pattern.x)
            })?;
        self.last_axis(&x)?;
        let d = x.shape.last();
        let mut norm = crate::model::RmsNorm::new(d, pattern.epsilon, self.device);
        if let Some(gamma) = pattern.gamma {
            if gamma.dims != [d] {
                return Err(
                    format!("RMS norm scale of shape {:?}; expected [{d}]", gamma.dims).into(),
                );
            }
            norm.gamma = burn::module::Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(gamma.values, [d]),
                self.device,
            ));
        }
        self.push_laid(node, Op::RmsNorm(norm), &[x])
    }

    /// A concatenation of activations, or constants before one activation (a class token).
    fn concat(&mut self, node: &OnnxNode, axis: usize) -> Result<(), Failure> {
        let count = node.inputs().len();
        if count == 2
            && self.activation_input(node, 0).is_err()
            && let Ok(x) = self.activation_input(node, 1)
        {
            if axis == 0 {
                return Err("concatenation along the batch axis".to_string().into());
            }
            return self.prepend(node, x, axis - 1);
        }
        let inputs = (0..count)
            .map(|i| self.activation_input(node, i))
            .collect::<NodeResult<Vec<_>>>()?;
        let concat = crate::model::Concat {
            axis: Self::graph_axis(&inputs[0], axis as i64)?,
        };
        self.push_laid(node, Op::Concat(concat), &inputs)
    }

    /// `Concat(constant, x)`: the constant (per sample, a leading batch axis dropped) before `x`.
    fn prepend(&mut self, node: &OnnxNode, x: Value, axis: usize) -> Result<(), Failure> {
        let c = constant(node, 0)?.ok_or("input 0 is missing")?;
        let rank = x.dims().len();
        let mut dims = c.dims.clone();
        if dims.len() == rank + 1 {
            dims.remove(0);
        }
        let per_sample: usize = dims.iter().product();
        let shape = FeatureShape::new(&dims).map_err(|e| e.to_string())?;
        let values = Tensor::<1>::from_data(
            burn::tensor::TensorData::new(c.values[..per_sample].to_vec(), [per_sample]),
            self.device,
        );
        let prepend = crate::model::Prepend::new(values, shape, axis);
        self.push(node, Op::Prepend(prepend), &[x])
    }

    /// `Clip(0, 6)` is ReLU6 (MobileNet), `Clip(0, ∞)` ReLU.
    fn clip(
        &mut self,
        node: &OnnxNode,
        min: Option<&ClipInput>,
        max: Option<&ClipInput>,
    ) -> Result<(), Failure> {
        let bound = |b: Option<&ClipInput>| match b {
            None => Ok(None),
            Some(ClipInput::Static(v)) => Ok(Some(*v)),
            Some(ClipInput::Runtime(_)) => Err("a bound computed at run time".to_string()),
        };
        let layer: Layer = match (bound(min)?, bound(max)?) {
            (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => Activation::Relu6.into(),
            (Some(0.0), None) => Activation::Relu.into(),
            (lo, hi) => {
                return Err(format!(
                    "clips to [{lo:?}, {hi:?}]; lrp-grad takes Clip(0, 6) (ReLU6) and Clip(0, ∞) (ReLU)"
                )
                .into());
            }
        };
        self.unary(node, Op::Layer(layer))
    }
}

/// `half` = `0.5 · (1 + erf(x / √2))` (the 0.5 on either side of the product): the nodes
/// from the division to the `0.5 ·` product, when they compute exactly that.
fn gelu_chain<'a>(
    producer: &HashMap<&str, &'a OnnxNode>,
    x: &str,
    half: &str,
) -> Option<Vec<&'a OnnxNode>> {
    let close = |v: f32, target: f32| (v - target).abs() < 1e-4 * target;
    let OnnxNode::Mul(scale) = producer.get(half)? else {
        return None;
    };
    let (one_plus, factor) = match (
        params::scalar(&scale.inputs[0]),
        params::scalar(&scale.inputs[1]),
    ) {
        (Some(f), None) => (&scale.inputs[1].name, f),
        (None, Some(f)) => (&scale.inputs[0].name, f),
        _ => return None,
    };
    let OnnxNode::Add(add) = producer.get(one_plus.as_str())? else {
        return None;
    };
    let (erf_out, one) = match (
        params::scalar(&add.inputs[0]),
        params::scalar(&add.inputs[1]),
    ) {
        (Some(c), None) => (&add.inputs[1].name, c),
        (None, Some(c)) => (&add.inputs[0].name, c),
        _ => return None,
    };
    let erf = producer.get(erf_out.as_str())?;
    let OnnxNode::Erf(erf_node) = erf else {
        return None;
    };
    let OnnxNode::Div(div) = producer.get(erf_node.inputs[0].name.as_str())? else {
        return None;
    };
    let root2 = params::scalar(&div.inputs[1])?;
    let fits = close(factor, 0.5)
        && close(one, 1.0)
        && close(root2, std::f32::consts::SQRT_2)
        && div.inputs[0].name == x;
    fits.then(|| {
        [
            half,
            one_plus.as_str(),
            erf_out.as_str(),
            erf_node.inputs[0].name.as_str(),
        ]
        .iter()
        .filter_map(|name| producer.get(name).copied())
        .collect()
    })
}

/// An RMS norm found in the file: its input's name, ε and constant scale.
struct RmsPattern {
    x: String,
    epsilon: f64,
    gamma: Option<Constant>,
}

/// `r` = `1/√(mean(x²) + ε)` over one axis with the axis kept: the nodes from `Pow` to
/// `Reciprocal`, and ε.
fn rms_chain<'a>(
    producer: &HashMap<&str, &'a OnnxNode>,
    x: &str,
    r: &str,
) -> Option<(Vec<&'a OnnxNode>, f64)> {
    let recip = producer.get(r)?;
    let OnnxNode::Reciprocal(recip_node) = recip else {
        return None;
    };
    let sqrt = producer.get(recip_node.inputs[0].name.as_str())?;
    let OnnxNode::Sqrt(sqrt_node) = sqrt else {
        return None;
    };
    let add = producer.get(sqrt_node.inputs[0].name.as_str())?;
    let OnnxNode::Add(add_node) = add else {
        return None;
    };
    let (mean_out, epsilon) = match (
        params::scalar(&add_node.inputs[0]),
        params::scalar(&add_node.inputs[1]),
    ) {
        (None, Some(e)) => (&add_node.inputs[0].name, e),
        (Some(e), None) => (&add_node.inputs[1].name, e),
        _ => return None,
    };
    let mean = producer.get(mean_out.as_str())?;
    let OnnxNode::ReduceMean(mean_node) = mean else {
        return None;
    };
    let one_axis = matches!(&mean_node.config.axes, ReduceAxes::Static(a) if a.len() == 1);
    if !mean_node.config.keepdims || !one_axis {
        return None;
    }
    let pow = producer.get(mean_node.inputs[0].name.as_str())?;
    let OnnxNode::Pow(pow_node) = pow else {
        return None;
    };
    let squares = pow_node.inputs[0].name == x && params::scalar(&pow_node.inputs[1]) == Some(2.0);
    squares.then(|| (vec![*pow, *mean, *add, *sqrt, *recip], f64::from(epsilon)))
}

/// The second input of a binary node: an activation or a constant.
struct Other {
    value: Option<Value>,
    constant: Option<Constant>,
}

/// Why a node could not be translated.
pub(super) enum Failure {
    Unsupported,
    Node(String),
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure::Node(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Self {
        Failure::Node(reason.to_string())
    }
}

/// The node's name in the graph: the parser's (it renames every node by operator and order,
/// `conv2d1`, `conv2d2`, …, and its values alike, so the exporter's names are not available).
pub(super) fn unique_name(node: &OnnxNode) -> String {
    node.name().to_string()
}

/// The per-sample dims ONNX shape inference gives the node's first output.
fn output_dims(node: &OnnxNode) -> NodeResult<Vec<usize>> {
    per_sample_dims(&node.outputs()[0]).ok_or_else(|| {
        "its output shape is not known statically (export with a fixed input size)".to_string()
    })
}

/// The dims ONNX shape inference gives the node's first output (the batch as exported), each
/// `None` where it is symbolic.
pub(super) fn output_dims_known(node: &OnnxNode) -> NodeResult<Vec<Option<usize>>> {
    let ArgType::Tensor(t) = &node.outputs()[0].ty else {
        return Err("its output is not a tensor".to_string());
    };
    t.static_shape.clone().ok_or_else(|| {
        "its output shape is not known statically (export with a fixed input size)".to_string()
    })
}

/// The dims after the batch axis, when they are all known.
pub(super) fn per_sample_dims(arg: &Argument) -> Option<Vec<usize>> {
    let ArgType::Tensor(t) = &arg.ty else {
        return None;
    };
    let shape = t.static_shape.as_ref()?;
    shape.get(1..)?.iter().copied().collect()
}

/// A constant input, or `None` when the input is absent.
pub(super) fn constant(node: &OnnxNode, index: usize) -> NodeResult<Option<Constant>> {
    let Some(arg) = node.inputs().get(index) else {
        return Ok(None);
    };
    if arg.is_optional() {
        return Ok(None);
    }
    match arg.value() {
        Some(data) => Constant::from_data(data).map(Some),
        None => Err(format!("input {index} (`{}`) is not a constant", arg.name)),
    }
}

fn spatial(dims: &[usize]) -> NodeResult<[usize; 2]> {
    match *dims {
        [_, h, w] => Ok([h, w]),
        _ => Err(format!("expects an image [C, H, W], gets {dims:?}")),
    }
}

fn batch_norm_epsilon(config: &onnx_ir::node::batch_norm::BatchNormConfig) -> f64 {
    use onnx_ir::node::batch_norm::BatchNormConfig as C;
    match config {
        C::Static(c) => c.epsilon,
        C::Runtime(c) => c.epsilon,
    }
}

/// A sliding window's geometry.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
}

impl Window {
    fn new(kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2]) -> Self {
        Window {
            kernel,
            stride,
            dilation,
        }
    }

    /// The padding `(top, left, bottom, right)` of an input of `size` from explicit pads or `auto_pad` (`SAME_UPPER` puts
    /// the odd pixel at the end, `SAME_LOWER` at the start, as ONNX defines them).
    fn padding(&self, explicit: &OnnxPadding, auto_pad: &AutoPad, size: [usize; 2]) -> [usize; 4] {
        match auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => {
                let upper = matches!(auto_pad, AutoPad::SameUpper);
                let (t, b) = self.same(0, size[0], upper);
                let (l, r) = self.same(1, size[1], upper);
                [t, l, b, r]
            }
            AutoPad::Valid => [0; 4],
            AutoPad::NotSet => match *explicit {
                OnnxPadding::Valid => [0; 4],
                OnnxPadding::Explicit(t, l, b, r) => [t, l, b, r],
            },
        }
    }

    /// `SAME` padding along one axis: `(before, after)`.
    fn same(&self, axis: usize, size: usize, upper: bool) -> (usize, usize) {
        let out = size.div_ceil(self.stride[axis]);
        let span = (self.kernel[axis] - 1) * self.dilation[axis] + 1;
        let total = ((out.max(1) - 1) * self.stride[axis] + span).saturating_sub(size);
        let small = total / 2;
        if upper {
            (small, total - small)
        } else {
            (total - small, small)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_upper_puts_the_odd_pixel_at_the_end_and_same_lower_at_the_start() {
        let none = OnnxPadding::Valid;
        // 5 pixels, kernel 2, stride 1: one pixel of padding in all.
        let small = Window::new([2, 2], [1, 1], [1, 1]);
        let upper = small.padding(&none, &AutoPad::SameUpper, [5, 5]);
        let lower = small.padding(&none, &AutoPad::SameLower, [5, 5]);
        assert_eq!(upper, [0, 0, 1, 1]);
        assert_eq!(lower, [1, 1, 0, 0]);
        // 7 pixels, kernel 3, stride 2 (out 4): (4 - 1)·2 + 3 - 7 = 2, one on each side.
        let strided = Window::new([3, 3], [2, 2], [1, 1]);
        let even = strided.padding(&none, &AutoPad::SameUpper, [7, 7]);
        assert_eq!(even, [1, 1, 1, 1]);
    }

    #[test]
    fn explicit_pads_are_kept_per_side() {
        let pads = OnnxPadding::Explicit(1, 2, 3, 4);
        let p = Window::new([3, 3], [1, 1], [1, 1]).padding(&pads, &AutoPad::NotSet, [9, 9]);
        assert_eq!(p, [1, 2, 3, 4]);
    }
}
