//! Graph models: named nodes in topological order, each an operation on earlier values.
//!
//! A [`Graph`] is a Burn [`Module`] like [`Sequential`](super::Sequential) (trainable,
//! recordable, device-movable) whose nodes may read any earlier value: residual additions,
//! concatenations, branches and gates. Value 0 is the graph input, node `k` produces value
//! `k + 1`, and the last node's value is the model output. Nodes can only read values that
//! exist when they are added, so the order is topological by construction.
//!
//! ```
//! use burn::nn::conv::Conv2dConfig;
//! use burn::nn::pool::AdaptiveAvgPool2dConfig;
//! use burn::nn::{LinearConfig, PaddingConfig2d, Relu};
//! use burn::tensor::{Device, Tensor};
//! use lrp_grad::{Flatten, Graph};
//!
//! let device = Device::default();
//! let same = || PaddingConfig2d::Explicit(1, 1, 1, 1);
//! let mut g = Graph::new();
//! let x = g.input();
//! let stem = g.layer("stem", Conv2dConfig::new([1, 4], [3, 3]).with_padding(same()).init(&device), x);
//! let a = g.layer("stem_relu", Relu::new(), stem);
//! let h = g.layer("conv1", Conv2dConfig::new([4, 4], [3, 3]).with_padding(same()).init(&device), a);
//! let y = g.add("res1", [a, h]); // the residual connection
//! let y = g.layer("relu1", Relu::new(), y);
//! let p = g.layer("pool", AdaptiveAvgPool2dConfig::new([1, 1]).init(), y);
//! let f = g.layer("flatten", Flatten, p);
//! g.layer("fc", LinearConfig::new(4, 10).init(&device), f);
//! let logits = g.forward(Tensor::<4>::ones([2, 1, 8, 8], &device));
//! assert_eq!(logits.dims(), [2, 10]);
//! ```

use burn::module::Module;
use burn::tensor::Tensor;

use super::attention::{
    AddParam, LayerNorm, MatMul, Mean, Mul, Prepend, RmsNorm, Scale, Slice, Softmax,
};
use super::custom::Custom;
use super::lrp::{Form, Lrp, Refusal, Route, STABILIZER_ONLY, route, stabilizer_only};
use super::operator::{Arity, LayerType, Operator, ShapeError};
use super::permute::Permute;
use super::shape::FeatureShape;
use super::{Layer, Sequential, to_internal};
use crate::error::{Error, Result};
use crate::rules::Rule;

/// A value of a [`Graph`]: the graph input or a node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub(crate) usize);

impl NodeId {
    /// The value's index: 0 for the graph input, `k + 1` for node `k`.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The n-ary sum of activations of one shape (a residual connection). Its LRP rule is
/// Zennit's for its `Sum` module: [`Rule::Norm`](crate::Rule::Norm),
/// `R_i = x_i · R / stab(Σ x)`.
///
/// # Shapes
/// - inputs: two or more values of one per-sample shape
/// - output: that shape
#[derive(Module, Debug, Copy, Default)]
pub struct Add;

/// Concatenation along a per-sample axis (0 = channels or features); relevance is split back
/// by position, as the gradient is.
///
/// # Shapes
/// - inputs: one or more values equal but along the axis
/// - output: their sizes along the axis summed
#[derive(Module, Debug, Default)]
pub struct Concat {
    /// The per-sample axis (the batch axis is not counted).
    pub axis: usize,
}

/// `x · gate`, the gate read from other activations (squeeze-excitation): the gate is treated
/// as a constant, so all relevance stays with `x` and none flows into the gate's branch. The
/// gate has `x`'s shape, or one value per channel (`[C]` or `[C, 1, 1]`) broadcast over it.
///
/// Why not LXT's uniform split (`R/2` to each factor)? A squeeze-excitation gate rescales
/// channels the main path computed; its own branch is a function of the same features, so a
/// split would count their evidence twice and route half of it through a sigmoid. Gating
/// keeps relevance where the evidence is (as Zennit does for any module it has no rule for,
/// by ignoring it in the backward pass).
///
/// # Shapes
/// - inputs: the value `[C, H, W]` (or `[F]`) and a gate broadcast over it (e.g. `[C, 1, 1]`)
/// - output: the value's shape
#[derive(Module, Debug, Copy, Default)]
pub struct Gate;

/// A reshape of each sample to `shape` (`[F]`, `[T, D]` or `[C, H, W]`, the same number of values, in
/// row-major order, as PyTorch's `reshape`); relevance moves with the values.
///
/// # Shapes
/// - input: any per-sample shape
/// - output: `shape` (the same number of values)
#[derive(Module, Debug, Default)]
pub struct Reshape {
    /// The per-sample shape after the reshape.
    pub shape: Vec<usize>,
}

/// What one node of a [`Graph`] computes.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per node, built once
pub enum Op {
    /// A layer on one input.
    Layer(Layer),
    /// The sum of two or more inputs of one shape.
    Add(Add),
    /// Concatenation of one or more inputs along an axis.
    Concat(Concat),
    /// Input 0 times input 1, the gate (see [`Gate`]).
    Gate(Gate),
    /// A per-sample reshape.
    Reshape(Reshape),
    /// A per-sample permutation of axes.
    Permute(Permute),
    /// The product of two activations (attention).
    MatMul(MatMul),
    /// The element-wise product of two activations.
    Mul(Mul),
    /// Softmax along an axis.
    Softmax(Softmax),
    /// Layer normalization over the last axis.
    LayerNorm(LayerNorm),
    /// A learned tensor added (positional embeddings).
    AddParam(AddParam),
    /// Multiplication by a constant.
    Scale(Scale),
    /// The mean along an axis, which disappears.
    Mean(Mean),
    /// A slice along an axis.
    Slice(Slice),
    /// A learned tensor placed before the value (a class token).
    Prepend(Prepend),
    /// RMS normalization over the last axis.
    RmsNorm(RmsNorm),
    /// Rotary position embeddings of queries or keys.
    Rotary(super::Rotary),
    /// A causal mask on attention scores.
    CausalMask(super::CausalMask),
    /// `x / max(‖y‖₂, ε)` over the last axis (`F.normalize`).
    Normalize(super::Normalize),
    /// Zeros before and after one axis.
    Pad(super::Pad),
    /// `cap · tanh(x / cap)` (a logit softcap).
    Softcap(super::Softcap),
    /// An operation defined outside the library (see [`Operation`](super::Operation)).
    Custom(Custom),
}

impl Op {
    /// A short name of the operation (`conv2d`, `add`, `concat`, `gate`, …).
    pub fn kind(&self) -> &'static str {
        self.operator().kind()
    }

    /// The layer, for layer nodes.
    pub fn as_layer(&self) -> Option<&Layer> {
        match self {
            Op::Layer(layer) => Some(layer),
            _ => None,
        }
    }
}

/// One node: a name, an operation and the values it reads.
#[derive(Module, Debug)]
pub struct Node {
    /// Unique name (used by composites' name maps, in messages and in the plan).
    pub name: String,
    /// The operation.
    pub op: Op,
    /// The values read: 0 is the graph input, `k + 1` node `k`'s output.
    pub inputs: Vec<usize>,
}

/// A model as a graph of named nodes (see the module docs).
#[derive(Module, Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

impl Graph {
    /// An empty graph (its output is its input until a node is added).
    pub fn new() -> Self {
        Self::default()
    }

    /// A graph of these nodes (checked with the shapes, like any graph).
    pub fn from_nodes(nodes: Vec<Node>) -> Self {
        Self { nodes }
    }

    /// The graph input.
    pub fn input(&self) -> NodeId {
        NodeId(0)
    }

    /// The nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a node and returns its value. Inputs are checked (with the shapes) before anything
    /// runs: an input that does not exist yet is an [`Error::GraphStructure`].
    pub fn push(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: impl IntoIterator<Item = NodeId>,
    ) -> NodeId {
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.into_iter().map(|id| id.0).collect(),
        });
        NodeId(self.nodes.len())
    }

    /// `layer(input)` (anything that converts into a [`Layer`]).
    pub fn layer(
        &mut self,
        name: impl Into<String>,
        layer: impl Into<Layer>,
        input: NodeId,
    ) -> NodeId {
        self.push(name, Op::Layer(layer.into()), [input])
    }

    /// The sum of `inputs` (a residual connection).
    pub fn add(
        &mut self,
        name: impl Into<String>,
        inputs: impl IntoIterator<Item = NodeId>,
    ) -> NodeId {
        self.push(name, Op::Add(Add), inputs)
    }

    /// `inputs` concatenated along the per-sample `axis` (0 = channels or features).
    pub fn concat(
        &mut self,
        name: impl Into<String>,
        axis: usize,
        inputs: impl IntoIterator<Item = NodeId>,
    ) -> NodeId {
        self.push(name, Op::Concat(Concat { axis }), inputs)
    }

    /// `x · gate` with the gate treated as a constant (see [`Gate`]).
    pub fn gate(&mut self, name: impl Into<String>, x: NodeId, gate: NodeId) -> NodeId {
        self.push(name, Op::Gate(Gate), [x, gate])
    }

    /// `x` reshaped to the per-sample `shape` (`[F]`, `[T, D]` or `[C, H, W]`).
    pub fn reshape(
        &mut self,
        name: impl Into<String>,
        shape: impl Into<Vec<usize>>,
        x: NodeId,
    ) -> NodeId {
        self.push(
            name,
            Op::Reshape(Reshape {
                shape: shape.into(),
            }),
            [x],
        )
    }

    /// `x` with its per-sample axes permuted (`[1, 2, 0]`: `[C, H, W]` → `[H, W, C]`).
    pub fn permute(
        &mut self,
        name: impl Into<String>,
        axes: impl Into<Vec<usize>>,
        x: NodeId,
    ) -> NodeId {
        self.push(name, Op::Permute(Permute::new(axes.into())), [x])
    }

    /// `a·b` over the last two axes (`[M, K]·[K, P]`, batched over a leading axis).
    pub fn matmul(&mut self, name: impl Into<String>, a: NodeId, b: NodeId) -> NodeId {
        self.push(name, Op::MatMul(MatMul), [a, b])
    }

    /// The element-wise product `a·b` of two activations of one shape.
    pub fn mul(&mut self, name: impl Into<String>, a: NodeId, b: NodeId) -> NodeId {
        self.push(name, Op::Mul(Mul), [a, b])
    }

    /// Softmax of `x` along the per-sample `axis`.
    pub fn softmax(&mut self, name: impl Into<String>, axis: usize, x: NodeId) -> NodeId {
        self.push(name, Op::Softmax(Softmax { axis }), [x])
    }

    /// Layer normalization of `x` over its last axis.
    pub fn layer_norm(&mut self, name: impl Into<String>, norm: LayerNorm, x: NodeId) -> NodeId {
        self.push(name, Op::LayerNorm(norm), [x])
    }

    /// `x + value`, a learned tensor of `x`'s per-sample shape.
    pub fn add_param(&mut self, name: impl Into<String>, value: AddParam, x: NodeId) -> NodeId {
        self.push(name, Op::AddParam(value), [x])
    }

    /// `factor · x`.
    pub fn scale(&mut self, name: impl Into<String>, factor: f64, x: NodeId) -> NodeId {
        self.push(name, Op::Scale(Scale { factor }), [x])
    }

    /// The mean of `x` along the per-sample `axis` (the axis disappears).
    pub fn mean(&mut self, name: impl Into<String>, axis: usize, x: NodeId) -> NodeId {
        self.push(name, Op::Mean(Mean { axis }), [x])
    }

    /// Entries `start..start + len` of `x` along the per-sample `axis`.
    pub fn slice(
        &mut self,
        name: impl Into<String>,
        axis: usize,
        (start, len): (usize, usize),
        x: NodeId,
    ) -> NodeId {
        self.push(name, Op::Slice(Slice { axis, start, len }), [x])
    }

    /// A user's [`Operation`](super::Operation) on `x`.
    pub fn custom(
        &mut self,
        name: impl Into<String>,
        operation: impl super::Operation + 'static,
        x: NodeId,
    ) -> NodeId {
        self.push(name, Op::Custom(Custom::new(operation)), [x])
    }

    /// Rotary position embeddings of `x` (`[H, T, d]` or `[T, d]`).
    pub fn rotary(&mut self, name: impl Into<String>, rotary: super::Rotary, x: NodeId) -> NodeId {
        self.push(name, Op::Rotary(rotary), [x])
    }

    /// Attention scores `[H, T, T]` with later keys (and keys outside `window`) masked.
    pub fn causal_mask(
        &mut self,
        name: impl Into<String>,
        window: Option<usize>,
        scores: NodeId,
    ) -> NodeId {
        self.push(name, Op::CausalMask(super::CausalMask { window }), [scores])
    }

    /// RMS norm over the last axis.
    pub fn rms_norm(&mut self, name: impl Into<String>, norm: RmsNorm, x: NodeId) -> NodeId {
        self.push(name, Op::RmsNorm(norm), [x])
    }

    /// A learned tensor placed before `x` along the per-sample `axis` (a class token).
    pub fn prepend(&mut self, name: impl Into<String>, value: Prepend, x: NodeId) -> NodeId {
        self.push(name, Op::Prepend(value), [x])
    }

    /// The value of the model output (the last node's, or the input for an empty graph).
    pub(crate) fn output(&self) -> usize {
        self.nodes.len()
    }

    /// For every value, the nodes that read it (a node reading a value twice counts twice).
    pub(crate) fn consumers(&self) -> Vec<Vec<usize>> {
        let mut consumers = vec![Vec::new(); self.nodes.len() + 1];
        for (k, node) in self.nodes.iter().enumerate() {
            for &input in &node.inputs {
                consumers[input].push(k);
            }
        }
        consumers
    }

    /// A chain graph from a sequential model: node `i` is layer `i`, named by its index (as
    /// PyTorch names the children of `nn.Sequential`).
    pub fn from_sequential(model: &Sequential) -> Self {
        let mut graph = Graph::new();
        let mut x = graph.input();
        for (index, layer) in model.layers.iter().enumerate() {
            x = graph.layer(index.to_string(), layer.clone(), x);
        }
        graph
    }

    /// The per-sample shape of every value (the input first, the output last) for a per-sample
    /// input shape; checks names, inputs, arities and shapes.
    pub fn shapes(&self, input: FeatureShape) -> Result<Vec<FeatureShape>> {
        let mut shapes = Vec::with_capacity(self.nodes.len() + 1);
        shapes.push(input);
        let mut names = std::collections::HashSet::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let structure = |reason: String| Error::GraphStructure {
                node: node.name.clone(),
                index,
                reason,
            };
            if !names.insert(node.name.as_str()) {
                return Err(structure("another node has the same name".into()));
            }
            if let Some(&bad) = node.inputs.iter().find(|&&v| v > index) {
                return Err(structure(format!(
                    "it reads value {bad}, which does not exist before it (value 0 is the input, value k + 1 node k's output)"
                )));
            }
            let inputs: Vec<FeatureShape> = node.inputs.iter().map(|&v| shapes[v]).collect();
            shapes.push(node_shape(node, index, &inputs)?);
        }
        Ok(shapes)
    }

    /// The number of classes for a per-sample input shape, or an error when the input does not
    /// fit or the model does not end in one score per class.
    pub fn num_classes(&self, input: FeatureShape) -> Result<usize> {
        output_classes(&self.shapes(input)?)
    }

    /// Forward pass returning one score per class, `[N, classes]`, checking every shape first.
    /// The input is `[N, F]`, `[N, T, D]` (or a one-channel image `[N, H, W]`) or `[N, C, H, W]`.
    pub fn try_forward<const D: usize>(&self, input: Tensor<D>) -> Result<Tensor<2>> {
        let (x, shape) = to_internal(input)?;
        let shapes = self.shapes(shape)?;
        let classes = output_classes(&shapes)?;
        let n = x.dims()[0];
        Ok(self.forward_internal(x, &shapes).reshape([n, classes]))
    }

    /// Forward pass returning `[N, classes]`, for training loops and inference.
    ///
    /// # Panics
    /// When the input does not fit the model; use [`Graph::try_forward`] for a typed error.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<2> {
        match self.try_forward(input) {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    /// The output on the internal rank-4 representation, for the value `shapes` that
    /// [`Graph::shapes`] gave; values are dropped after their last reader.
    pub(crate) fn forward_internal(&self, x: Tensor<4>, shapes: &[FeatureShape]) -> Tensor<4> {
        let mut remaining: Vec<usize> = self.consumers().iter().map(Vec::len).collect();
        let mut values: Vec<Option<Tensor<4>>> = vec![None; self.nodes.len() + 1];
        values[0] = Some(x);
        for (k, node) in self.nodes.iter().enumerate() {
            let inputs: Vec<Tensor<4>> = node
                .inputs
                .iter()
                .map(|&v| {
                    remaining[v] -= 1;
                    let value = values[v].clone();
                    if remaining[v] == 0 && v != self.output() {
                        values[v] = None;
                    }
                    value.expect("values are read after they are computed")
                })
                .collect();
            values[k + 1] = Some(node.op.forward(inputs, shapes[node.inputs[0]]));
        }
        values.pop().flatten().expect("the output is computed last")
    }

    /// Every value (the input first, the output last) on the internal rank-4 representation:
    /// the forward pass the layer-wise explanation reuses. `shapes` as [`Graph::shapes`] gave.
    pub(crate) fn values(&self, x: Tensor<4>, shapes: &[FeatureShape]) -> Vec<Tensor<4>> {
        let mut values = Vec::with_capacity(self.nodes.len() + 1);
        values.push(x);
        for node in &self.nodes {
            let inputs = node.inputs.iter().map(|&v| values[v].clone()).collect();
            let next = node.op.forward(inputs, shapes[node.inputs[0]]);
            values.push(next);
        }
        values
    }
}

impl Op {
    /// The node's forward pass on the internal rank-4 representation; `input` is the
    /// per-sample shape of the first input (shapes checked).
    pub(crate) fn forward(&self, inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        self.operator().forward(inputs, input)
    }
}

// How relevance crosses the structural operations (see `super::lrp`): moved with the values;
// a sum by the norm rule.

impl Operator for Add {
    fn kind(&self) -> &'static str {
        "add"
    }

    fn arity(&self) -> Arity {
        Arity("two or more inputs", |n| n >= 2)
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(add_shape(inputs)?)
    }

    fn forward(&self, inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        let sum = inputs.into_iter().reduce(|acc, t| acc + t);
        sum.expect("an addition has inputs (checked with the shapes)")
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::Add
    }
}

impl Operator for Concat {
    fn kind(&self) -> &'static str {
        "concat"
    }

    fn arity(&self) -> Arity {
        Arity("one or more inputs", |n| n >= 1)
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(concat_shape(self.axis, inputs)?)
    }

    fn forward(&self, inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        Tensor::cat(inputs, input.internal_axis(self.axis))
    }
}

impl Operator for Gate {
    fn kind(&self) -> &'static str {
        "gate"
    }

    fn arity(&self) -> Arity {
        Arity("two inputs (the value and its gate)", |n| n == 2)
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(gate_shape(inputs[0], inputs[1])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        let gate = inputs.pop().expect("a gate has two inputs");
        inputs.remove(0) * gate
    }
}

impl Operator for Reshape {
    fn kind(&self) -> &'static str {
        "reshape"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(reshape_shape(&self.shape, inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        let x = inputs.remove(0);
        let n = x.dims()[0];
        let target =
            FeatureShape::new(&self.shape).expect("reshape targets are checked with the shapes");
        x.reshape(target.batched(n))
    }
}

impl Lrp for Add {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let rule = rule.cloned().unwrap_or(Rule::Norm);
        let stabilizer = stabilizer_only(&rule).ok_or(Refusal::Mismatch(STABILIZER_ONLY))?;
        Ok(Form::Add {
            rule,
            stabilizer,
            constant: None,
        })
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for Concat {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Concat(self.axis))
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for Gate {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Gate)
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Lrp for Reshape {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        route(rule, Route::Reshape)
    }

    fn keeps_nonnegative(&self, _first: bool, all: bool) -> bool {
        all
    }
}

impl Op {
    /// The operation's own answers (see [`super::operator`]): the one dispatch on its kind.
    pub(crate) fn operator(&self) -> &dyn Operator {
        match self {
            Op::Layer(layer) => layer,
            Op::Add(op) => op,
            Op::Concat(op) => op,
            Op::Gate(op) => op,
            Op::Reshape(op) => op,
            Op::Permute(op) => op,
            Op::MatMul(op) => op,
            Op::Mul(op) => op,
            Op::Softmax(op) => op,
            Op::LayerNorm(op) => op,
            Op::AddParam(op) => op,
            Op::Scale(op) => op,
            Op::Mean(op) => op,
            Op::Slice(op) => op,
            Op::Prepend(op) => op,
            Op::RmsNorm(op) => op,
            Op::Rotary(op) => op,
            Op::CausalMask(op) => op,
            Op::Normalize(op) => op,
            Op::Pad(op) => op,
            Op::Softcap(op) => op,
            Op::Custom(op) => op,
        }
    }
}

/// The model's number of classes from the value shapes (the output must be a vector).
pub(crate) fn output_classes(shapes: &[FeatureShape]) -> Result<usize> {
    let output = shapes.last().expect("shapes has the input at least");
    output.as_vector().ok_or_else(|| Error::OutputNotVector {
        found: output.dims(),
    })
}

/// A node's output shape from its inputs' shapes.
pub(crate) fn node_shape(
    node: &Node,
    index: usize,
    inputs: &[FeatureShape],
) -> Result<FeatureShape> {
    let structure = |reason: String| Error::GraphStructure {
        node: node.name.clone(),
        index,
        reason,
    };
    let Arity(expected, fits) = node.op.operator().arity();
    if !fits(inputs.len()) {
        return Err(structure(format!(
            "{} expects {expected}, got {}",
            node.op.kind(),
            inputs.len()
        )));
    }
    match node.op.operator().output_shape(index, inputs) {
        Ok(shape) => Ok(shape),
        Err(ShapeError::Reason(reason)) => Err(structure(reason)),
        Err(ShapeError::Layer(error)) => Err(error),
    }
}

/// A per-sample shape from its dims (rank 1 to 3).
fn from_dims(dims: &[usize]) -> std::result::Result<FeatureShape, String> {
    FeatureShape::new(dims).map_err(|e| e.to_string())
}

type ShapeResult = std::result::Result<FeatureShape, String>;

fn add_shape(inputs: &[FeatureShape]) -> ShapeResult {
    match inputs.iter().find(|s| **s != inputs[0]) {
        Some(other) => Err(format!(
            "added values must have one shape, got {} and {other}",
            inputs[0]
        )),
        None => Ok(inputs[0]),
    }
}

fn concat_shape(axis: usize, inputs: &[FeatureShape]) -> ShapeResult {
    let first = inputs[0].dims();
    if axis >= first.len() {
        return Err(format!(
            "axis {axis} is out of range for per-sample shape {}",
            inputs[0]
        ));
    }
    let mut dims = first.clone();
    dims[axis] = 0;
    for shape in inputs {
        let d = shape.dims();
        let fits = d.len() == first.len()
            && d.iter()
                .zip(&first)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !fits {
            return Err(format!(
                "concatenated values must agree on every axis but {axis}, got {} and {shape}",
                inputs[0]
            ));
        }
        dims[axis] += d[axis];
    }
    from_dims(&dims)
}

fn reshape_shape(shape: &[usize], input: FeatureShape) -> ShapeResult {
    let fits = (1..=FeatureShape::MAX_RANK).contains(&shape.len())
        && shape.iter().product::<usize>() == input.numel()
        && !shape.contains(&0);
    if !fits {
        return Err(format!(
            "cannot reshape per-sample shape {input} ({} values) to {shape:?}; expected [F], [T, D] or [C, H, W] with as many values",
            input.numel()
        ));
    }
    from_dims(shape)
}

fn gate_shape(x: FeatureShape, gate: FeatureShape) -> ShapeResult {
    // One value per channel: `[C]` or `[C, 1, 1]` for an image or a vector of `C` features.
    let per_channel = x.rank() != 2
        && gate.rank() != 2
        && gate.numel() == gate.channels()
        && gate.channels() == x.channels();
    if gate != x && !per_channel {
        return Err(format!(
            "the gate must have the value's shape {x} or one value per channel, got {gate}"
        ));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use burn::nn::Relu;
    use burn::nn::pool::AdaptiveAvgPool2dConfig;
    use burn::tensor::{Device, Distribution};

    use super::super::Flatten;
    use super::*;

    fn image(channels: usize, height: usize, width: usize) -> FeatureShape {
        FeatureShape::image(channels, height, width)
    }

    /// Shapes follow each operation: concatenation on any axis adds up that axis, a gate of one
    /// value per channel broadcasts, a permutation moves axes, a reshape keeps the count.
    #[test]
    fn shapes_follow_every_operation() {
        let mut g = Graph::new();
        let x = g.input();
        let a = g.layer("relu", Relu::new(), x);
        let tall = g.concat("tall", 1, [x, a]);
        let squeeze = g.layer("pool", AdaptiveAvgPool2dConfig::new([1, 1]).init(), tall);
        let squeeze = g.layer("flat", Flatten, squeeze);
        let gated = g.gate("gate", tall, squeeze);
        let hwc = g.permute("hwc", [1, 2, 0], gated);
        g.reshape("flat_all", [3 * 8 * 5], hwc);
        let shapes = g.shapes(image(3, 4, 5)).expect("fits");
        // Value 0 is the input, value k + 1 node k's output.
        assert_eq!(shapes[2], image(3, 8, 5));
        assert_eq!(shapes[4], FeatureShape::vector(3));
        assert_eq!(shapes[5], image(3, 8, 5));
        assert_eq!(shapes[6], image(8, 5, 3));
        assert_eq!(shapes[7], FeatureShape::vector(120));
    }

    #[test]
    fn values_read_before_they_exist_are_an_error() {
        let mut g = Graph::new();
        let x = g.input();
        g.push("ahead", Op::Add(Add), [x, NodeId(2)]);
        let err = g.shapes(FeatureShape::vector(4)).unwrap_err().to_string();
        assert!(
            err.contains("graph node 0 (`ahead`): it reads value 2"),
            "{err}"
        );
    }

    /// The forward pass drops each value after its last reader but keeps the output, and
    /// agrees with the pass that keeps every value.
    #[test]
    fn the_lean_forward_pass_equals_the_full_one() {
        let device = Device::default();
        let mut g = Graph::new();
        let x = g.input();
        let a = g.layer("relu", Relu::new(), x);
        let s = g.add("sum", [x, a, a]);
        g.concat("cat", 0, [s, x]);
        let shapes = g.shapes(FeatureShape::vector(3)).expect("fits");
        let input = Tensor::<4>::random([2, 3, 1, 1], Distribution::Default, &device);
        let lean = g.forward_internal(input.clone(), &shapes);
        let full = g.values(input, &shapes).pop().expect("output");
        let difference: f32 = (lean - full).abs().max().into_scalar();
        assert_eq!(difference, 0.0);
    }
}
