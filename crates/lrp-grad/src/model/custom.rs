//! Operations defined outside the library: a user's crate implements [`Operation`] (its shape
//! rule, its forward pass and its LRP form) and puts it in a graph with `Builder::custom` or
//! [`Graph::custom`](super::Graph::custom); the engine asks the operation, as Zennit lets a
//! user hook any module. See `examples/custom_op.rs`.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;

use super::FeatureShape;
use super::lrp::{Form, Refusal};
pub use super::operation::Operation;

/// A user's [`Operation`] as a node of a graph (a Burn module without parameters).
#[derive(Module, Debug)]
pub struct Custom {
    /// The operation.
    #[module(skip)]
    pub operation: Arc<dyn Operation>,
}

impl Custom {
    /// Wraps `operation`.
    pub fn new(operation: impl Operation + 'static) -> Self {
        Self {
            operation: Arc::new(operation),
        }
    }
}

impl super::operator::Operator for Custom {
    fn kind(&self) -> &'static str {
        self.operation.kind()
    }

    fn output_shape(
        &self,
        _: usize,
        inputs: &[FeatureShape],
    ) -> Result<FeatureShape, super::operator::ShapeError> {
        Ok(self.operation.output_shape(inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        self.operation.forward(inputs.remove(0))
    }
}

impl super::lrp::Lrp for Custom {
    fn form(&self, rule: Option<&crate::rules::Rule>) -> Result<Form<'_>, Refusal> {
        match rule {
            None | Some(crate::rules::Rule::Pass) => Ok(Form::Custom(&*self.operation)),
            Some(_) => Err(Refusal::Mismatch(
                "a user's operation takes pass: its own LRP form (`Operation::lrp_forward`)",
            )),
        }
    }

    fn keeps_nonnegative(&self, _first: bool, _all: bool) -> bool {
        false
    }
}
