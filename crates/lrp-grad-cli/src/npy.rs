//! Reading inputs and writing relevance as .npy.

use std::path::Path;

use anyhow::{Context, Result, bail};
use npyz::{DType, NpyFile, TypeChar, WriterBuilder};

/// An array read from a .npy file, as float32.
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// Whether the file holds integers (token ids; read exactly up to 2^24).
    pub integer: bool,
}

/// Reads a float32 (or float64) .npy file, or integers (token ids).
pub fn read(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = NpyFile::new(&bytes[..])
        .with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let shape: Vec<usize> = file.shape().iter().map(|d| *d as usize).collect();
    let integer = matches!(file.dtype(), DType::Plain(ty) if matches!(ty.type_char(), TypeChar::Int | TypeChar::Uint));
    let data = match file.dtype() {
        DType::Plain(ty) if ty.type_char() == TypeChar::Float && ty.size_field() == 4 => {
            file.into_vec::<f32>()
        }
        DType::Plain(ty) if ty.type_char() == TypeChar::Float && ty.size_field() == 8 => file
            .into_vec::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        DType::Plain(ty) if ty.type_char() == TypeChar::Int && ty.size_field() == 8 => file
            .into_vec::<i64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        DType::Plain(ty) if ty.type_char() == TypeChar::Int && ty.size_field() == 4 => file
            .into_vec::<i32>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => bail!(
            "{}: dtype {} is not supported; expected float32 (float64 accepted), or int64/int32 token ids",
            path.display(),
            other.descr()
        ),
    }
    .with_context(|| {
        format!(
            "{}: corrupt or truncated data for shape {shape:?}",
            path.display()
        )
    })?;
    if data.len() != shape.iter().product::<usize>() {
        bail!(
            "{}: holds {} values, but its header says shape {shape:?}",
            path.display(),
            data.len()
        );
    }
    Ok(Array {
        shape,
        data,
        integer,
    })
}

/// A float32 .npy file's bytes.
pub fn encode(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|d| *d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
}
