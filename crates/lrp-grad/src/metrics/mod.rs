//! Evaluating explanations: faithfulness by perturbation (pixel flipping, region
//! perturbation, selectivity; token removal for text) and complexity (sparseness, entropy, effective complexity), at
//! parity with Quantus 0.6.0 (`tests/metrics.rs`, `tools/quantus-reference`) — on any model
//! lrp-grad loads, every perturbed copy of a sample in one batched forward pass.
//!
//! Quantus normalises an explanation batch by its largest magnitude before these metrics
//! ([`normalise_by_max`]); the complexity metrics then take magnitudes.

mod complexity;
mod correlation;
mod perturbation;
mod randomisation;
mod tokens;

pub use complexity::{complexity, effective_complexity, sparseness};
pub use correlation::{faithfulness_correlation, pearson};
pub use perturbation::{
    Baseline, Images, Score, auc, pixel_flipping, region_perturbation, selectivity,
};
pub use randomisation::{mprt, randomise_top_layers, spearman};
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
