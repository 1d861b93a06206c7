//! The library's typed errors. Every message says what was expected and what came.

/// Everything that can go wrong when a model is explained.
///
/// No function of this crate panics on user input: shapes, targets, rule parameters and
/// rule/layer pairings are checked up front and reported as one of these variants.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input tensor has a rank the model cannot take.
    #[error(
        "input has rank {found}; expected rank 2 ([batch, features]), 3 ([batch, height, width]) or 4 ([batch, channels, height, width])"
    )]
    UnsupportedRank {
        /// The rank that came.
        found: usize,
    },

    /// A graph node reads values that do not exist, has the wrong number of inputs, inputs of
    /// shapes it cannot combine, or a name another node has.
    #[error("graph node {index} (`{node}`): {reason}")]
    GraphStructure {
        /// The node's name.
        node: String,
        /// The node's index in topological order.
        index: usize,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// Text that does not name a rule, composite, method or strategy (see [`crate::text`]).
    #[error("cannot read {what} `{text}`: {reason}")]
    Parse {
        /// What was read: `rule`, `composite`, `method` or `strategy`.
        what: &'static str,
        /// The text that came.
        text: String,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// A batch given to a prepared explainer has another per-sample shape than it was
    /// prepared for.
    #[error(
        "the explainer was prepared for per-sample shape {expected:?}, but the batch has {found:?}; prepare it again for this shape"
    )]
    PreparedShape {
        /// The prepared shape.
        expected: Vec<usize>,
        /// The batch's per-sample shape.
        found: Vec<usize>,
    },

    /// A composite's name pattern is not a valid glob.
    #[error("invalid node-name pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern that came.
        pattern: String,
        /// Why it does not parse.
        reason: String,
    },

    /// The input (or an intermediate activation) does not fit a layer.
    #[error("layer {index} ({kind}) expects {expected}, but gets per-sample shape {found:?}")]
    ShapeMismatch {
        /// Index of the layer in the model.
        index: usize,
        /// The layer's kind, e.g. `linear`.
        kind: &'static str,
        /// What the layer expects, in words.
        expected: String,
        /// The per-sample shape that came (batch dimension left out).
        found: Vec<usize>,
    },

    /// A layer is configured in a way lrp-grad does not support.
    #[error("layer {index} ({kind}) is not supported: {reason}")]
    UnsupportedLayer {
        /// Index of the layer in the model.
        index: usize,
        /// The layer's kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },

    /// The model's output is not one score per class.
    #[error(
        "the model's per-sample output has shape {found:?}; expected one score per class (end the model with a linear layer or a flatten)"
    )]
    OutputNotVector {
        /// The per-sample output shape that came.
        found: Vec<usize>,
    },

    /// The input batch holds no sample.
    #[error("empty batch: the input has shape {shape:?}, with 0 samples or a zero-sized dimension")]
    EmptyBatch {
        /// The shape that came.
        shape: Vec<usize>,
    },

    /// Token ids that cannot be embedded (ragged sequences, ids outside the vocabulary).
    #[error("token ids: {reason}")]
    InvalidTokens {
        /// What is wrong.
        reason: String,
    },

    /// The input holds NaN or infinite values.
    #[error(
        "non-finite input: {count} value(s) are NaN or infinite (first at flat index {first_index}); expected finite numbers"
    )]
    NonFiniteInput {
        /// How many values are not finite.
        count: usize,
        /// Flat (row-major) index of the first one.
        first_index: usize,
    },

    /// A target class is not one of the model's outputs.
    #[error(
        "target class {class} (sample {sample}) is out of range: the model has {classes} outputs, so expected 0..{classes}"
    )]
    TargetOutOfRange {
        /// The sample whose target is wrong.
        sample: usize,
        /// The class that came.
        class: usize,
        /// The number of model outputs.
        classes: usize,
    },

    /// One target per sample was asked for, but the counts differ.
    #[error("{found} target(s) given for a batch of {expected} sample(s); expected one per sample")]
    TargetCountMismatch {
        /// The batch size.
        expected: usize,
        /// The number of targets that came.
        found: usize,
    },

    /// A custom output relevance does not have the model output's shape.
    #[error("output relevance has shape {found:?}; expected the model output's shape {expected:?}")]
    OutputRelevanceShape {
        /// The model output's shape.
        expected: Vec<usize>,
        /// The shape that came.
        found: Vec<usize>,
    },

    /// A rule parameter is out of its domain.
    #[error("invalid parameter for rule {rule}: {reason}")]
    InvalidRule {
        /// The rule's name.
        rule: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// A metric's arguments do not fit its inputs (a patch larger than the image, zero steps).
    #[error("invalid metric: {reason}")]
    InvalidMetric {
        /// What is wrong and what is expected.
        reason: String,
    },

    /// An attribution method's parameter is out of its domain.
    #[error("invalid parameter for method {method}: {reason}")]
    InvalidMethod {
        /// The method's name.
        method: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// A rule was assigned to a layer it cannot explain.
    #[error("rule {rule} cannot be applied to layer {index} ({kind}): {reason}")]
    RuleLayerMismatch {
        /// The rule's name.
        rule: &'static str,
        /// Index of the layer in the model.
        index: usize,
        /// The layer's kind.
        kind: &'static str,
        /// Why the pairing makes no sense.
        reason: String,
    },

    /// A linear or convolutional layer received no rule from the composite.
    #[error(
        "no rule for layer {index} ({kind}): the composite maps no rule to it; assign one by index or by layer type"
    )]
    MissingRule {
        /// Index of the layer in the model.
        index: usize,
        /// The layer's kind.
        kind: &'static str,
    },

    /// A composite name that is not one of the built-in composites.
    #[error("unknown composite `{name}`; expected one of {expected}")]
    UnknownComposite {
        /// The name that came.
        name: String,
        /// The built-in composites' names, comma-separated (from
        /// [`COMPOSITE_NAMES`](crate::COMPOSITE_NAMES)).
        expected: String,
    },

    /// A rule was assigned by index to a layer that does not exist.
    #[error("a rule is assigned to layer {index}, but the model has only {layers} layers")]
    NoSuchLayer {
        /// The index that came.
        index: usize,
        /// The number of layers in the model.
        layers: usize,
    },

    /// Batch normalization that cannot be merged into a preceding linear or conv layer.
    #[error("batch norm at layer {index} cannot be merged: {reason}")]
    UnmergeableBatchNorm {
        /// Index of the batch-norm layer.
        index: usize,
        /// Why.
        reason: String,
    },

    /// Z-box bounds (or an Integrated-Gradients baseline) whose shape does not fit the input.
    #[error(
        "{which} has shape {found:?}; expected a scalar, or the layer input's per-sample shape {expected:?} (optionally with a batch dimension, or broadcastable)"
    )]
    BoundShape {
        /// Which tensor: `z-box low`, `z-box high` or `integrated-gradients baseline`.
        which: &'static str,
        /// The per-sample input shape.
        expected: Vec<usize>,
        /// The shape that came.
        found: Vec<usize>,
    },

    /// A model in the interchange format that could not be read or written (so that `?` works
    /// across loading and explaining).
    #[cfg(feature = "interchange")]
    #[error(transparent)]
    Load(#[from] crate::interchange::error::LoadError),

    /// A heatmap that could not be drawn (so that `?` works across explaining and drawing).
    #[cfg(feature = "heatmap")]
    #[error(transparent)]
    Heatmap(#[from] crate::heatmap::HeatmapError),

    /// An image file that could not be read as an input.
    #[cfg(feature = "images")]
    #[error(transparent)]
    Image(#[from] crate::preprocess::ImageError),

    /// An ONNX model that could not be loaded (so that `?` works across loading and explaining).
    #[cfg(feature = "onnx")]
    #[error(transparent)]
    Onnx(#[from] crate::onnx::error::OnnxError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    /// Loading, explaining and drawing share one error type, so `?` works across them.
    #[cfg(all(feature = "interchange", feature = "heatmap"))]
    #[test]
    fn load_and_heatmap_errors_convert_with_question_mark() {
        fn run() -> crate::Result<()> {
            let missing = std::path::Path::new("/nonexistent/model.json");
            crate::interchange::ModelSpec::read(missing)?;
            Ok(())
        }
        fn draw() -> crate::Result<()> {
            crate::heatmap::ColorMap::new("no-such-map")?;
            Ok(())
        }
        assert!(matches!(run(), Err(crate::Error::Load(_))));
        assert!(matches!(draw(), Err(crate::Error::Heatmap(_))));
    }
}
