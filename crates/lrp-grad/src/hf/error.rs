//! What can go wrong loading a Hugging Face checkpoint directory.

use std::path::PathBuf;

/// A checkpoint directory that cannot be loaded. Every message names the file, and the tensor
/// or field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HfError {
    /// A file is missing or unreadable.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// `config.json` is not valid or misses a field.
    #[error("{file}: {reason}")]
    Config {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `model_type` this loader does not build.
    #[error("{file}: model_type `{model_type}` is not supported; supported: {supported}")]
    UnknownFamily {
        /// The config file.
        file: PathBuf,
        /// Its `model_type`.
        model_type: String,
        /// The families this loader builds.
        supported: String,
    },
    /// A weights file is not valid safetensors (truncated, corrupt).
    #[error("{file}: not a valid safetensors file: {reason}")]
    Weights {
        /// The weights file.
        file: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{file}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The weights file (or the index naming the shards).
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's shape disagrees with the config.
    #[error("{file}: tensor `{tensor}` has shape {found:?}; the config gives {expected:?}")]
    Shape {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape from the config.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A sequence length the model cannot take.
    #[error("{tokens} positions: the model takes 1 to {most}")]
    Length {
        /// The positions asked for.
        tokens: usize,
        /// The most it takes.
        most: String,
    },
    /// A tensor of a data type other than F32, F16, BF16.
    #[error("{file}: tensor `{tensor}` is {dtype}; expected F32, F16 or BF16")]
    Dtype {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Its data type.
        dtype: String,
    },
}
