//! The logit softcap `cap · tanh(x / cap)` (Gemma 2's and Gemma 3's `attn_logit_softcapping`
//! on attention scores before the mask, `final_logit_softcapping` on the logits): it bends
//! large values towards ±cap.
//!
//! Relevance: LXT 2.1's efficient mode leaves the softcap unpatched, so its plain gradient
//! `1 − tanh²(x / cap)` carries the relevance there (the efficient composites name it with
//! [`LayerType::Softcap`] and [`Rule::Gradient`]); otherwise — LXT's explicit rules treat
//! element-wise nonlinearities so — relevance crosses unchanged (the identity rule).

use burn::module::Module;
use burn::tensor::Tensor;

use super::lrp::{Form, Lrp, Refusal};
use super::operation::Operation;
use super::operator::{LayerType, Operator, ShapeError};
use super::shape::FeatureShape;
use crate::rules::Rule;

/// `cap · tanh(x / cap)`, element-wise (see the module docs).
///
/// # Shapes
/// - input: any per-sample shape
/// - output: the input's shape
#[derive(Module, Debug)]
pub struct Softcap {
    /// The bound the values approach (`> 0`).
    pub cap: f64,
}

impl Softcap {
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        x.div_scalar(self.cap).tanh().mul_scalar(self.cap)
    }

    /// The input's shape, for a cap that is a positive number.
    fn shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        match self.cap > 0.0 && self.cap.is_finite() {
            true => Ok(input),
            false => Err(format!(
                "a softcap must be a positive number, got {}",
                self.cap
            )),
        }
    }
}

impl Operator for Softcap {
    fn kind(&self) -> &'static str {
        "softcap"
    }

    fn output_shape(&self, _: usize, inputs: &[FeatureShape]) -> Result<FeatureShape, ShapeError> {
        Ok(self.shape(inputs[0])?)
    }

    fn forward(&self, mut inputs: Vec<Tensor<4>>, _: FeatureShape) -> Tensor<4> {
        self.apply(inputs.remove(0))
    }

    fn is(&self, ty: LayerType) -> bool {
        ty == LayerType::Softcap
    }
}

/// Its gradient form: the softcap itself, whose input × gradient of `R / z` is the plain
/// gradient's relevance (LXT's efficient mode).
impl Operation for Softcap {
    fn kind(&self) -> &'static str {
        "softcap"
    }

    fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        self.shape(input)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.apply(x)
    }

    fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.apply(x)
    }
}

impl Lrp for Softcap {
    fn form(&self, rule: Option<&Rule>) -> Result<Form<'_>, Refusal> {
        match rule {
            None | Some(Rule::Pass) => Ok(Form::Identity),
            Some(Rule::Gradient) => Ok(Form::Gradient(self)),
            Some(_) => Err(Refusal::Mismatch(
                "a softcap takes pass (the identity rule) or gradient (LXT's efficient mode)",
            )),
        }
    }

    fn keeps_nonnegative(&self, first: bool, _all: bool) -> bool {
        // tanh keeps the sign.
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn the_softcap_is_cap_tanh_of_x_over_cap() {
        let xs = [-40.0f32, -3.0, -0.5, 0.0, 0.25, 2.0, 7.5, 1e3];
        let x = Tensor::<4>::from_data(
            TensorData::new(xs.to_vec(), [1, 1, 2, 4]),
            &Device::default(),
        );
        let got = Softcap { cap: 5.0 }
            .apply(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (&xi, &yi) in xs.iter().zip(&got) {
            let want = 5.0 * (xi as f64 / 5.0).tanh();
            assert!(
                (yi as f64 - want).abs() < 1e-6,
                "softcap({xi}) = {yi}, not {want}"
            );
        }
    }

    #[test]
    fn a_cap_that_is_not_positive_is_refused_with_its_value() {
        let input = [FeatureShape::vector(3)];
        let Err(ShapeError::Reason(err)) = Operator::output_shape(&Softcap { cap: 0.0 }, 0, &input)
        else {
            panic!("a zero cap was accepted");
        };
        assert!(err.contains("positive") && err.contains('0'), "{err}");
    }

    #[test]
    fn the_gradient_rule_is_the_softcap_itself_and_others_are_refused() {
        let cap = Softcap { cap: 2.0 };
        assert!(matches!(cap.form(None), Ok(Form::Identity)));
        let plan = cap.form(Some(&Rule::Gradient)).unwrap().propagation();
        assert_eq!(plan, crate::model::Propagation::Gradient);
        assert!(matches!(
            cap.form(Some(&Rule::Gradient)),
            Ok(Form::Gradient(_))
        ));
        let refused = cap.form(Some(&Rule::Epsilon { epsilon: 1e-6 }));
        assert!(matches!(refused, Err(Refusal::Mismatch(m)) if m.contains("softcap")));
    }
}
