//! `lrp-grad bench`: forward, input gradient and LRP timed on random input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use clap::Args;
use lrp_grad::{Explainer, FeatureShape, Method};

use crate::{ModelArgs, RuleArgs, load};

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights (safetensors).
    #[arg(long, value_name = "W.safetensors")]
    weights: PathBuf,
    /// Batch size of the random input.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[command(flatten)]
    rules: RuleArgs,
    /// Timed runs per mode (after 2 warm-up runs).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Timing {
    mode: String,
    median: Duration,
    min: Duration,
    max: Duration,
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    let device = Device::default();
    let loaded = load(&args.model.model, Some(&args.weights), &device)?;
    let model = loaded.model.valid();
    let n = args.batch.max(1);
    let runs = args.runs.max(1);
    device.seed(0);
    let x: Tensor<4> = Tensor::random(loaded.input_shape.batched(n), Distribution::Default, &device);
    let composite = args.rules.composite()?;
    let lrp = Explainer::new().composite(composite);
    let gradient = Explainer::new().method(Method::Gradient);
    let vector = matches!(loaded.input_shape, FeatureShape::Vector(_));
    // Reading one number back forces the work to finish on every backend.
    let explain = |explainer: &Explainer| -> Result<f32> {
        let x = x.clone();
        Ok(if vector {
            let [n, f, _, _] = x.dims();
            explainer.explain(&model, x.reshape([n, f]))?.relevance.sum().into_scalar::<f32>()
        } else {
            explainer.explain(&model, x)?.relevance.sum().into_scalar::<f32>()
        })
    };
    let mut timings = Vec::new();
    let mut time = |mode: &str, f: &mut dyn FnMut() -> Result<f32>| -> Result<()> {
        for _ in 0..2 {
            f()?;
        }
        let mut samples: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                f().map(|_| start.elapsed())
            })
            .collect::<Result<_>>()?;
        samples.sort();
        timings.push(Timing {
            mode: mode.to_string(),
            median: samples[samples.len() / 2],
            min: samples[0],
            max: samples[samples.len() - 1],
        });
        Ok(())
    };
    time("forward", &mut || {
        let out = if vector {
            let [n, f, _, _] = x.dims();
            model.try_forward(x.clone().reshape([n, f]))?
        } else {
            model.try_forward(x.clone())?
        };
        Ok(out.sum().into_scalar::<f32>())
    })?;
    time("gradient", &mut || explain(&gradient))?;
    let lrp_mode = format!("lrp ({})", args.rules.describe());
    time(&lrp_mode, &mut || explain(&lrp))?;

    let gradient_median = timings[1].median.as_secs_f64();
    if args.json {
        let modes: Vec<serde_json::Value> = timings
            .iter()
            .map(|t| {
                serde_json::json!({
                    "mode": t.mode,
                    "median_ms": t.median.as_secs_f64() * 1e3,
                    "min_ms": t.min.as_secs_f64() * 1e3,
                    "max_ms": t.max.as_secs_f64() * 1e3,
                    "images_per_s": n as f64 / t.median.as_secs_f64(),
                    "ratio_to_gradient": t.median.as_secs_f64() / gradient_median,
                })
            })
            .collect();
        let report = serde_json::json!({
            "model": args.model.model.display().to_string(),
            "batch": n,
            "runs": runs,
            "threads": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
            "modes": modes,
        });
        println!("{report}");
    } else {
        println!(
            "{}: batch {n}, {runs} runs after 2 warm-ups",
            args.model.model.display()
        );
        println!("{:<40} {:>10} {:>10} {:>10} {:>10} {:>9}", "mode", "median ms", "min ms", "max ms", "images/s", "÷ grad");
        for t in &timings {
            println!(
                "{:<40} {:>10.2} {:>10.2} {:>10.2} {:>10.1} {:>9.2}",
                t.mode,
                t.median.as_secs_f64() * 1e3,
                t.min.as_secs_f64() * 1e3,
                t.max.as_secs_f64() * 1e3,
                n as f64 / t.median.as_secs_f64(),
                t.median.as_secs_f64() / gradient_median
            );
        }
    }
    Ok(())
}
