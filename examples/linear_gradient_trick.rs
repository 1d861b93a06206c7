//! The gradient trick on the smallest example: a bias-free Linear(4, 2).
//!
//! Relevance by the matrix method (z = a·Wᵀ, s = R/z, c = s·W, R = a·c) and by lrp-grad's
//! gradient method (c = ∂Σ(z·s)/∂a with s detached), printed side by side.
//!
//! Run: `cargo run --release --example linear_gradient_trick`

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::tensor::{Device, Tensor, TensorData};
use lrp_grad::{Explainer, Rule, Sequential, Target};

fn main() -> Result<(), lrp_grad::Error> {
    let device = Device::default();
    let w = [[0.5f32, -0.3, 0.8, 0.1], [-0.2, 0.7, 0.4, -0.6]]; // PyTorch layout [out, in]
    let a = [1.0f32, 2.0, 0.5, 1.5];
    let r_out = [0.7f32, 0.3];

    // Matrix method, written out.
    let z: Vec<f32> = (0..2)
        .map(|j| (0..4).map(|i| a[i] * w[j][i]).sum())
        .collect();
    let s: Vec<f32> = (0..2).map(|j| r_out[j] / z[j]).collect();
    let c: Vec<f32> = (0..4)
        .map(|i| (0..2).map(|j| s[j] * w[j][i]).sum())
        .collect();
    let matrix: Vec<f32> = (0..4).map(|i| a[i] * c[i]).collect();

    // Gradient method: lrp-grad's engine with LRP-0.
    let mut linear = LinearConfig::new(4, 2).with_bias(false).init(&device);
    let flat: Vec<f32> = w.iter().flatten().copied().collect();
    let weight = Tensor::<2>::from_data(TensorData::new(flat, [2, 4]), &device).transpose(); // Burn: [in, out]
    linear.weight = Param::from_tensor(weight);
    let model = Sequential::new().push(linear);
    let explanation = Explainer::new()
        .rule(Rule::Zero)
        .target(Target::Relevance(Tensor::from_data(
            TensorData::new(r_out.to_vec(), [1, 2]),
            &device,
        )))
        .explain(
            &model,
            Tensor::<2>::from_data(TensorData::new(a.to_vec(), [1, 4]), &device),
        )?;
    let gradient: Vec<f32> = explanation
        .relevance
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("floats");

    println!("z = a·Wᵀ = {z:?}   s = R/z = {s:?}");
    println!(
        "{:>5} {:>12} {:>12} {:>10}",
        "input", "matrix", "gradient", "|diff|"
    );
    for i in 0..4 {
        println!(
            "{:>5} {:>12.7} {:>12.7} {:>10.1e}",
            i,
            matrix[i],
            gradient[i],
            (matrix[i] - gradient[i]).abs()
        );
    }
    println!(
        "sum: matrix {:.7}, gradient {:.7}, R_out {:.7}",
        matrix.iter().sum::<f32>(),
        gradient.iter().sum::<f32>(),
        r_out.iter().sum::<f32>()
    );
    Ok(())
}
