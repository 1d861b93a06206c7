//! Training and evaluating `Sequential` models on MNIST with Burn.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use lrp_grad::Sequential;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::mnist::{SIDE, Split};

/// A batch of images as `[n, 1, 28, 28]`.
pub fn images(split: &Split, indices: &[usize], device: &Device) -> Tensor<4> {
    let data: Vec<f32> = indices
        .iter()
        .flat_map(|i| split.image(*i).iter().copied())
        .collect();
    Tensor::from_data(
        TensorData::new(data, [indices.len(), 1, SIDE, SIDE]),
        device,
    )
}

fn labels(split: &Split, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|i| split.labels[*i] as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

/// Test accuracy in [0, 1] (inference mode, batches of 1,000).
pub fn accuracy(model: &Sequential, test: &Split) -> f64 {
    let model = model.valid();
    let device = model_device(&model);
    let mut correct = 0usize;
    let all: Vec<usize> = (0..test.len()).collect();
    for chunk in all.chunks(1000) {
        let predicted = model.forward(images(test, chunk, &device)).argmax(1);
        let predicted = predicted
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("ints");
        correct += chunk
            .iter()
            .zip(predicted)
            .filter(|(i, p)| test.labels[**i] as i64 == *p)
            .count();
    }
    correct as f64 / test.len().max(1) as f64
}

fn model_device(model: &Sequential) -> Device {
    model.devices().into_iter().next().unwrap_or_default()
}

/// Settings of one training run.
pub struct Training {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// Trains `model` (on an autodiff device) with Adam and cross-entropy; after each epoch
/// `on_epoch(epoch, test_accuracy)` is called. Returns the trained model.
pub fn train(
    mut model: Sequential,
    train: &Split,
    test: &Split,
    settings: &Training,
    mut on_epoch: impl FnMut(usize, f64),
) -> Sequential {
    let device = model_device(&model);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = AdamConfig::new().init();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let batches = train.len().div_ceil(settings.batch_size);
    for epoch in 1..=settings.epochs {
        order.shuffle(&mut StdRng::seed_from_u64(
            settings.seed.wrapping_add(epoch as u64),
        ));
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "  epoch {msg} {bar:30} {pos}/{len} batches {elapsed}<{eta}",
            )
            .expect("template"),
        );
        bar.set_message(format!("{epoch}/{}", settings.epochs));
        for chunk in order.chunks(settings.batch_size) {
            let logits = model.forward(images(train, chunk, &device));
            let loss = loss_fn.forward(logits, labels(train, chunk, &device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(settings.learning_rate, model, grads);
            bar.inc(1);
        }
        bar.finish_and_clear();
        on_epoch(epoch, accuracy(&model, test));
    }
    model
}

/// The result of training one model.
pub struct Report {
    pub name: String,
    pub accuracies: Vec<f64>,
    pub seconds: f64,
    pub train_samples: usize,
}

/// Trains the MNIST model `name` (`mlp` or `cnn`) and saves it in `out` as a Burn record
/// (`<name>-record.*`) and in the interchange format (`<name>.json` + `<name>.safetensors`).
pub fn train_and_save(
    name: &str,
    data: &std::path::Path,
    out: &std::path::Path,
    settings: &Training,
    limit: Option<usize>,
) -> anyhow::Result<Report> {
    use anyhow::Context;
    let train_split = crate::mnist::load(data, "train")?;
    let train_split = match limit {
        Some(n) => train_split.truncate(n),
        None => train_split,
    };
    let test = crate::mnist::load(data, "t10k")?;
    let device = Device::default().autodiff();
    device.seed(settings.seed);
    let model = match name {
        "mlp" => crate::zoo::mnist_mlp(&device),
        "cnn" => crate::zoo::mnist_cnn(&device),
        other => anyhow::bail!("unknown model `{other}`; expected mlp or cnn"),
    };
    println!(
        "training {name} on {} digits ({} epochs)",
        train_split.len(),
        settings.epochs
    );
    let start = std::time::Instant::now();
    let mut accuracies = Vec::new();
    let model = train(model, &train_split, &test, settings, |epoch, acc| {
        println!("  {name} epoch {epoch}: test accuracy {:.2} %", acc * 100.0);
        accuracies.push(acc);
    });
    let seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let model = model.valid();
    lrp_grad::interchange::save(
        &model,
        crate::zoo::MNIST_INPUT,
        &out.join(format!("{name}.json")),
        &out.join(format!("{name}.safetensors")),
    )?;
    model
        .save_file(out.join(format!("{name}-record")))
        .map_err(|e| anyhow::anyhow!("saving the Burn record of {name}: {e:?}"))?;
    Ok(Report {
        name: name.to_string(),
        accuracies,
        seconds,
        train_samples: train_split.len(),
    })
}

/// The trained model `name` from `models`, training it first (with the default settings) when
/// it is not there yet.
pub fn load_or_train(
    name: &str,
    models: &std::path::Path,
    data: &std::path::Path,
) -> anyhow::Result<lrp_grad::interchange::LoadedModel> {
    let (json, weights) = (
        models.join(format!("{name}.json")),
        models.join(format!("{name}.safetensors")),
    );
    if !json.is_file() || !weights.is_file() {
        println!(
            "no trained {name} in {}: training it first (as mnist_train does)",
            models.display()
        );
        train_and_save(name, data, models, &Training::default_for(name), None)?;
    }
    Ok(lrp_grad::interchange::load(
        &json,
        &weights,
        &Device::default(),
    )?)
}

/// The trained model `name` from `models` when it is there, else the bundled trained CNN of
/// `sample` (the full dataset is needed to train).
pub fn load_bundled(
    name: &str,
    models: &std::path::Path,
    sample: &std::path::Path,
) -> anyhow::Result<lrp_grad::interchange::LoadedModel> {
    let (json, weights) = (
        models.join(format!("{name}.json")),
        models.join(format!("{name}.safetensors")),
    );
    if json.is_file() && weights.is_file() {
        return Ok(lrp_grad::interchange::load(
            &json,
            &weights,
            &Device::default(),
        )?);
    }
    anyhow::ensure!(
        name == "cnn",
        "no trained {name} in {} and no MNIST to train it: give the four MNIST files with \
         --data DIR or MNIST_DIR (only the CNN comes bundled)",
        models.display()
    );
    println!(
        "MNIST_DIR is not set: using the bundled sample ({}: the first 500 test digits) and the \
         bundled trained CNN. Set MNIST_DIR (or --data) to the four original MNIST files to train \
         and use all 10,000 test digits.",
        sample.display()
    );
    Ok(lrp_grad::interchange::load(
        &sample.join("cnn.json"),
        &sample.join("cnn.safetensors"),
        &Device::default(),
    )?)
}

impl Training {
    /// The settings `mnist_train` uses by default for each model.
    pub fn default_for(name: &str) -> Self {
        Training {
            epochs: if name == "cnn" { 2 } else { 4 },
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 1,
        }
    }
}
