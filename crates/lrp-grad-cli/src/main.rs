//! `lrp-grad`: explain a model (ONNX, or JSON + safetensors) on inputs given as .npy.

mod answers;
mod bench;
mod inputs;
mod model;
mod npy;
mod output;
mod spec;
mod tokens;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lrp_grad::heatmap::{self, ColorMap};
use lrp_grad::interchange;
use lrp_grad::{
    Baseline, Explainer, FeatureShape, Layer, Op, OutputRelevance, PreparedExplainer, Target,
};
use output::write_atomically;

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
    /// JSON models: allow tensors in the weights file that no layer uses (a full state_dict
    /// serving part of a model); they are listed on stderr.
    #[arg(long)]
    allow_unused_weights: bool,
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
    /// A composite (default epsilon-plus-flat; epsilon-gamma-box needs --low and --high).
    #[arg(long, value_name = "NAME", help = composite_help())]
    composite: Option<String>,
    /// Lowest possible input value (z-box): one value, or one per channel (-2.1,-2.0,-1.8).
    /// Image inputs without it: the normalised image of pixel value 0.
    #[arg(
        long,
        value_name = "L",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    low: Option<Vec<f64>>,
    /// Highest possible input value (z-box): one value, or one per channel.
    /// Image inputs without it: the normalised image of pixel value 1.
    #[arg(
        long,
        value_name = "H",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    high: Option<Vec<f64>>,
    /// How LRP is computed: auto (one forward and one backward pass where the rules allow it)
    /// or layer-wise (the gradient trick layer by layer). Both give the same relevance.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<lrp_grad::Strategy>())]
    pub(crate) strategy: lrp_grad::Strategy,
}

/// `--composite`'s help, listing every built-in composite from the library's one list.
fn composite_help() -> String {
    format!(
        "A composite: {} (default epsilon-plus-flat; epsilon-gamma-box needs --low and --high)",
        lrp_grad::COMPOSITE_NAMES.join(", ")
    )
}

impl RuleArgs {
    /// The composite for a model taking `shape`; `image_bounds` are the bounds of the image
    /// normalisation (per channel), used when a z-box rule has no --low/--high.
    pub(crate) fn composite(
        &self,
        shape: FeatureShape,
        image_bounds: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<lrp_grad::Composite> {
        let needs = spec::needs_bounds(self.rule.as_deref(), self.composite.as_deref());
        let bounds = match (&self.low, &self.high) {
            (Some(_), None) | (None, Some(_)) => bail!("--low and --high go together"),
            (Some(_), Some(_)) if !needs => bail!(
                "--low/--high are z-box bounds, which {} does not use",
                self.describe()
            ),
            (Some(low), Some(high)) => {
                let channels = (shape.rank() == 3).then(|| shape.channels());
                Some(spec::bounds(low, high, channels)?)
            }
            (None, None) => image_bounds
                .filter(|_| needs)
                .map(|(low, high)| (spec::per_channel(low), spec::per_channel(high))),
        };
        spec::composite(self.rule.as_deref(), self.composite.as_deref(), bounds)
    }

    /// Whether any LRP flag was given (an error with methods that do not run LRP).
    fn given(&self) -> Option<&'static str> {
        [
            (self.rule.is_some(), "--rule"),
            (self.composite.is_some(), "--composite"),
            (self.low.is_some() || self.high.is_some(), "--low/--high"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
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
    /// Inputs: one .npy (float32 or float64; [N, *input_shape] or input_shape alone), or image
    /// files (.png, .jpg, .jpeg) and directories of them (sorted by name).
    #[arg(long, value_name = "X.npy|IMAGE|DIR", num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    #[command(flatten)]
    preprocess: inputs::PreprocessArgs,
    /// Where to write the relevance (.npy, float32, the input's shape; [N, C, H, W] for images).
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
    /// SmoothGrad: seed of the noise (default 0).
    #[arg(long)]
    seed: Option<u64>,
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
    /// Occlusion: value that covers the window (default 0).
    #[arg(long, allow_negative_numbers = true)]
    fill: Option<f32>,
    /// SmoothGrad / Integrated Gradients: average LRP relevance (with --rule/--composite)
    /// instead of the plain gradient.
    #[arg(long)]
    over_lrp: bool,
    /// Explain this class for every sample (default: each sample's predicted class).
    #[arg(long, value_name = "K", conflicts_with = "targets")]
    target: Option<usize>,
    /// One class per sample to explain: text (one per line) or an integer .npy.
    #[arg(long, value_name = "FILE")]
    targets: Option<PathBuf>,
    /// Class names, one per line: in the table, the summary and the heatmap file names.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Write the answers (prediction, score, target, Σ relevance per sample) as JSON.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
    /// Output relevance: logit (R_out = f_target(x), default) or one-hot.
    #[arg(long, value_enum, default_value = "logit")]
    output_relevance: OutputRelevanceArg,
    /// Write a heatmap grid (one cell per sample, up to 8 per row) to this PNG.
    #[arg(long, value_name = "OUT.png")]
    heatmap: Option<PathBuf>,
    /// Colour map of the heatmap (Zennit's): bwr, coldnhot, seismic, gray, … or colour-map code.
    #[arg(long, default_value = "bwr")]
    cmap: String,
    /// Write one heatmap PNG per sample into this directory (named after the input).
    #[arg(long, value_name = "DIR")]
    heatmap_dir: Option<PathBuf>,
    /// Blend the heatmaps over the input images.
    #[arg(long)]
    overlay: bool,
    /// Text models: the vocabulary (one token per line), to show each sample's tokens coloured
    /// by relevance in the terminal and in --html.
    #[arg(long, value_name = "vocab.txt")]
    vocab: Option<PathBuf>,
    /// Text models: write the tokens coloured by relevance as an HTML page.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Samples explained at once.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// No progress bar and no answers table.
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
    // A GPU backend may only fail when first used (no adapter): one tiny read-back finds out.
    let probe = || {
        let device = Device::default();
        Tensor::<1>::zeros([1], &device).into_scalar::<f32>();
        device
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device = std::panic::catch_unwind(probe);
    std::panic::set_hook(hook);
    device.map_err(|_| anyhow!("BURN_DEVICE={name}: this build of lrp-grad has no such backend, or the device cannot be opened (unset it to use the default CPU backend)"))
}

/// A batch of per-sample `shape` values as a tensor of rank 2, 3 or 4 (the model's own).
pub(crate) enum Batch {
    Vector(Tensor<2>),
    Sequence(Tensor<3>),
    Image(Tensor<4>),
}

pub(crate) fn batch(data: Vec<f32>, n: usize, shape: FeatureShape, device: &Device) -> Batch {
    let data = TensorData::new(data, shape.with_batch(n));
    match shape.rank() {
        1 => Batch::Vector(Tensor::from_data(data, device)),
        2 => Batch::Sequence(Tensor::from_data(data, device)),
        _ => Batch::Image(Tensor::from_data(data, device)),
    }
}

/// What one chunk gives: relevance, model outputs `[n, classes]`, targets, relevance sums.
pub(crate) struct ChunkResult {
    pub relevance: Vec<f32>,
    pub outputs: Vec<f32>,
    pub targets: Vec<usize>,
    pub sums: Vec<f32>,
}

/// Explains one chunk, with the explainer prepared once for all chunks.
pub(crate) fn explain_batch(
    explainer: &PreparedExplainer,
    batch: Batch,
) -> lrp_grad::Result<ChunkResult> {
    fn run<const D: usize>(
        explainer: &PreparedExplainer,
        x: Tensor<D>,
    ) -> lrp_grad::Result<ChunkResult> {
        let floats = |t: TensorData| {
            t.convert::<f32>()
                .try_to_vec::<f32>()
                .expect("float relevance")
        };
        let e = explainer.explain(x)?;
        let sums = e.relevance_sums();
        Ok(ChunkResult {
            relevance: floats(e.relevance.into_data()),
            outputs: floats(e.output.into_data()),
            targets: e.targets.unwrap_or_default(),
            sums,
        })
    }
    match batch {
        Batch::Vector(x) => run(explainer, x),
        Batch::Sequence(x) => run(explainer, x),
        Batch::Image(x) => run(explainer, x),
    }
}

fn method_args(args: &ExplainArgs) -> Result<spec::MethodArgs<'_>> {
    let baseline = match &args.baseline {
        Some(path) => {
            let b = npy::read(path)?;
            Some(Baseline::Tensor(TensorData::new(b.data, b.shape)))
        }
        None => None,
    };
    Ok(spec::MethodArgs {
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
    })
}

/// The explainer the flags describe; flags the method does not use are errors.
fn explainer(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &inputs::Inputs,
) -> Result<Explainer> {
    let method_args = method_args(args)?;
    let uses_lrp = method_args.uses_lrp();
    let method = spec::method(method_args)?;
    let mut explainer = Explainer::new()
        .method(method)
        .output_relevance(match args.output_relevance {
            OutputRelevanceArg::Logit => OutputRelevance::Logit,
            OutputRelevanceArg::OneHot => OutputRelevance::OneHot,
        })
        .strategy(args.rules.strategy);
    if uses_lrp {
        let channels = model.input_shape.channels();
        let image_bounds = inputs.recipe.as_ref().map(|r| r.bounds(channels));
        explainer = explainer.composite(args.rules.composite(model.input_shape, image_bounds)?);
    } else if let Some(flag) = args.rules.given() {
        bail!(
            "{flag} applies to LRP; --method {} does not use it",
            args.method
        );
    }
    if let Some(k) = args.target {
        explainer = explainer.target(Target::Class(k));
    }
    Ok(explainer)
}

/// A text model's token ids, and its vocabulary when given.
type TextInputs = (Vec<Vec<u32>>, Option<lrp_grad::tokens::Vocabulary>);

/// For a text model, the token ids of `inputs` (replaced there by their embeddings) and the
/// vocabulary; `None` for other models, where the text flags are errors.
fn text_inputs(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &mut inputs::Inputs,
    device: &Device,
) -> Result<Option<TextInputs>> {
    let Some(embedding) = &model.embedding else {
        if inputs.integer {
            bail!(
                "{}: holds integers (token ids, for text models); {} takes float32",
                args.input.first().cloned().unwrap_or_default().display(),
                args.model.model.display()
            );
        }
        if let Some(flag) = [(&args.vocab, "--vocab"), (&args.html, "--html")]
            .into_iter()
            .find_map(|(given, flag)| given.is_some().then_some(flag))
        {
            bail!(
                "{flag} is for text models (token ids in); {} takes {:?}",
                args.model.model.display(),
                model.input_shape.dims()
            );
        }
        return Ok(None);
    };
    if args.heatmap.is_some() || args.heatmap_dir.is_some() {
        bail!(
            "--heatmap/--heatmap-dir are for image models; for a text model use --vocab and --html"
        );
    }
    let vocab = args.vocab.as_deref().map(tokens::read_vocab).transpose()?;
    let input = args.input.first().cloned().unwrap_or_default();
    let ids = tokens::embed(inputs, embedding, &input, device)?;
    Ok(Some((ids, vocab)))
}

/// Prints (unless --quiet, with --vocab) and writes (--html) the tokens coloured by relevance.
fn show_tokens(
    args: &ExplainArgs,
    names: &[String],
    (ids, vocab): &TextInputs,
    relevance: &[f32],
) -> Result<()> {
    let words = tokens::words(ids, vocab.as_ref());
    if let Some(path) = &args.html {
        write_atomically(path, tokens::html_page(names, &words, relevance).as_bytes())?;
    }
    if vocab.is_some() && !args.quiet {
        print!("{}", tokens::terminal_lines(names, &words, relevance));
    }
    Ok(())
}

fn explain(args: ExplainArgs) -> Result<()> {
    let device = device()?;
    let weights = model::require_weights(&args.model.model, args.weights.as_deref())?;
    let model = model::load(
        &args.model.model,
        weights,
        args.model.allow_unused_weights,
        &device,
    )?;
    let mut inputs = inputs::read(
        &args.input,
        model.file_shape(),
        &args.preprocess,
        &args.model.model,
    )?;
    let ids = text_inputs(&args, &model, &mut inputs, &device)?;
    let explainer = explainer(&args, &model, &inputs)?;
    let classes = model.graph.num_classes(model.input_shape)?;
    let labels = match &args.labels {
        Some(path) => Some(answers::read_labels(path, classes)?),
        None => None,
    };
    let targets = match &args.targets {
        Some(path) => Some(answers::read_targets(path, inputs.n)?),
        None => None,
    };
    let cmap = match args.heatmap.is_some() || args.heatmap_dir.is_some() {
        true => Some(ColorMap::new(&args.cmap).map_err(|e| anyhow!("--cmap: {e}"))?),
        false => None,
    };
    if cmap.is_some() && model.input_shape.as_image().is_none() {
        bail!(
            "--heatmap/--heatmap-dir need an image model (input_shape [C, H, W]); {} takes {:?}",
            args.model.model.display(),
            model.input_shape.dims()
        );
    }
    let mut result = run_chunks(&args, &model, &inputs, explainer, targets)?;
    if let Some(text) = &ids {
        let t = model.input_shape.dims()[0];
        result.relevance = tokens::per_token(&result.relevance, inputs.n, t);
        show_tokens(&args, &inputs.names, text, &result.relevance)?;
    }
    let answers = answers::answers(
        &inputs.names,
        &result.outputs,
        &result.targets,
        &result.sums,
    );
    write_outputs(
        &args,
        &model,
        &inputs,
        &result,
        &answers,
        labels.as_deref(),
        cmap,
    )?;
    if !args.quiet {
        print!("{}", answers::table(&answers, labels.as_deref()));
    }
    Ok(())
}

/// Explains the inputs in chunks of --batch-size, with a progress bar on a terminal.
fn run_chunks(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &inputs::Inputs,
    explainer: Explainer,
    targets: Option<Vec<usize>>,
) -> Result<ChunkResult> {
    let device = device()?;
    let n = inputs.n;
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
            inputs.names.first().map_or("", |s| s.as_str()),
            args.model.model.display(),
            args.rules.describe()
        )
    };
    let per_sample = model.input_shape.numel();
    let mut all = ChunkResult {
        relevance: Vec::with_capacity(inputs.data.len()),
        outputs: Vec::new(),
        targets: Vec::new(),
        sums: Vec::new(),
    };
    let prepare = |explainer: &Explainer| {
        explainer
            .prepare(&model.graph, model.input_shape)
            .map_err(|e| anyhow!("{}: {e}", context()))
    };
    // Canonized, checked and planned once for every chunk (per chunk with per-sample targets).
    let shared = match &targets {
        None => Some(prepare(&explainer)?),
        Some(_) => None,
    };
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let per_chunk;
        let prepared = match &shared {
            Some(prepared) => prepared,
            None => {
                let mut chunk_explainer = explainer.clone();
                if let Some(targets) = &targets {
                    let targets = targets[start..end].to_vec();
                    chunk_explainer = chunk_explainer.target(Target::PerSample(targets));
                }
                per_chunk = prepare(&chunk_explainer)?;
                &per_chunk
            }
        };
        let data = inputs.data[start * per_sample..end * per_sample].to_vec();
        let r = explain_batch(
            prepared,
            batch(data, end - start, model.input_shape, &device),
        )
        .map_err(|e| anyhow!("{}: {e}", context()))?;
        all.relevance.extend(r.relevance);
        all.outputs.extend(r.outputs);
        all.targets.extend(r.targets);
        all.sums.extend(r.sums);
        progress.inc((end - start) as u64);
    }
    progress.finish_and_clear();
    Ok(all)
}

/// Everything is computed before any file is written; each file is written atomically.
fn write_outputs(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &inputs::Inputs,
    result: &ChunkResult,
    answers: &[answers::Answer],
    labels: Option<&[String]>,
    cmap: Option<ColorMap>,
) -> Result<()> {
    let images = match &cmap {
        Some(cmap) => Some(heatmaps(
            &result.relevance,
            &inputs.data,
            inputs.n,
            model.input_shape,
            cmap,
            args.overlay,
        )?),
        None => None,
    };
    // Each cell says what the model answered: the predicted class (its label) and score.
    let images = images.map(|cells| {
        cells
            .iter()
            .zip(answers)
            .map(|(cell, a)| {
                let class = labels.map_or(a.predicted.to_string(), |l| l[a.predicted].clone());
                heatmap::captioned(cell, &format!("{class} {:.2}", a.score))
            })
            .collect::<Vec<_>>()
    });
    let grid = match (&args.heatmap, &images) {
        (Some(_), Some(cells)) => Some(png(&heatmap::grid(cells, inputs.n.min(8), 2))?),
        _ => None,
    };
    let summary = match &args.summary {
        Some(_) => Some(answers::summary(answers, labels)?),
        None => None,
    };
    let npy_bytes = npy::encode(&inputs.shape, &result.relevance)?;
    write_atomically(&args.output, &npy_bytes)?;
    if let (Some(path), Some(bytes)) = (&args.heatmap, grid) {
        write_atomically(path, &bytes)?;
    }
    if let (Some(dir), Some(cells)) = (&args.heatmap_dir, &images) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (cell, stem) in cells.iter().zip(&inputs.stems) {
            write_atomically(&dir.join(format!("{stem}.png")), &png(cell)?)?;
        }
    }
    if let (Some(path), Some(bytes)) = (&args.summary, summary) {
        write_atomically(path, &bytes)?;
    }
    Ok(())
}

/// One heatmap per sample, small images scaled up to ~112 px.
fn heatmaps(
    relevance: &[f32],
    input: &[f32],
    n: usize,
    shape: FeatureShape,
    cmap: &ColorMap,
    overlay: bool,
) -> Result<Vec<image::RgbImage>> {
    let Some((channels, height, width)) = shape.as_image() else {
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
    Ok(cells)
}

fn png(image: &image::RgbImage) -> Result<Vec<u8>> {
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
    let model = model::load(
        &args.model.model,
        args.weights.as_deref(),
        args.model.allow_unused_weights,
        &device,
    )?;
    let canonical = model.graph.canonize();
    let plan = args
        .rules
        .composite(model.input_shape, None)?
        .plan(&canonical)?;
    let shapes = model.graph.shapes(model.input_shape)?;
    print_info_header(&args, &model)?;
    println!(
        "{:>3}  {:<28} {:<30} {:<16} {:>10}  rule",
        "#", "node", "operation", "output", "params"
    );
    for (index, node) in model.graph.nodes().iter().enumerate() {
        let merged = matches!(node.op, Op::Layer(Layer::BatchNorm(_)))
            && matches!(canonical.nodes()[index].op, Op::Layer(Layer::Identity(_)));
        let rule = if merged {
            "merged into the layer before".to_string()
        } else {
            plan[index].to_string()
        };
        println!(
            "{:>3}  {:<28} {:<30} {:<16} {:>10}  {}",
            index,
            node.name,
            describe_node(&model, index),
            format!("{:?}", shapes[index + 1].dims()),
            group_digits(model::parameters_and_buffers(&node.op).0),
            rule
        );
    }
    Ok(())
}

/// The first lines of `info`: input, classes, parameters, rules, a dropped softmax.
fn print_info_header(args: &InfoArgs, model: &model::CliModel) -> Result<()> {
    let classes = model.graph.num_classes(model.input_shape)?;
    let (params, buffers) = model
        .graph
        .nodes()
        .iter()
        .map(|n| model::parameters_and_buffers(&n.op))
        .fold((0, 0), |(p, b), (np, nb)| (p + np, b + nb));
    let buffers = if buffers > 0 {
        format!(" (+ {} batch-norm statistics)", group_digits(buffers))
    } else {
        String::new()
    };
    let architecture_only = if model.spec.is_some() && args.weights.is_none() {
        " (architecture only: no weights given)"
    } else {
        ""
    };
    let input = match &model.embedding {
        Some(embedding) => format!(
            "token ids {:?} (vocabulary {}) embedded to {:?}",
            model.file_shape().dims(),
            embedding.weight.dims()[0],
            model.input_shape.dims()
        ),
        None => format!("{:?}", model.input_shape.dims()),
    };
    println!(
        "{}: input {input}, {} classes, {} parameters{buffers}; {}{architecture_only}",
        args.model.model.display(),
        classes,
        group_digits(params),
        args.rules.describe(),
    );
    if let Some(softmax) = &model.dropped_softmax {
        println!("the final softmax `{softmax}` is left out: the logits before it are explained");
    }
    Ok(())
}

/// A node's operation: the layer description of the JSON format, or the operation and the
/// nodes it reads for a graph.
fn describe_node(model: &model::CliModel, index: usize) -> String {
    let nodes = model.graph.nodes();
    if let Some(spec) = &model.spec {
        return describe_layer(&spec.layers[index]);
    }
    let name = |value: usize| match value {
        0 => "input".to_string(),
        v => nodes[v - 1].name.clone(),
    };
    let inputs: Vec<String> = nodes[index].inputs.iter().map(|&v| name(v)).collect();
    format!("{} ← {}", nodes[index].op.kind(), inputs.join(", "))
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
