//! An operation and a rule the library does not have, defined in the user's own code: Swish
//! with a β of the user's, `x · sigmoid(βx)`, whose LRP rule treats the gate `sigmoid(βx)` as
//! a constant (so relevance passes through it unchanged). The model `Linear(4, 6) → Swish(β) →
//! Linear(6, 3)` is explained with LRP-ε by both strategies and checked against the same rule
//! written out by hand in f64.
//!
//! `cargo run --release --example custom_op`

use anyhow::{Result, ensure};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use lrp_grad::{Explainer, FeatureShape, Graph, Operation, Rule, Strategy, Target};

/// Swish with a fixed β, as a user writes it: shape, forward pass, LRP form.
#[derive(Debug)]
struct SwishBeta {
    beta: f32,
}

impl Operation for SwishBeta {
    fn kind(&self) -> &'static str {
        "swish_beta"
    }

    fn output_shape(&self, input: FeatureShape) -> Result<FeatureShape, String> {
        Ok(input)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.clone() * sigmoid(x.mul_scalar(self.beta))
    }

    /// The rule: the gate is a constant, so input × gradient is `x · gate · R / z = R`.
    fn lrp_forward(&self, x: Tensor<4>) -> Tensor<4> {
        let gate = sigmoid(x.clone().detach().mul_scalar(self.beta));
        x * gate
    }
}

const EPSILON: f64 = 1e-3;

/// Deterministic weights `[out, in]` (PyTorch's layout) and biases.
fn weights(d_in: usize, d_out: usize, seed: f64) -> (Vec<f64>, Vec<f64>) {
    let w = (0..d_in * d_out)
        .map(|i| ((i as f64 + seed) * 0.731).sin() * 0.9)
        .collect();
    let b = (0..d_out)
        .map(|j| ((j as f64 + seed) * 1.37).cos() * 0.2)
        .collect();
    (w, b)
}

/// A Burn dense layer with these weights (Burn stores `[in, out]`).
fn linear((w, b): &(Vec<f64>, Vec<f64>), d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    let w32: Vec<f32> = w.iter().map(|v| *v as f32).collect();
    let weight = Tensor::<2>::from_data(TensorData::new(w32, [d_out, d_in]), device);
    layer.weight = Param::from_tensor(weight.transpose());
    let b32: Vec<f32> = b.iter().map(|v| *v as f32).collect();
    layer.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(b32, [d_out]),
        device,
    )));
    layer
}

/// A dense layer's output in f64, `z_j = b_j + Σ_i w_ji x_i`.
fn dense((w, b): &(Vec<f64>, Vec<f64>), x: &[f64], d_out: usize) -> Vec<f64> {
    let d_in = x.len();
    (0..d_out)
        .map(|j| b[j] + (0..d_in).map(|i| w[j * d_in + i] * x[i]).sum::<f64>())
        .collect()
}

/// The whole explanation in f64 for one input and target class.
fn reference(layers: &[(Vec<f64>, Vec<f64>); 2], beta: f64, x: &[f64], target: usize) -> Vec<f64> {
    let z1 = dense(&layers[0], x, 6);
    let h: Vec<f64> = z1.iter().map(|z| z / (1.0 + (-beta * z).exp())).collect();
    let logits = dense(&layers[1], &h, 3);
    let r_out: Vec<f64> = (0..3)
        .map(|k| if k == target { logits[k] } else { 0.0 })
        .collect();
    // Relevance of h by ε, unchanged through the gate, then ε on the first layer.
    let r_h = dense_relevance(&layers[1], &h, &r_out);
    dense_relevance(&layers[0], x, &r_h)
}

/// `R_i = Σ_j x_i w_ji R_j / stab(z_j)` for a given output relevance.
fn dense_relevance(layer: &(Vec<f64>, Vec<f64>), x: &[f64], r_out: &[f64]) -> Vec<f64> {
    let (d_in, d_out) = (x.len(), r_out.len());
    let (w, z) = (&layer.0, dense(layer, x, d_out));
    (0..d_in)
        .map(|i| {
            (0..d_out)
                .map(|j| {
                    let stab = z[j] + EPSILON * if z[j] >= 0.0 { 1.0 } else { -1.0 };
                    x[i] * w[j * d_in + i] * r_out[j] / stab
                })
                .sum()
        })
        .collect()
}

fn main() -> Result<()> {
    let device = Device::default();
    let beta = 1.7;
    let layers = [weights(4, 6, 0.0), weights(6, 3, 5.0)];
    let mut graph = Graph::new();
    let x = graph.input();
    let h = graph.layer("fc1", linear(&layers[0], 4, 6, &device), x);
    let h = graph.custom("swish", SwishBeta { beta }, h);
    graph.layer("fc2", linear(&layers[1], 6, 3, &device), h);

    let inputs = [[0.5f32, -1.2, 2.0, 0.3], [-0.7, 0.1, -1.5, 1.1]];
    let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
    let batch = Tensor::<2>::from_data(TensorData::new(flat, [2, 4]), &device);
    let target = 2;
    for strategy in [Strategy::Auto, Strategy::LayerWise] {
        let explanation = Explainer::new()
            .rule(Rule::Epsilon { epsilon: EPSILON })
            .strategy(strategy)
            .target(Target::Class(target))
            .explain(&graph, batch.clone())?;
        let relevance = explanation
            .relevance
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("relevance: {e:?}"))?;
        for (n, input) in inputs.iter().enumerate() {
            let x: Vec<f64> = input.iter().map(|v| *v as f64).collect();
            let expected = reference(&layers, beta as f64, &x, target);
            let got = &relevance[n * 4..(n + 1) * 4];
            let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let error = got
                .iter()
                .zip(&expected)
                .map(|(g, e)| (*g as f64 - e).abs())
                .fold(0.0, f64::max)
                / scale;
            println!(
                "{strategy:?}, input {n}: relevance {got:?}, f64 {expected:.6?}, error {error:.1e}"
            );
            ensure!(
                error < 1e-5,
                "{strategy:?}: relevance differs from the f64 rule by {error:e}"
            );
        }
    }
    println!("custom operation and rule: both strategies equal the f64 reference");
    Ok(())
}
