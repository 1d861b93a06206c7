//! Zeros placed before and after the entries of one per-sample axis (ONNX `Pad` in constant
//! mode with 0: Swin v2 pads a 7 × 7 map to its 8 × 8 windows). Relevance moves with the
//! values: the padded entries' share is dropped, as a prepended constant's is.

use burn::module::Module;
use burn::tensor::Tensor;

use super::lrp::{Form, Lrp, Refusal, Route, route};
use super::operator::{Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// `before` zeros, the values, `after` zeros along a per-sample axis.
///
/// # Shapes
/// - input: any per-sample shape with the axis
/// - output: the input's shape, the axis `before + after` longer
#[derive(Module, Debug, Default)]
pub struct Pad {
    /// The per-sample axis.
    pub axis: usize,
    /// Zeros before the values.
    pub before: usize,
    /// Zeros after the values.
    pub after: usize,
}

impl Operator for Pad {
    fn kind(&self) -> &'static str {
        "pad"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        let mut dims = inputs[0].dims();
        let Some(d) = dims.get_mut(self.axis) else {
            return Err(format!("no axis {} in per-sample shape {}", self.axis, inputs[0]).into());
        };
        *d += self.before + self.after;
        Ok(FeatureShape::new(&dims).map_err(|e| e.to_string())?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        let x = inputs.remove(0);
        let axis = input.internal_axis(self.axis);
        let zeros = |n: usize| {
            let mut dims = x.dims();
            dims[axis] = n;
            Tensor::<4>::zeros(dims, &x.device())
        };
        let parts = [(self.before, true), (0, false), (self.after, true)];
        let tensors: Vec<Tensor<4>> = parts
            .into_iter()
            .filter_map(|(n, pad)| match pad {
                true => (n > 0).then(|| zeros(n)),
                false => Some(x.clone()),
            })
            .collect();
        Tensor::cat(tensors, axis)
    }
}

impl Lrp for Pad {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        let back = Route::Prepend {
            axis: self.axis,
            skip: self.before,
        };
        route(rule, back)
    }

    fn keeps_nonnegative(&self, first: bool, _all: bool) -> bool {
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn zeros_go_before_and_after_the_axis() {
        let device = Device::default();
        let shape = FeatureShape::new(&[2, 2]).unwrap();
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4]), &device)
            .reshape(shape.batched(1));
        let pad = Pad {
            axis: 1,
            before: 1,
            after: 2,
        };
        let Ok(out_shape) = pad.output_shape(0, &[shape]) else {
            panic!("a pad fits its input")
        };
        assert_eq!(out_shape.dims(), vec![2, 5]);
        let out = pad
            .forward(vec![x], shape)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out, vec![0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
    }
}
