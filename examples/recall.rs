//! A task with a known answer: a tiny causal LM trained on key–value recall
//! (`tools/hf-reference/recall.py`: each prompt holds one key token among distractors and ends in
//! a query token; the answer is the key's value). The key is the one input token the answer
//! depends on, so a faithful explanation ranks it first. For each method, the share of prompts
//! whose most relevant token is the key — and a bar chart.
//!
//! ```sh
//! cargo run --release --example recall -- --dir tests/fixtures/recall --chart recall.png
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use lrp_grad::metrics::{self, Order};
use lrp_grad::{Base, Baseline, Composite, Explainer, Method, Target};
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// The checkpoint directory with its prompts (`prompts.safetensors`).
    #[arg(long, default_value = "tests/fixtures/recall")]
    dir: PathBuf,
    /// Write a bar chart of the hit rates to this PNG.
    #[arg(long)]
    chart: Option<PathBuf>,
}

/// The prompts: token ids `[N, T]`, the key's position and the answer token of each.
struct Prompts {
    ids: Vec<i64>,
    n: usize,
    t: usize,
    keys: Vec<usize>,
    answers: Vec<usize>,
}

fn read_prompts(dir: &Path) -> Result<Prompts> {
    let path = dir.join("prompts.safetensors");
    let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes)?;
    let floats = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = tensors
            .tensor(name)
            .with_context(|| format!("{}: {name}", path.display()))?;
        let values = (view.data().chunks_exact(4))
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((view.shape().to_vec(), values))
    };
    let (shape, ids) = floats("ids")?;
    let index = |v: Vec<f32>| v.into_iter().map(|x| x as usize).collect();
    Ok(Prompts {
        ids: ids.into_iter().map(|x| x as i64).collect(),
        n: shape[0],
        t: shape[1],
        keys: index(floats("key_position")?.1),
        answers: index(floats("answer")?.1),
    })
}

/// The share of prompts whose most relevant token (relevance summed over the hidden axis) is
/// the key, for one explainer: among all tokens, and among those before the query marker (the
/// last token, the same in every prompt).
fn hit_rate(
    model: &lrp_grad::hf::HfModel,
    p: &Prompts,
    explainer: Explainer,
    device: &Device,
) -> Result<[f64; 3]> {
    let graph = model.graph(p.t)?;
    let (mut hits, mut area) = ([0usize; 2], 0.0);
    for chunk in (0..p.n).collect::<Vec<_>>().chunks(64) {
        let ids: Vec<i64> = (chunk.iter())
            .flat_map(|&i| p.ids[i * p.t..(i + 1) * p.t].to_vec())
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [chunk.len(), p.t]), device);
        let targets: Vec<usize> = chunk.iter().map(|&i| p.answers[i]).collect();
        let x = model.embedding().forward(ids);
        let e = (explainer.clone())
            .target(Target::PerSample(targets.clone()))
            .explain(&graph, x.clone())?;
        let per_token = floats(e.relevance.sum_dim(2))?;
        for (row, &i) in per_token.chunks(p.t).zip(chunk) {
            let top = |tokens: usize| (0..tokens).max_by(|&a, &b| row[a].total_cmp(&row[b]));
            hits[0] += usize::from(top(p.t) == Some(p.keys[i]));
            hits[1] += usize::from(top(p.t - 1) == Some(p.keys[i]));
        }
        area += removal_area(&graph, x, &per_token, &targets)?;
    }
    Ok([
        hits[0] as f64 / p.n as f64,
        hits[1] as f64 / p.n as f64,
        area / p.n as f64,
    ])
}

/// The summed area between the LeRF and MoRF token-removal curves (the answer's logit) of a
/// chunk: AttnLRP's faithfulness measure.
fn removal_area(
    graph: &lrp_grad::Graph,
    x: Tensor<3>,
    per_token: &[f32],
    targets: &[usize],
) -> Result<f64> {
    let dims = x.dims();
    let x = floats(x)?;
    let curves = |order| metrics::token_removal(graph, (&x, dims), per_token, targets, order);
    let (morf, lerf) = (
        curves(Order::MostRelevantFirst)?,
        curves(Order::LeastRelevantFirst)?,
    );
    Ok(morf
        .iter()
        .zip(&lerf)
        .map(|(m, l)| metrics::area_between(l, m))
        .sum())
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    (t.into_data().try_to_vec::<f32>()).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// How often a uniformly random token is the key (seed 0): among all tokens, and before the
/// query marker.
fn random_rate(p: &Prompts) -> [f64; 3] {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut rate = |tokens: usize| {
        let hits = (0..p.n)
            .filter(|&i| rng.random_range(0..tokens) == p.keys[i])
            .count();
        hits as f64 / p.n as f64
    };
    [rate(p.t), rate(p.t - 1), f64::NAN]
}

/// Bars of the hit rate among all tokens, per method.
fn chart(path: &Path, rows: &[(String, [f64; 3])]) -> Result<()> {
    use plotters::prelude::*;
    lrp_grad_suite::figures::fonts();
    let root = BitMapBackend::new(path, (760, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "key-value recall: the key is the most relevant token",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d((0..rows.len()).into_segmented(), 0.0..1.0)?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => rows.get(*i).map_or(String::new(), |r| r.0.clone()),
            _ => String::new(),
        })
        .y_desc("share of 512 prompts")
        .draw()?;
    c.draw_series(rows.iter().enumerate().map(|(i, (_, rate))| {
        let (left, right) = (SegmentValue::Exact(i), SegmentValue::Exact(i + 1));
        let mut bar = Rectangle::new([(left, 0.0), (right, rate[0])], BLUE.mix(0.6).filled());
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = Device::default();
    let model = lrp_grad::hf::load(&args.dir, &device)?;
    let prompts = read_prompts(&args.dir)?;
    let ig = Method::IntegratedGradients {
        steps: 32,
        baseline: Baseline::Zero,
        base: Base::Gradient,
    };
    let methods: Vec<(&str, Explainer)> = vec![
        (
            "AttnLRP",
            Explainer::new().composite(Composite::attn_lrp_efficient()),
        ),
        (
            "CP-LRP",
            Explainer::new().composite(Composite::cp_lrp_efficient()),
        ),
        (
            "gradient × input",
            Explainer::new().method(Method::GradientTimesInput),
        ),
        ("Integrated Gradients", Explainer::new().method(ig)),
    ];
    let mut rows = Vec::new();
    for (name, explainer) in methods {
        rows.push((
            name.to_string(),
            hit_rate(&model, &prompts, explainer, &device)?,
        ));
    }
    rows.push(("random".to_string(), random_rate(&prompts)));
    println!(
        "{} prompts of {} tokens\n\n| method | key first among all tokens | key first before the query marker | area between LeRF and MoRF token removal |\n|---|---|---|---|",
        prompts.n, prompts.t
    );
    for (name, [all, before, area]) in &rows {
        let area = match area.is_nan() {
            true => "—".to_string(),
            false => format!("{area:.2}"),
        };
        println!(
            "| {name} | {:.1} % | {:.1} % | {area} |",
            100.0 * all,
            100.0 * before
        );
    }
    if let Some(path) = &args.chart {
        chart(path, &rows)?;
    }
    Ok(())
}
