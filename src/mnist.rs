//! MNIST from the original IDX files (gzip), read with a small reader of our own.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The four files the examples need.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// One split: images as floats in [0, 1] (row-major 28×28 each) and labels 0–9.
pub struct Split {
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` samples.
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }
}

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;

/// The bundled sample: the first 500 test digits (no training split) and the trained CNN's
/// weights, committed so that the main command runs on a fresh clone (`tools/mnist-sample.py`).
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-sample")
}

/// Where the digits come from: the full dataset, or the bundled sample when no directory is
/// given (`--data`, `$MNIST_DIR`).
pub enum Source {
    /// The four original files.
    Full(PathBuf),
    /// [`sample_dir`].
    Sample(PathBuf),
}

impl Source {
    /// `--data DIR`, else `$MNIST_DIR` (checked as [`data_dir`] does), else the bundled sample.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        if flag.is_none() && std::env::var_os("MNIST_DIR").is_none() {
            return Ok(Source::Sample(sample_dir()));
        }
        data_dir(flag).map(Source::Full)
    }

    /// The directory the test split is read from.
    pub fn dir(&self) -> &Path {
        match self {
            Source::Full(dir) | Source::Sample(dir) => dir,
        }
    }
}

/// The data directory: `--data DIR`, else `$MNIST_DIR`; a clear message when neither is given
/// or a file is missing.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    let dir = flag.or_else(|| std::env::var_os("MNIST_DIR").map(PathBuf::from));
    let help = format!(
        "MNIST needs these four files (the original IDX files, gzip-compressed): {}.\n\
         Put them in a directory and pass it with --data DIR or the MNIST_DIR environment variable\n\
         (on the project's machines: MNIST_DIR=../shared/data/mnist).",
        FILES.join(", ")
    );
    let Some(dir) = dir else {
        bail!("no MNIST directory given.\n{help}");
    };
    let missing: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        bail!("{}: missing {}.\n{help}", dir.display(), missing.join(", "));
    }
    Ok(dir)
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: not a valid gzip file", path.display()))?;
    Ok(bytes)
}

fn header(bytes: &[u8], path: &Path, magic: u32, dims: usize) -> Result<Vec<usize>> {
    let word = |i: usize| -> Result<u32> {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .with_context(|| format!("{}: truncated IDX header", path.display()))
    };
    if word(0)? != magic {
        bail!(
            "{}: IDX magic number {:#x}, expected {magic:#x}",
            path.display(),
            word(0)?
        );
    }
    (1..=dims).map(|i| word(i).map(|d| d as usize)).collect()
}

/// Reads one split (`train` or `t10k`).
pub fn load(dir: &Path, split: &str) -> Result<Split> {
    let images_path = dir.join(format!("{split}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{split}-labels-idx1-ubyte.gz"));
    let images = read_gz(&images_path)?;
    let labels = read_gz(&labels_path)?;
    let dims = header(&images, &images_path, 0x0803, 3)?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]];
    if rows != SIDE || cols != SIDE || images.len() != 16 + n * PIXELS {
        bail!(
            "{}: expected {n} images of 28x28 after a 16-byte header",
            images_path.display()
        );
    }
    let label_dims = header(&labels, &labels_path, 0x0801, 1)?;
    if label_dims[0] != n || labels.len() != 8 + n {
        bail!(
            "{}: expected {n} labels after an 8-byte header",
            labels_path.display()
        );
    }
    Ok(Split {
        images: images[16..].iter().map(|p| *p as f32 / 255.0).collect(),
        labels: labels[8..].to_vec(),
    })
}
