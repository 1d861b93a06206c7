//! How faithful is each explanation? Pixel flipping / region perturbation (Samek et al. 2017):
//! remove the most relevant 2×2 patches first, in steps, set them to a baseline value, and track
//! the target score. AOPC, the area over the perturbation curve,
//! `AOPC = 1/(L+1) · Σ_{k=0..L} ⟨f(x⁽⁰⁾) − f(x⁽ᵏ⁾)⟩`, is larger when the removed regions mattered
//! more. Also reports each LRP composite's conservation error `mean |Σ R − f(x)| / |f(x)|`.
//!
//! `MNIST_DIR=../shared/data/mnist cargo run --release --example mnist_faithfulness`

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lrp_grad::Sequential;
use lrp_grad_suite::figures::curves;
use lrp_grad_suite::mnist::{self, PIXELS, SIDE};
use lrp_grad_suite::{ModelArgs, floats, mnist_methods, mnist_occlusion};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: ModelArgs,
    /// Number of test digits (the first N of the test set).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Perturbation steps L (the curve has L + 1 points).
    #[arg(long, default_value_t = 49)]
    steps: usize,
    /// 2×2 patches removed per step (49 steps × 2 patches = half the image).
    #[arg(long, default_value_t = 2)]
    per_step: usize,
    /// Value a removed pixel gets.
    #[arg(long, default_value_t = 0.0)]
    baseline: f32,
    /// Seed of the random ordering.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const PATCH: usize = 2;
const PATCHES_PER_SIDE: usize = SIDE / PATCH;

/// Target scores `f_t` of a batch of images, computed in chunks.
fn scores(model: &Sequential, images: &[f32], targets: &[usize], device: &Device) -> Vec<f32> {
    let n = targets.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let x = Tensor::<4>::from_data(
            TensorData::new(
                images[start * PIXELS..end * PIXELS].to_vec(),
                [end - start, 1, SIDE, SIDE],
            ),
            device,
        );
        let logits = floats(model.forward(x));
        out.extend((start..end).map(|s| logits[(s - start) * 10 + targets[s]]));
    }
    out
}

/// Patch order (most relevant first) from a relevance map.
fn order(relevance: &[f32]) -> Vec<usize> {
    let score = |p: usize| {
        let (py, px) = (p / PATCHES_PER_SIDE, p % PATCHES_PER_SIDE);
        (0..PATCH * PATCH)
            .map(|k| relevance[(py * PATCH + k / PATCH) * SIDE + px * PATCH + k % PATCH])
            .sum::<f32>()
    };
    let mut patches: Vec<usize> = (0..PATCHES_PER_SIDE * PATCHES_PER_SIDE).collect();
    patches.sort_by(|a, b| score(*b).total_cmp(&score(*a)));
    patches
}

struct Outcome {
    name: String,
    curve: Vec<f64>,
    aopc: f64,
    std_error: f64,
    conservation: Option<f64>,
    seconds: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (data, out, loaded) = args.common.resolve()?;
    let model = &loaded.model;
    let device = Device::default();
    let test = mnist::load(&data, "t10k")?.truncate(args.n);
    let n = test.len();
    anyhow::ensure!(n > 0, "--n must be at least 1");
    anyhow::ensure!(
        args.steps * args.per_step <= PATCHES_PER_SIDE * PATCHES_PER_SIDE,
        "steps × per-step exceeds the 196 patches"
    );

    // Explain the predicted class of each digit.
    let x_all = Tensor::<4>::from_data(
        TensorData::new(test.images.clone(), [n, 1, SIDE, SIDE]),
        &device,
    );
    let targets: Vec<usize> = model
        .forward(x_all)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("ints")
        .into_iter()
        .map(|t| t as usize)
        .collect();
    let clean = scores(model, &test.images, &targets, &device);

    let mut methods = mnist_methods();
    methods.push(mnist_occlusion());
    // Per method: its name, each digit's pixels by falling relevance, the mean conservation
    // error (LRP only) and the seconds it took.
    type Orders = Vec<(String, Vec<Vec<usize>>, Option<f64>, f64)>;
    let mut orders: Orders = Vec::new();
    for (name, explainer) in methods {
        let start = Instant::now();
        let explainer = explainer.target(lrp_grad::Target::PerSample(targets.clone()));
        let mut per_sample = Vec::with_capacity(n);
        let mut conservation = Vec::new();
        for chunk in (0..n).step_by(100) {
            let end = (chunk + 100).min(n);
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    test.images[chunk * PIXELS..end * PIXELS].to_vec(),
                    [end - chunk, 1, SIDE, SIDE],
                ),
                &device,
            );
            let explainer = explainer
                .clone()
                .target(lrp_grad::Target::PerSample(targets[chunk..end].to_vec()));
            let e = explainer.explain(model, x)?;
            if name.starts_with("LRP") {
                for (k, sum) in e.relevance_sums().iter().enumerate() {
                    let f = clean[chunk + k];
                    conservation.push(((sum - f).abs() / f.abs().max(1e-6)) as f64);
                }
            }
            let r = floats(e.relevance);
            per_sample.extend((0..end - chunk).map(|k| order(&r[k * PIXELS..(k + 1) * PIXELS])));
        }
        let conservation = (!conservation.is_empty())
            .then(|| conservation.iter().sum::<f64>() / conservation.len() as f64);
        println!(
            "{name}: explained {n} digits in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        orders.push((
            name,
            per_sample,
            conservation,
            start.elapsed().as_secs_f64(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let random: Vec<Vec<usize>> = (0..n)
        .map(|_| {
            let mut p: Vec<usize> = (0..PATCHES_PER_SIDE * PATCHES_PER_SIDE).collect();
            p.shuffle(&mut rng);
            p
        })
        .collect();
    orders.push(("random order".into(), random, None, 0.0));

    let bar = ProgressBar::new((orders.len() * args.steps) as u64);
    bar.set_style(
        ProgressStyle::with_template("perturbing {bar:30} {pos}/{len} steps {elapsed}<{eta}")
            .expect("template"),
    );
    let mut outcomes = Vec::new();
    for (name, order, conservation, seconds) in orders {
        let mut images = test.images.clone();
        let mut drops = vec![0f64; n]; // Σ_k f(x⁰) − f(xᵏ), per sample (k = 0 adds 0)
        let mut curve = vec![clean.iter().map(|v| *v as f64).sum::<f64>() / n as f64];
        for step in 1..=args.steps {
            for (s, patches) in order.iter().enumerate() {
                for p in &patches[(step - 1) * args.per_step..step * args.per_step] {
                    let (py, px) = (p / PATCHES_PER_SIDE, p % PATCHES_PER_SIDE);
                    for k in 0..PATCH * PATCH {
                        images[s * PIXELS
                            + (py * PATCH + k / PATCH) * SIDE
                            + px * PATCH
                            + k % PATCH] = args.baseline;
                    }
                }
            }
            let f = scores(model, &images, &targets, &device);
            for s in 0..n {
                drops[s] += (clean[s] - f[s]) as f64;
            }
            curve.push(f.iter().map(|v| *v as f64).sum::<f64>() / n as f64);
            bar.inc(1);
        }
        let aopc: Vec<f64> = drops.iter().map(|d| d / (args.steps + 1) as f64).collect();
        let mean = aopc.iter().sum::<f64>() / n as f64;
        let var = aopc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        outcomes.push(Outcome {
            name,
            curve,
            aopc: mean,
            std_error: (var / n as f64).sqrt(),
            conservation,
            seconds,
        });
    }
    bar.finish_and_clear();
    outcomes.sort_by(|a, b| b.aopc.total_cmp(&a.aopc));

    let mut table = format!(
        "Model `{}`, {n} test digits, {} steps of {} 2×2 patches set to {} (most relevant first).\n\n\
         | method | AOPC | std. error | conservation error | time (s) |\n|---|---|---|---|---|\n",
        args.common.model, args.steps, args.per_step, args.baseline
    );
    for o in &outcomes {
        table.push_str(&format!(
            "| {} | {:.3} | {:.3} | {} | {:.1} |\n",
            o.name,
            o.aopc,
            o.std_error,
            o.conservation.map_or("–".into(), |c| format!("{c:.2e}")),
            o.seconds
        ));
    }
    print!("\n{table}");
    let table_path = out.join(format!("faithfulness-{}.md", args.common.model));
    std::fs::write(&table_path, &table)?;
    let plot_path = out.join(format!("faithfulness-{}.png", args.common.model));
    let series: Vec<(String, Vec<f64>)> = outcomes
        .iter()
        .map(|o| (format!("{} ({:.2})", o.name, o.aopc), o.curve.clone()))
        .collect();
    curves(
        &plot_path,
        &format!(
            "Pixel flipping on MNIST ({}), {n} digits",
            args.common.model
        ),
        &format!("step ({} patches of 2x2 removed per step)", args.per_step),
        &series,
    )?;
    println!("wrote {} and {}", table_path.display(), plot_path.display());
    Ok(())
}
