//! `lrp-grad bench`: forward, input gradient and LRP timed on random input.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use clap::Args;
use lrp_grad::{Explainer, FeatureShape, Graph, Method};

use crate::model::{is_checkpoint, load, load_checkpoint, require_weights};
use crate::{Batch, ModelArgs, RuleArgs};

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors); an ONNX model holds its own.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// Batch size of the random input.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Checkpoint directories: the sequence length (random token ids of seed 0).
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    #[command(flatten)]
    rules: RuleArgs,
    /// Timed runs per mode (after 2 warm-up runs).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Which modes to time (run one mode per process to compare peak memory).
    #[arg(long, value_delimiter = ',', default_value = "forward,gradient,lrp")]
    modes: Vec<String>,
}

/// Peak resident memory of this process in MiB (Linux: VmHWM), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Timing {
    mode: String,
    median: Duration,
    min: Duration,
    max: Duration,
}

pub(crate) fn run(args: BenchArgs) -> Result<()> {
    for mode in &args.modes {
        anyhow::ensure!(
            ["forward", "gradient", "lrp"].contains(&mode.as_str()),
            "--modes: unknown mode `{mode}`; expected forward, gradient or lrp"
        );
    }
    let device = crate::device()?;
    let loaded = load_model(&args, &device)?;
    let model = loaded.graph.valid();
    let n = args.batch.max(1);
    let runs = args.runs.max(1);
    let x = match &loaded.embedding {
        Some(embedding) => random_tokens(n, args.tokens, embedding, &device),
        None => random_batch(n, loaded.input_shape, &device)?,
    };
    let composite = args.rules.composite(loaded.input_shape, None)?;
    let lrp = Explainer::new()
        .composite(composite)
        .strategy(args.rules.strategy);
    let gradient = Explainer::new().method(Method::Gradient);
    // Reading one number back forces the work to finish on every backend.
    fn relevance_sum<const D: usize>(e: &Explainer, m: &Graph, x: Tensor<D>) -> Result<f32> {
        Ok(e.explain(m, x)?.relevance.sum().into_scalar::<f32>())
    }
    fn output_sum<const D: usize>(m: &Graph, x: Tensor<D>) -> Result<f32> {
        Ok(m.try_forward(x)?.sum().into_scalar::<f32>())
    }
    let explain = |e: &Explainer| match &x {
        Batch::Vector(x) => relevance_sum(e, &model, x.clone()),
        Batch::Sequence(x) => relevance_sum(e, &model, x.clone()),
        Batch::Image(x) => relevance_sum(e, &model, x.clone()),
    };
    let wants = |m: &str| args.modes.iter().any(|x| x == m);
    let mut timings = Vec::new();
    if wants("forward") {
        timings.push(time("forward", runs, &mut || match &x {
            Batch::Vector(x) => output_sum(&model, x.clone()),
            Batch::Sequence(x) => output_sum(&model, x.clone()),
            Batch::Image(x) => output_sum(&model, x.clone()),
        })?);
    }
    if wants("gradient") {
        timings.push(time("gradient", runs, &mut || explain(&gradient))?);
    }
    if wants("lrp") {
        let lrp_mode = format!("lrp ({})", args.rules.describe());
        timings.push(time(&lrp_mode, runs, &mut || explain(&lrp))?);
    }
    report(&args, n, runs, &timings);
    Ok(())
}

/// The model; a checkpoint directory's for `--tokens` positions.
fn load_model(args: &BenchArgs, device: &Device) -> Result<crate::model::CliModel> {
    let weights = require_weights(&args.model.model, args.weights.as_deref())?;
    match is_checkpoint(&args.model.model) {
        true => load_checkpoint(&args.model.model, args.tokens, device),
        false => load(
            &args.model.model,
            weights,
            args.model.allow_unused_weights,
            device,
        ),
    }
}

/// The embeddings of `n` sequences of `t` random token ids (seed 0).
fn random_tokens(n: usize, t: usize, embedding: &burn::nn::Embedding, device: &Device) -> Batch {
    use rand::{Rng, SeedableRng};
    let vocab = embedding.weight.dims()[0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let ids: Vec<i64> = (0..n * t)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect();
    let ids = Tensor::<2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(ids, [n, t]),
        device,
    );
    Batch::Sequence(embedding.forward(ids))
}

/// `n` inputs of the per-sample `shape`, uniform in [0, 1) from seed 0.
fn random_batch(n: usize, shape: FeatureShape, device: &Device) -> Result<Batch> {
    device.seed(0);
    let random: Tensor<4> = Tensor::random(shape.batched(n), Distribution::Default, device);
    let data = random
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("random input: {e:?}"))?;
    Ok(crate::batch(data, n, shape, device))
}

/// Times `f`: 2 warm-up runs, then `runs` timed ones.
fn time(mode: &str, runs: usize, f: &mut dyn FnMut() -> Result<f32>) -> Result<Timing> {
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
    Ok(Timing {
        mode: mode.to_string(),
        median: samples[samples.len() / 2],
        min: samples[0],
        max: samples[samples.len() - 1],
    })
}

/// Prints the timings as a table, or as one JSON object with --json.
fn report(args: &BenchArgs, n: usize, runs: usize, timings: &[Timing]) {
    let gradient_median = timings
        .iter()
        .find(|t| t.mode == "gradient")
        .map(|t| t.median.as_secs_f64());
    let ratio = |t: &Timing| gradient_median.map(|g| t.median.as_secs_f64() / g);
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
                    "ratio_to_gradient": ratio(t),
                })
            })
            .collect();
        let report = serde_json::json!({
            "model": args.model.model.display().to_string(),
            "batch": n,
            "runs": runs,
            "threads": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
            "modes": modes,
            "peak_rss_mib": peak_rss_mib(),
        });
        println!("{report}");
    } else {
        println!(
            "{}: batch {n}, {runs} runs after 2 warm-ups",
            args.model.model.display()
        );
        println!(
            "{:<40} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "mode", "median ms", "min ms", "max ms", "images/s", "÷ grad"
        );
        for t in timings {
            println!(
                "{:<40} {:>10.2} {:>10.2} {:>10.2} {:>10.1} {:>9}",
                t.mode,
                t.median.as_secs_f64() * 1e3,
                t.min.as_secs_f64() * 1e3,
                t.max.as_secs_f64() * 1e3,
                n as f64 / t.median.as_secs_f64(),
                ratio(t).map_or("–".into(), |r| format!("{r:.2}"))
            );
        }
        if let Some(peak) = peak_rss_mib() {
            println!("peak resident memory: {peak:.0} MiB");
        }
    }
}
