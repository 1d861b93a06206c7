//! What can go wrong reading or writing the interchange format (its own file, so that the
//! crate's umbrella [`crate::Error`] can wrap it without importing the loader).

use std::path::PathBuf;

/// What can go wrong reading or writing the interchange format. Every message names the file
/// and the field, key or shape at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read or written.
    // The OS's message, not a `source()`: a report of the chain (anyhow's `{:#}`) would print
    // it twice.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What kind of I/O error.
        kind: std::io::ErrorKind,
        /// The OS's message.
        message: String,
    },
    /// Malformed JSON, or a field missing, unknown or of the wrong type.
    #[error("{file}: at `{path}`: {message}")]
    Json {
        /// The file.
        file: PathBuf,
        /// Where in the document (e.g. `layers[3].kernel_size`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A field whose value is out of range or inconsistent with the rest of the model.
    #[error("{file}: at `{path}`: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Where in the document.
        path: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The weights file is not valid safetensors.
    #[error("{file}: not a valid safetensors file: {message}")]
    Safetensors {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A tensor the model needs is not in the weights file.
    #[error("{file}: tensor `{key}` is missing (needed by layers[{layer}])")]
    MissingTensor {
        /// The file.
        file: PathBuf,
        /// The missing key.
        key: String,
        /// The layer that needs it.
        layer: usize,
    },
    /// A tensor in the weights file that no layer uses.
    #[error(
        "{file}: tensor `{key}` is not used by any layer of the model (check the layer names, or allow unused tensors: --allow-unused-weights)"
    )]
    UnexpectedTensor {
        /// The file.
        file: PathBuf,
        /// The unused key.
        key: String,
    },
    /// A tensor of the wrong shape.
    #[error("{file}: tensor `{key}` has shape {found:?}; expected {expected:?}")]
    TensorShape {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor of the wrong dtype.
    #[error(
        "{file}: tensor `{key}` has dtype {found}; expected a float type (F32; F16, BF16 and F64 are converted)"
    )]
    TensorDtype {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// The dtype in the file.
        found: String,
    },
    /// The model cannot be expressed in the interchange format.
    #[error("layer {index} ({kind}) cannot be written in the interchange format: {reason}")]
    Unsupported {
        /// The layer index.
        index: usize,
        /// The layer kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}
