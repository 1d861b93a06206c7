//! Attribution methods beside LRP, as Zennit's attributors define them: the gradient,
//! gradient × input, SmoothGrad, Integrated Gradients and occlusion. SmoothGrad and Integrated
//! Gradients can run over LRP instead of the plain gradient (Zennit's attributors with a
//! composite), where the "gradient" at a point is that point's relevance.

use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// Zennit's SmoothGrad noise level: σ = 0.1 · (max − min) of each sample.
pub const DEFAULT_NOISE_LEVEL: f64 = 0.1;
/// Zennit's number of SmoothGrad samples and Integrated-Gradients steps.
pub const DEFAULT_SAMPLES: usize = 20;
/// Default occlusion window and stride (Zennit's).
pub const DEFAULT_OCCLUSION_WINDOW: usize = 8;

/// What SmoothGrad and Integrated Gradients average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    /// The plain input gradient of the target score.
    #[default]
    Gradient,
    /// The LRP relevance of the explainer's composite.
    Lrp,
}

/// The baseline of Integrated Gradients.
#[derive(Debug, Clone, Default)]
pub enum Baseline {
    /// All zeros (Zennit's default).
    #[default]
    Zero,
    /// A tensor of the input's per-sample shape (`[F]` or `[C, H, W]`), or of the whole input.
    Tensor(TensorData),
}

/// An attribution method. Each returns a tensor of the input's shape.
///
/// | method | attribution |
/// |---|---|
/// | `Lrp` | layer-wise relevance with the explainer's composite |
/// | `Gradient` | `∂f_t/∂x` |
/// | `GradientTimesInput` | `x ⊙ ∂f_t/∂x` |
/// | `SmoothGrad` | `1/n Σₖ g(x + εₖ)`, `εₖ ~ N(0, σ²)`, `σ = noise·(max x − min x)`, the last `εₖ = 0` |
/// | `IntegratedGradients` | `(x − x̄) ⊙ 1/n Σₖ g(x̄ + k/n·(x − x̄))` (right Riemann sum, k = 1..n) |
/// | `Occlusion` | `Σ_{windows W ∋ p} f_t(x) − f_t(x with W set to fill)` |
#[derive(Debug, Clone, Default)]
pub enum Method {
    /// Layer-wise relevance propagation.
    #[default]
    Lrp,
    /// The input gradient (saliency).
    Gradient,
    /// Gradient × input.
    GradientTimesInput,
    /// SmoothGrad.
    SmoothGrad {
        /// Number of noisy samples (the last one noise-free, as Zennit does).
        samples: usize,
        /// σ as a fraction of each sample's value range.
        noise: f64,
        /// Seed of the noise.
        seed: u64,
        /// What is averaged.
        base: Base,
    },
    /// Integrated Gradients.
    IntegratedGradients {
        /// Number of steps on the path.
        steps: usize,
        /// The path's start.
        baseline: Baseline,
        /// What is averaged.
        base: Base,
    },
    /// Occlusion: the drop of the target score when a window is covered.
    Occlusion {
        /// Window size (height, width); clipped to the image.
        window: [usize; 2],
        /// Stride (height, width).
        stride: [usize; 2],
        /// The value covering the window.
        fill: f32,
    },
}

impl Method {
    /// SmoothGrad with Zennit's defaults (20 samples, noise 0.1) and seed 0.
    pub fn smooth_grad() -> Self {
        Method::SmoothGrad {
            samples: DEFAULT_SAMPLES,
            noise: DEFAULT_NOISE_LEVEL,
            seed: 0,
            base: Base::Gradient,
        }
    }

    /// Integrated Gradients with a zero baseline and 20 steps.
    pub fn integrated_gradients() -> Self {
        Method::IntegratedGradients {
            steps: DEFAULT_SAMPLES,
            baseline: Baseline::Zero,
            base: Base::Gradient,
        }
    }

    /// Occlusion with an 8×8 window, stride 8, filled with 0.
    pub fn occlusion() -> Self {
        Method::Occlusion {
            window: [DEFAULT_OCCLUSION_WINDOW; 2],
            stride: [DEFAULT_OCCLUSION_WINDOW; 2],
            fill: 0.0,
        }
    }

    /// The method's name, as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Lrp => "lrp",
            Method::Gradient => "gradient",
            Method::GradientTimesInput => "gradient-x-input",
            Method::SmoothGrad { .. } => "smoothgrad",
            Method::IntegratedGradients { .. } => "integrated-gradients",
            Method::Occlusion { .. } => "occlusion",
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidMethod {
                method: self.name(),
                reason,
            })
        };
        match self {
            Method::SmoothGrad { samples: 0, .. } => invalid("samples must be at least 1".into()),
            Method::SmoothGrad { noise, .. } if !(noise.is_finite() && *noise >= 0.0) => {
                invalid(format!("noise must be finite and >= 0, got {noise}"))
            }
            Method::IntegratedGradients { steps: 0, .. } => {
                invalid("steps must be at least 1".into())
            }
            Method::Occlusion {
                window,
                stride,
                fill,
            } => {
                if window.contains(&0) || stride.contains(&0) {
                    invalid(format!(
                        "window {window:?} and stride {stride:?} must be positive"
                    ))
                } else if !fill.is_finite() {
                    invalid(format!("fill must be finite, got {fill}"))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// Seeded standard-normal noise of a shape, drawn on the host (reproducible on every backend).
pub(crate) fn normal_noise(dims: [usize; 4], seed: u64, like: &Tensor<4>) -> Tensor<4> {
    let mut rng = StdRng::seed_from_u64(seed);
    let count = dims.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_data(TensorData::new(values, dims), &like.device())
}

/// Per-sample `max − min` as a `[N, 1, 1, 1]` tensor.
pub(crate) fn value_range(x: &Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let flat = x.clone().reshape([n, c * h * w]);
    let range = flat.clone().max_dim(1) - flat.min_dim(1);
    range.reshape([n, 1, 1, 1])
}

/// The occlusion windows over an `h × w` image: `(top, left, height, width)`, clipped at the
/// border (Zennit's roll wraps windows around instead; with a stride that divides the image
/// the two agree).
pub(crate) fn windows(
    h: usize,
    w: usize,
    window: [usize; 2],
    stride: [usize; 2],
) -> Vec<(usize, usize, usize, usize)> {
    let (wh, ww) = (window[0].min(h), window[1].min(w));
    let mut out = Vec::new();
    for top in (0..h).step_by(stride[0]) {
        for left in (0..w).step_by(stride[1]) {
            out.push((top, left, wh.min(h - top), ww.min(w - left)));
        }
    }
    out
}
