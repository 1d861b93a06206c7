//! Faithfulness correlation (Bhatt et al. 2020): over random subsets of the input, how well the
//! relevance a subset holds predicts the score's drop when the subset is replaced — the
//! Pearson correlation of `Σ_S a` and `f(x) − f(x_S)` over `runs` subsets (seeded; every
//! perturbed copy of a sample in one batched forward pass).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;

use super::perturbation::{Baseline, Images, Score, scores};
use crate::error::{Error, Result};
use crate::model::AsGraph;

/// Per sample, the correlation between the relevance of `runs` random subsets of
/// `subset_size` input values and the score's drop when they are replaced.
pub fn faithfulness_correlation(
    model: &impl AsGraph,
    images: Images<'_>,
    (subset_size, runs, seed): (usize, usize, u64),
    (baseline, score): (Baseline, Score),
) -> Result<Vec<f64>> {
    images.check()?;
    let per = images.dims[1] * images.dims[2] * images.dims[3];
    if subset_size == 0 || subset_size > per || runs < 2 {
        return Err(Error::InvalidMetric {
            reason: format!(
                "subset size {subset_size} (expected 1 to {per}) and runs {runs} (expected 2 or more)"
            ),
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    (0..images.dims[0])
        .map(|i| {
            let (x, a) = images.sample(i);
            let value = baseline.value(x);
            let mut copies = vec![x.to_vec()];
            let mut held = Vec::with_capacity(runs);
            for _ in 0..runs {
                let subset = sample(&mut rng, per, subset_size);
                let mut copy = x.to_vec();
                held.push(subset.iter().map(|j| f64::from(a[j])).sum::<f64>());
                for j in subset.iter() {
                    copy[j] = value;
                }
                copies.push(copy);
            }
            let s = scores(model, &copies, images.dims, images.targets[i], score)?;
            let drops: Vec<f64> = s[1..].iter().map(|v| s[0] - v).collect();
            Ok(pearson(&held, &drops))
        })
        .collect()
}

/// The Pearson correlation of two equally long series (0 where one is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let (va, vb): (f64, f64) = (
        a.iter().map(|x| (x - ma).powi(2)).sum(),
        b.iter().map(|y| (y - mb).powi(2)).sum(),
    );
    match va > 0.0 && vb > 0.0 {
        true => cov / (va * vb).sqrt(),
        false => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_is_one_for_a_linear_relation_and_minus_one_reversed() {
        let a = [1.0, 2.0, 4.0];
        assert!((pearson(&a, &[3.0, 5.0, 9.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &[-1.0, -2.0, -4.0]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&a, &[2.0; 3]), 0.0);
    }
}
