//! Pixel flipping (region perturbation, Samek et al. 2017) for any MNIST model: remove the most
//! relevant 2×2 patches first, in steps, and track the target score. AOPC, the area over the
//! perturbation curve, `AOPC = 1/(L+1) · Σ_{k=0..L} ⟨f(x⁽⁰⁾) − f(x⁽ᵏ⁾)⟩`, is larger when the
//! removed regions mattered more. Shared by `mnist_faithfulness` (CNN, MLP) and `mnist_vit`.
//! The perturbation is the library's (`lrp_grad::metrics::region_perturbation`, one patch per
//! point); a step here removes `per_step` patches, so the curve takes every `per_step`-th point.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use lrp_grad::metrics::{self, Baseline, Images, Score};
use lrp_grad::{AsGraph, Explainer, Graph, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// Per method: its name, every digit's relevance map, the mean conservation error (LRP only)
/// and the seconds it took.
type Maps = Vec<(String, Vec<f32>, Option<f64>, f64)>;

fn explain_all(
    model: &Graph,
    test: &Split,
    targets: &[usize],
    clean: &[f32],
    methods: Vec<(String, Explainer)>,
) -> anyhow::Result<Maps> {
    let (n, device) = (test.len(), Device::default());
    let mut maps = Vec::new();
    for (name, explainer) in methods {
        let start = Instant::now();
        let mut relevance = Vec::with_capacity(n * PIXELS);
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
            relevance.extend(floats(e.relevance));
        }
        let conservation = (!conservation.is_empty())
            .then(|| conservation.iter().sum::<f64>() / conservation.len() as f64);
        let seconds = start.elapsed().as_secs_f64();
        println!("{name}: explained {n} digits in {seconds:.1} s");
        maps.push((name, relevance, conservation, seconds));
    }
    Ok(maps)
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
    let mut maps = explain_all(&graph, test, &targets, &clean, methods)?;
    // A random order: patches ranked by random relevance.
    let mut rng = StdRng::seed_from_u64(p.seed);
    let random = (0..n * PIXELS).map(|_| rng.random::<f32>()).collect();
    maps.push(("random order".into(), random, None, 0.0));
    let mut outcomes = Vec::with_capacity(maps.len());
    for (name, relevance, conservation, seconds) in maps {
        let (curve, aopc) = perturb(&graph, (test, &targets, &clean), &relevance, p)?;
        let mean = aopc.iter().sum::<f64>() / n as f64;
        let var = aopc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        let std_error = (var / n as f64).sqrt();
        outcomes.push(Outcome {
            name,
            curve,
            aopc: mean,
            std_error,
            conservation,
            seconds,
        });
    }
    outcomes.sort_by(|a, b| b.aopc.total_cmp(&a.aopc));
    Ok(outcomes)
}

/// The mean score curve and each digit's AOPC for one method's relevance maps.
fn perturb(
    model: &Graph,
    (test, targets, clean): (&Split, &[usize], &[f32]),
    relevance: &[f32],
    p: &Perturbation,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let n = test.len();
    let images = Images {
        x: &test.images,
        a: relevance,
        dims: [n, 1, SIDE, SIDE],
        targets,
    };
    let settings = (Baseline::Value(p.baseline), Score::Logit);
    // drops[s][j]: f(x⁰) − f(x) after j + 1 patches.
    let drops =
        metrics::region_perturbation(model, images, (PATCH, p.steps * p.per_step), settings)?;
    let at = |s: usize, k: usize| {
        if k == 0 {
            0.0
        } else {
            drops[s][k * p.per_step - 1]
        }
    };
    let mean_clean = clean.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let curve = (0..=p.steps)
        .map(|k| mean_clean - (0..n).map(|s| at(s, k)).sum::<f64>() / n as f64)
        .collect();
    let aopc = (0..n)
        .map(|s| (0..=p.steps).map(|k| at(s, k)).sum::<f64>() / (p.steps + 1) as f64)
        .collect();
    Ok((curve, aopc))
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
