//! `x / max(‖y‖₂, ε)` over the last axis: PyTorch's `F.normalize` as exporters write it
//! (Swin v2's cosine attention normalizes its queries and keys), with `y` the value whose norm
//! is taken — `x` itself, or the same values computed a second time (the dynamo exporter
//! repeats the subgraph). Relevance: the norm is a constant, as LXT holds the `rsqrt`/`std` of
//! norms constant, so all of it stays with `x` and none enters `y`'s branch.

use burn::module::Module;
use burn::tensor::Tensor;

use super::attention::last_axis;
use super::lrp::{Form, Lrp, Refusal, Route, route};
use super::operator::{Arity, Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// `x / max(‖y‖₂, ε)` along the last per-sample axis (see the module docs).
///
/// # Shapes
/// - input 0 (`x`) and input 1 (`y`): one per-sample shape
/// - output: that shape
#[derive(Module, Debug)]
pub struct Normalize {
    /// The smallest norm divided by (PyTorch's default 1e-12).
    pub epsilon: f64,
}

impl Operator for Normalize {
    fn kind(&self) -> &'static str {
        "l2_normalize"
    }

    fn arity(&self) -> Arity {
        Arity(
            "two inputs (the value and the value whose norm divides it)",
            |n| n == 2,
        )
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        match inputs[0] == inputs[1] {
            true => Ok(inputs[0]),
            false => Err(format!(
                "the value {} and the value of its norm {} must have one shape",
                inputs[0], inputs[1]
            )
            .into()),
        }
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, input: FeatureShape) -> Tensor<4> {
        let y = inputs.pop().expect("two inputs");
        let norm = y
            .powf_scalar(2.0)
            .sum_dim(last_axis(input))
            .sqrt()
            .clamp_min(self.epsilon);
        inputs.remove(0) / norm
    }
}

impl Lrp for Normalize {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        // The second input is held constant: the gate's routing.
        route(rule, Route::Gate)
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
    fn each_row_is_divided_by_its_norm() {
        let device = Device::default();
        let shape = FeatureShape::new(&[2, 2]).unwrap();
        let x = Tensor::<1>::from_data(TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [4]), &device)
            .reshape(shape.batched(1));
        let out = Normalize { epsilon: 1e-12 }
            .forward(vec![x.clone(), x], shape)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(out, vec![0.6, 0.8, 0.0, 0.0], "a zero row stays zero (ε)");
    }
}
