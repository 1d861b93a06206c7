//! `lrp-grad explain`: inputs in, relevance (.npy), answers and heatmaps out.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lrp_grad::heatmap::{self, ColorMap};
use lrp_grad::{Baseline, Explainer, FeatureShape, OutputRelevance, PreparedExplainer, Target};

use crate::output::write_atomically;
use tokenizers::Tokenizer;

use crate::{
    ModelArgs, RuleArgs, answers, device, inputs, model, npy, prompt, ragged, spec, tokens,
};

/// A text model's token ids, and its vocabulary when given.
type TextInputs = (Vec<Vec<u32>>, Option<lrp_grad::tokens::Vocabulary>);

#[derive(Copy, Clone, ValueEnum)]
enum OutputRelevanceArg {
    /// R_out = the target's score f_target(x).
    Logit,
    /// R_out = 1 on the target.
    OneHot,
}

#[derive(Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors, PyTorch state_dict names and layouts); an ONNX
    /// model holds its own.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    /// Inputs: one .npy (float32 or float64; [N, *input_shape] or input_shape alone), or image
    /// files (.png, .jpg, .jpeg) and directories of them (sorted by name).
    #[arg(long, value_name = "X.npy|IMAGE|DIR", num_args = 1.., required_unless_present = "text")]
    input: Vec<PathBuf>,
    /// Checkpoint directories: explain these texts, tokenised with the directory's
    /// tokenizer.json (instead of --input token ids; texts of different lengths are each
    /// explained on their own tokens).
    #[arg(long, value_name = "TEXT", num_args = 1.., conflicts_with = "input")]
    text: Vec<String>,
    /// Checkpoint directories: explain this next token for every sample (one token of the
    /// vocabulary, with its leading space where the tokenizer has one: " Paris").
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["target", "targets"])]
    target_token: Option<String>,
    /// Checkpoint directories: which ids of --input are tokens (1) and which padding (0), an
    /// integer .npy of the ids' shape; padding left or right, each sample explained on its own
    /// tokens (relevance 0 at the padding).
    #[arg(long, value_name = "MASK.npy", requires = "input")]
    attention_mask: Option<PathBuf>,
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

/// For a text model, the token ids of `inputs` (replaced there by their embeddings) and the
/// vocabulary; `None` for other models, where the text flags are errors.
fn text_inputs(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &mut inputs::Inputs,
    device: &Device,
    checkpoint_vocabulary: Option<lrp_grad::tokens::Vocabulary>,
    embed: bool,
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
    let vocab = match args.vocab.as_deref() {
        Some(path) => Some(tokens::read_vocab(path)?),
        None => checkpoint_vocabulary,
    };
    let input = args.input.first().cloned().unwrap_or_default();
    let ids = match embed {
        true => tokens::embed(inputs, embedding, &input, device)?,
        // Samples of different lengths are embedded per group (see `ragged`).
        false => tokens::ids(inputs, &input)?,
    };
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

/// The model `--model` names and its inputs; a checkpoint directory's graph is built for the
/// token ids' length, and its tokenizer (when it has one) reads `--text`.
fn model_and_inputs(
    args: &ExplainArgs,
    tokenizer: Option<&Tokenizer>,
    device: &Device,
) -> Result<Loaded> {
    let weights = model::require_weights(&args.model.model, args.weights.as_deref())?;
    let dir = &args.model.model;
    if !model::is_checkpoint(dir) {
        let checkpoint_flag = [
            (!args.text.is_empty(), "--text"),
            (args.target_token.is_some(), "--target-token"),
            (args.attention_mask.is_some(), "--attention-mask"),
        ];
        if let Some((_, flag)) = checkpoint_flag.iter().find(|(given, _)| *given) {
            bail!(
                "{flag} is for checkpoint directories; {} is a model file",
                dir.display()
            );
        }
        let model = model::load(dir, weights, args.model.allow_unused_weights, device)?;
        let inputs = inputs::read(&args.input, model.file_shape(), &args.preprocess, dir)?;
        return Ok((model, inputs, None));
    }
    let (inputs, ragged) = checkpoint_inputs(args, tokenizer)?;
    let lm = lrp_grad::hf::load(dir, device)?;
    let tokens = inputs.shape.last().copied().unwrap_or(0);
    let model = model::checkpoint_model(dir, &lm, tokens)?;
    Ok((model, inputs, ragged.map(|r| (lm, r))))
}

/// A checkpoint's inputs: token ids (with their attention mask) or texts, and each sample's
/// real tokens where the lengths differ.
fn checkpoint_inputs(
    args: &ExplainArgs,
    tokenizer: Option<&Tokenizer>,
) -> Result<(inputs::Inputs, Option<ragged::Ragged>)> {
    let dir = &args.model.model;
    let texts = &args.text[..];
    if !texts.is_empty() {
        return match tokenizer {
            Some(tokenizer) => prompt::encode(tokenizer, texts),
            None => bail!(
                "--text: {} has no tokenizer.json; give token ids with --input",
                dir.display()
            ),
        };
    }
    let [input] = &args.input[..] else {
        bail!("a checkpoint directory takes one --input: token ids as an integer .npy [N, T]");
    };
    let tokens = npy::read(input)?.shape.last().copied().unwrap_or(0);
    let shape = FeatureShape::vector(tokens.max(1));
    let inputs = inputs::read(&args.input, shape, &args.preprocess, dir)?;
    let ragged = match &args.attention_mask {
        Some(path) => {
            let mask = npy::read(path)?;
            Some(ragged::Ragged::from_mask(
                &mask.data,
                &mask.shape,
                &inputs.shape,
            )?)
        }
        None => None,
    };
    Ok((inputs, ragged))
}

/// The model, its inputs, and for inputs of different lengths the checkpoint's model with
/// each sample's real tokens.
type Loaded = (
    model::CliModel,
    inputs::Inputs,
    Option<(lrp_grad::hf::HfModel, ragged::Ragged)>,
);

/// A checkpoint's token texts (from its tokenizer.json, if any): the answers' labels and the
/// tokens' rendering.
fn checkpoint_vocabulary(
    tokenizer: Option<&Tokenizer>,
    model: &model::CliModel,
) -> Option<lrp_grad::tokens::Vocabulary> {
    let vocab_size = model.embedding.as_ref()?.weight.dims()[0];
    Some(prompt::vocabulary(tokenizer?, vocab_size))
}

/// The classes' names: `--labels`, or a causal LM's token texts.
fn labels(
    args: &ExplainArgs,
    vocabulary: Option<&lrp_grad::tokens::Vocabulary>,
    classes: usize,
    next_token: bool,
) -> Result<Option<Vec<String>>> {
    Ok(match (&args.labels, vocabulary) {
        (Some(path), _) => Some(answers::read_labels(path, classes)?),
        (None, Some(vocabulary)) if next_token => {
            Some((0..classes as u32).map(|id| vocabulary.token(id)).collect())
        }
        (None, _) => None,
    })
}

/// `--target-token`'s id, through the checkpoint's tokenizer.
fn target_token(args: &ExplainArgs, tokenizer: Option<&Tokenizer>) -> Result<Option<usize>> {
    let Some(token) = &args.target_token else {
        return Ok(None);
    };
    match tokenizer {
        Some(tokenizer) => Ok(Some(prompt::target_token(tokenizer, token)?)),
        None => bail!(
            "--target-token: {} has no tokenizer.json; give --target ID",
            args.model.model.display()
        ),
    }
}

pub(crate) fn run(args: ExplainArgs) -> Result<()> {
    let device = device()?;
    // A checkpoint's tokenizer, read once: --text, --target-token, the tokens' texts.
    let tokenizer = match model::is_checkpoint(&args.model.model) {
        true => prompt::tokenizer(&args.model.model)?,
        false => None,
    };
    let (model, mut inputs, ragged) = model_and_inputs(&args, tokenizer.as_ref(), &device)?;
    let classes = model.graph.num_classes(model.input_shape)?;
    let vocabulary = checkpoint_vocabulary(tokenizer.as_ref(), &model);
    // A causal LM's classes are its tokens; a classifier's are not.
    let next_token = model
        .embedding
        .as_ref()
        .is_some_and(|e| e.weight.dims()[0] == classes);
    if args.target_token.is_some() && !next_token {
        bail!(
            "--target-token is for causal language models; {} is a classifier (give --target CLASS)",
            args.model.model.display()
        );
    }
    let embed = ragged.is_none();
    let ids = text_inputs(
        &args,
        &model,
        &mut inputs,
        &device,
        vocabulary.clone(),
        embed,
    )?;
    let mut explainer = explainer(&args, &model, &inputs)?;
    if let Some(id) = target_token(&args, tokenizer.as_ref())? {
        explainer = explainer.target(Target::Class(id));
    }
    let labels = labels(&args, vocabulary.as_ref(), classes, next_token)?;
    let targets = match &args.targets {
        Some(path) => Some(answers::read_targets(path, inputs.n)?),
        None => None,
    };
    let cmap = color_map(&args, &model)?;
    let result = match &ragged {
        Some((lm, ragged)) => {
            let mut run = |m: &model::CliModel, i: &inputs::Inputs, t: Option<Vec<usize>>| {
                run_chunks(&args, m, i, explainer.clone(), t)
            };
            ragged::explain(lm, ragged, &inputs, targets.as_deref(), &device, &mut run)?
        }
        None => run_chunks(&args, &model, &inputs, explainer, targets)?,
    };
    finish(
        &args,
        &model,
        &inputs,
        result,
        ids.as_ref(),
        labels.as_deref(),
        cmap,
        embed,
    )
}

/// Per-token relevance for text, the rendered tokens, the answers and the output files.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &ExplainArgs,
    model: &model::CliModel,
    inputs: &inputs::Inputs,
    mut result: ChunkResult,
    ids: Option<&TextInputs>,
    labels: Option<&[String]>,
    cmap: Option<ColorMap>,
    per_embedding: bool,
) -> Result<()> {
    if let Some(text) = ids {
        if per_embedding {
            let t = model.input_shape.dims()[0];
            result.relevance = tokens::per_token(&result.relevance, inputs.n, t);
        }
        show_tokens(args, &inputs.names, text, &result.relevance)?;
    }
    let answers = answers::answers(
        &inputs.names,
        &result.outputs,
        &result.targets,
        &result.sums,
    );
    write_outputs(args, model, inputs, &result, &answers, labels, cmap)?;
    if !args.quiet {
        print!("{}", answers::table(&answers, labels));
    }
    Ok(())
}

/// The heatmaps' colour map, when heatmaps are asked for (image models only).
fn color_map(args: &ExplainArgs, model: &model::CliModel) -> Result<Option<ColorMap>> {
    if args.heatmap.is_none() && args.heatmap_dir.is_none() {
        return Ok(None);
    }
    if model.input_shape.as_image().is_none() {
        bail!(
            "--heatmap/--heatmap-dir need an image model (input_shape [C, H, W]); {} takes {:?}",
            args.model.model.display(),
            model.input_shape.dims()
        );
    }
    Ok(Some(
        ColorMap::new(&args.cmap).map_err(|e| anyhow!("--cmap: {e}"))?,
    ))
}

/// A progress bar over `n` samples on a terminal's stderr (hidden when `hide` or not a
/// terminal).
fn progress_bar(n: usize, hide: bool) -> ProgressBar {
    if hide || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} samples {elapsed}<{eta}")
    {
        bar.set_style(style);
    }
    bar
}

impl ChunkResult {
    /// An empty result with room for `relevance` values.
    fn with_capacity(relevance: usize) -> Self {
        ChunkResult {
            relevance: Vec::with_capacity(relevance),
            outputs: Vec::new(),
            targets: Vec::new(),
            sums: Vec::new(),
        }
    }

    /// Appends the next chunk's results.
    fn append(&mut self, chunk: ChunkResult) {
        self.relevance.extend(chunk.relevance);
        self.outputs.extend(chunk.outputs);
        self.targets.extend(chunk.targets);
        self.sums.extend(chunk.sums);
    }
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
    let progress = progress_bar(n, args.quiet || n <= chunk);
    let context = || {
        format!(
            "explaining {} with {} ({})",
            inputs.names.first().map_or("", |s| s.as_str()),
            args.model.model.display(),
            args.rules.describe()
        )
    };
    let per_sample = model.input_shape.numel();
    let mut all = ChunkResult::with_capacity(inputs.data.len());
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
        all.append(r);
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
