//! An independent reference for every LRP rule, written from the rules' definitions with plain
//! loops in f64 on an explicit matrix: no Burn, no autodiff, no code shared with the engine.
//! A convolution is unfolded into its matrix by an explicit loop over output and kernel
//! positions, so the same formulas serve dense and convolutional layers.

use lrp_grad::{Bound, Rule};

/// A linear map `z = M·x + b` as an explicit matrix, with its connectivity (which input feeds
/// which output: the flat rule counts connections, not weight values).
#[derive(Debug, Clone)]
pub struct Matrix {
    pub w: Vec<Vec<f64>>,
    pub connected: Vec<Vec<bool>>,
    pub b: Vec<f64>,
}

impl Matrix {
    /// From a PyTorch-layout dense weight `[out, in]`.
    pub fn dense(weight: &[f32], bias: Option<&[f32]>, d_in: usize, d_out: usize) -> Self {
        let w = (0..d_out)
            .map(|o| (0..d_in).map(|i| weight[o * d_in + i] as f64).collect())
            .collect();
        Matrix {
            w,
            connected: vec![vec![true; d_in]; d_out],
            b: bias.map_or(vec![0.0; d_out], |b| b.iter().map(|v| *v as f64).collect()),
        }
    }

    /// Unfolds a convolution on a `[C, H, W]` input; returns the matrix and the output `[O, Ho, Wo]`.
    pub fn conv(
        g: super::ConvGeometry,
        weight: &[f32],
        bias: Option<&[f32]>,
        input: [usize; 3],
    ) -> (Self, [usize; 3]) {
        let [c, h, w] = input;
        let out_size = |size: usize, k: usize, s: usize, p: usize, d: usize| {
            (size + 2 * p - d * (k - 1) - 1) / s + 1
        };
        let ho = out_size(h, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0]);
        let wo = out_size(w, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1]);
        let (o_n, cin_g, cout_g) = (g.out_channels, c / g.groups, g.out_channels / g.groups);
        let mut m = vec![vec![0.0; c * h * w]; o_n * ho * wo];
        let mut conn = vec![vec![false; c * h * w]; o_n * ho * wo];
        let mut b = vec![0.0; o_n * ho * wo];
        for o in 0..o_n {
            let group = o / cout_g;
            for oy in 0..ho {
                for ox in 0..wo {
                    let row = (o * ho + oy) * wo + ox;
                    b[row] = bias.map_or(0.0, |b| b[o] as f64);
                    for cl in 0..cin_g {
                        let ci = group * cin_g + cl;
                        for ky in 0..g.kernel[0] {
                            for kx in 0..g.kernel[1] {
                                let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                    - g.padding[0] as isize;
                                let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                    - g.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let col = (ci * h + iy as usize) * w + ix as usize;
                                let widx = ((o * cin_g + cl) * g.kernel[0] + ky) * g.kernel[1] + kx;
                                m[row][col] += weight[widx] as f64;
                                conn[row][col] = true;
                            }
                        }
                    }
                }
            }
        }
        (
            Matrix {
                w: m,
                connected: conn,
                b,
            },
            [o_n, ho, wo],
        )
    }

    /// Average pooling (padding counted, as PyTorch's default) on `[C, H, W]`.
    pub fn avg_pool(
        input: [usize; 3],
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> (Self, [usize; 3]) {
        let [c, h, w] = input;
        let (ho, wo) = (
            (h - kernel[0]) / stride[0] + 1,
            (w - kernel[1]) / stride[1] + 1,
        );
        let area = (kernel[0] * kernel[1]) as f64;
        let mut m = vec![vec![0.0; c * h * w]; c * ho * wo];
        for ch in 0..c {
            for oy in 0..ho {
                for ox in 0..wo {
                    for ky in 0..kernel[0] {
                        for kx in 0..kernel[1] {
                            let col = (ch * h + oy * stride[0] + ky) * w + ox * stride[1] + kx;
                            m[(ch * ho + oy) * wo + ox][col] = 1.0 / area;
                        }
                    }
                }
            }
        }
        let connected = m
            .iter()
            .map(|r| r.iter().map(|v| *v != 0.0).collect())
            .collect();
        (
            Matrix {
                w: m,
                connected,
                b: vec![0.0; c * ho * wo],
            },
            [c, ho, wo],
        )
    }

    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        self.w
            .iter()
            .zip(&self.b)
            .map(|(row, b)| row.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + b)
            .collect()
    }
}

fn stab(z: f64, eps: f64) -> f64 {
    z + eps * if z >= 0.0 { 1.0 } else { -1.0 }
}

fn pos(v: f64) -> f64 {
    v.max(0.0)
}
fn neg(v: f64) -> f64 {
    v.min(0.0)
}

fn bound(b: &Bound, i: usize) -> f64 {
    match b {
        Bound::Scalar(v) => *v,
        Bound::Tensor(data) => data.clone().convert::<f64>().try_to_vec::<f64>().unwrap()[i],
    }
}

/// Relevance of the input of `m` for one sample, by the rule's textbook definition:
/// `R_i = Σ_j c_ij · R_j / stab(Σ_i c_ij + bias term)`, with the rule's contributions `c_ij`.
pub fn lrp(rule: &Rule, m: &Matrix, x: &[f64], r: &[f64]) -> Vec<f64> {
    let (n_out, n_in) = (m.w.len(), x.len());
    let mut out = vec![0.0; n_in];
    // Adds Σ_j scale · c(i, j) · R_j / stab(Σ_i c(i, j) + bias(j)) to `out`.
    let mut redistribute = |c: &dyn Fn(usize, usize) -> f64,
                            bias: &dyn Fn(usize) -> f64,
                            keep: &dyn Fn(usize) -> bool,
                            scale: f64,
                            eps: f64| {
        for (j, r_j) in r.iter().enumerate().take(n_out) {
            if !keep(j) {
                continue;
            }
            let denom = stab((0..n_in).map(|i| c(i, j)).sum::<f64>() + bias(j), eps);
            for (i, o) in out.iter_mut().enumerate() {
                *o += scale * c(i, j) * r_j / denom;
            }
        }
    };
    let w = &m.w;
    let b = &m.b;
    let all = |_: usize| true;
    match rule {
        Rule::Zero | Rule::Epsilon { .. } | Rule::Norm => {
            let eps = match rule {
                Rule::Zero => 1e-9,
                Rule::Epsilon { epsilon } => *epsilon,
                _ => 1e-6,
            };
            redistribute(&|i, j| x[i] * w[j][i], &|j| b[j], &all, 1.0, eps);
        }
        Rule::LxtEpsilon { epsilon } => {
            // LXT's stabilizer adds ε without the sign of z.
            for (j, r_j) in r.iter().enumerate().take(n_out) {
                let z = (0..n_in).map(|i| x[i] * w[j][i]).sum::<f64>() + b[j];
                for (i, o) in out.iter_mut().enumerate() {
                    *o += x[i] * w[j][i] * r_j / (z + epsilon);
                }
            }
        }
        Rule::ZPlus => {
            redistribute(
                &|i, j| pos(x[i]) * pos(w[j][i]) + neg(x[i]) * neg(w[j][i]),
                &|j| pos(b[j]),
                &all,
                1.0,
                1e-6,
            );
        }
        Rule::AlphaBeta { alpha, beta } => {
            redistribute(
                &|i, j| pos(x[i]) * pos(w[j][i]) + neg(x[i]) * neg(w[j][i]),
                &|j| pos(b[j]),
                &all,
                *alpha,
                1e-6,
            );
            redistribute(
                &|i, j| pos(x[i]) * neg(w[j][i]) + neg(x[i]) * pos(w[j][i]),
                &|j| neg(b[j]),
                &all,
                -*beta,
                1e-6,
            );
        }
        Rule::Gamma { gamma } => {
            let g = *gamma;
            let z = m.forward(x);
            redistribute(
                &|i, j| {
                    pos(x[i]) * (w[j][i] + g * pos(w[j][i]))
                        + neg(x[i]) * (w[j][i] + g * neg(w[j][i]))
                },
                &|j| b[j] + g * pos(b[j]),
                &|j| z[j] > 0.0,
                1.0,
                1e-6,
            );
            redistribute(
                &|i, j| {
                    pos(x[i]) * (w[j][i] + g * neg(w[j][i]))
                        + neg(x[i]) * (w[j][i] + g * pos(w[j][i]))
                },
                &|j| b[j] + g * neg(b[j]),
                &|j| z[j] < 0.0,
                1.0,
                1e-6,
            );
        }
        Rule::ZBox { low, high } => {
            redistribute(
                &|i, j| {
                    x[i] * w[j][i] - bound(low, i) * pos(w[j][i]) - bound(high, i) * neg(w[j][i])
                },
                // b − b⁺ − b⁻ = 0: the bias cancels.
                &|_| 0.0,
                &all,
                1.0,
                1e-6,
            );
        }
        Rule::Flat => {
            redistribute(
                &|i, j| if m.connected[j][i] { 1.0 } else { 0.0 },
                &|_| 0.0,
                &all,
                1.0,
                1e-6,
            );
        }
        Rule::WSquare => {
            redistribute(&|i, j| w[j][i] * w[j][i], &|j| b[j] * b[j], &all, 1.0, 1e-6);
        }
        Rule::Pass | Rule::Gradient | Rule::Block => panic!("{rule:?} has no matrix form"),
        Rule::Custom(_) => panic!("custom rules are checked against the built-in ones"),
    }
    out
}

/// Every rule with a matrix form, with bounds wide enough for inputs in [-1, 1].
pub fn all_rules() -> Vec<Rule> {
    vec![
        Rule::Zero,
        Rule::Epsilon { epsilon: 1e-6 },
        Rule::Epsilon { epsilon: 0.3 },
        Rule::LxtEpsilon { epsilon: 1e-6 },
        Rule::Gamma { gamma: 0.25 },
        Rule::Gamma { gamma: 1.5 },
        Rule::AlphaBeta {
            alpha: 2.0,
            beta: 1.0,
        },
        Rule::AlphaBeta {
            alpha: 1.0,
            beta: 0.0,
        },
        Rule::ZPlus,
        Rule::ZBox {
            low: Bound::Scalar(-1.0),
            high: Bound::Scalar(1.0),
        },
        Rule::Flat,
        Rule::WSquare,
    ]
}
