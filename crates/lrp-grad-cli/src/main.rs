//! `lrp-grad`: explain a model (ONNX, or JSON + safetensors) on inputs given as .npy.

mod bench;
mod model;
mod npy;
mod spec;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lrp_grad::heatmap::{self, ColorMap};
use lrp_grad::interchange::{self, write_atomically};
use lrp_grad::{
    Baseline, Explainer, FeatureShape, Layer, Op, OutputRelevance, PreparedExplainer, Target,
};

/// mimalloc rather than the system allocator: Burn's CPU backends allocate and free
/// activation-sized buffers on every operation, and glibc's malloc hands such large blocks back
/// to the system each time, so every new buffer starts with page faults (a fifth to a quarter
/// of an explanation's time on mnist-cnn).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lrp-grad",
    version,
    about = "Explain neural-network predictions with Layer-wise Relevance Propagation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// Explain inputs: write their relevance (.npy) and optionally a heatmap (.png).
    Explain(ExplainArgs),
    /// Show the model's layers, shapes, parameter counts and the rule each layer gets.
    Info(InfoArgs),
    /// Time forward, input gradient and LRP on random input.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
pub(crate) struct ModelArgs {
    /// The model: an ONNX file (`.onnx`, e.g. from `torch.onnx.export`; an external
    /// `.onnx.data` beside it is read too) or a JSON description (interchange format, with
    /// --weights).
    #[arg(long, value_name = "M.onnx|M.json")]
    model: PathBuf,
}

#[derive(Args, Clone)]
pub(crate) struct RuleArgs {
    /// One rule for every linear and conv layer: zero, epsilon[:EPS], gamma[:GAMMA],
    /// alpha-beta[:ALPHA,BETA], z-plus, z-box:LOW,HIGH, flat, w-square.
    #[arg(
        long,
        value_name = "SPEC",
        conflicts_with = "composite",
        allow_hyphen_values = true
    )]
    rule: Option<String>,
    /// A composite: epsilon-plus, epsilon-plus-flat (default), epsilon-gamma-box (needs --low
    /// and --high), epsilon-alpha2-beta1, epsilon-alpha2-beta1-flat.
    #[arg(long, value_name = "NAME")]
    composite: Option<String>,
    /// Lowest possible input value (z-box).
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    low: Option<f64>,
    /// Highest possible input value (z-box).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    high: Option<f64>,
    /// How LRP is computed: auto (one forward and one backward pass where the rules allow it)
    /// or layer-wise (the gradient trick layer by layer). Both give the same relevance.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<lrp_grad::Strategy>())]
    pub(crate) strategy: lrp_grad::Strategy,
}

impl RuleArgs {
    pub(crate) fn composite(&self) -> Result<lrp_grad::Composite> {
        spec::composite(
            self.rule.as_deref(),
            self.composite.as_deref(),
            self.low,
            self.high,
        )
    }

    pub(crate) fn describe(&self) -> String {
        match (&self.rule, &self.composite) {
            (Some(rule), _) => format!("rule {rule}"),
            (None, Some(c)) => format!("composite {c}"),
            (None, None) => "composite epsilon-plus-flat".into(),
        }
    }
}

#[derive(Copy, Clone, ValueEnum)]
enum OutputRelevanceArg {
    /// R_out = the target's score f_target(x).
    Logit,
    /// R_out = 1 on the target.
    OneHot,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors, PyTorch state_dict names and layouts); an ONNX
    /// model holds its own.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// Input (.npy, float32 or float64): [N, *input_shape] or input_shape alone.
    #[arg(long, value_name = "X.npy")]
    input: PathBuf,
    /// Where to write the relevance (.npy, float32, the input's shape).
    #[arg(long, value_name = "R.npy")]
    output: PathBuf,
    #[command(flatten)]
    rules: RuleArgs,
    /// Attribution method: lrp (default), gradient, gradient-x-input, smoothgrad,
    /// integrated-gradients, occlusion.
    #[arg(long, default_value = "lrp")]
    method: String,
    /// SmoothGrad: number of samples (default 20).
    #[arg(long)]
    samples: Option<usize>,
    /// SmoothGrad: noise σ as a fraction of each input's value range (default 0.1).
    #[arg(long)]
    noise: Option<f64>,
    /// SmoothGrad: seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Integrated Gradients: number of steps (default 20).
    #[arg(long)]
    steps: Option<usize>,
    /// Integrated Gradients: baseline .npy of the per-sample input shape (default: zeros).
    #[arg(long, value_name = "B.npy")]
    baseline: Option<PathBuf>,
    /// Occlusion: window size in pixels (default 8).
    #[arg(long)]
    window: Option<usize>,
    /// Occlusion: stride in pixels (default: the window).
    #[arg(long)]
    stride: Option<usize>,
    /// Occlusion: value that covers the window.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    fill: f32,
    /// SmoothGrad / Integrated Gradients: average LRP relevance (with --rule/--composite)
    /// instead of the plain gradient.
    #[arg(long)]
    over_lrp: bool,
    /// Explain this class for every sample (default: each sample's predicted class).
    #[arg(long, value_name = "K")]
    target: Option<usize>,
    /// Output relevance: logit (R_out = f_target(x), default) or one-hot.
    #[arg(long, value_enum, default_value = "logit")]
    output_relevance: OutputRelevanceArg,
    /// Write a heatmap grid (one cell per sample, up to 8 per row) to this PNG.
    #[arg(long, value_name = "OUT.png")]
    heatmap: Option<PathBuf>,
    /// Colour map of the heatmap (Zennit's): bwr, coldnhot, seismic, gray, … or colour-map code.
    #[arg(long, default_value = "bwr")]
    cmap: String,
    /// Blend the heatmap over the input image.
    #[arg(long)]
    overlay: bool,
    /// Samples explained at once.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors); checked when given.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    rules: RuleArgs,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Explain(args) => explain(args),
        Command::Info(args) => info(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// The default device (Burn picks the backend; `BURN_DEVICE` overrides it). Burn panics on a
/// `BURN_DEVICE` this build cannot serve; that becomes an error message here.
pub(crate) fn device() -> Result<Device> {
    let Ok(name) = std::env::var("BURN_DEVICE") else {
        return Ok(Device::default());
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device = std::panic::catch_unwind(Device::default);
    std::panic::set_hook(hook);
    device.map_err(|_| anyhow!("BURN_DEVICE={name}: this build of lrp-grad has no such backend (unset it to use the default CPU backend)"))
}

/// A batch of per-sample `shape` values as a tensor of rank 2 or 4.
pub(crate) enum Batch {
    Vector(Tensor<2>),
    Image(Tensor<4>),
}

pub(crate) fn batch(data: Vec<f32>, n: usize, shape: FeatureShape, device: &Device) -> Batch {
    match shape {
        FeatureShape::Vector(f) => {
            Batch::Vector(Tensor::from_data(TensorData::new(data, [n, f]), device))
        }
        image => Batch::Image(Tensor::from_data(
            TensorData::new(data, image.batched(n)),
            device,
        )),
    }
}

/// The relevance of one chunk, with the explainer prepared once for all chunks.
pub(crate) fn explain_batch(
    explainer: &PreparedExplainer,
    batch: Batch,
) -> lrp_grad::Result<Vec<f32>> {
    let floats = |t: TensorData| {
        t.convert::<f32>()
            .try_to_vec::<f32>()
            .expect("float relevance")
    };
    Ok(match batch {
        Batch::Vector(x) => floats(explainer.explain(x)?.relevance.into_data()),
        Batch::Image(x) => floats(explainer.explain(x)?.relevance.into_data()),
    })
}

fn explain(args: ExplainArgs) -> Result<()> {
    let device = device()?;
    let weights = model::require_weights(&args.model.model, args.weights.as_deref())?;
    let model = model::load(&args.model.model, weights, &device)?;
    let sample_dims = model.input_shape.dims();
    let input = npy::read(&args.input)?;
    // [N, *input_shape] or input_shape alone (then N = 1).
    let n = if input.shape == sample_dims {
        1
    } else if input.shape.len() == sample_dims.len() + 1 && input.shape[1..] == sample_dims[..] {
        input.shape[0]
    } else {
        bail!(
            "{}: shape {:?} does not fit the model {} (input_shape {:?}); expected [N, {}] or {:?}",
            args.input.display(),
            input.shape,
            args.model.model.display(),
            sample_dims,
            sample_dims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            sample_dims
        );
    };
    if n == 0 {
        bail!(
            "{}: shape {:?} holds no sample",
            args.input.display(),
            input.shape
        );
    }
    let per_sample = model.input_shape.numel();
    let baseline = match &args.baseline {
        Some(path) => {
            let b = npy::read(path)?;
            Some(Baseline::Tensor(TensorData::new(b.data, b.shape)))
        }
        None => None,
    };
    let method = spec::method(spec::MethodArgs {
        name: &args.method,
        samples: args.samples,
        noise: args.noise,
        seed: args.seed,
        steps: args.steps,
        baseline,
        window: args.window,
        stride: args.stride,
        fill: args.fill,
        over_lrp: args.over_lrp,
    })?;
    let mut explainer = Explainer::new()
        .method(method)
        .output_relevance(match args.output_relevance {
            OutputRelevanceArg::Logit => OutputRelevance::Logit,
            OutputRelevanceArg::OneHot => OutputRelevance::OneHot,
        })
        .composite(args.rules.composite()?)
        .strategy(args.rules.strategy);
    if let Some(k) = args.target {
        explainer = explainer.target(Target::Class(k));
    }
    let cmap = match &args.heatmap {
        Some(_) => Some(ColorMap::new(&args.cmap).map_err(|e| anyhow!("--cmap: {e}"))?),
        None => None,
    };
    if args.heatmap.is_some() && matches!(model.input_shape, FeatureShape::Vector(_)) {
        bail!(
            "--heatmap needs an image model (input_shape [C, H, W]); {} takes {:?}",
            args.model.model.display(),
            sample_dims
        );
    }

    let chunk = args.batch_size.max(1);
    let progress = if args.quiet || !std::io::stderr().is_terminal() || n <= chunk {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} samples {elapsed}<{eta}")
                .expect("template"),
        );
        bar
    };
    let context = || {
        format!(
            "explaining {} with {} ({})",
            args.input.display(),
            args.model.model.display(),
            args.rules.describe()
        )
    };
    // Canonized, checked and planned once for every chunk.
    let prepared = explainer
        .prepare(&model.graph, model.input_shape)
        .map_err(|e| anyhow!("{}: {e}", context()))?;
    let mut relevance = Vec::with_capacity(input.data.len());
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let data = input.data[start * per_sample..end * per_sample].to_vec();
        let r = explain_batch(
            &prepared,
            batch(data, end - start, model.input_shape, &device),
        )
        .map_err(|e| anyhow!("{}: {e}", context()))?;
        relevance.extend(r);
        progress.inc((end - start) as u64);
    }
    progress.finish_and_clear();

    // Everything is computed before any file is written; each file is written atomically.
    let png = match (&args.heatmap, cmap) {
        (Some(_), Some(cmap)) => Some(heatmap_png(
            &relevance,
            &input.data,
            n,
            model.input_shape,
            &cmap,
            args.overlay,
        )?),
        _ => None,
    };
    let npy_bytes = npy::encode(&input.shape, &relevance)?;
    write_atomically(&args.output, &npy_bytes)?;
    if let (Some(path), Some(bytes)) = (&args.heatmap, png) {
        write_atomically(path, &bytes)?;
    }
    Ok(())
}

/// One grid PNG: a cell per sample (8 per row), small images scaled up to ~112 px.
fn heatmap_png(
    relevance: &[f32],
    input: &[f32],
    n: usize,
    shape: FeatureShape,
    cmap: &ColorMap,
    overlay: bool,
) -> Result<Vec<u8>> {
    let FeatureShape::Image {
        channels,
        height,
        width,
    } = shape
    else {
        bail!("heatmaps need an image input");
    };
    let per = shape.numel();
    let scale = (112 / height.max(width)).max(1) as u32;
    let cells = (0..n)
        .map(|s| {
            let heat = heatmap::heatmap(
                &relevance[s * per..(s + 1) * per],
                channels,
                height,
                width,
                cmap,
            )?;
            let heat = if overlay {
                heatmap::overlay(&heat, &input[s * per..(s + 1) * per], channels, 0.6)
            } else {
                heat
            };
            Ok(heatmap::upscale(&heat, scale))
        })
        .collect::<Result<Vec<_>, heatmap::HeatmapError>>()?;
    let image = heatmap::grid(&cells, n.min(8), 2);
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("encoding the heatmap")?;
    Ok(bytes)
}

fn info(args: InfoArgs) -> Result<()> {
    let device = device()?;
    let model = model::load(&args.model.model, args.weights.as_deref(), &device)?;
    let canonical = model.graph.canonize();
    let plan = args.rules.composite()?.plan(&canonical)?;
    let shapes = model.graph.shapes(model.input_shape)?;
    let classes = model.graph.num_classes(model.input_shape)?;
    let nodes = model.graph.nodes();
    let (params, buffers) = nodes
        .iter()
        .map(|n| model::parameters_and_buffers(&n.op))
        .fold((0, 0), |(p, b), (np, nb)| (p + np, b + nb));
    let architecture_only = model.spec.is_some() && args.weights.is_none();
    println!(
        "{}: input {:?}, {} classes, {} parameters{}; {}{}",
        args.model.model.display(),
        model.input_shape.dims(),
        classes,
        group_digits(params),
        if buffers > 0 {
            format!(" (+ {} batch-norm statistics)", group_digits(buffers))
        } else {
            String::new()
        },
        args.rules.describe(),
        if architecture_only {
            " (architecture only: no weights given)"
        } else {
            ""
        }
    );
    if let Some(softmax) = &model.dropped_softmax {
        println!("the final softmax `{softmax}` is left out: the logits before it are explained");
    }
    println!(
        "{:>3}  {:<28} {:<30} {:<16} {:>10}  rule",
        "#", "node", "operation", "output", "params"
    );
    let name = |value: usize| match value {
        0 => "input".to_string(),
        v => nodes[v - 1].name.clone(),
    };
    for (index, node) in nodes.iter().enumerate() {
        let merged = matches!(node.op, Op::Layer(Layer::BatchNorm(_)))
            && matches!(canonical.nodes()[index].op, Op::Layer(Layer::Identity(_)));
        let rule = if merged {
            "merged into the layer before".to_string()
        } else {
            plan[index].to_string()
        };
        let operation = match &model.spec {
            Some(spec) => describe_layer(&spec.layers[index]),
            None => format!(
                "{} ← {}",
                node.op.kind(),
                node.inputs
                    .iter()
                    .map(|&v| name(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        println!(
            "{:>3}  {:<28} {:<30} {:<16} {:>10}  {}",
            index,
            node.name,
            operation,
            format!("{:?}", shapes[index + 1].dims()),
            group_digits(model::parameters_and_buffers(&node.op).0),
            rule
        );
    }
    Ok(())
}

fn describe_layer(spec: &interchange::LayerSpec) -> String {
    use interchange::LayerSpec as L;
    match spec {
        L::Linear {
            in_features,
            out_features,
            ..
        } => format!("linear {in_features}→{out_features}"),
        L::Conv2d {
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            ..
        } => format!(
            "conv2d {in_channels}→{out_channels} k{}x{} s{} p{}",
            kernel_size.0[0], kernel_size.0[1], stride.0[0], padding.0[0]
        ),
        L::MaxPool2d { kernel_size, .. } => {
            format!("max_pool2d {}x{}", kernel_size.0[0], kernel_size.0[1])
        }
        L::AvgPool2d { kernel_size, .. } => {
            format!("avg_pool2d {}x{}", kernel_size.0[0], kernel_size.0[1])
        }
        L::AdaptiveAvgPool2d { output_size } => format!(
            "adaptive_avg_pool2d {}x{}",
            output_size.0[0], output_size.0[1]
        ),
        L::Dropout { p } => format!("dropout p={p}"),
        L::LeakyRelu { negative_slope } => format!("leaky_relu {negative_slope}"),
        other => other.kind().to_string(),
    }
}

pub(crate) fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
