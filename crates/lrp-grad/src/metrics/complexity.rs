//! How concentrated an explanation is: sparseness (the Gini index of |R|), complexity (the
//! entropy of |R| as a distribution) and effective complexity (how many |R| exceed a
//! threshold) — Chalasani et al. 2020, Bhatt et al. 2020, Nguyen & Martínez 2020, as Quantus
//! 0.6.0 computes them on one sample's attribution (all its values, every channel).

/// The Gini index of `|a|` (Quantus' `Sparseness`): 0 for a uniform explanation, towards 1 when
/// one value holds it all. Quantus adds 1e-7 to every sorted value (so an all-zero explanation
/// is uniform, not undefined).
pub fn sparseness(a: &[f32]) -> f64 {
    let mut v: Vec<f64> = a.iter().map(|x| f64::from(x.abs()) + 1e-7).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let weighted: f64 = (v.iter().enumerate())
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    weighted / (n * v.iter().sum::<f64>())
}

/// The entropy (natural log) of `|a| / Σ|a|` (Quantus' `Complexity`, `−Σ p·ln(p + 1e-12)`): ln n
/// for a uniform explanation, 0 when one value holds it all.
pub fn complexity(a: &[f32]) -> f64 {
    let total: f64 = a.iter().map(|x| f64::from(x.abs())).sum();
    if total == 0.0 {
        return 0.0;
    }
    (a.iter())
        .map(|x| f64::from(x.abs()) / total)
        .map(|p| -p * (p + 1e-12).ln())
        .sum()
}

/// How many `|a|` exceed `eps` (Quantus' `EffectiveComplexity`, default eps 1e-5).
pub fn effective_complexity(a: &[f32], eps: f64) -> usize {
    a.iter().filter(|x| f64::from(x.abs()) > eps).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |a| = (0, 1, 3) sorted, +1e-7 each: Gini = Σ (2i − n − 1)·aᵢ / (n Σa).
    #[test]
    fn sparseness_is_the_gini_index_of_the_magnitudes() {
        let a = [3.0f32, -1.0, 0.0];
        let v = [1e-7, 1.0 + 1e-7, 3.0 + 1e-7];
        let want = (-2.0 * v[0] + 0.0 * v[1] + 2.0 * v[2]) / (3.0 * (v[0] + v[1] + v[2]));
        assert!(
            (sparseness(&a) - want).abs() < 1e-12,
            "{} vs {want}",
            sparseness(&a)
        );
        assert!(sparseness(&[1.0; 8]).abs() < 1e-12, "uniform: 0");
    }

    #[test]
    fn complexity_is_the_entropy_of_the_magnitudes() {
        let want = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
        assert!((complexity(&[1.0, -3.0, 0.0]) - want).abs() < 1e-11);
        assert!((complexity(&[2.0; 4]) - 4f64.ln()).abs() < 1e-11);
        assert_eq!(complexity(&[0.0; 3]), 0.0);
    }

    #[test]
    fn effective_complexity_counts_values_above_the_threshold() {
        assert_eq!(effective_complexity(&[1e-6, -2e-5, 0.3, 0.0], 1e-5), 2);
    }
}
