//! Shapes computed in the graph. TorchScript writes `unflatten` (nn.MultiheadAttention's packed
//! q, k, v) as `Shape → Slice → Concat → Reshape`, and onnx-ir leaves such a target to run
//! time; the converter follows the chain instead, from the dims it knows for every activation
//! (at the batch the model was exported with), so that the `Reshape` gets its target. Shape
//! values are 1-D integer vectors; the nodes on them (`Shape`, `Slice`, `Concat`, `Gather`,
//! `Unsqueeze`, `Squeeze`) compute no activation and add nothing to the graph.

use onnx_ir::Node as OnnxNode;
use onnx_ir::node::shape::ShapeConfig;
use onnx_ir::node::slice::SliceInput;

use super::convert::{Converter, Failure, constant};

impl Converter<'_> {
    /// `Shape` of an activation: its ONNX dims `start..end`.
    pub(super) fn shape_of(&mut self, node: &OnnxNode, c: &ShapeConfig) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let dims = x.layout.onnx_dims(self.batch);
        let end = c.end.min(dims.len());
        let part = dims
            .get(c.start..end)
            .ok_or("its start lies past its end")?;
        self.keep_shape(node, part.iter().map(|&d| d as i64).collect())
    }

    /// A node computing on shape values, when its first input is one (`None`: it is not).
    pub(super) fn shape_arithmetic(&mut self, node: &OnnxNode) -> Option<Result<(), Failure>> {
        let first = &node.inputs().first()?.name;
        let several = matches!(
            node,
            OnnxNode::Concat(_)
                | OnnxNode::Add(_)
                | OnnxNode::Sub(_)
                | OnnxNode::Mul(_)
                | OnnxNode::Div(_)
                | OnnxNode::Mod(_)
        );
        let reads_shape =
            several && (node.inputs().iter()).any(|i| self.shapes.contains_key(&i.name));
        if !self.shapes.contains_key(first) && !reads_shape {
            return None;
        }
        let value = match node {
            OnnxNode::Slice(n) => self.slice_shape(node, &n.config),
            OnnxNode::Concat(_) => (0..node.inputs().len())
                .map(|i| self.shape_input(node, i))
                .collect::<Result<Vec<_>, _>>()
                .map(|parts| parts.concat()),
            OnnxNode::Gather(n) if n.config.axis == 0 => {
                let v = self.shape_input(node, 0);
                let index = self.shape_input(node, 1);
                v.and_then(|v| pick(&v, &index?))
            }
            OnnxNode::Shape(_) => self.shape_input(node, 0).map(|v| vec![v.len() as i64]),
            OnnxNode::Unsqueeze(_) | OnnxNode::Squeeze(_) | OnnxNode::Cast(_) => {
                self.shape_input(node, 0)
            }
            OnnxNode::Add(_) => self.integer_op(node, |a, b| Some(a + b)),
            OnnxNode::Sub(_) => self.integer_op(node, |a, b| Some(a - b)),
            OnnxNode::Mul(_) => self.integer_op(node, |a, b| Some(a * b)),
            // Integer division and `Mod` as ONNX defines them on integers (floor; the divisor's
            // sign, as Python's `%`).
            OnnxNode::Div(_) => self.integer_op(node, |a, b| (b != 0).then(|| a.div_euclid(b))),
            OnnxNode::Mod(_) => self.integer_op(node, |a, b| (b != 0).then(|| a.rem_euclid(b))),
            _ => Err(format!(
                "computes on a shape with `{}`; lrp-grad follows Shape, Slice, Concat, Gather, Unsqueeze, Squeeze, Cast and integer Add, Sub, Mul, Div and Mod",
                node.node_type()
            )),
        };
        Some(
            value
                .map_err(Failure::from)
                .and_then(|v| self.keep_shape(node, v)),
        )
    }

    /// `Slice` of a shape value with constant bounds (one axis, step 1; Python's clamping).
    fn slice_shape(
        &self,
        node: &OnnxNode,
        c: &onnx_ir::node::slice::SliceConfig,
    ) -> Result<Vec<i64>, String> {
        let v = self.shape_input(node, 0)?;
        let one = |s: &SliceInput| match s {
            SliceInput::Static(values) if values.len() == 1 => Ok(values[0]),
            _ => Err("slices a shape with bounds that are not one constant each".to_string()),
        };
        if let Some(step) = &c.steps
            && one(step)? != 1
        {
            return Err("slices a shape with a step".into());
        }
        let len = v.len() as i64;
        let at = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
        let (start, end) = (at(one(&c.starts)?), at(one(&c.ends)?));
        Ok(v[start.min(end)..end].to_vec())
    }

    /// An element-wise operator on two shape values (or constants), one side a single number
    /// or both of one length.
    fn integer_op(
        &self,
        node: &OnnxNode,
        f: impl Fn(i64, i64) -> Option<i64>,
    ) -> Result<Vec<i64>, String> {
        let (a, b) = (self.shape_input(node, 0)?, self.shape_input(node, 1)?);
        let n = a.len().max(b.len());
        let at = |v: &[i64], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        if !(a.len() == b.len() || a.len() == 1 || b.len() == 1) {
            return Err(format!(
                "combines shapes of {} and {} dims",
                a.len(),
                b.len()
            ));
        }
        (0..n)
            .map(|i| f(at(&a, i), at(&b, i)).ok_or_else(|| "divides a shape by 0".to_string()))
            .collect()
    }

    /// Input `i` as a shape value: one computed here, or an integer constant.
    fn shape_input(&self, node: &OnnxNode, i: usize) -> Result<Vec<i64>, String> {
        let arg = node.inputs().get(i).ok_or("a missing input")?;
        if let Some(v) = self.shapes.get(&arg.name) {
            return Ok(v.clone());
        }
        let c = constant(node, i)?.ok_or("a missing input")?;
        Ok(c.values.iter().map(|&v| v as i64).collect())
    }

    fn keep_shape(&mut self, node: &OnnxNode, value: Vec<i64>) -> Result<(), Failure> {
        let output = node.outputs().first().ok_or("a missing output")?;
        self.shapes.insert(output.name.clone(), value);
        Ok(())
    }
}

/// `Gather` of constant indices from a shape value.
fn pick(v: &[i64], index: &[i64]) -> Result<Vec<i64>, String> {
    let len = v.len() as i64;
    index
        .iter()
        .map(|&i| {
            let i = if i < 0 { i + len } else { i };
            usize::try_from(i)
                .ok()
                .and_then(|i| v.get(i).copied())
                .ok_or_else(|| format!("gathers index {i} of a shape of {len} dims"))
        })
        .collect()
}
