//! `lrp-grad info`: the model's nodes, shapes, parameter counts and rules.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lrp_grad::interchange;
use lrp_grad::{Layer, Op};

use crate::{ModelArgs, RuleArgs, device, model};

#[derive(Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights of a JSON model (safetensors); checked when given.
    #[arg(long, value_name = "W.safetensors")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    rules: RuleArgs,
}

pub(crate) fn run(args: InfoArgs) -> Result<()> {
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
