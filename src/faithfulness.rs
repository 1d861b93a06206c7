//! Pixel flipping (region perturbation, Samek et al. 2017) for any MNIST model: remove the most
//! relevant 2×2 patches first, in steps, and track the target score. AOPC, the area over the
//! perturbation curve, `AOPC = 1/(L+1) · Σ_{k=0..L} ⟨f(x⁽⁰⁾) − f(x⁽ᵏ⁾)⟩`, is larger when the
//! removed regions mattered more. Shared by `mnist_faithfulness` (CNN, MLP) and `mnist_vit`.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use lrp_grad::{AsGraph, Explainer, Graph, Target};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::floats;
use crate::mnist::{PIXELS, SIDE, Split};

const PATCH: usize = 2;
const PATCHES_PER_SIDE: usize = SIDE / PATCH;
/// The number of 2×2 patches of a digit.
pub const PATCHES: usize = PATCHES_PER_SIDE * PATCHES_PER_SIDE;

/// How the digits are perturbed.
pub struct Perturbation {
    /// Steps L (the curve has L + 1 points).
    pub steps: usize,
    /// Patches removed per step.
    pub per_step: usize,
    /// The value a removed pixel gets.
    pub baseline: f32,
    /// Seed of the random ordering.
    pub seed: u64,
}

/// One method's result.
pub struct Outcome {
    pub name: String,
    pub curve: Vec<f64>,
    pub aopc: f64,
    pub std_error: f64,
    /// LRP's mean `|Σ R − f(x)| / |f(x)|`.
    pub conservation: Option<f64>,
    pub seconds: f64,
}

fn batch(images: &[f32], range: std::ops::Range<usize>, device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(
            images[range.start * PIXELS..range.end * PIXELS].to_vec(),
            [range.len(), 1, SIDE, SIDE],
        ),
        device,
    )
}

/// Target scores `f_t` of a batch of images, computed in chunks.
pub fn scores(model: &Graph, images: &[f32], targets: &[usize], device: &Device) -> Vec<f32> {
    let n = targets.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let logits = floats(model.forward(batch(images, start..end, device)));
        let classes = logits.len() / (end - start);
        out.extend((start..end).map(|s| logits[(s - start) * classes + targets[s]]));
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
    let mut patches: Vec<usize> = (0..PATCHES).collect();
    patches.sort_by(|a, b| score(*b).total_cmp(&score(*a)));
    patches
}

/// Per method: its name, each digit's patches by falling relevance, the mean conservation
/// error (LRP only) and the seconds it took.
type Orders = Vec<(String, Vec<Vec<usize>>, Option<f64>, f64)>;

fn explain_all(
    model: &Graph,
    test: &Split,
    targets: &[usize],
    clean: &[f32],
    methods: Vec<(String, Explainer)>,
) -> anyhow::Result<Orders> {
    let (n, device) = (test.len(), Device::default());
    let mut orders = Vec::new();
    for (name, explainer) in methods {
        let start = Instant::now();
        let mut per_sample = Vec::with_capacity(n);
        let mut conservation = Vec::new();
        for chunk in (0..n).step_by(100) {
            let end = (chunk + 100).min(n);
            let explainer = explainer
                .clone()
                .target(Target::PerSample(targets[chunk..end].to_vec()));
            let e = explainer.explain(model, batch(&test.images, chunk..end, &device))?;
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
        let seconds = start.elapsed().as_secs_f64();
        println!("{name}: explained {n} digits in {seconds:.1} s");
        orders.push((name, per_sample, conservation, seconds));
    }
    Ok(orders)
}

/// Explains every test digit's predicted class with each method, then flips patches in each
/// method's order (and in a random order) and measures AOPC. Sorted by AOPC, best first.
pub fn evaluate(
    model: &(impl AsGraph + ?Sized),
    test: &Split,
    methods: Vec<(String, Explainer)>,
    p: &Perturbation,
) -> anyhow::Result<Vec<Outcome>> {
    let graph = model.as_graph();
    let (n, device) = (test.len(), Device::default());
    anyhow::ensure!(n > 0, "no test digits");
    anyhow::ensure!(
        p.steps * p.per_step <= PATCHES,
        "steps × per-step exceeds the {PATCHES} patches"
    );
    let targets: Vec<usize> = floats(
        graph
            .forward(batch(&test.images, 0..n, &device))
            .argmax(1)
            .float(),
    )
    .into_iter()
    .map(|t| t as usize)
    .collect();
    let clean = scores(&graph, &test.images, &targets, &device);
    let mut orders = explain_all(&graph, test, &targets, &clean, methods)?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let random: Vec<Vec<usize>> = (0..n)
        .map(|_| {
            let mut order: Vec<usize> = (0..PATCHES).collect();
            order.shuffle(&mut rng);
            order
        })
        .collect();
    orders.push(("random order".into(), random, None, 0.0));
    let bar = ProgressBar::new((orders.len() * p.steps) as u64);
    bar.set_style(
        ProgressStyle::with_template("perturbing {bar:30} {pos}/{len} steps {elapsed}<{eta}")
            .expect("template"),
    );
    let mut outcomes: Vec<Outcome> = orders
        .into_iter()
        .map(|(name, order, conservation, seconds)| {
            let (curve, aopc) = perturb(&graph, test, &targets, &clean, &order, p, &bar);
            let mean = aopc.iter().sum::<f64>() / n as f64;
            let var = aopc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
            Outcome {
                name,
                curve,
                aopc: mean,
                std_error: (var / n as f64).sqrt(),
                conservation,
                seconds,
            }
        })
        .collect();
    bar.finish_and_clear();
    outcomes.sort_by(|a, b| b.aopc.total_cmp(&a.aopc));
    Ok(outcomes)
}

/// The mean score curve and each digit's AOPC for one patch order.
fn perturb(
    model: &Graph,
    test: &Split,
    targets: &[usize],
    clean: &[f32],
    order: &[Vec<usize>],
    p: &Perturbation,
    bar: &ProgressBar,
) -> (Vec<f64>, Vec<f64>) {
    let (n, device) = (test.len(), Device::default());
    let mut images = test.images.clone();
    let mut drops = vec![0f64; n]; // Σ_k f(x⁰) − f(xᵏ), per sample (k = 0 adds 0)
    let mut curve = vec![clean.iter().map(|v| *v as f64).sum::<f64>() / n as f64];
    for step in 1..=p.steps {
        for (s, patches) in order.iter().enumerate() {
            for q in &patches[(step - 1) * p.per_step..step * p.per_step] {
                let (py, px) = (q / PATCHES_PER_SIDE, q % PATCHES_PER_SIDE);
                for k in 0..PATCH * PATCH {
                    images[s * PIXELS + (py * PATCH + k / PATCH) * SIDE + px * PATCH + k % PATCH] =
                        p.baseline;
                }
            }
        }
        let f = scores(model, &images, targets, &device);
        for s in 0..n {
            drops[s] += (clean[s] - f[s]) as f64;
        }
        curve.push(f.iter().map(|v| *v as f64).sum::<f64>() / n as f64);
        bar.inc(1);
    }
    let aopc = drops.iter().map(|d| d / (p.steps + 1) as f64).collect();
    (curve, aopc)
}

/// The outcomes as a Markdown table under a one-line description.
pub fn table(description: &str, outcomes: &[Outcome]) -> String {
    let mut table = format!(
        "{description}\n\n| method | AOPC | std. error | conservation error | time (s) |\n|---|---|---|---|---|\n"
    );
    for o in outcomes {
        table.push_str(&format!(
            "| {} | {:.3} | {:.3} | {} | {:.1} |\n",
            o.name,
            o.aopc,
            o.std_error,
            o.conservation.map_or("–".into(), |c| format!("{c:.2e}")),
            o.seconds
        ));
    }
    table
}
