//! What can go wrong loading an ONNX model.

use std::path::PathBuf;

/// An ONNX model that cannot be loaded. Every message names the file, and the node (with its
/// ONNX operator) or the input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file is missing, unreadable, truncated or not an ONNX model (or the parser rejected
    /// it, e.g. nodes out of topological order).
    #[error("{file}: cannot read the ONNX model: {reason}")]
    Read {
        /// The model file.
        file: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The weights live in an external data file that is not there.
    #[error(
        "{file}: the weights are stored in `{data}` beside the model, which is missing (torch.onnx.export with dynamo=True writes it next to the .onnx file: copy both)"
    )]
    MissingExternalData {
        /// The model file.
        file: PathBuf,
        /// The external data file it names.
        data: PathBuf,
    },
    /// An operator this loader does not translate.
    #[error(
        "{file}: node `{node}` is an ONNX `{op}`, which lrp-grad cannot explain; supported operators: {supported}"
    )]
    Unsupported {
        /// The model file.
        file: PathBuf,
        /// The node's name.
        node: String,
        /// Its ONNX operator.
        op: String,
        /// The operators this loader translates.
        supported: String,
    },
    /// A supported operator used in a way the loader cannot translate (a non-constant weight,
    /// an unsupported attribute value, a shape it cannot follow).
    #[error("{file}: node `{node}` ({op}): {reason}")]
    Node {
        /// The model file.
        file: PathBuf,
        /// The node's name.
        node: String,
        /// Its ONNX operator.
        op: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The model's inputs or outputs are not one float32 tensor in, one class-score vector out.
    #[error("{file}: {reason}")]
    Interface {
        /// The model file.
        file: PathBuf,
        /// What is wrong and what is expected.
        reason: String,
    },
}
