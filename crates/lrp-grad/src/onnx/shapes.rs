//! Shapes computed in the graph. TorchScript writes `unflatten` (nn.MultiheadAttention's packed
//! q, k, v) as `Shape → Slice → Concat → Reshape`, and `F.pad`'s pads (Swin's windows) as
//! `Shape`, integer arithmetic, `ConstantOfShape`, `Concat`, `Reshape`, a reversed `Slice` and
//! `Transpose`; onnx-ir leaves such values to run time. The converter follows them instead, from
//! the dims it knows for every activation (at the batch the model was exported with), so that
//! a `Reshape` gets its target and a `Pad` its pads. Shape values are small integer tensors
//! (`constants.rs`'s constants, evaluated by its operations); the nodes on them compute no
//! activation and add nothing to the graph.

use onnx_ir::Node as OnnxNode;
use onnx_ir::node::constant_of_shape::ConstantOfShapeShape;
use onnx_ir::node::shape::ShapeConfig;
use onnx_ir::node::slice::{SliceConfig, SliceInput};
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;

use super::constants::{self as ops, Const, INT64};
use super::convert::{Converter, Failure, constant};
use super::params::Constant;

impl Converter<'_> {
    /// `Shape` of an activation: its ONNX dims `start..end`.
    pub(super) fn shape_of(&mut self, node: &OnnxNode, c: &ShapeConfig) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let dims = x.layout.onnx_dims(self.batch);
        let end = c.end.min(dims.len());
        let part = dims
            .get(c.start..end)
            .ok_or("its start lies past its end")?;
        self.keep_shape(node, vector(part.iter().map(|&d| d as f64).collect()))
    }

    /// A node computing on shape values, when it reads one (`None`: it does not).
    pub(super) fn shape_arithmetic(&mut self, node: &OnnxNode) -> Option<Result<(), Failure>> {
        // An operator on an activation reads a shape value as a constant (a Reshape's target,
        // a Pad's pads, a scale).
        let inputs = node.inputs();
        let activation = inputs.iter().any(|i| self.values.contains_key(&i.name));
        if activation || !inputs.iter().any(|i| self.shapes.contains_key(&i.name)) {
            return None;
        }
        let value = self.evaluate_shape(node).ok_or_else(|| {
            format!(
                "computes on a shape with `{}` in a way lrp-grad does not follow",
                node.node_type()
            )
        });
        Some((value.map_err(Failure::from)).and_then(|v| self.keep_shape(node, v)))
    }

    /// The node's value on shape values and constants (integers held as `f64`).
    fn evaluate_shape(&self, node: &OnnxNode) -> Option<Const> {
        self.element_wise_shape(node)
            .or_else(|| self.structural_shape(node))
    }

    /// Integer arithmetic, comparisons and selections on shape values (the constant
    /// evaluator's own, [`ops::element_wise_op`]).
    fn element_wise_shape(&self, node: &OnnxNode) -> Option<Const> {
        let op = match node {
            OnnxNode::Cast(_) => return self.shape_input(node, 0),
            OnnxNode::Add(_) => "Add",
            OnnxNode::Sub(_) => "Sub",
            OnnxNode::Mul(_) => "Mul",
            OnnxNode::Div(_) => "Div",
            OnnxNode::Mod(_) => "Mod",
            OnnxNode::Pow(_) => "Pow",
            OnnxNode::Equal(_) => "Equal",
            OnnxNode::Less(_) => "Less",
            OnnxNode::Greater(_) => "Greater",
            OnnxNode::Not(_) => "Not",
            OnnxNode::Where(_) => "Where",
            OnnxNode::Sqrt(_) => "Sqrt",
            _ => return None,
        };
        let inputs: Option<Vec<Const>> = (0..node.inputs().len())
            .map(|i| self.shape_input(node, i))
            .collect();
        ops::element_wise_op(op, &inputs?.iter().collect::<Vec<_>>())
    }

    /// Shapes, reshapes, gathers, slices, scatters and ranges of shape values.
    fn structural_shape(&self, node: &OnnxNode) -> Option<Const> {
        let input = |i: usize| self.shape_input(node, i);
        match node {
            OnnxNode::Shape(_) => Some(vector(input(0)?.dims.iter().map(|&d| d as f64).collect())),
            OnnxNode::Slice(n) => self.slice(node, &input(0)?, &n.config),
            OnnxNode::Concat(n) => {
                let parts: Option<Vec<Const>> = (0..node.inputs().len()).map(input).collect();
                ops::concat(&parts?.iter().collect::<Vec<_>>(), n.config.axis as i64)
            }
            OnnxNode::Gather(n) => ops::gather(&input(0)?, &input(1)?, n.config.axis as i64),
            OnnxNode::Unsqueeze(n) => match &n.config {
                UnsqueezeConfig::Static(axes) => ops::unsqueeze(
                    &input(0)?,
                    &vector(axes.iter().map(|&a| a as f64).collect()),
                ),
                UnsqueezeConfig::Runtime(_) => None,
            },
            OnnxNode::Squeeze(n) => squeeze(input(0)?, n.config.axes.as_ref()),
            OnnxNode::Reshape(_) => ops::reshape(&input(0)?, &input(1)?),
            OnnxNode::Transpose(n) => {
                let perm: Vec<usize> = n.config.perm.iter().map(|&p| p as usize).collect();
                ops::transpose(&input(0)?, &perm)
            }
            OnnxNode::ConstantOfShape(n) => {
                let shape = match &n.config.shape {
                    ConstantOfShapeShape::Static(s) => {
                        vector(s.iter().map(|&d| d as f64).collect())
                    }
                    ConstantOfShapeShape::Runtime(_) => input(0)?,
                };
                let fill = (n.config.value.as_ref())
                    .and_then(|v| Constant::from_data(v.clone()).ok())
                    .and_then(|c| c.values.first().map(|&v| f64::from(v)))
                    .unwrap_or(0.0);
                ops::constant_of_shape(&shape, Some(vector(vec![fill])))
            }
            OnnxNode::ScatterND(_) => ops::scatter_nd(&input(0)?, &input(1)?, &input(2)?),
            OnnxNode::GatherND(_) => ops::gather_nd(&input(0)?, &input(1)?),
            OnnxNode::Range(_) => {
                let [start, limit, delta] = [0, 1, 2].map(|i| input(i)?.values.first().copied());
                let (start, limit, delta) = (start?, limit?, delta?);
                let count = ((limit - start) / delta).ceil().max(0.0) as usize;
                (delta != 0.0 && count <= 1 << 20)
                    .then(|| vector((0..count).map(|k| start + k as f64 * delta).collect()))
            }
            OnnxNode::Expand(_) => {
                let dims: Vec<usize> = input(1)?.values.iter().map(|&d| d as usize).collect();
                ops::broadcast_to(&input(0)?, &dims)
            }
            _ => None,
        }
    }

    /// Input `i` as a shape value: one computed here, or a constant.
    fn shape_input(&self, node: &OnnxNode, i: usize) -> Option<Const> {
        let arg = node.inputs().get(i)?;
        if let Some(v) = self.shapes.get(&arg.name) {
            return Some(v.clone());
        }
        let c = constant(node, i).ok()??;
        Some(Const {
            dims: c.dims,
            values: c.values.iter().map(|&v| f64::from(v)).collect(),
            ty: INT64,
        })
    }

    fn keep_shape(&mut self, node: &OnnxNode, value: Const) -> Result<(), Failure> {
        let output = node.outputs().first().ok_or("a missing output")?;
        self.shapes.insert(output.name.clone(), value);
        Ok(())
    }

    /// A shape value read as integers (a reshape's target, pads).
    pub(super) fn shape_value(&self, name: &str) -> Option<Vec<i64>> {
        let v = self.shapes.get(name)?;
        Some(v.values.iter().map(|&v| v as i64).collect())
    }
}

/// A 1-D integer constant.
fn vector(values: Vec<f64>) -> Const {
    Const {
        dims: vec![values.len()],
        values,
        ty: INT64,
    }
}

impl Converter<'_> {
    /// `Slice` of a shape value, its bounds constants or shape values themselves.
    fn slice(&self, node: &OnnxNode, x: &Const, c: &SliceConfig) -> Option<Const> {
        let fixed = |s: &SliceInput| match s {
            SliceInput::Static(v) => Some(vector(v.iter().map(|&v| v as f64).collect())),
            SliceInput::Runtime(r) => self.shape_input(node, r.input_index),
        };
        slice_with(x, c, fixed)
    }
}

/// `Slice` of `x` with its bounds as `fixed` reads them.
fn slice_with(
    x: &Const,
    c: &SliceConfig,
    fixed: impl Fn(&SliceInput) -> Option<Const>,
) -> Option<Const> {
    let (starts, ends) = (fixed(&c.starts)?, fixed(&c.ends)?);
    let mut rest = Vec::new();
    if let Some(axes) = &c.axes {
        rest.push(fixed(axes)?);
    }
    if let Some(steps) = &c.steps {
        if rest.is_empty() {
            rest.push(vector((0..starts.values.len()).map(|a| a as f64).collect()));
        }
        rest.push(fixed(steps)?);
    }
    ops::slice(x, [&starts, &ends], &rest.iter().collect::<Vec<_>>())
}

/// `Squeeze` of a shape value: the axes named (or every axis of size 1) dropped.
fn squeeze(x: Const, axes: Option<&SqueezeInput>) -> Option<Const> {
    let rank = x.dims.len() as i64;
    let dropped: Vec<usize> = match axes {
        Some(SqueezeInput::Static(axes)) => (axes.iter())
            .map(|&a| (if a < 0 { a + rank } else { a }) as usize)
            .collect(),
        Some(SqueezeInput::Runtime(_)) => return None,
        None => (0..x.dims.len()).filter(|&k| x.dims[k] == 1).collect(),
    };
    let dims = (x.dims.iter().enumerate())
        .filter(|(k, _)| !dropped.contains(k))
        .map(|(_, &d)| d)
        .collect();
    Some(Const { dims, ..x })
}
