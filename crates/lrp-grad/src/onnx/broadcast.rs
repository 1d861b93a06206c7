//! Constants broadcast onto activations wherever the export put the batch: Swin's relative
//! position bias `[1, H, T, T]` added to scores laid out `[N·W, H, T, T]` (the batch folded into
//! the windows), its shifted windows' mask, a layer scale. A constant may repeat along the
//! axis that holds the batch (its dim there 1), never vary with the sample; it becomes one
//! per-sample tensor in the order the graph holds the value's values.

use burn::tensor::{Tensor, TensorData};
use onnx_ir::Node as OnnxNode;

use super::convert::{Converter, Failure, Value, unique_name};
use super::layout::Layout;
use super::params::Constant;
use crate::model::permute::MAX_VIEW_RANK;
use crate::model::{AddParam, NodeId, Op};

impl Converter<'_> {
    /// `x` held in the graph in at most three axes: its sample's own dims, or with the
    /// leading ones merged (a rank-4 or -5 sample, for operators on its last axes).
    pub(super) fn held(&mut self, name: String, x: Value) -> Result<Value, Failure> {
        let dims = x.layout.sample.clone();
        match dims.len() {
            0..=3 => Ok(self.materialized(x)?),
            4..=MAX_VIEW_RANK => {
                let lead: usize = dims[..dims.len() - 2].iter().product();
                let merged = [lead, dims[dims.len() - 2], dims[dims.len() - 1]];
                self.view(name, x, &merged)
            }
            _ => Err(format!("a sample of {} axes", dims.len()).into()),
        }
    }

    /// `x + c`, `c` broadcast onto each sample (see the module docs).
    pub(super) fn add_broadcast(
        &mut self,
        node: &OnnxNode,
        x: Value,
        c: &Constant,
    ) -> Result<(), Failure> {
        let x = self.held(format!("{}.in", unique_name(node)), x)?;
        let id = self.add_per_sample(unique_name(node), &x, c)?;
        let output = node.outputs().first().ok_or("a missing output")?;
        let value = Value { id, ..x };
        self.values.insert(output.name.clone(), value);
        Ok(())
    }

    /// `c` broadcast onto one sample laid out as `layout` (see [`per_sample`]).
    pub(super) fn per_sample_values(
        &self,
        layout: &Layout,
        c: &Constant,
    ) -> Result<Vec<f32>, String> {
        per_sample(layout, c)
    }

    /// A graph node adding `c`, broadcast onto each sample of `x`, to `x` (held as it is).
    pub(super) fn add_per_sample(
        &mut self,
        name: String,
        x: &Value,
        c: &Constant,
    ) -> Result<NodeId, Failure> {
        let values = per_sample(&x.layout, c)?;
        let n = values.len();
        let values = Tensor::<1>::from_data(TensorData::new(values, [n]), self.device());
        let add = AddParam::new(values, x.shape);
        Ok(self.graph.push(name, Op::AddParam(add), [x.id]))
    }
}

/// `c` broadcast onto one sample of a value laid out as `layout`, in the sample's row-major
/// order: its dims against the value's ONNX dims at a batch of 1, 1 on the batch's axis.
fn per_sample(layout: &Layout, c: &Constant) -> Result<Vec<f32>, String> {
    let out = layout.onnx_dims(1);
    let refuse = || {
        format!(
            "adds a constant of shape {:?} to a value laid out as {}; it must repeat along the batch's axis and match or repeat along the others",
            c.dims,
            layout.describe()
        )
    };
    if c.dims.len() > out.len() {
        return Err(refuse());
    }
    let offset = out.len() - c.dims.len();
    let dims: Vec<usize> = (0..out.len())
        .map(|k| k.checked_sub(offset).map_or(1, |j| c.dims[j]))
        .collect();
    let fits = (0..out.len()).all(|k| match k == layout.batch_axis {
        true => dims[k] == 1,
        false => dims[k] == 1 || dims[k] == out[k],
    });
    if !fits {
        return Err(refuse());
    }
    let total: usize = out.iter().product();
    let values = (0..total)
        .map(|mut i| {
            let (mut at, mut stride) = (0, 1);
            for k in (0..out.len()).rev() {
                let coordinate = i % out[k];
                i /= out[k];
                at += (coordinate % dims[k]) * stride;
                stride *= dims[k];
            }
            c.values[at]
        })
        .collect();
    Ok(values)
}
