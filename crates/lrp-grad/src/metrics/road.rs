//! ROAD, "remove and debias" (Rong et al. 2022), as Quantus 0.6.0 computes it: for each
//! percentage `p`, the `⌊H·W·p/100⌋` most relevant pixels (relevance summed over channels,
//! every channel of a pixel removed together) are replaced by noisy linear imputation, and
//! the curve records whether the model still predicts the target. Averaged over samples, a
//! faithful explanation makes the accuracy fall fast.
//!
//! The imputations of a sample run in parallel with other samples' (rayon); each carries its
//! solution to the next percentage as the solver's first guess (the removed sets are nested).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use super::imputation::noisy_linear_imputation;
use super::perturbation::{Images, descending, per_pixel, predictions};
use crate::error::{Error, Result};
use crate::model::AsGraph;

/// Quantus' default percentages: 1, 3, …, 99.
pub fn road_percentages() -> Vec<f64> {
    (1..100).step_by(2).map(f64::from).collect()
}

/// Per sample, 1 where the model still predicts the target after each percentage of the
/// most relevant pixels is imputed, else 0 (`percentages` in `(0, 100)`; `noise` the standard
/// deviation added to imputed values; each sample's noise seeded by `seed` and its index).
pub fn road(
    model: &impl AsGraph,
    images: Images<'_>,
    percentages: &[f64],
    (noise, seed): (f64, u64),
) -> Result<Vec<Vec<f64>>> {
    images.check()?;
    if percentages.is_empty() {
        return Err(Error::InvalidMetric {
            reason: "ROAD needs at least one percentage".into(),
        });
    }
    if let Some(p) = percentages.iter().find(|p| !(**p > 0.0 && **p < 100.0)) {
        return Err(Error::InvalidMetric {
            reason: format!("ROAD percentage {p}: expected a value in (0, 100)"),
        });
    }
    let n = images.dims[0];
    let group = rayon::current_num_threads().max(1);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(group) {
        let copies: Vec<Vec<Vec<f32>>> = (start..(start + group).min(n))
            .into_par_iter()
            .map(|i| imputed_copies(images, i, percentages, (noise, seed)))
            .collect::<Result<_>>()?;
        for (k, copies) in copies.iter().enumerate() {
            let target = images.targets[start + k];
            let classes = predictions(model, copies, images.dims)?;
            out.push(
                classes
                    .iter()
                    .map(|&c| f64::from(u8::from(c == target)))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Sample `i` with each percentage of its most relevant pixels imputed.
fn imputed_copies(
    images: Images<'_>,
    i: usize,
    percentages: &[f64],
    (noise, seed): (f64, u64),
) -> Result<Vec<Vec<f32>>> {
    let [_, c, h, w] = images.dims;
    let (x, a) = images.sample(i);
    let order = descending(&per_pixel(a, [c, h, w]));
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
    let mut estimate: Vec<f64> = x.iter().copied().map(f64::from).collect();
    (percentages.iter())
        .map(|p| {
            let k = (h * w) as f64 * p / 100.0;
            let removed = &order[..k as usize];
            noisy_linear_imputation(x, [c, h, w], removed, (noise, &mut rng), &mut estimate)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_percentages_are_quantus_odd_steps() {
        let p = road_percentages();
        assert_eq!((p.len(), p[0], p[49]), (50, 1.0, 99.0));
    }
}
