//! Constant subgraphs folded before onnx-ir reads the model: TorchScript writes a class
//! token's `expand(N, -1, -1)` as `ConstantOfShape → Mul → Equal → Where → Expand` over
//! constants, and a model's constant lookups (LeViT's attention biases) as `GatherND` of
//! constants — operators onnx-ir neither folds nor types, so every shape after them would be
//! unknown; TorchScript's `unflatten` of a projection (nn.MultiheadAttention's packed q, k, v)
//! computes its slice bounds with `Mod` and `Reshape` of constants, which onnx-ir does not fold
//! either. Each node of those kinds whose inputs are all constants is evaluated here and
//! replaced by an initializer (with `Mul`, `Add`, `Sub`, `Div`, `Gather`, `Unsqueeze`,
//! `Transpose` and `Cast` of constants, which feed or read them); onnx-ir then parses the model
//! as if it had been exported folded. The same evaluator finds the dynamo exporter's adaptive
//! average pools (`adaptive_pool.rs`).

use std::collections::HashMap;
use std::path::Path;

use onnx_ir::{Message, ModelProto, TensorProto};

use super::constants::{BOOL, Const, FLOAT, INT32, INT64, decode, evaluate};

/// The largest external tensor read as a constant, in bytes, and the most elements of any
/// (indices, masks and position tables are small; weights are not folded).
const SMALL: u64 = 1 << 22;
const SMALL_ELEMENTS: usize = 1 << 20;

/// The model's bytes with its constant subgraphs folded, or `None` when there is nothing to
/// fold. Tensors in external data (`dir` holds their files) are read where they are small
/// constants, and written into the returned bytes when anything was folded (a model over
/// ~1.9 GB, which one protobuf message cannot hold, is left unfolded).
pub(super) fn fold(bytes: &[u8], dir: Option<&Path>) -> Option<Vec<u8>> {
    let mut model = ModelProto::parse_from_bytes(bytes).ok()?;
    let graph = model.graph.as_mut()?;
    let mut known: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        if let Some(c) = read(t, dir) {
            known.insert(t.name.clone(), c);
        }
    }
    let mut folded = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type == "Constant" {
            let value = node.attribute.iter().find(|a| a.name == "value");
            if let (Some(t), Some(out)) = (value.and_then(|a| a.t.as_ref()), node.output.first()) {
                read(t, dir).map(|c| known.insert(out.clone(), c));
            }
            continue;
        }
        // An optional input left out (`""`, Clip's missing bound) is an empty constant.
        let absent = Const {
            dims: vec![0],
            values: Vec::new(),
            ty: FLOAT,
        };
        let inputs: Option<Vec<&Const>> = (node.input.iter())
            .map(|n| {
                if n.is_empty() {
                    Some(&absent)
                } else {
                    known.get(n)
                }
            })
            .collect();
        let Some(result) = inputs.and_then(|inputs| evaluate(node, &inputs)) else {
            continue;
        };
        known.insert(node.output[0].clone(), result.clone());
        folded.push((i, result));
    }
    for (i, c) in folded.iter().rev() {
        let name = graph.node[*i].output[0].clone();
        graph.node.remove(*i);
        graph.initializer.push(write(&name, c));
    }
    let pools = super::adaptive_pool::rewrite(&mut model, &known);
    if folded.is_empty() && pools == 0 {
        return None;
    }
    inline_external(&mut model, dir)?;
    model.write_to_bytes().ok()
}

/// Every external tensor's bytes moved into the model (bytes alone cannot point at files).
fn inline_external(model: &mut ModelProto, dir: Option<&Path>) -> Option<()> {
    let graph = model.graph.as_mut()?;
    let external = |t: &TensorProto| !t.external_data.is_empty();
    if !graph.initializer.iter().any(external) {
        return Some(());
    }
    let dir = dir?;
    let total: u64 = (graph.initializer.iter().filter(|t| external(t)))
        .filter_map(|t| external_range(t).map(|(_, _, length)| length))
        .sum();
    if total > 1_900_000_000 {
        return None;
    }
    for t in graph.initializer.iter_mut().filter(|t| external(t)) {
        t.raw_data = read_external(t, dir, u64::MAX)?.into();
        t.external_data.clear();
        t.data_location = Default::default();
    }
    Some(())
}

/// An external tensor's file, offset and length (the length from its dims when not written).
fn external_range(t: &TensorProto) -> Option<(String, u64, u64)> {
    let entry = |key: &str| t.external_data.iter().find(|e| e.key == key);
    let location = entry("location")?.value.clone();
    let offset = entry("offset").map_or(Some(0), |e| e.value.parse().ok())?;
    let width = match t.data_type {
        FLOAT | INT32 => 4,
        INT64 => 8,
        BOOL => 1,
        10 | 16 => 2,
        11 => 8,
        _ => return None,
    };
    let elements: i64 = t.dims.iter().product();
    let length = match entry("length") {
        Some(e) => e.value.parse().ok()?,
        None => u64::try_from(elements).ok()? * width,
    };
    Some((location, offset, length))
}

/// An external tensor's bytes, when its file is beside the model (no absolute paths or
/// `..`, as onnx-ir's own reader requires) and it holds at most `limit` bytes.
fn read_external(t: &TensorProto, dir: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let (location, offset, length) = external_range(t)?;
    let relative = Path::new(&location);
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain || length > limit {
        return None;
    }
    let mut file = std::fs::File::open(dir.join(relative)).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut bytes = vec![0; usize::try_from(length).ok()?];
    file.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// Whether to fold: always for a file of at most 1 GiB (a constant `Reshape` or `Transpose`
/// cannot be told from the bytes; on VGG-16's 553 MB TorchScript export the pass costs 3 s and
/// 0.7 GB), else when it holds an operator that starts such a subgraph — read in 1 MiB pieces,
/// so a larger model that needs no folding is neither held in memory twice nor decoded twice.
pub(super) fn worth_folding(path: &std::path::Path) -> bool {
    worth_folding_above(path, 1 << 30)
}

/// [`worth_folding`] with files of at most `always` bytes folded always.
fn worth_folding_above(path: &std::path::Path, always: u64) -> bool {
    use std::io::Read;
    if std::fs::metadata(path).is_ok_and(|m| m.len() <= always) {
        return true;
    }
    // `Mod` with its protobuf field tag and length (a bare "Mod" turns up in weights).
    const NEEDLES: [&[u8]; 4] = [
        b"ConstantOfShape",
        b"GatherND",
        b"ScatterND",
        b"\x22\x03Mod",
    ];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let keep = NEEDLES.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let mut window: Vec<u8> = Vec::with_capacity(keep + (1 << 20));
    let mut piece = vec![0u8; 1 << 20];
    loop {
        let Ok(n) = file.read(&mut piece) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        window.extend_from_slice(&piece[..n]);
        if NEEDLES
            .iter()
            .any(|needle| window.windows(needle.len()).any(|w| w == *needle))
        {
            return true;
        }
        window.drain(..window.len().saturating_sub(keep));
    }
}

/// A tensor's values, when it is a number type held in the model (or a small one in
/// external data beside it).
fn read(t: &TensorProto, dir: Option<&Path>) -> Option<Const> {
    // Weights are not folded: only small tensors are decoded (bounded memory on large models).
    if t.dims.iter().product::<i64>() > SMALL_ELEMENTS as i64 {
        return None;
    }
    let external = match (t.external_data.is_empty(), dir) {
        (true, _) => None,
        (false, Some(dir)) => Some(read_external(t, dir, SMALL)?),
        (false, None) => return None,
    };
    decode(t, external.as_deref().unwrap_or(&t.raw_data))
}

fn write(name: &str, c: &Const) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.dims = c.dims.iter().map(|&d| d as i64).collect();
    t.data_type = c.ty;
    let bytes: Vec<u8> = match c.ty {
        FLOAT => c
            .values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        INT32 => c
            .values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        BOOL => c.values.iter().map(|&v| u8::from(v != 0.0)).collect(),
        _ => c
            .values
            .iter()
            .flat_map(|&v| (v as i64).to_le_bytes())
            .collect(),
    };
    t.raw_data = bytes.into();
    t
}

#[cfg(test)]
mod tests {
    use super::super::constants::broadcast;
    use super::*;

    fn c(dims: &[usize], values: &[f64], ty: i32) -> Const {
        Const::new(dims, values, ty)
    }

    #[test]
    fn the_class_tokens_expand_shape_folds() {
        // TorchScript's expand(N, -1, -1): ConstantOfShape([3]) = ones, · -1, == [1, -1, -1],
        // Where(…, ones, [1, -1, -1]).
        let ones = c(&[3], &[1.0; 3], INT64);
        let minus = broadcast(&[&ones, &c(&[], &[-1.0], INT64)], |v| v[0] * v[1], INT64).unwrap();
        let target = c(&[3], &[1.0, -1.0, -1.0], INT64);
        let equal = broadcast(
            &[&target, &minus],
            |v| f64::from(u8::from(v[0] == v[1])),
            BOOL,
        )
        .unwrap();
        assert_eq!(equal.values, [0.0, 1.0, 1.0]);
        let shape = broadcast(
            &[&equal, &ones, &target],
            |v| if v[0] != 0.0 { v[1] } else { v[2] },
            INT64,
        );
        assert_eq!(shape.unwrap().values, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn a_needle_across_a_piece_boundary_is_found() {
        let dir = std::env::temp_dir().join(format!("lrp-grad-fold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (with, without) = (dir.join("with.onnx"), dir.join("without.onnx"));
        let mut bytes = vec![0u8; (1 << 20) - 5];
        bytes.extend_from_slice(b"ConstantOfShape");
        bytes.extend_from_slice(&[0u8; 100]);
        std::fs::write(&with, &bytes).unwrap();
        std::fs::write(&without, vec![7u8; (1 << 20) + 50]).unwrap();
        assert!(worth_folding_above(&with, 0));
        assert!(!worth_folding_above(&without, 0));
        assert!(!worth_folding_above(&dir.join("missing.onnx"), 0));
        assert!(worth_folding(&without), "a small file is always folded");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tensors_round_trip_through_the_proto() {
        for t in [
            c(&[2], &[3.0, -1.0], INT64),
            c(&[3], &[0.5, 1.0, -2.0], FLOAT),
            c(&[2], &[1.0, 0.0], BOOL),
        ] {
            assert_eq!(read(&write("t", &t), None).unwrap(), t);
        }
    }
}
