//! Trains the MNIST MLP and CNN with Burn and saves each as a Burn record and in the
//! interchange format (JSON + safetensors), so `lrp-grad explain` works on them.
//!
//! `MNIST_DIR=../shared/data/mnist cargo run --release --example mnist_train`

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use lrp_grad_suite::mnist;
use lrp_grad_suite::train::{Training, train_and_save};

#[derive(Parser)]
struct Args {
    /// Directory with the four MNIST IDX files (default: $MNIST_DIR).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to write the models.
    #[arg(long, default_value = "mnist-output")]
    out: PathBuf,
    /// Models to train.
    #[arg(long, value_delimiter = ',', default_value = "mlp,cnn")]
    models: Vec<String>,
    /// Epochs (default: 4 for the MLP, 2 for the CNN).
    #[arg(long)]
    epochs: Option<usize>,
    /// Train on the first N training digits only (quick runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the initialisation and the shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data = mnist::data_dir(args.data)?;
    let mut summary = String::from(
        "| model | epochs | training digits | test accuracy per epoch | time |\n|---|---|---|---|---|\n",
    );
    for name in &args.models {
        let mut settings = Training::default_for(name);
        settings.epochs = args.epochs.unwrap_or(settings.epochs);
        settings.seed = args.seed;
        let report = train_and_save(name, &data, &args.out, &settings, args.limit)?;
        let accuracies: Vec<String> = report
            .accuracies
            .iter()
            .map(|a| format!("{:.2} %", a * 100.0))
            .collect();
        summary.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} s |\n",
            report.name,
            settings.epochs,
            report.train_samples,
            accuracies.join(", "),
            report.seconds
        ));
    }
    print!("\n{summary}");
    std::fs::write(args.out.join("training.md"), summary)?;
    println!("models and training.md written to {}", args.out.display());
    Ok(())
}
