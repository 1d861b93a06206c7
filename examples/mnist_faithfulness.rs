//! How faithful is each explanation? Pixel flipping / region perturbation (Samek et al. 2017):
//! remove the most relevant 2×2 patches first, in steps, set them to a baseline value, and track
//! the target score. AOPC, the area over the perturbation curve,
//! `AOPC = 1/(L+1) · Σ_{k=0..L} ⟨f(x⁽⁰⁾) − f(x⁽ᵏ⁾)⟩`, is larger when the removed regions mattered
//! more. Also reports each LRP composite's conservation error `mean |Σ R − f(x)| / |f(x)|`.
//!
//! `MNIST_DIR=../shared/data/mnist cargo run --release --example mnist_faithfulness`

use anyhow::Result;
use clap::Parser;
use lrp_grad_suite::faithfulness::{self, PATCHES, Perturbation};
use lrp_grad_suite::figures::curves;
use lrp_grad_suite::mnist;
use lrp_grad_suite::{ModelArgs, mnist_methods, mnist_occlusion};

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

fn main() -> Result<()> {
    let args = Args::parse();
    let (data, out, loaded) = args.common.resolve()?;
    let test = mnist::load(&data, "t10k")?.truncate(args.n);
    let n = test.len();
    anyhow::ensure!(n > 0, "--n must be at least 1");
    anyhow::ensure!(
        args.steps * args.per_step <= PATCHES,
        "steps × per-step exceeds the {PATCHES} patches"
    );
    let mut methods = mnist_methods();
    methods.push(mnist_occlusion());
    let perturbation = Perturbation {
        steps: args.steps,
        per_step: args.per_step,
        baseline: args.baseline,
        seed: args.seed,
    };
    let outcomes = faithfulness::evaluate(&loaded.model, &test, methods, &perturbation)?;
    let table = faithfulness::table(
        &format!(
            "Model `{}`, {n} test digits, {} steps of {} 2×2 patches set to {} (most relevant first).",
            args.common.model, args.steps, args.per_step, args.baseline
        ),
        &outcomes,
    );
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
