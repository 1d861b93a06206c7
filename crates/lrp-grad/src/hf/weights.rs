//! The checkpoint's tensors: `model.safetensors`, or shards named by
//! `model.safetensors.index.json`; F32, F16 and BF16, read as f32.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};

use super::HfError;

/// The tensors of a checkpoint directory, read on demand by name.
///
/// Only the files' headers stay in memory: each tensor's bytes are read when it is asked for
/// and dropped once widened to f32, so loading a bf16 checkpoint peaks at its f32 weights,
/// not at those plus the whole file (1 GB more for Qwen2-0.5B).
pub(super) struct Weights {
    /// Each file, open, with its tensors' places.
    files: HashMap<PathBuf, Shard>,
    /// Which file holds each tensor, and where.
    index: HashMap<String, (PathBuf, TensorInfo)>,
    /// What to name in an error about a missing tensor.
    source: PathBuf,
}

/// One open safetensors file.
struct Shard {
    handle: std::fs::File,
    /// Where the tensors' bytes begin (after the length and the header).
    data_start: u64,
}

impl Weights {
    /// Opens `dir`'s weights (one file or an index of shards).
    pub fn open(dir: &Path) -> Result<Self, HfError> {
        let single = dir.join("model.safetensors");
        let index_file = dir.join("model.safetensors.index.json");
        let (source, shards) = match index_file.exists() {
            true => (index_file.clone(), shard_map(&index_file, dir)?),
            false => (single.clone(), HashMap::new()),
        };
        let mut files = HashMap::new();
        let mut index = HashMap::new();
        let names: Vec<PathBuf> = match shards.is_empty() {
            true => vec![single],
            false => {
                let mut unique: Vec<PathBuf> = shards.values().cloned().collect();
                unique.sort();
                unique.dedup();
                unique
            }
        };
        for file in names {
            let (open, tensors) = Shard::open(&file)?;
            for (name, info) in tensors {
                index.insert(name, (file.clone(), info));
            }
            files.insert(file, open);
        }
        Ok(Weights {
            files,
            index,
            source,
        })
    }

    /// The shape of tensor `name`, if the checkpoint has it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        Some(self.index.get(name)?.1.shape.clone())
    }

    /// Whether the checkpoint has a tensor of this name.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The tensor `name` as f32 values, checked to have `shape`.
    pub fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, HfError> {
        let (file, info) = self.index.get(name).ok_or_else(|| HfError::MissingTensor {
            file: self.source.clone(),
            tensor: name.to_string(),
        })?;
        if info.shape != shape {
            return Err(HfError::Shape {
                file: file.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        let bytes = self.files[file].bytes(file, name, info)?;
        to_f32(info.dtype, &bytes).ok_or_else(|| HfError::Dtype {
            file: file.clone(),
            tensor: name.to_string(),
            dtype: format!("{:?}", info.dtype),
        })
    }

    /// A 1-D tensor as a Burn parameter.
    pub fn vector(
        &self,
        name: &str,
        n: usize,
        device: &Device,
    ) -> Result<Param<Tensor<1>>, HfError> {
        let values = self.read(name, &[n])?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, [n]),
            device,
        )))
    }

    /// A layer norm from `{prefix}.weight` and `{prefix}.bias` (GPT-2, BERT).
    pub fn layer_norm(
        &self,
        prefix: &str,
        d: usize,
        eps: f64,
        device: &Device,
    ) -> Result<crate::model::LayerNorm, HfError> {
        let mut norm = crate::model::LayerNorm::new(d, eps, device);
        norm.gamma = self.vector(&format!("{prefix}.weight"), d, device)?;
        norm.beta = Some(self.vector(&format!("{prefix}.bias"), d, device)?);
        Ok(norm)
    }

    /// A dense layer from PyTorch's `[out, in]` weight `{prefix}.weight` and, when the
    /// checkpoint has it, `{prefix}.bias`.
    pub fn linear(
        &self,
        prefix: &str,
        [d_in, d_out]: [usize; 2],
        device: &Device,
    ) -> Result<Linear, HfError> {
        let weight = self.read(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let bias_name = format!("{prefix}.bias");
        let bias = match self.has(&bias_name) {
            true => Some(self.vector(&bias_name, d_out, device)?),
            false => None,
        };
        Ok(linear(weight, bias, [d_in, d_out], device))
    }
}

/// A dense layer from a row-major `[out, in]` weight (PyTorch's layout).
pub(super) fn linear(
    weight: Vec<f32>,
    bias: Option<Param<Tensor<1>>>,
    [d_in, d_out]: [usize; 2],
    device: &Device,
) -> Linear {
    // Built from the weights directly: no random initialisation first.
    let w = Tensor::<2>::from_data(TensorData::new(weight, [d_out, d_in]), device);
    Linear {
        weight: Param::from_tensor(w.transpose()),
        bias,
    }
}

/// The longest header read (the safetensors format's own limit).
const MAX_HEADER: u64 = 100_000_000;

impl Shard {
    /// Opens `path` and reads its header: the tensors by name, checked by the safetensors
    /// crate (offsets contiguous, sizes matching shapes), and their data against the file's
    /// length (a truncated file is refused here).
    fn open(path: &Path) -> Result<(Self, Vec<(String, TensorInfo)>), HfError> {
        let invalid = |reason: String| HfError::Weights {
            file: path.to_path_buf(),
            reason,
        };
        let unreadable = |e: std::io::Error| HfError::Read {
            file: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut handle = std::fs::File::open(path).map_err(unreadable)?;
        let file_len = handle.metadata().map_err(unreadable)?.len();
        let mut len = [0u8; 8];
        handle
            .read_exact(&mut len)
            .map_err(|e| invalid(format!("no header length: {e}")))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER.min(file_len - 8) {
            return Err(invalid(format!(
                "a header of {header_len} bytes in a file of {file_len}"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        handle.read_exact(&mut header).map_err(unreadable)?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| invalid(format!("its header: {e}")))?;
        let data_start = 8 + header_len;
        let data_end = data_start + metadata.data_len() as u64;
        if data_end != file_len {
            return Err(invalid(format!(
                "its tensors end at byte {data_end} but the file has {file_len} bytes"
            )));
        }
        let tensors = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.clone()))
            .collect();
        Ok((Shard { handle, data_start }, tensors))
    }

    /// The bytes of tensor `name`.
    fn bytes(&self, path: &Path, name: &str, info: &TensorInfo) -> Result<Vec<u8>, HfError> {
        let (start, end) = info.data_offsets;
        let mut bytes = vec![0u8; end - start];
        read_at(&self.handle, &mut bytes, self.data_start + start as u64).map_err(|e| {
            HfError::Read {
                file: path.to_path_buf(),
                reason: format!("tensor `{name}`: {e}"),
            }
        })?;
        Ok(bytes)
    }
}

/// Fills `bytes` from `offset` (a positional read: no shared cursor).
#[cfg(unix)]
fn read_at(file: &std::fs::File, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

/// Fills `bytes` from `offset` (a positional read: no shared cursor).
#[cfg(windows)]
fn read_at(file: &std::fs::File, mut bytes: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_read(bytes, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                bytes = &mut bytes[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// `{"weight_map": {tensor: shard file}}`.
fn shard_map(index: &Path, dir: &Path) -> Result<HashMap<String, PathBuf>, HfError> {
    let text = std::fs::read_to_string(index).map_err(|e| HfError::Read {
        file: index.to_path_buf(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| HfError::Config {
        file: index.to_path_buf(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| invalid("no `weight_map` object".into()))?;
    map.iter()
        .map(|(tensor, shard)| match shard.as_str() {
            Some(shard) => Ok((tensor.clone(), dir.join(shard))),
            None => Err(invalid(format!("`weight_map.{tensor}` is not a file name"))),
        })
        .collect()
}

/// Little-endian F32, F16 or BF16 bytes as f32.
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let pairs = || {
        bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => pairs().map(|h| half::f16::from_bits(h).to_f32()).collect(),
        Dtype::BF16 => pairs().map(|h| half::bf16::from_bits(h).to_f32()).collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_and_f16_widen_exactly() {
        // 1.5 and −2.0: bf16 0x3FC0 / 0xC000, f16 0x3E00 / 0xC000.
        assert_eq!(
            to_f32(Dtype::BF16, &[0xC0, 0x3F, 0x00, 0xC0]),
            Some(vec![1.5, -2.0])
        );
        assert_eq!(
            to_f32(Dtype::F16, &[0x00, 0x3E, 0x00, 0xC0]),
            Some(vec![1.5, -2.0])
        );
        assert_eq!(to_f32(Dtype::I64, &[0; 8]), None);
    }
}
