//! The dynamo exporter's adaptive average pool. Where `adaptive_avg_pool2d`'s output does not
//! divide its input (VGG and AlexNet at 160²), PyTorch decomposes it into index arithmetic:
//! `Transpose [2, 3, 0, 1]`, a `GatherND` of every window's entries, `Where` masks, `Gather`s
//! summed and a `Div` by the window sizes. Such a region — nodes that read the activation
//! only through each other and constants — is evaluated on a basis of one-hot images; when a
//! value of it is the adaptive average pool's averaging matrix, the nodes computing that value
//! become one `AdaptiveAveragePool` node (domain `lrp_grad`, attributes `input_size` and
//! `output_size`), which the converter reads as Burn's `AdaptiveAvgPool2d`: a pooling layer
//! with the pooling rule, as in the TorchScript export and in Zennit — not a dense map.

use std::collections::{HashMap, HashSet};

use onnx_ir::{
    ArgType, AttributeProto, AttributeType, CustomNode, CustomOpInference, GraphProto,
    HookCoverage, MissingReason, ModelProto, NodeProto, ProcessError, TensorType,
};

use super::constants::{Const, FLOAT, evaluate};

/// The custom node's domain and operator.
pub(super) const DOMAIN: &str = "lrp_grad";
pub(super) const OP: &str = "AdaptiveAveragePool";

/// Operators a decomposed pool is made of (linear in the activation, given constants).
const LINEAR: [&str; 8] = [
    "Transpose",
    "GatherND",
    "Where",
    "Gather",
    "Add",
    "Div",
    "Mul",
    "Unsqueeze",
];

/// How far past its `Transpose` a decomposed pool may reach.
const REACH: usize = 200;

/// A decomposed pool found: the nodes computing it, the activation, the output's name and the
/// two sizes.
struct Found {
    nodes: Vec<usize>,
    x: String,
    output: String,
    input: [usize; 2],
    size: [usize; 2],
}

/// Every decomposed adaptive average pool of the model replaced by one node; how many.
pub(super) fn rewrite(model: &mut ModelProto, known: &HashMap<String, Const>) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut count = 0;
    while let Some(found) = find(graph, known) {
        replace(graph, found);
        count += 1;
    }
    if count > 0
        && !model.opset_import.iter().any(|o| o.domain == DOMAIN)
        && let Some(mut entry) = model.opset_import.first().cloned()
    {
        entry.domain = DOMAIN.to_string();
        entry.version = 1;
        model.opset_import.push(entry);
    }
    count
}

fn find(graph: &GraphProto, known: &HashMap<String, Const>) -> Option<Found> {
    let shapes = static_shapes(graph);
    graph.node.iter().enumerate().find_map(|(i, node)| {
        let perm: Vec<i64> = (node.attribute.iter())
            .find(|a| a.name == "perm")
            .map(|a| a.ints.clone())?;
        let x = node.input.first()?;
        if node.op_type != "Transpose" || perm != [2, 3, 0, 1] || known.contains_key(x) {
            return None;
        }
        let [_, _, h, w] = shapes.get(x)?.as_slice() else {
            return None;
        };
        region(graph, known, i, [*h, *w])
    })
}

/// The static dims of every value the model declares them for.
fn static_shapes(graph: &GraphProto) -> HashMap<String, Vec<usize>> {
    (graph.value_info.iter().chain(&graph.input))
        .filter_map(|v| {
            let dims = v.type_.tensor_type().shape.dim.iter();
            let dims: Option<Vec<usize>> = dims
                .map(|d| d.dim_value().try_into().ok().filter(|&d: &usize| d > 0))
                .collect();
            Some((v.name.clone(), dims?))
        })
        .collect()
}

/// The region from the `Transpose` at `start`, evaluated on the basis of `[h·w, 1, h, w]`
/// one-hot images; the first value that is the adaptive average pool of some output size.
fn region(
    graph: &GraphProto,
    known: &HashMap<String, Const>,
    start: usize,
    [h, w]: [usize; 2],
) -> Option<Found> {
    let x = graph.node[start].input[0].clone();
    let n = h * w;
    let mut basis = vec![0.0; n * n];
    (0..n).for_each(|k| basis[k * n + k] = 1.0);
    let mut values: HashMap<String, Const> = HashMap::new();
    values.insert(
        x.clone(),
        Const {
            dims: vec![n, 1, h, w],
            values: basis,
            ty: FLOAT,
        },
    );
    let mut members = Vec::new();
    for (j, node) in graph.node.iter().enumerate().skip(start).take(REACH) {
        let Some(value) = member_value(node, &values, known) else {
            continue;
        };
        let size = pool_size(&value, [h, w]);
        values.insert(node.output[0].clone(), value);
        members.push(j);
        if let Some(size) = size {
            let nodes = ancestors(graph, &members, j);
            if closed(graph, &nodes, j) {
                let output = node.output[0].clone();
                let input = [h, w];
                return Some(Found {
                    nodes,
                    x,
                    output,
                    input,
                    size,
                });
            }
        }
    }
    None
}

/// The node's value on the basis, when it is linear in region values (one region input to a
/// product or quotient; masks constant) and every other input is a constant.
fn member_value(
    node: &NodeProto,
    values: &HashMap<String, Const>,
    known: &HashMap<String, Const>,
) -> Option<Const> {
    if !LINEAR.contains(&node.op_type.as_str()) || node.output.len() != 1 {
        return None;
    }
    let in_region: Vec<bool> = node.input.iter().map(|i| values.contains_key(i)).collect();
    let regional = in_region.iter().filter(|&&r| r).count();
    let linear = match node.op_type.as_str() {
        "Mul" => regional == 1,
        "Div" => regional == 1 && in_region[0],
        "Where" => !in_region[0],
        "GatherND" | "Gather" => in_region[0] && regional == 1,
        _ => true,
    };
    if regional == 0 || !linear {
        return None;
    }
    let inputs: Option<Vec<&Const>> = (node.input.iter())
        .map(|i| values.get(i).or_else(|| known.get(i)))
        .collect();
    evaluate(node, &inputs?)
}

/// `[h', w']` when the value on the basis is the adaptive average pool of `[h, w]` to
/// `[h', w']` (PyTorch's windows: rows `⌊i·h/h'⌋ … ⌈(i+1)·h/h'⌉`).
fn pool_size(value: &Const, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
    let [n, 1, oh, ow] = value.dims.as_slice() else {
        return None;
    };
    let (n, oh, ow) = (*n, *oh, *ow);
    if n != h * w || oh == 0 || ow == 0 {
        return None;
    }
    let rows = |i: usize| (i * h / oh)..((i + 1) * h).div_ceil(oh);
    let cols = |j: usize| (j * w / ow)..((j + 1) * w).div_ceil(ow);
    let matches = (0..n).all(|k| {
        let (r, c) = (k / w, k % w);
        (0..oh * ow).all(|o| {
            let (i, j) = (o / ow, o % ow);
            let (rows, cols) = (rows(i), cols(j));
            let expected = match rows.contains(&r) && cols.contains(&c) {
                true => 1.0 / (rows.len() * cols.len()) as f64,
                false => 0.0,
            };
            (value.values[k * oh * ow + o] - expected).abs() <= 1e-9
        })
    });
    matches.then_some([oh, ow])
}

/// The members that `last` depends on (itself included), in order.
fn ancestors(graph: &GraphProto, members: &[usize], last: usize) -> Vec<usize> {
    let mut needed: HashSet<&str> = graph.node[last].input.iter().map(String::as_str).collect();
    let mut nodes = vec![last];
    for &j in members.iter().rev().filter(|&&j| j < last) {
        let node = &graph.node[j];
        if node.output.iter().any(|o| needed.contains(o.as_str())) {
            needed.extend(node.input.iter().map(String::as_str));
            nodes.push(j);
        }
    }
    nodes.reverse();
    nodes
}

/// Whether no node outside `nodes` (nor the graph's output) reads a value that `nodes` compute,
/// but for the last one's.
fn closed(graph: &GraphProto, nodes: &[usize], last: usize) -> bool {
    let inner: HashSet<&str> = (nodes.iter().filter(|&&j| j != last))
        .flat_map(|&j| graph.node[j].output.iter().map(String::as_str))
        .collect();
    let read_outside = (graph.node.iter().enumerate())
        .filter(|(j, _)| !nodes.contains(j))
        .flat_map(|(_, node)| node.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
        .any(|name| inner.contains(name.as_str()));
    !read_outside
}

/// The found nodes replaced by one pool node (in the last one's place: its readers follow).
fn replace(graph: &mut GraphProto, found: Found) {
    let last = *found.nodes.last().expect("a pool has nodes");
    let mut node = NodeProto::new();
    node.name = graph.node[last].name.clone();
    node.op_type = OP.to_string();
    node.domain = DOMAIN.to_string();
    node.input = vec![found.x];
    node.output = vec![found.output];
    node.attribute = vec![
        ints("input_size", &found.input),
        ints("output_size", &found.size),
    ];
    graph.node[last] = node;
    for &j in found.nodes.iter().rev().filter(|&&j| j != last) {
        graph.node.remove(j);
    }
}

fn ints(name: &str, values: &[usize; 2]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.iter().map(|&v| v as i64).collect();
    a
}

/// onnx-ir's type inference for the pool node: `[N, C, h, w]` → `[N, C, h', w']`.
pub(super) struct PoolTypes;

impl CustomOpInference for PoolTypes {
    fn coverage(&self, op_type: &str, domain: &str, _opset: usize) -> HookCoverage {
        match (op_type, domain) {
            (OP, DOMAIN) => HookCoverage::Covered,
            _ => HookCoverage::Missing(MissingReason::NoHook),
        }
    }

    fn infer(&self, node: &CustomNode) -> Result<Option<Vec<ArgType>>, ProcessError> {
        let invalid = |reason: &str| ProcessError::Custom(format!("{}: {reason}", node.name));
        let size = (node.attrs.get_i64s("output_size"))
            .filter(|s| s.len() == 2 && s.iter().all(|&d| d > 0))
            .ok_or_else(|| invalid("expects an `output_size` of two positive sizes"))?;
        let ArgType::Tensor(input) = &node.inputs.first().ok_or_else(|| invalid("no input"))?.ty
        else {
            return Err(invalid("expects a tensor input"));
        };
        let mut shape = input.static_shape.clone().unwrap_or_else(|| vec![None; 4]);
        if input.rank != 4 || shape.len() != 4 {
            return Err(invalid("expects a rank-4 input [N, C, H, W]"));
        }
        shape[2] = Some(size[0] as usize);
        shape[3] = Some(size[1] as usize);
        Ok(Some(vec![ArgType::Tensor(TensorType {
            dtype: input.dtype,
            rank: 4,
            static_shape: Some(shape),
        })]))
    }
}
