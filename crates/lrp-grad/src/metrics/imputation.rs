//! Noisy linear imputation (Rong et al. 2022, "ROAD"; Quantus' `noisy_linear_imputation`): each
//! removed pixel becomes the weighted mean of its eight neighbours — ⅙ for the four sharing an
//! edge, ¹⁄₁₂ for the diagonals, the weights of neighbours outside the image dropped — where
//! removed neighbours are themselves unknowns, so the values solve one sparse linear system per
//! channel; then Gaussian noise is added. Unlike a constant baseline, the imputed pixels carry
//! no shape the model could read the removal from.
//!
//! The system `s_i v_i − Σ_{j removed} w_ij v_j = Σ_{j kept} w_ij x_j` is symmetric and
//! diagonally dominant (strictly where a pixel has a kept neighbour, and every removed region
//! touches one while a pixel is kept), hence positive definite: conjugate gradients in f64
//! solve it to 1e-12, starting from a guess the caller may carry over from a smaller removal.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{Error, Result};

/// The eight neighbours' offsets (row, column) and weights.
const NEIGHBOURS: [((isize, isize), f64); 8] = [
    ((1, 1), 1.0 / 12.0),
    ((0, 1), 1.0 / 6.0),
    ((-1, 1), 1.0 / 12.0),
    ((1, -1), 1.0 / 12.0),
    ((0, -1), 1.0 / 6.0),
    ((-1, -1), 1.0 / 12.0),
    ((1, 0), 1.0 / 6.0),
    ((-1, 0), 1.0 / 6.0),
];

/// One removed pixel's equation: its neighbours' weights, split into unknowns (by their
/// index among the removed) and kept pixels (by their flat pixel index).
struct Row {
    diagonal: f64,
    unknown: Vec<(usize, f64)>,
    kept: Vec<(usize, f64)>,
}

/// `x` `[C, H, W]` with the pixels `removed` (flat indices into `H·W`, every channel) imputed,
/// plus `noise · N(0, 1)` drawn from `rng`. `estimate` (`[C, H, W]`, f64) holds the starting
/// guess at the removed pixels and receives the noise-free solution there.
///
/// # Shapes
/// - `x`, `estimate`: `C·H·W` values, row-major.
pub fn noisy_linear_imputation(
    x: &[f32],
    [c, h, w]: [usize; 3],
    removed: &[usize],
    (noise, rng): (f64, &mut impl Rng),
    estimate: &mut [f64],
) -> Result<Vec<f32>> {
    check(x.len(), [c, h, w], removed)?;
    let rows = system([h, w], removed);
    let mut out = x.to_vec();
    for ch in 0..c {
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        let b: Vec<f64> = (rows.iter())
            .map(|r| r.kept.iter().map(|&(j, wt)| wt * f64::from(plane[j])).sum())
            .collect();
        let guess = &mut estimate[ch * h * w..(ch + 1) * h * w];
        let mut v: Vec<f64> = removed.iter().map(|&p| guess[p]).collect();
        conjugate_gradients(&rows, &b, &mut v);
        for (&p, &value) in removed.iter().zip(&v) {
            guess[p] = value;
            let e: f64 = rng.sample(StandardNormal);
            out[ch * h * w + p] = (value + noise * e) as f32;
        }
    }
    Ok(out)
}

fn check(len: usize, [c, h, w]: [usize; 3], removed: &[usize]) -> Result<()> {
    let invalid = |reason: String| Err(Error::InvalidMetric { reason });
    if len != c * h * w {
        return invalid(format!("{len} values for an image of [{c}, {h}, {w}]"));
    }
    if removed.len() >= h * w {
        return invalid(format!(
            "imputing {} of {} pixels: at least one must be kept",
            removed.len(),
            h * w
        ));
    }
    match removed.iter().find(|&&p| p >= h * w) {
        Some(p) => invalid(format!("pixel {p} of an image of {h} × {w}")),
        None => Ok(()),
    }
}

/// The equations of the removed pixels.
fn system([h, w]: [usize; 2], removed: &[usize]) -> Vec<Row> {
    let mut unknown_of = vec![usize::MAX; h * w];
    for (k, &p) in removed.iter().enumerate() {
        unknown_of[p] = k;
    }
    (removed.iter())
        .map(|&p| {
            let (y, x) = ((p / w) as isize, (p % w) as isize);
            let mut row = Row {
                diagonal: 0.0,
                unknown: Vec::new(),
                kept: Vec::new(),
            };
            for ((dy, dx), wt) in NEIGHBOURS {
                let (ny, nx) = (y + dy, x + dx);
                if ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
                    continue;
                }
                let q = ny as usize * w + nx as usize;
                row.diagonal += wt;
                match unknown_of[q] {
                    usize::MAX => row.kept.push((q, wt)),
                    k => row.unknown.push((k, wt)),
                }
            }
            row
        })
        .collect()
}

fn apply(rows: &[Row], v: &[f64], out: &mut [f64]) {
    for (i, (o, r)) in out.iter_mut().zip(rows).enumerate() {
        let coupled: f64 = r.unknown.iter().map(|&(k, wt)| wt * v[k]).sum();
        *o = r.diagonal * v[i] - coupled;
    }
}

/// Jacobi-preconditioned conjugate gradients, from `v` as the first guess, until the
/// residual is below 1e-12 of the right-hand side (or as many iterations as unknowns, ×4).
fn conjugate_gradients(rows: &[Row], b: &[f64], v: &mut [f64]) {
    let n = b.len();
    let norm_b = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut av = vec![0.0; n];
    apply(rows, v, &mut av);
    let mut r: Vec<f64> = b.iter().zip(&av).map(|(b, a)| b - a).collect();
    let mut z: Vec<f64> = r
        .iter()
        .zip(rows)
        .map(|(r, row)| r / row.diagonal)
        .collect();
    let mut p = z.clone();
    let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
    for _ in 0..4 * n.max(1) {
        if r.iter().map(|x| x * x).sum::<f64>().sqrt() <= 1e-12 * norm_b.max(f64::MIN_POSITIVE) {
            break;
        }
        apply(rows, &p, &mut av);
        let alpha = rz / p.iter().zip(&av).map(|(a, b)| a * b).sum::<f64>();
        for i in 0..n {
            v[i] += alpha * p[i];
            r[i] -= alpha * av[i];
            z[i] = r[i] / rows[i].diagonal;
        }
        let next: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        let beta = next / rz;
        rz = next;
        for i in 0..n {
            p[i] = z[i] + beta * p[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn impute(x: &[f32], dims: [usize; 3], removed: &[usize]) -> Vec<f32> {
        let mut estimate = vec![0.0; x.len()];
        let mut rng = StdRng::seed_from_u64(0);
        noisy_linear_imputation(x, dims, removed, (0.0, &mut rng), &mut estimate).unwrap()
    }

    #[test]
    fn a_lone_pixel_becomes_its_neighbours_weighted_mean() {
        let x: Vec<f32> = (0..9).map(|v| (v * v) as f32).collect();
        let edges = (1.0 + 9.0 + 25.0 + 49.0) / 6.0;
        let corners = (0.0 + 4.0 + 36.0 + 64.0) / 12.0;
        assert!((impute(&x, [1, 3, 3], &[4])[4] as f64 - (edges + corners)).abs() < 1e-5);
    }

    #[test]
    fn two_removed_neighbours_solve_their_two_equations() {
        // A 1 × 3 strip: pixels 0 and 1 removed, pixel 2 = 6. Pixel 0 sees only pixel 1
        // (weight ⅙), pixel 1 sees 0 and 2: v0 = v1, 2·v1 = v0 + 6, so v0 = v1 = 6.
        let out = impute(&[1.0, 2.0, 6.0], [1, 1, 3], &[0, 1]);
        assert!((out[0] - 6.0).abs() < 1e-5 && (out[1] - 6.0).abs() < 1e-5);
        // A corner of a 2 × 2 image: its three neighbours, ⅙ + ⅙ + ¹⁄₁₂.
        let out = impute(&[0.0, 3.0, 6.0, 12.0], [1, 2, 2], &[0]);
        let expected = (3.0 / 6.0 + 6.0 / 6.0 + 12.0 / 12.0) / (1.0 / 6.0 + 1.0 / 6.0 + 1.0 / 12.0);
        assert!((out[0] as f64 - expected).abs() < 1e-5);
    }

    #[test]
    fn every_channel_is_imputed_and_noise_is_seeded() {
        let x: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let out = impute(&x, [2, 3, 3], &[4]);
        assert!((out[4] - 4.0).abs() < 1e-5 && (out[13] - 13.0).abs() < 1e-5);
        let noisy = |seed| {
            let mut e = vec![0.0; 18];
            let mut rng = StdRng::seed_from_u64(seed);
            noisy_linear_imputation(&x, [2, 3, 3], &[4], (0.5, &mut rng), &mut e).unwrap()
        };
        assert_eq!(noisy(1), noisy(1));
        assert_ne!(noisy(1), noisy(2));
    }

    #[test]
    fn removing_every_pixel_is_refused() {
        let mut e = vec![0.0; 4];
        let mut rng = StdRng::seed_from_u64(0);
        let r =
            noisy_linear_imputation(&[0.0; 4], [1, 2, 2], &[0, 1, 2, 3], (0.0, &mut rng), &mut e);
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("at least one must be kept")
        );
    }
}
