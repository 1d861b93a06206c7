//! `lrp-grad evaluate`: how faithful, how class- and model-sensitive and how concentrated each
//! method's explanations are on the given images, with `lrp_grad::metrics` (Quantus 0.6.0's
//! definitions): a table on stdout, `--json`, and the curves as a PNG (`--plot`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lrp_grad::metrics::{self, Baseline, Images, LayerOrder, Score, Similarity, Unit};
use lrp_grad::{Explainer, Graph};

use crate::metric::{Case, Measured, Metric, Settings};
use crate::output::write_atomically;
use crate::{ModelArgs, RuleArgs, device, inputs, model, report, spec};

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors); an ONNX model holds its own.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// Inputs: images (.png, .jpg, directories) or one .npy [N, C, H, W]; for a checkpoint
    /// directory, token ids (an integer .npy [N, T]): AttnLRP's token removal.
    #[arg(long, value_name = "X.npy|IMAGE|DIR", num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    #[command(flatten)]
    preprocess: inputs::PreprocessArgs,
    #[command(flatten)]
    rules: RuleArgs,
    /// The methods to compare (lrp uses --composite/--rule).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lrp,gradient-x-input,integrated-gradients"
    )]
    methods: Vec<String>,
    /// The metrics to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "pixel-flipping,region-perturbation,selectivity,faithfulness-correlation,road,complexity,completeness,random-logit,mprt"
    )]
    metrics: Vec<Metric>,
    /// Pixel flipping: pixels (or, with --flip-values, input values) replaced per step
    /// (default: a sixteenth of a sample's); faithfulness correlation: the subset's size (times
    /// the channels for pixels).
    #[arg(long)]
    features_in_step: Option<usize>,
    /// Pixel flipping ranks single input values, each channel of a pixel on its own (Quantus'
    /// PixelFlipping with a per-channel map), instead of whole pixels.
    #[arg(long)]
    flip_values: bool,
    /// Region perturbation and selectivity: the square patches' side (a divisor of the size).
    #[arg(long, default_value_t = 4)]
    patch: usize,
    /// Region perturbation: patches replaced.
    #[arg(long, default_value_t = 16)]
    regions: usize,
    /// What replaces a perturbed value: `min` (the sample's smallest, Quantus' "black") or a number.
    #[arg(long, default_value = "min", allow_hyphen_values = true)]
    baseline: String,
    /// Score the curves record: the target's softmax (Quantus' default) or its logit.
    #[arg(long, value_parser = ["softmax", "logit"], default_value = "softmax")]
    score: String,
    /// ROAD: the percentages of pixels imputed (default Quantus': 1, 3, …, 99).
    #[arg(long, value_delimiter = ',')]
    road_percentages: Option<Vec<f64>>,
    /// ROAD: the standard deviation of the noise added to imputed pixels.
    #[arg(long, default_value_t = 0.01)]
    road_noise: f64,
    /// MPRT: randomise the top layers cumulatively (`cascading`) or one at a time.
    #[arg(long, value_parser = ["cascading", "independent"], default_value = "cascading")]
    mprt_order: String,
    /// MPRT and random logit: how explanations are compared.
    #[arg(long, value_parser = ["spearman", "ssim"], default_value = "spearman")]
    similarity: String,
    /// Input invariance: the constant added to every input value.
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    input_shift: f32,
    /// Seed of the random metrics (faithfulness correlation, ROAD, random logit, MPRT).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the results (per method: the metrics' means, the mean curves) as JSON.
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
    /// Draw the mean curves (one panel per metric, one line per method) as PNG.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
}

/// One method's results.
pub(crate) struct Row {
    pub(crate) method: String,
    pub(crate) measured: Vec<Measured>,
}

pub(crate) fn run(args: EvaluateArgs) -> Result<()> {
    if model::is_checkpoint(&args.model.model) {
        let [input] = &args.input[..] else {
            bail!("a checkpoint directory takes one --input: token ids as an integer .npy [N, T]");
        };
        return crate::evaluate_text::run(&args.model.model, input, &args.rules, &args.methods);
    }
    let (graph, x, dims) = images(&args)?;
    let settings = settings(&args, dims)?;
    if let Some(path) = args
        .plot
        .as_ref()
        .filter(|_| !args.metrics.iter().any(|m| m.has_curve()))
    {
        bail!(
            "--plot {}: none of the metrics asked for has a curve",
            path.display()
        );
    }
    let bar = progress(args.methods.len() * args.metrics.len());
    let rows = (args.methods.iter())
        .map(|m| evaluate(&args, (&graph, &x, dims), m, (&settings, &bar)))
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    print!("{}", report::table(dims[0], &rows));
    if let Some(path) = &args.json {
        write_atomically(path, &report::json(dims[0], &rows)?)?;
    }
    if let Some(path) = &args.plot {
        report::plot(path, &rows)?;
    }
    Ok(())
}

/// The image model and its inputs `[N, C, H, W]`.
fn images(args: &EvaluateArgs) -> Result<(Graph, Vec<f32>, [usize; 4])> {
    let device = device()?;
    let weights = model::require_weights(&args.model.model, args.weights.as_deref())?;
    let model = model::load(
        &args.model.model,
        weights,
        args.model.allow_unused_weights,
        &device,
    )?;
    let Some((c, h, w)) = model
        .input_shape
        .as_image()
        .filter(|_| model.input_shape.rank() == 3)
    else {
        bail!(
            "evaluate takes image models ([C, H, W] inputs); {} takes {:?}",
            args.model.model.display(),
            model.input_shape.dims()
        );
    };
    let inputs = inputs::read(
        &args.input,
        model.input_shape,
        &args.preprocess,
        &args.model.model,
    )?;
    Ok((model.graph, inputs.data, [inputs.n, c, h, w]))
}

fn progress(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar
}

fn settings(args: &EvaluateArgs, [_, c, h, w]: [usize; 4]) -> Result<Settings> {
    let (unit, units) = match args.flip_values {
        true => (Unit::Value, c * h * w),
        false => (Unit::Pixel, h * w),
    };
    Ok(Settings {
        baseline: baseline(&args.baseline)?,
        score: if args.score == "logit" {
            Score::Logit
        } else {
            Score::Softmax
        },
        features_in_step: args.features_in_step.unwrap_or((units / 16).max(1)),
        unit,
        patch: args.patch,
        regions: args.regions,
        road_percentages: args
            .road_percentages
            .clone()
            .unwrap_or_else(metrics::road_percentages),
        road_noise: args.road_noise,
        order: match args.mprt_order.as_str() {
            "independent" => LayerOrder::Independent,
            _ => LayerOrder::Cascading,
        },
        similarity: match args.similarity.as_str() {
            "ssim" => Similarity::Ssim,
            _ => Similarity::Spearman,
        },
        input_shift: args.input_shift,
        seed: args.seed,
    })
}

/// One method's explainer and its explanations of every input (the predicted class): as
/// computed and normalised by the batch's largest magnitude (Quantus' default), the targets
/// and their logits.
struct Explained {
    explainer: Explainer,
    a: Vec<f32>,
    raw: Vec<f32>,
    targets: Vec<usize>,
    logits: Vec<f64>,
}

fn explain(
    args: &EvaluateArgs,
    graph: &Graph,
    x: &[f32],
    dims: [usize; 4],
    method: &str,
) -> Result<Explained> {
    let device = device()?;
    let mut explainer = Explainer::new().method(spec::method(spec::MethodArgs::named(method))?);
    if method == "lrp" {
        let shape = lrp_grad::FeatureShape::image(dims[1], dims[2], dims[3]);
        explainer = explainer.composite(args.rules.composite(shape, None)?);
    }
    let input = Tensor::<4>::from_data(TensorData::new(x.to_vec(), dims), &device);
    let e = (explainer.explain(graph, input)).with_context(|| format!("--methods {method}"))?;
    let targets = e.targets.clone().unwrap_or_default();
    let scores = floats(e.output.clone())?;
    let classes = scores.len() / dims[0];
    let logits = (0..dims[0])
        .map(|i| f64::from(scores[i * classes + targets[i]]))
        .collect();
    let raw = floats(e.relevance)?;
    let mut a = raw.clone();
    metrics::normalise_by_max(&mut a);
    Ok(Explained {
        explainer,
        a,
        raw,
        targets,
        logits,
    })
}

/// One method: its explanations, then each metric.
fn evaluate(
    args: &EvaluateArgs,
    (graph, x, dims): (&Graph, &[f32], [usize; 4]),
    method: &str,
    (settings, bar): (&Settings, &ProgressBar),
) -> Result<Row> {
    let e = explain(args, graph, x, dims, method)?;
    let images = Images {
        x,
        a: &e.a,
        dims,
        targets: &e.targets,
    };
    let case = Case {
        graph,
        explainer: &e.explainer,
        images,
        raw: &e.raw,
        logits: &e.logits,
        settings,
    };
    let mut measured = Vec::with_capacity(args.metrics.len());
    for metric in &args.metrics {
        bar.set_message(format!("{method}: {metric:?}"));
        measured.push(
            metric
                .measure(&case)
                .with_context(|| format!("{method}: {metric:?}"))?,
        );
        bar.inc(1);
    }
    Ok(Row {
        method: method.to_string(),
        measured,
    })
}

fn baseline(text: &str) -> Result<Baseline> {
    match text {
        "min" => Ok(Baseline::Min),
        value => match value.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Baseline::Value(v)),
            _ => bail!("--baseline {value}: expected `min` or a number"),
        },
    }
}

fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}
