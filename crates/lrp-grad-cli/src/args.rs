//! The arguments `explain`, `info` and `bench` share: the model and the rules.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use lrp_grad::FeatureShape;

use crate::spec;

#[derive(Args)]
pub(crate) struct ModelArgs {
    /// The model: an ONNX file (`.onnx`, e.g. from `torch.onnx.export`; an external
    /// `.onnx.data` beside it is read too), a JSON description (interchange format, with
    /// --weights), or a Hugging Face checkpoint directory (`config.json` + safetensors: LLaMA,
    /// Mistral, Qwen2, Qwen3; token ids in, the last position's next token explained).
    #[arg(long, value_name = "M.onnx|M.json|DIR")]
    pub(crate) model: PathBuf,
    /// JSON models: allow tensors in the weights file that no layer uses (a full state_dict
    /// serving part of a model); they are listed on stderr.
    #[arg(long)]
    pub(crate) allow_unused_weights: bool,
}

#[derive(Args, Clone)]
pub(crate) struct RuleArgs {
    /// One rule for every linear and conv layer.
    #[arg(
        long,
        value_name = "SPEC",
        help = rule_help(),
        conflicts_with = "composite",
        allow_hyphen_values = true
    )]
    pub(crate) rule: Option<String>,
    /// A composite (default epsilon-plus-flat; epsilon-gamma-box needs --low and --high).
    #[arg(long, value_name = "NAME", help = composite_help())]
    pub(crate) composite: Option<String>,
    /// Lowest possible input value (z-box): one value, or one per channel (-2.1,-2.0,-1.8).
    /// Image inputs without it: the normalised image of pixel value 0.
    #[arg(
        long,
        value_name = "L",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub(crate) low: Option<Vec<f64>>,
    /// Highest possible input value (z-box): one value, or one per channel.
    /// Image inputs without it: the normalised image of pixel value 1.
    #[arg(
        long,
        value_name = "H",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub(crate) high: Option<Vec<f64>>,
    /// Zennit's layer map on top of the composite: a rule for every layer of a class (repeatable;
    /// `linear` = dense and conv, Zennit's `Linear`), e.g. `--layer-rule conv=gamma:0.25`.
    #[arg(long, value_name = "TYPE=RULE", help = layer_rule_help(), allow_hyphen_values = true)]
    pub(crate) layer_rule: Vec<String>,
    /// Zennit's name map on top of everything: a rule for the nodes whose name matches a glob
    /// (repeatable), e.g. `--name-rule 'layers.0.*=epsilon:0.25'`.
    #[arg(long, value_name = "NODE=RULE", allow_hyphen_values = true)]
    pub(crate) name_rule: Vec<String>,
    /// How LRP is computed: auto (one forward and one backward pass where the rules allow it)
    /// or layer-wise (the gradient trick layer by layer). Both give the same relevance.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<lrp_grad::Strategy>())]
    pub(crate) strategy: lrp_grad::Strategy,
}

/// `--rule`'s help, listing every rule from the library's one list.
fn rule_help() -> String {
    format!(
        "One rule for every linear and conv layer: {}",
        lrp_grad::text::RULE_SYNTAX
    )
}

/// `--layer-rule`'s help, listing every class from the library's one list.
fn layer_rule_help() -> String {
    let names: Vec<&str> = lrp_grad::LayerType::ALL.iter().map(|(_, n)| *n).collect();
    format!(
        "A rule for every layer of a class, on top of the composite (repeatable): TYPE=RULE with TYPE one of {}",
        names.join(", ")
    )
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
        let composite = spec::composite(self.rule.as_deref(), self.composite.as_deref(), bounds)?;
        spec::layer_maps(composite, &self.layer_rule, &self.name_rule)
    }

    /// Whether any LRP flag was given (an error with methods that do not run LRP).
    pub(crate) fn given(&self) -> Option<&'static str> {
        [
            (self.rule.is_some(), "--rule"),
            (self.composite.is_some(), "--composite"),
            (self.low.is_some() || self.high.is_some(), "--low/--high"),
            (!self.layer_rule.is_empty(), "--layer-rule"),
            (!self.name_rule.is_empty(), "--name-rule"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    pub(crate) fn describe(&self) -> String {
        let base = match (&self.rule, &self.composite) {
            (Some(rule), _) => format!("rule {rule}"),
            (None, Some(c)) => format!("composite {c}"),
            (None, None) => "composite epsilon-plus-flat".into(),
        };
        let maps: Vec<&String> = self.layer_rule.iter().chain(&self.name_rule).collect();
        match maps.is_empty() {
            true => base,
            false => format!(
                "{base} with {}",
                maps.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
