//! A small vision transformer for MNIST (7×7 patches, pre-norm blocks with multi-head
//! attention), a Burn `#[derive(Module)]` struct whose forward pass is written once against
//! `Builder` (`zoo::MnistVit`), trained with Burn, and explained with AttnLRP, CP-LRP,
//! gradient × input and Integrated Gradients: a figure of real test digits and a
//! pixel-flipping AOPC table (as `mnist_faithfulness` does for the CNN).
//!
//! `MNIST_DIR=../shared/data/mnist cargo run --release --example mnist_vit`
//! (a trained model in `--out` is reused; `--retrain` trains again)

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use lrp_grad::heatmap::ColorMap;
use lrp_grad::{AsGraph, Base, Baseline, Composite, Explainer, Method, OutputRelevance};
use lrp_grad_suite::faithfulness::{self, Perturbation};
use lrp_grad_suite::figures::{curves, digit, labelled_grid, relevance_map};
use lrp_grad_suite::mnist::{self, PIXELS, Split};
use lrp_grad_suite::zoo::{self, MnistVit};
use lrp_grad_suite::{floats, train::images};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

#[derive(Parser)]
struct Args {
    /// Directory with the four MNIST IDX files (default: $MNIST_DIR).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where the model, the figure and the table go.
    #[arg(long, default_value = "mnist-output")]
    out: PathBuf,
    /// Train on the first N training digits (default: all 60,000).
    #[arg(long)]
    limit: Option<usize>,
    /// Training epochs.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Train even when a trained model is in --out.
    #[arg(long)]
    retrain: bool,
    /// Test digits for pixel flipping.
    #[arg(long, default_value_t = 500)]
    n: usize,
    /// Pixel-flipping steps (2 patches of 2×2 each).
    #[arg(long, default_value_t = 49)]
    steps: usize,
}

fn labels(split: &Split, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|i| split.labels[*i] as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

fn accuracy(model: &MnistVit, test: &Split) -> f64 {
    let device = Device::default();
    let all: Vec<usize> = (0..test.len()).collect();
    let correct: usize = all
        .chunks(1000)
        .map(|chunk| {
            let predicted = floats(
                model
                    .forward(images(test, chunk, &device))
                    .argmax(1)
                    .float(),
            );
            chunk
                .iter()
                .zip(predicted)
                .filter(|(i, p)| test.labels[**i] as f32 == *p)
                .count()
        })
        .sum();
    correct as f64 / test.len().max(1) as f64
}

/// Adam with cross-entropy, as any Burn model trains; the struct is the model. The learning rate
/// falls from 1e-3 to 1e-5 on a cosine over all steps.
fn train(train: &Split, test: &Split, epochs: usize) -> MnistVit {
    let device = Device::default().autodiff();
    device.seed(1);
    let mut model = zoo::mnist_vit(&device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = AdamConfig::new().init();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let total = (epochs * train.len().div_ceil(128)).max(1) as f64;
    let mut step = 0.0;
    let rate = |step: f64| {
        1e-5 + 0.5 * (1e-3 - 1e-5) * (1.0 + (std::f64::consts::PI * step / total).cos())
    };
    for epoch in 1..=epochs {
        order.shuffle(&mut StdRng::seed_from_u64(epoch as u64));
        let bar = ProgressBar::new(train.len().div_ceil(128) as u64);
        bar.set_style(
            ProgressStyle::with_template("  epoch {msg} {bar:30} {pos}/{len} {elapsed}<{eta}")
                .expect("template"),
        );
        bar.set_message(format!("{epoch}/{epochs}"));
        for chunk in order.chunks(128) {
            let logits = model.forward(images(train, chunk, &device));
            let loss = loss_fn.forward(logits, labels(train, chunk, &device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(rate(step), model, grads);
            step += 1.0;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let acc = accuracy(&model.valid(), test);
        println!("  epoch {epoch}: test accuracy {:.2} %", acc * 100.0);
    }
    model.valid()
}

/// The methods compared: AttnLRP, CP-LRP, gradient × input, Integrated Gradients.
fn methods() -> Vec<(String, Explainer)> {
    let one_hot = || Explainer::new().output_relevance(OutputRelevance::OneHot);
    vec![
        (
            "LRP attn-lrp".into(),
            Explainer::new().composite(Composite::attn_lrp()),
        ),
        (
            "LRP cp-lrp".into(),
            Explainer::new().composite(Composite::cp_lrp()),
        ),
        (
            "gradient x input".into(),
            one_hot().method(Method::GradientTimesInput),
        ),
        (
            "Integrated Gradients".into(),
            one_hot().method(Method::IntegratedGradients {
                steps: lrp_grad::DEFAULT_SAMPLES,
                baseline: Baseline::Zero,
                base: Base::Gradient,
            }),
        ),
    ]
}

fn figure(model: &MnistVit, test: &Split, path: &std::path::Path) -> Result<()> {
    let indices: Vec<usize> = (0..10u8)
        .filter_map(|d| test.labels.iter().position(|l| *l == d))
        .collect();
    let batch = images(test, &indices, &Device::default());
    let predicted = floats(model.forward(batch.clone()).argmax(1).float());
    let cmap = ColorMap::new("bwr")?;
    let mut rows: Vec<Vec<image::RgbImage>> = indices
        .iter()
        .map(|i| vec![digit(test.image(*i))])
        .collect();
    let methods = methods();
    for (_, explainer) in &methods {
        let relevance = floats(explainer.explain(model, batch.clone())?.relevance);
        for (row, cells) in rows.iter_mut().enumerate() {
            cells.push(relevance_map(
                &relevance[row * PIXELS..(row + 1) * PIXELS],
                &cmap,
            ));
        }
    }
    let columns: Vec<String> = std::iter::once("input".to_string())
        .chain(methods.iter().map(|(n, _)| n.clone()))
        .collect();
    let labels: Vec<String> = indices
        .iter()
        .zip(&predicted)
        .map(|(i, p)| format!("#{i}: {} ({p})", test.labels[*i]))
        .collect();
    labelled_grid(path, &rows, &columns, &labels, 3)
}

/// The explained graph computes what the struct computes (the forward pass written once).
fn check_graph(model: &MnistVit, test: &Split) -> Result<()> {
    let batch = images(test, &[0, 1, 2, 3], &Device::default());
    let (eager, graph) = (
        model.forward(batch.clone()),
        model.as_graph().forward(batch),
    );
    let difference = (eager - graph).abs().max().into_scalar::<f32>();
    anyhow::ensure!(difference < 1e-5, "graph and struct differ by {difference}");
    println!("graph = struct: largest difference {difference:.1e}");
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = mnist::data_dir(args.data)?;
    let test = mnist::load(&data, "t10k")?;
    std::fs::create_dir_all(&args.out)?;
    let record = args.out.join("vit.bpk");
    let device = Device::default();
    let model = if !args.retrain && record.is_file() {
        println!("using the trained ViT in {}", record.display());
        zoo::mnist_vit(&device)
            .try_load_file(&record)
            .map_err(|e| {
                anyhow::anyhow!(
                    "loading {}: {e:?} (a record of another ViT version: run with --retrain)",
                    record.display()
                )
            })?
    } else {
        let train_split = mnist::load(&data, "train")?;
        let train_split = match args.limit {
            Some(n) => train_split.truncate(n),
            None => train_split,
        };
        println!(
            "training the ViT ({}) on {} digits",
            zoo::MNIST_VIT,
            train_split.len()
        );
        let model = train(&train_split, &test, args.epochs);
        model
            .clone()
            .save_file(&record)
            .map_err(|e| anyhow::anyhow!("saving {}: {e:?}", record.display()))?;
        model
    };
    check_graph(&model, &test)?;
    let acc = accuracy(&model, &test);
    println!("test accuracy {:.2} %", acc * 100.0);

    let figure_path = args.out.join("vit-explain.png");
    figure(&model, &test, &figure_path)?;
    println!("wrote {}", figure_path.display());

    let subset = test.truncate(args.n);
    let perturbation = Perturbation {
        steps: args.steps,
        per_step: 2,
        baseline: 0.0,
        seed: 0,
    };
    let outcomes = faithfulness::evaluate(&model, &subset, methods(), &perturbation)?;
    let table = faithfulness::table(
        &format!(
            "ViT ({:.2} % test accuracy), {} test digits, {} steps of 2 2×2 patches set to 0 (most relevant first).",
            acc * 100.0,
            subset.len(),
            args.steps
        ),
        &outcomes,
    );
    print!("\n{table}");
    let table_path = args.out.join("faithfulness-vit.md");
    std::fs::write(&table_path, &table)
        .with_context(|| format!("writing {}", table_path.display()))?;
    let series: Vec<(String, Vec<f64>)> = outcomes
        .iter()
        .map(|o| (format!("{} ({:.2})", o.name, o.aopc), o.curve.clone()))
        .collect();
    let plot_path = args.out.join("faithfulness-vit.png");
    curves(
        &plot_path,
        &format!("Pixel flipping on MNIST (ViT), {} digits", subset.len()),
        "step (2 patches of 2x2 removed per step)",
        &series,
    )?;
    println!("wrote {} and {}", table_path.display(), plot_path.display());
    Ok(())
}
