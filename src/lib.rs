//! Support code for lrp-grad's examples, benchmarks and integration tests (not published):
//! MNIST reading, the fixed example/benchmark models, training, and figures.

/// The README's Rust examples run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Every example, benchmark and test binary allocates through mimalloc: Burn's CPU backends
/// allocate and free activation-sized buffers on every operation, and glibc's malloc returns
/// such large blocks to the system each time (mmap/munmap), so each new buffer starts with page
/// faults. Measured on mnist-cnn (batch 64, flex): input gradient 50 → 40 ms, LRP 23–29 % faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod faithfulness;
pub mod figures;
pub mod mnist;
pub mod train;
pub mod zoo;

use std::path::PathBuf;

use lrp_grad::{Base, Baseline, Composite, Explainer, Method, OutputRelevance};

/// Command-line options the MNIST examples that use a trained model share.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Directory with the four MNIST IDX files (default: $MNIST_DIR).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Directory of the trained models (mnist_train's --out); a missing model is trained first.
    #[arg(long, default_value = "mnist-output")]
    pub models: PathBuf,
    /// Where to write the results (default: the models directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Model: cnn or mlp.
    #[arg(long, default_value = "cnn")]
    pub model: String,
}

impl ModelArgs {
    /// The MNIST directory, the output directory (created) and the trained model. Without
    /// `--data` or `$MNIST_DIR`, the bundled sample (500 test digits) and the bundled trained
    /// CNN are used, so the examples run on a fresh clone.
    pub fn resolve(
        &self,
    ) -> anyhow::Result<(PathBuf, PathBuf, lrp_grad::interchange::LoadedModel)> {
        let source = mnist::Source::resolve(self.data.clone())?;
        let out = self.out.clone().unwrap_or_else(|| self.models.clone());
        std::fs::create_dir_all(&out)?;
        let loaded = match &source {
            mnist::Source::Full(data) => train::load_or_train(&self.model, &self.models, data)?,
            mnist::Source::Sample(dir) => train::load_bundled(&self.model, &self.models, dir)?,
        };
        Ok((source.dir().to_path_buf(), out, loaded))
    }
}

/// A tensor's values on the host, as f32.
pub fn floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

/// The explanation methods compared in the MNIST examples, by name. Pixels are in [0, 1], so
/// z-box gets the bounds 0 and 1.
pub fn mnist_methods() -> Vec<(String, Explainer)> {
    let lrp = |name: &str| {
        let composite =
            Composite::named(name, Some((0.0.into(), 1.0.into()))).expect("built-in composite");
        (format!("LRP {name}"), Explainer::new().composite(composite))
    };
    // Zennit's composites (AttnLRP and CP-LRP are for attention models: `mnist_vit`).
    let mut methods: Vec<(String, Explainer)> = lrp_grad::COMPOSITE_NAMES
        .iter()
        .filter(|n| !["attn-lrp", "cp-lrp"].contains(n))
        .map(|n| lrp(n))
        .collect();
    let one_hot = || Explainer::new().output_relevance(OutputRelevance::OneHot);
    methods.push(("gradient".into(), one_hot().method(Method::Gradient)));
    methods.push((
        "gradient x input".into(),
        one_hot().method(Method::GradientTimesInput),
    ));
    methods.push(("SmoothGrad".into(), one_hot().method(Method::smooth_grad())));
    methods.push((
        "Integrated Gradients".into(),
        one_hot().method(Method::IntegratedGradients {
            steps: lrp_grad::DEFAULT_SAMPLES,
            baseline: Baseline::Zero,
            base: Base::Gradient,
        }),
    ));
    methods
}

/// Occlusion with a 4x4 window and stride 2 (8x8 is coarse on 28x28 digits).
pub fn mnist_occlusion() -> (String, Explainer) {
    (
        "occlusion 4x4".into(),
        Explainer::new().method(Method::Occlusion {
            window: [4, 4],
            stride: [2, 2],
            fill: 0.0,
        }),
    )
}
