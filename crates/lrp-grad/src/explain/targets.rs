//! Which output is explained, and the relevance it starts from.

use burn::tensor::{Int, Tensor, TensorData};

use super::{Explainer, OutputRelevance, Target};
use crate::error::{Error, Result};

impl Explainer {
    /// The output relevance `[N, classes]` and the explained classes.
    pub(super) fn initial_relevance(
        &self,
        output: &Tensor<2>,
        n: usize,
        classes: usize,
        mode: OutputRelevance,
    ) -> Result<(Option<Vec<usize>>, Tensor<2>)> {
        let targets = match &self.target {
            Target::Relevance(relevance) => {
                if relevance.dims() != [n, classes] {
                    return Err(Error::OutputRelevanceShape {
                        expected: vec![n, classes],
                        found: relevance.dims().to_vec(),
                    });
                }
                let relevance = relevance
                    .clone()
                    .without_autodiff()
                    .to_device(&output.device());
                return Ok((None, relevance));
            }
            Target::Predicted => {
                let predicted: Tensor<2, Int> = output.clone().argmax(1);
                predicted
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .expect("argmax gives integers")
                    .into_iter()
                    .map(|c| c as usize)
                    .collect()
            }
            Target::Class(class) => vec![*class; n],
            Target::PerSample(classes) => classes.clone(),
        };
        if targets.len() != n {
            return Err(Error::TargetCountMismatch {
                expected: n,
                found: targets.len(),
            });
        }
        if let Some((sample, &class)) = targets.iter().enumerate().find(|(_, c)| **c >= classes) {
            return Err(Error::TargetOutOfRange {
                sample,
                class,
                classes,
            });
        }
        let mut one_hot = vec![0.0f32; n * classes];
        for (sample, class) in targets.iter().enumerate() {
            one_hot[sample * classes + class] = 1.0;
        }
        let one_hot =
            Tensor::<2>::from_data(TensorData::new(one_hot, [n, classes]), &output.device());
        let relevance = match mode {
            OutputRelevance::OneHot => one_hot,
            OutputRelevance::Logit => one_hot * output.clone(),
        };
        Ok((Some(targets), relevance))
    }
}
