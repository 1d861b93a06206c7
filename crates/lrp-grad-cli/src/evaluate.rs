//! `lrp-grad evaluate`: how faithful and how concentrated each method's explanations are on
//! the given images, with `lrp_grad::metrics` (Quantus 0.6.0's definitions): pixel flipping,
//! region perturbation and selectivity (areas under their curves), sparseness, complexity,
//! effective complexity, and conservation `|Σ R − f(x)| / |f(x)|`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use lrp_grad::metrics::{self, Baseline, Images, Score};
use lrp_grad::{Explainer, Graph};
use serde_json::json;

use crate::output::write_atomically;
use crate::{ModelArgs, RuleArgs, device, inputs, model, spec};

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
    /// Pixel flipping: input values replaced per step (default: a sixteenth of a sample's).
    #[arg(long)]
    features_in_step: Option<usize>,
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
    /// Write the results (per method: the metrics' means, the mean curves) as JSON.
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
}

/// One method's results.
struct Row {
    method: String,
    /// Mean curves: pixel flipping, region perturbation, selectivity.
    curves: [Vec<f64>; 3],
    /// Means: the three AUCs, faithfulness correlation, sparseness, complexity, effective
    /// complexity, conservation.
    values: [f64; 8],
}

const COLUMNS: [&str; 8] = [
    "pixel-flipping AUC ↓",
    "region-perturbation AUC ↑",
    "selectivity AUC ↓",
    "faithfulness correlation ↑",
    "sparseness",
    "complexity",
    "effective complexity",
    "conservation error",
];

pub(crate) fn run(args: EvaluateArgs) -> Result<()> {
    if model::is_checkpoint(&args.model.model) {
        let [input] = &args.input[..] else {
            bail!("a checkpoint directory takes one --input: token ids as an integer .npy [N, T]");
        };
        return crate::evaluate_text::run(&args.model.model, input, &args.rules, &args.methods);
    }
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
    let dims = [inputs.n, c, h, w];
    let rows = (args.methods.iter())
        .map(|m| evaluate(&args, &model.graph, &inputs.data, dims, m))
        .collect::<Result<Vec<_>>>()?;
    print!("{}", table(inputs.n, &rows));
    if let Some(path) = &args.json {
        let methods: Vec<_> = (rows.iter())
            .map(|r| {
                let values: serde_json::Map<_, _> = COLUMNS
                    .iter()
                    .zip(r.values)
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                json!({"method": r.method, "metrics": values, "pixel_flipping": r.curves[0],
                       "region_perturbation": r.curves[1], "selectivity": r.curves[2]})
            })
            .collect();
        let bytes = serde_json::to_vec_pretty(&json!({"samples": inputs.n, "methods": methods}))?;
        write_atomically(path, &bytes)?;
    }
    Ok(())
}

/// One method's explanations of every input (the predicted class): normalised by the batch's
/// largest magnitude (Quantus' default), the targets, and `|Σ R − f(x)| / |f(x)|` per sample.
struct Explained {
    a: Vec<f32>,
    targets: Vec<usize>,
    conservation: Vec<f64>,
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
    let e = explainer
        .explain(graph, input)
        .with_context(|| format!("--methods {method}"))?;
    let targets = e.targets.clone().unwrap_or_default();
    let (scores, sums) = (floats(e.output.clone())?, e.relevance_sums());
    let classes = scores.len() / dims[0];
    let conservation = (0..dims[0])
        .map(|i| {
            let f = f64::from(scores[i * classes + targets[i]]);
            (f64::from(sums[i]) - f).abs() / f.abs().max(1e-12)
        })
        .collect();
    let mut a = floats(e.relevance)?;
    metrics::normalise_by_max(&mut a);
    Ok(Explained {
        a,
        targets,
        conservation,
    })
}

/// One method: its explanations, then the metrics.
fn evaluate(
    args: &EvaluateArgs,
    graph: &Graph,
    x: &[f32],
    dims: [usize; 4],
    method: &str,
) -> Result<Row> {
    let e = explain(args, graph, x, dims, method)?;
    let images = Images {
        x,
        a: &e.a,
        dims,
        targets: &e.targets,
    };
    let score = if args.score == "logit" {
        Score::Logit
    } else {
        Score::Softmax
    };
    let settings = (baseline(&args.baseline)?, score);
    let per = dims[1] * dims[2] * dims[3];
    let step = args.features_in_step.unwrap_or((per / 16).max(1));
    let curves = [
        metrics::pixel_flipping(graph, images, step, settings)?,
        metrics::region_perturbation(graph, images, (args.patch, args.regions), settings)?,
        metrics::selectivity(graph, images, args.patch, settings)?,
    ];
    let correlation = metrics::faithfulness_correlation(graph, images, (step, 32, 0), settings)?;
    let samples: Vec<&[f32]> = e.a.chunks(per).collect();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let aucs = curves
        .each_ref()
        .map(|c| mean(c.iter().map(|c| metrics::auc(c)).collect()));
    Ok(Row {
        method: method.to_string(),
        values: [
            aucs[0],
            aucs[1],
            aucs[2],
            mean(correlation),
            mean(samples.iter().map(|s| metrics::sparseness(s)).collect()),
            mean(samples.iter().map(|s| metrics::complexity(s)).collect()),
            mean(
                samples
                    .iter()
                    .map(|s| metrics::effective_complexity(s, 1e-5) as f64)
                    .collect(),
            ),
            mean(e.conservation),
        ],
        curves: curves.map(|c| mean_curve(&c)),
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

/// The pointwise mean of equally long curves.
fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let len = curves.first().map_or(0, Vec::len);
    (0..len)
        .map(|k| curves.iter().map(|c| c[k]).sum::<f64>() / curves.len() as f64)
        .collect()
}

fn table(n: usize, rows: &[Row]) -> String {
    let mut out = format!(
        "{n} samples; means per method\n\n| method | {} |\n|---|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for r in rows {
        let values: Vec<String> = r.values.iter().map(|v| format!("{v:.4}")).collect();
        out += &format!("| {} | {} |\n", r.method, values.join(" | "));
    }
    out
}
