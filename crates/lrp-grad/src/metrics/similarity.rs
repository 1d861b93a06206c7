//! How alike two explanations are — what the randomisation checks compare: Spearman's rank
//! correlation over all values, and the structural similarity index (SSIM) of two maps, as
//! Quantus 0.6.0 computes them (its `correlation_spearman`, and its `ssim`, which calls
//! scikit-image's `structural_similarity` with its defaults and the pair's joint range).

use super::perturbation::per_pixel;
use crate::error::{Error, Result};

/// Which similarity of two explanations a randomisation check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Similarity {
    /// Spearman's rank correlation over all values.
    Spearman,
    /// The mean structural similarity of two `[H, W]` maps (channels summed first).
    Ssim,
}

impl Similarity {
    /// The similarity of `a` and `b`, each `[C, H, W]` (`dims`).
    pub fn of(self, a: &[f32], b: &[f32], dims: [usize; 3]) -> Result<f64> {
        match self {
            Similarity::Spearman => Ok(spearman(a, b)),
            Similarity::Ssim => ssim(&per_pixel(a, dims), &per_pixel(b, dims), [dims[1], dims[2]]),
        }
    }
}

/// Spearman's rank correlation (average ranks for ties; 0 where either series is constant).
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    super::pearson(&ra, &rb)
}

/// Ranks from 1, ties sharing their average rank.
fn ranks(v: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && v[order[end + 1]] == v[order[start]] {
            end += 1;
        }
        let rank = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            ranks[i] = rank;
        }
        start = end + 1;
    }
    ranks
}

/// The side of SSIM's square window (scikit-image's default).
const WINDOW: usize = 7;

/// The mean structural similarity of two `[H, W]` maps (Wang et al. 2004, as scikit-image
/// computes it: 7 × 7 box windows that lie wholly inside the map, sample covariances,
/// `K1 = 0.01`, `K2 = 0.03`, the data range being the pair's joint max − min). Two maps of one
/// and the same constant are identical: 1 (scikit-image gives NaN).
///
/// # Shapes
/// - `a`, `b`: `H·W` values, row-major; `H, W ≥ 7`.
pub fn ssim(a: &[f32], b: &[f32], [h, w]: [usize; 2]) -> Result<f64> {
    if h < WINDOW || w < WINDOW || a.len() != h * w || b.len() != h * w {
        return Err(Error::InvalidMetric {
            reason: format!(
                "SSIM of maps of {} and {} values as {h} × {w}: both must hold H·W values, H and W at least {WINDOW}",
                a.len(),
                b.len()
            ),
        });
    }
    let (lo, hi) = (a.iter().chain(b)).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(f64::from(v)), hi.max(f64::from(v)))
    });
    if hi == lo {
        // Both maps one and the same constant: identical (scikit-image divides 0 by 0 here).
        return Ok(1.0);
    }
    let (c1, c2) = ((0.01 * (hi - lo)).powi(2), (0.03 * (hi - lo)).powi(2));
    let np = (WINDOW * WINDOW) as f64;
    let mut total = 0.0;
    for y in 0..=h - WINDOW {
        for x in 0..=w - WINDOW {
            let [ma, mb, aa, bb, ab] = window_moments(a, b, w, (y, x));
            let norm = np / (np - 1.0);
            let (va, vb, vab) = (
                norm * (aa - ma * ma),
                norm * (bb - mb * mb),
                norm * (ab - ma * mb),
            );
            total += (2.0 * ma * mb + c1) * (2.0 * vab + c2)
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        }
    }
    Ok(total / ((h - WINDOW + 1) * (w - WINDOW + 1)) as f64)
}

/// Means of `a`, `b`, `a²`, `b²` and `a·b` over the window whose top-left corner is `(y, x)`.
fn window_moments(a: &[f32], b: &[f32], w: usize, (y, x): (usize, usize)) -> [f64; 5] {
    let mut m = [0.0; 5];
    for yy in y..y + WINDOW {
        for xx in x..x + WINDOW {
            let (p, q) = (f64::from(a[yy * w + xx]), f64::from(b[yy * w + xx]));
            for (acc, v) in m.iter_mut().zip([p, q, p * p, q * q, p * q]) {
                *acc += v;
            }
        }
    }
    m.map(|v| v / (WINDOW * WINDOW) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_ranks_with_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[9.0, 4.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_a_map_with_itself_is_one_and_of_its_mirror_image_below_zero() {
        let a: Vec<f32> = (0..64).map(|v| ((v * 37) % 11) as f32).collect();
        assert!((ssim(&a, &a, [8, 8]).unwrap() - 1.0).abs() < 1e-12);
        // 10 − a: about the same means, opposite structure.
        let mirrored: Vec<f32> = a.iter().map(|v| 10.0 - v).collect();
        assert!(ssim(&a, &mirrored, [8, 8]).unwrap() < 0.0);
    }

    #[test]
    fn ssim_of_one_window_is_the_formula() {
        // A 7 × 7 map has one window: SSIM = (2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)).
        let a: Vec<f32> = (0..49).map(|v| v as f32).collect();
        let b: Vec<f32> = (0..49)
            .map(|v| (48 - v) as f32 * 0.5 + (v % 3) as f32)
            .collect();
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / 49.0;
        let (ma, mb) = (mean(&a), mean(&b));
        let cov = |p: &[f32], q: &[f32], mp: f64, mq: f64| {
            p.iter()
                .zip(q)
                .map(|(&x, &y)| (f64::from(x) - mp) * (f64::from(y) - mq))
                .sum::<f64>()
                / 48.0
        };
        let range = 48.0f64; // joint max − min: a spans 0 … 48, b lies inside it
        let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
        let expected = (2.0 * ma * mb + c1) * (2.0 * cov(&a, &b, ma, mb) + c2)
            / ((ma * ma + mb * mb + c1) * (cov(&a, &a, ma, ma) + cov(&b, &b, mb, mb) + c2));
        assert!((ssim(&a, &b, [7, 7]).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_maps_smaller_than_its_window_is_refused() {
        assert!(ssim(&[0.0; 36], &[0.0; 36], [6, 6]).is_err());
    }
}
