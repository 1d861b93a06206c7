//! The gradient trick equals the explicit matrix method: on the classic Linear(4, 2), on a whole
//! ReLU MLP, and for every rule's matrix form; with the bias caveat and the reason for detaching.

mod common;

use burn::nn::Relu;
use burn::tensor::Tensor;
use burn::tensor::module::linear as linear_op;
use common::reference::{self, Matrix};
use common::{assert_close, linear, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{Explainer, Rule, Sequential, Target};

/// The seed's example: Linear(4, 2, bias=False), relevance by the matrix method written out.
#[test]
fn classic_linear_4_2_gradient_equals_matrix_method() {
    let w = [0.5f32, -0.3, 0.8, 0.1, -0.2, 0.7, 0.4, -0.6]; // [out = 2, in = 4]
    let a = [1.0f32, 2.0, 0.5, 1.5];
    let r_out = [0.7f32, 0.3];

    // Matrix method: z = a·Wᵀ, s = R/z, c = s·W, R = a·c.
    let z: Vec<f32> = (0..2)
        .map(|j| (0..4).map(|i| a[i] * w[j * 4 + i]).sum())
        .collect();
    let s: Vec<f32> = (0..2).map(|j| r_out[j] / z[j]).collect();
    let c: Vec<f32> = (0..4)
        .map(|i| (0..2).map(|j| s[j] * w[j * 4 + i]).sum())
        .collect();
    let expected: Vec<f32> = (0..4).map(|i| a[i] * c[i]).collect();

    let model = Sequential::new().push(linear(&w, None, 4, 2));
    let explanation = Explainer::new()
        .rule(Rule::Zero)
        .target(Target::Relevance(tensor(r_out.to_vec(), [1, 2])))
        .explain(&model, tensor(a.to_vec(), [1, 4]))
        .unwrap();
    assert_close(&values(explanation.relevance), &expected, 1e-6);
}

/// A bias-free ReLU MLP: the engine equals the matrix method applied layer by layer.
#[test]
fn bias_free_relu_mlp_equals_layerwise_matrix_method() {
    let mut rng = rng(7);
    let dims = [6usize, 9, 7, 4];
    let weights: Vec<Vec<f32>> = dims
        .windows(2)
        .map(|d| random_vec(&mut rng, d[0] * d[1], -1.0, 1.0))
        .collect();
    let mut model = Sequential::new();
    for (k, d) in dims.windows(2).enumerate() {
        model = model.push(linear(&weights[k], None, d[0], d[1]));
        if k + 2 < dims.len() {
            model = model.push(Relu::new());
        }
    }
    let batch = 3;
    let x = random_vec(&mut rng, batch * dims[0], -1.0, 1.0);
    let explanation = Explainer::new()
        .rule(Rule::Zero)
        .target(Target::Class(2))
        .explain(&model, tensor(x.clone(), [batch, dims[0]]))
        .unwrap();

    for n in 0..batch {
        // Forward with explicit matrices, keeping each layer's input.
        let mats: Vec<Matrix> = dims
            .windows(2)
            .enumerate()
            .map(|(k, d)| Matrix::dense(&weights[k], None, d[0], d[1]))
            .collect();
        let mut acts = vec![
            x[n * dims[0]..(n + 1) * dims[0]]
                .iter()
                .map(|v| *v as f64)
                .collect::<Vec<_>>(),
        ];
        for (k, m) in mats.iter().enumerate() {
            let mut z = m.forward(acts.last().unwrap());
            if k + 1 < mats.len() {
                z.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            acts.push(z);
        }
        let logits = acts.last().unwrap();
        let mut r: Vec<f64> = (0..logits.len())
            .map(|j| if j == 2 { logits[j] } else { 0.0 })
            .collect();
        for (k, m) in mats.iter().enumerate().rev() {
            r = reference::lrp(&Rule::Zero, m, &acts[k], &r);
        }
        let expected: Vec<f32> = r.iter().map(|v| *v as f32).collect();
        let actual = values(explanation.relevance.clone().narrow(0, n, 1));
        assert_close(&actual, &expected, 1e-5);
    }
}

/// Every rule on a dense layer with a bias and inputs of both signs: engine = textbook formula.
#[test]
fn every_rule_equals_its_matrix_form_on_a_dense_layer() {
    let mut rng = rng(11);
    let (d_in, d_out, batch) = (7, 5, 4);
    let w = random_vec(&mut rng, d_in * d_out, -1.0, 1.0);
    let b = random_vec(&mut rng, d_out, -0.5, 0.5);
    let x = random_vec(&mut rng, batch * d_in, -1.0, 1.0);
    let r_out = random_vec(&mut rng, batch * d_out, -1.0, 1.0);
    let model = Sequential::new().push(linear(&w, Some(&b), d_in, d_out));
    let m = Matrix::dense(&w, Some(&b), d_in, d_out);

    for rule in reference::all_rules() {
        let explanation = Explainer::new()
            .rule(rule.clone())
            .target(Target::Relevance(tensor(r_out.clone(), [batch, d_out])))
            .explain(&model, tensor(x.clone(), [batch, d_in]))
            .unwrap();
        let actual = values(explanation.relevance);
        for n in 0..batch {
            let xs: Vec<f64> = x[n * d_in..(n + 1) * d_in]
                .iter()
                .map(|v| *v as f64)
                .collect();
            let rs: Vec<f64> = r_out[n * d_out..(n + 1) * d_out]
                .iter()
                .map(|v| *v as f64)
                .collect();
            let expected: Vec<f32> = reference::lrp(&rule, &m, &xs, &rs)
                .iter()
                .map(|v| *v as f32)
                .collect();
            let err = relative_error(&actual[n * d_in..(n + 1) * d_in], &expected);
            assert!(err < 1e-5, "{rule:?}, sample {n}: relative error {err:.2e}");
        }
    }
}

/// With a bias, `c` is still `Wᵀs` — the gradient method equals the matrix method whose `z`
/// includes the bias — but the result differs from the bias-free matrix product `a·Wᵀ(R/(a·Wᵀ))`.
#[test]
fn bias_changes_z_so_the_bias_free_matrix_product_differs() {
    let w = [0.5f32, -0.3, 0.8, 0.1, -0.2, 0.7, 0.4, -0.6];
    let b = [0.4f32, -0.9];
    let a = [1.0f32, 2.0, 0.5, 1.5];
    let r_out = [0.7f32, 0.3];
    let model = Sequential::new().push(linear(&w, Some(&b), 4, 2));
    let relevance = values(
        Explainer::new()
            .rule(Rule::Zero)
            .target(Target::Relevance(tensor(r_out.to_vec(), [1, 2])))
            .explain(&model, tensor(a.to_vec(), [1, 4]))
            .unwrap()
            .relevance,
    );
    let a64: Vec<f64> = a.iter().map(|v| *v as f64).collect();
    let r64: Vec<f64> = r_out.iter().map(|v| *v as f64).collect();
    let with_bias: Vec<f32> =
        reference::lrp(&Rule::Zero, &Matrix::dense(&w, Some(&b), 4, 2), &a64, &r64)
            .iter()
            .map(|v| *v as f32)
            .collect();
    let bias_free: Vec<f32> =
        reference::lrp(&Rule::Zero, &Matrix::dense(&w, None, 4, 2), &a64, &r64)
            .iter()
            .map(|v| *v as f32)
            .collect();
    assert_close(&relevance, &with_bias, 1e-6);
    assert!(
        relative_error(&relevance, &bias_free) > 0.05,
        "with a bias the relevance must differ from the bias-free product"
    );
    // The bias absorbs relevance: the sum is no longer Σ R_out.
    let total: f32 = relevance.iter().sum();
    assert!((total - 1.0).abs() > 0.05, "sum {total}");
}

/// Why `s` is detached: if `s = R/z` stays in the graph, `Σ z·s = Σ R` no longer depends on
/// `a` through `z` alone, its gradient is not `Wᵀs`, and the "relevance" collapses.
#[test]
fn s_must_be_detached() {
    let w = [0.5f32, -0.3, 0.8, 0.1, -0.2, 0.7, 0.4, -0.6];
    let a = [1.0f32, 2.0, 0.5, 1.5];
    let r = tensor(vec![0.7f32, 0.3], [1, 2]);
    let weight = tensor(w.to_vec(), [2, 4]).transpose();
    let relevance_with = |detach: bool| -> Vec<f32> {
        let leaf = tensor(a.to_vec(), [1, 4]).autodiff().require_grad();
        let z: Tensor<2> = linear_op(leaf.clone(), weight.clone(), None);
        let s = if detach {
            r.clone() / z.clone().detach()
        } else {
            r.clone() / z.clone()
        };
        let grads = (z * s).sum().backward();
        values(leaf.clone().without_autodiff() * leaf.grad(&grads).unwrap())
    };
    let expected = {
        let a64: Vec<f64> = a.iter().map(|v| *v as f64).collect();
        let out = reference::lrp(
            &Rule::Zero,
            &Matrix::dense(&w, None, 4, 2),
            &a64,
            &[0.7, 0.3],
        );
        out.iter().map(|v| *v as f32).collect::<Vec<_>>()
    };
    assert_close(&relevance_with(true), &expected, 1e-6);
    let undetached = relevance_with(false);
    assert!(
        relative_error(&undetached, &expected) > 0.5,
        "undetached: {undetached:?}"
    );
    assert!(
        undetached.iter().all(|v| v.abs() < 1e-5),
        "Σ z·(R/z) = Σ R is constant in a: {undetached:?}"
    );
}
