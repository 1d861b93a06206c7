//! The Zennit fixtures of `tools/zennit-reference`: model files, reference tensors, cases.
//! Shared by the library's tests and (by path) the command line's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use safetensors::SafeTensors;
use serde_json::Value;

/// One fixture model: `tests/fixtures/zennit/<name>/`.
pub struct ZennitFixture {
    pub folder: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// `cases.json`: the cases and the versions that produced them.
    pub meta: Value,
    /// The explained class of each sample.
    pub targets: Vec<usize>,
}

/// The float32 tensors of a safetensors file (others, such as batch norm's int64
/// `num_batches_tracked`, are left out): name → (shape, values).
pub fn read_f32_tensors(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(key, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (key, (view.shape().to_vec(), values))
        })
        .collect()
}

impl ZennitFixture {
    /// `root` is the workspace root (the CLI's tests live two levels below it).
    pub fn open(root: &Path, name: &str) -> Self {
        Self::open_folder(root.join("tests/fixtures/zennit").join(name))
    }

    /// A fixture in any folder (`reference.safetensors` and `cases.json` inside).
    pub fn open_folder(folder: PathBuf) -> Self {
        let tensors = read_f32_tensors(&folder.join("reference.safetensors"));
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("cases.json")).unwrap())
                .unwrap();
        let targets = meta["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        ZennitFixture {
            folder,
            tensors,
            meta,
            targets,
        }
    }

    /// A reference tensor's shape and values.
    pub fn get(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        self.tensors
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no `{key}` in the fixture"))
    }

    /// A reference tensor as Burn data.
    pub fn data(&self, key: &str) -> TensorData {
        let (shape, values) = self.get(key);
        TensorData::new(values, shape)
    }

    pub fn model_json(&self) -> PathBuf {
        self.folder.join("model.json")
    }

    pub fn weights(&self) -> PathBuf {
        self.folder.join("weights.safetensors")
    }

    /// The cases: `relevance/<output mode>` → what Zennit ran.
    pub fn cases(&self) -> &serde_json::Map<String, Value> {
        self.meta["cases"].as_object().unwrap()
    }
}
