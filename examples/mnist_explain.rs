//! Explains real MNIST test digits and writes PNG figures:
//! - `explain-<model>.png`: rows = digits, columns = input, LRP with each composite, gradient,
//!   gradient × input, SmoothGrad, Integrated Gradients;
//! - `why-<model>.png`: one digit explained for each of the 10 classes.
//!
//! Trains the model first when `--models` does not hold it yet, so this one command runs the
//! whole job: `MNIST_DIR=../shared/data/mnist cargo run --release --example mnist_explain`

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Parser;
use lrp_grad::heatmap::ColorMap;
use lrp_grad::{Explainer, OutputRelevance, Target};
use lrp_grad_suite::figures::{digit, labelled_grid, relevance_map};
use lrp_grad_suite::mnist::{self, PIXELS, SIDE};
use lrp_grad_suite::{ModelArgs, floats, mnist_methods};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: ModelArgs,
    /// Extra test digits (indices into the 10,000 test images) to add as rows; the first one
    /// is also the digit of the "why this class" figure.
    #[arg(long, value_delimiter = ',')]
    index: Vec<usize>,
    /// Colour map (Zennit's).
    #[arg(long, default_value = "bwr")]
    cmap: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (data, out, loaded) = args.common.resolve()?;
    let test = mnist::load(&data, "t10k")?;
    let cmap = ColorMap::new(&args.cmap)?;
    let device = Device::default();

    // The fixed set: the first test image of each digit 0-9, then the requested indices.
    let mut indices: Vec<usize> = (0..10u8)
        .filter_map(|d| test.labels.iter().position(|l| *l == d))
        .collect();
    for i in &args.index {
        anyhow::ensure!(
            *i < test.len(),
            "--index {i}: the test set has {} digits",
            test.len()
        );
    }
    indices.extend(&args.index);
    let pixels: Vec<f32> = indices
        .iter()
        .flat_map(|i| test.image(*i).to_vec())
        .collect();
    let batch = || {
        Tensor::<4>::from_data(
            TensorData::new(pixels.clone(), [indices.len(), 1, SIDE, SIDE]),
            &device,
        )
    };

    let methods = mnist_methods();
    let mut columns = vec!["input".to_string()];
    let mut rows: Vec<Vec<image::RgbImage>> = indices
        .iter()
        .map(|i| vec![digit(test.image(*i))])
        .collect();
    for (name, explainer) in &methods {
        let relevance = explainer.explain(&loaded.model, batch())?.relevance;
        let relevance = floats(relevance);
        for (row, cells) in rows.iter_mut().enumerate() {
            cells.push(relevance_map(
                &relevance[row * PIXELS..(row + 1) * PIXELS],
                &cmap,
            ));
        }
        columns.push(name.clone());
    }
    let predicted = loaded
        .model
        .forward(batch())
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("ints");
    let labels: Vec<String> = indices
        .iter()
        .zip(&predicted)
        .map(|(i, p)| format!("#{i}: {} ({p})", test.labels[*i]))
        .collect();
    let grid_path = out.join(format!("explain-{}.png", args.common.model));
    labelled_grid(&grid_path, &rows, &columns, &labels, 3)?;
    println!("wrote {}", grid_path.display());

    // Why this class: one digit, each class as target (one-hot, so the maps compare).
    let which = args.index.first().copied().unwrap_or(indices[0]);
    let single = Tensor::<4>::from_data(
        TensorData::new(test.image(which).to_vec(), [1, 1, SIDE, SIDE]),
        &device,
    );
    let mut cells = vec![digit(test.image(which))];
    let mut titles = vec![format!("digit #{which}")];
    let scores = floats(loaded.model.forward(single.clone()));
    for (class, score) in scores.iter().enumerate() {
        let e = Explainer::new()
            .target(Target::Class(class))
            .output_relevance(OutputRelevance::OneHot)
            .explain(&loaded.model, single.clone())?;
        let r = floats(e.relevance);
        cells.push(relevance_map(&r, &cmap));
        titles.push(format!("class {class} ({score:.1})"));
    }
    let why_path = out.join(format!("why-{}.png", args.common.model));
    labelled_grid(&why_path, &[cells], &titles, &[], 3)?;
    println!("wrote {}", why_path.display());
    Ok(())
}
