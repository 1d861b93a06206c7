//! Operators that move values without computing: `Transpose`, `Reshape`, `Squeeze`,
//! `Unsqueeze`, `Flatten` and `Gather` of one index. They follow the batch wherever the export
//! puts it ([`Layout`]) and become per-sample permutations, reshapes and slices, or nothing.

use onnx_ir::Node as OnnxNode;
use onnx_ir::node::reshape::ReshapeInput;
use onnx_ir::node::squeeze::SqueezeInput;
use onnx_ir::node::unsqueeze::UnsqueezeConfig;

use super::convert::{Converter, Failure, Value, constant, output_dims_known, unique_name};
use super::layout::{Layout, SampleOp, compress};
use crate::model::{FeatureShape, Op, Permute, Reshape, Slice};

impl Converter<'_> {
    pub(super) fn transpose(&mut self, node: &OnnxNode, perm: &[i64]) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let (layout, op) = x.layout.transpose(perm)?;
        let SampleOp::Permute(order) = op else {
            return self.relabel(node, x, layout);
        };
        // A rank-4 or -5 sample: its size-1 axes left out, neighbours that stay merged.
        let (dims, axes) = match x.layout.sample.len() {
            0..=3 => (x.layout.sample.clone(), order.clone()),
            _ => compress(&x.layout.sample, &order),
        };
        if dims.len() > FeatureShape::MAX_RANK {
            return Err(format!(
                "permutes per-sample {:?} as {order:?}, which needs {} axes; lrp-grad's graphs hold per-sample ranks 1 to 3",
                x.layout.sample,
                dims.len()
            )
            .into());
        }
        let x = self.view(format!("{}.in", unique_name(node)), x, &dims)?;
        let permute = Op::Permute(Permute { axes: axes.clone() });
        let id = self.graph.push(unique_name(node), permute, [x.id]);
        let permuted: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
        let shape = FeatureShape::new(&permuted).map_err(|e| e.to_string())?;
        let x = Value {
            id,
            shape,
            layout: x.layout,
        };
        self.relabel(node, x, layout)
    }

    /// A reshape follows the batch: the export's dims say where it lands (a `0` copying it
    /// places it; the target's `-1` decides last, for a batch of 1).
    pub(super) fn reshape(&mut self, node: &OnnxNode, shape: &ReshapeInput) -> Result<(), Failure> {
        let ReshapeInput::Static(target) = shape else {
            return Err("the target shape is computed at run time; expected a constant".into());
        };
        let x = self.activation_input(node, 0)?;
        let batch = x.layout.batch_axis;
        let copy = (target.iter().enumerate())
            .find(|&(k, &d)| d == 0 && k == batch)
            .map(|(k, _)| k);
        let minus_one = target.iter().position(|&d| d == -1);
        self.reshape_like(node, x, (copy, minus_one))
    }

    pub(super) fn squeeze(
        &mut self,
        node: &OnnxNode,
        axes: Option<&SqueezeInput>,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let rank = x.layout.axes.len() as i64;
        let removed: Vec<usize> = match axes {
            Some(SqueezeInput::Static(axes)) => axes.iter().map(|&a| normalise(a, rank)).collect(),
            _ => Vec::new(),
        };
        let before = removed.iter().filter(|&&a| a < x.layout.batch_axis).count();
        let hint = x.layout.batch_axis.checked_sub(before);
        self.reshape_like(node, x, (hint, None))
    }

    pub(super) fn unsqueeze(
        &mut self,
        node: &OnnxNode,
        config: &UnsqueezeConfig,
    ) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let mut hint = x.layout.batch_axis;
        if let UnsqueezeConfig::Static(axes) = config {
            let rank = (x.layout.axes.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes.iter().map(|&a| normalise(a, rank)).collect();
            axes.sort_unstable();
            for a in axes {
                if a <= hint {
                    hint += 1;
                }
            }
        }
        self.reshape_like(node, x, (Some(hint), None))
    }

    pub(super) fn flatten(&mut self, node: &OnnxNode) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        self.reshape_like(node, x, (None, None))
    }

    /// The node's output as a reshape of `x` (its dims from shape inference; one symbolic dim
    /// — a dynamic batch — gets what the values leave for it, and holds the batch).
    fn reshape_like(
        &mut self,
        node: &OnnxNode,
        x: Value,
        (strong, weak): (Option<usize>, Option<usize>),
    ) -> Result<(), Failure> {
        let dims = output_dims_known(node)?;
        let symbolic = dims.iter().position(Option::is_none);
        let out: Vec<usize> = match dims.iter().filter(|d| d.is_none()).count() {
            0 => dims.iter().flatten().copied().collect(),
            1 => {
                let known: usize = dims.iter().flatten().product();
                let total = self.batch * x.layout.sample.iter().product::<usize>();
                if known == 0 || total % known != 0 {
                    return Err(
                        format!("its output {dims:?} does not divide the {total} values").into(),
                    );
                }
                dims.iter().map(|d| d.unwrap_or(total / known)).collect()
            }
            _ => {
                return Err(
                    "its output shape is not known statically (export with a fixed input size)"
                        .into(),
                );
            }
        };
        let layout = x
            .layout
            .reshape(&out, self.batch, (strong.or(symbolic), weak))?;
        self.relabel(node, x, layout)
    }

    /// `Gather` of one constant index along an axis of a sample (a class token `x[:, 0]`, a
    /// fused projection's q, k or v): a slice, then the axis dropped.
    pub(super) fn gather(&mut self, node: &OnnxNode, axis: i64) -> Result<(), Failure> {
        let x = self.activation_input(node, 0)?;
        let index = constant(node, 1)?.ok_or("the index is missing")?;
        let [i] = index.values[..] else {
            return Err(format!(
                "gathers indices of shape {:?}; lrp-grad takes one constant index (a slice)",
                index.dims
            )
            .into());
        };
        let axis = usize::try_from(axis).map_err(|_| "a negative axis")?;
        let sample_axis = x.layout.sample_axis(axis as i64)?;
        if i < 0.0 {
            return Err("gathers at a negative index".into());
        }
        let x = self.materialized(x)?;
        let slice = Slice {
            axis: sample_axis,
            start: i as usize,
            len: 1,
        };
        let id = self.graph.push(
            format!("{}.slice", unique_name(node)),
            Op::Slice(slice),
            [x.id],
        );
        let mut layout = x.layout.clone();
        layout.sample[sample_axis] = 1;
        let shape = FeatureShape::new(&layout.sample).map_err(|e| e.to_string())?;
        // A scalar index drops the axis (the parser does not always know the output shape).
        let mut out = layout.onnx_dims(self.batch);
        out.remove(axis);
        let hint = layout.batch_axis - usize::from(axis < layout.batch_axis);
        let dropped = layout.reshape(&out, self.batch, (Some(hint), None))?;
        self.relabel(node, Value { id, shape, layout }, dropped)
    }

    /// Names the node's output: `x`'s values under `layout`, reshaped in the graph when a
    /// sample's dims change (and fit a graph's rank); a rank-4 or -5 sample waits as it is
    /// stored for the operator that brings it back.
    pub(super) fn relabel(
        &mut self,
        node: &OnnxNode,
        x: Value,
        layout: Layout,
    ) -> Result<(), Failure> {
        let dims = layout.sample.clone();
        let mut value = if (1..=FeatureShape::MAX_RANK).contains(&dims.len()) {
            let taken = self
                .graph
                .nodes()
                .iter()
                .any(|n| n.name == unique_name(node));
            let name = match taken {
                false => unique_name(node),
                true => format!("{}.out", unique_name(node)),
            };
            self.view(name, x, &dims)?
        } else {
            x
        };
        value.layout = layout;
        self.values.insert(node.outputs()[0].name.clone(), value);
        Ok(())
    }

    /// `x` held with per-sample dims `dims` (a graph reshape named `name` when it is held
    /// otherwise).
    fn view(&mut self, name: String, x: Value, dims: &[usize]) -> Result<Value, Failure> {
        if x.shape.dims() == dims {
            return Ok(x);
        }
        let shape = FeatureShape::new(dims).map_err(|e| e.to_string())?;
        let op = Op::Reshape(Reshape {
            shape: dims.to_vec(),
        });
        let id = self.graph.push(name, op, [x.id]);
        Ok(Value {
            id,
            shape,
            layout: x.layout,
        })
    }
}

/// An ONNX axis (negative counts from the end) as an index.
fn normalise(axis: i64, rank: i64) -> usize {
    (if axis < 0 { axis + rank } else { axis }).max(0) as usize
}
