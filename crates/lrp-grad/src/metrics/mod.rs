//! Evaluating explanations: faithfulness by perturbation (pixel flipping, region
//! perturbation, selectivity, faithfulness correlation, ROAD; token removal for text),
//! randomisation checks (MPRT, random logit), complexity (sparseness, entropy, effective
//! complexity) and completeness, at
//! parity with Quantus 0.6.0 (`tests/metrics.rs`, `tools/quantus-reference`) — on any model
//! lrp-grad loads, every perturbed copy of a sample in one batched forward pass.
//!
//! Quantus normalises an explanation batch by its largest magnitude before these metrics
//! ([`normalise_by_max`]); the complexity metrics then take magnitudes.

mod axiomatic;
mod complexity;
mod correlation;
mod imputation;
mod perturbation;
mod randomisation;
mod road;
mod similarity;
mod tokens;

pub use axiomatic::{completeness, input_invariance};
pub use complexity::{complexity, effective_complexity, sparseness};
pub use correlation::{faithfulness_correlation, pearson};
pub use imputation::noisy_linear_imputation;
pub use perturbation::{
    Baseline, Images, Score, Unit, auc, pixel_flipping, region_perturbation, selectivity,
};
pub use randomisation::{LayerOrder, mprt, random_logit, randomise_top_layers, similarities};
pub use road::{road, road_percentages};
pub use similarity::{Similarity, spearman, ssim};
pub use tokens::{Order, area_between, token_removal};

/// Divides every value by the largest magnitude of the whole batch (Quantus'
/// `normalise_by_max`); an all-zero batch is left as it is.
pub fn normalise_by_max(a: &mut [f32]) {
    let max = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max > 0.0 {
        for v in a {
            *v /= max;
        }
    }
}

/// The device `graph`'s parameters live on (the default one for a graph without any), where
/// the metrics put their perturbed copies.
pub(crate) fn device_of(graph: &crate::model::Graph) -> burn::tensor::Device {
    use burn::module::Module;
    graph.devices().into_iter().next().unwrap_or_default()
}
