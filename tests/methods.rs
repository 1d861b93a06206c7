//! Attribution methods beside LRP: gradient, gradient × input, SmoothGrad, Integrated Gradients,
//! occlusion — against finite differences, known identities, analytic values and Zennit.

mod common;

use std::path::Path;

use burn::nn::{Relu, Tanh};
use burn::tensor::{Tensor, TensorData};
use common::zennit::ZennitFixture;
use common::{assert_close, device, linear, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{
    Base, Baseline, Explainer, Flatten, Method, OutputRelevance, Rule, Sequential, Target,
    interchange,
};

/// A smooth (tanh) MLP with biases.
fn tanh_mlp(seed: u64) -> Sequential {
    let mut r = rng(seed);
    Sequential::new()
        .push(linear(
            &random_vec(&mut r, 6 * 10, -1.0, 1.0),
            Some(&random_vec(&mut r, 10, -0.5, 0.5)),
            6,
            10,
        ))
        .push(Tanh::new())
        .push(linear(
            &random_vec(&mut r, 10 * 4, -1.0, 1.0),
            Some(&random_vec(&mut r, 4, -0.5, 0.5)),
            10,
            4,
        ))
}

fn attribution(
    model: &Sequential,
    method: Method,
    x: &[f32],
    shape: [usize; 2],
    target: usize,
) -> Vec<f32> {
    let e = Explainer::new()
        .method(method)
        .target(Target::Class(target))
        .explain(model, tensor(x.to_vec(), shape))
        .unwrap();
    values(e.relevance)
}

fn score(model: &Sequential, x: &[f32], shape: [usize; 2], target: usize) -> Vec<f32> {
    let out = values(model.forward(tensor(x.to_vec(), shape)));
    let classes = out.len() / shape[0];
    (0..shape[0]).map(|s| out[s * classes + target]).collect()
}

#[test]
fn gradient_equals_central_finite_differences() {
    let model = tanh_mlp(1);
    let x = random_vec(&mut rng(2), 2 * 6, -1.0, 1.0);
    let grad = attribution(&model, Method::Gradient, &x, [2, 6], 2);
    let h = 1e-2f32;
    let mut numeric = vec![0.0f32; x.len()];
    for i in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += h;
        down[i] -= h;
        let s = i / 6;
        numeric[i] =
            (score(&model, &up, [2, 6], 2)[s] - score(&model, &down, [2, 6], 2)[s]) / (2.0 * h);
    }
    assert_close(&grad, &numeric, 2e-3);
}

#[test]
fn lrp_0_equals_gradient_times_input_on_a_bias_free_relu_network() {
    let mut r = rng(3);
    let model = Sequential::new()
        .push(linear(&random_vec(&mut r, 8 * 12, -1.0, 1.0), None, 8, 12))
        .push(Relu::new())
        .push(linear(&random_vec(&mut r, 12 * 9, -1.0, 1.0), None, 12, 9))
        .push(Relu::new())
        .push(linear(&random_vec(&mut r, 9 * 3, -1.0, 1.0), None, 9, 3));
    let x = random_vec(&mut r, 4 * 8, -1.0, 1.0);
    let lrp = Explainer::new()
        .rule(Rule::Zero)
        .output_relevance(OutputRelevance::Logit) // R_out = f(x): then LRP-0 = x ⊙ ∇f
        .target(Target::Class(1))
        .explain(&model, tensor(x.clone(), [4, 8]))
        .unwrap();
    let gxi = attribution(&model, Method::GradientTimesInput, &x, [4, 8], 1);
    assert_close(&values(lrp.relevance), &gxi, 1e-5);
}

#[test]
fn integrated_gradients_is_complete_and_the_gap_shrinks_with_more_steps() {
    let model = tanh_mlp(4);
    let x = random_vec(&mut rng(5), 3 * 6, -1.5, 1.5);
    let mut gaps = Vec::new();
    for steps in [4, 16, 64, 256] {
        let method = Method::IntegratedGradients {
            steps,
            baseline: Baseline::Zero,
            base: Base::Gradient,
        };
        let e = Explainer::new()
            .method(method)
            .target(Target::Class(0))
            .explain(&model, tensor(x.clone(), [3, 6]))
            .unwrap();
        let gap = e
            .completeness_gap()
            .unwrap()
            .iter()
            .fold(0f32, |m, g| m.max(g.abs()));
        gaps.push(gap);
    }
    assert!(
        gaps.windows(2).all(|g| g[1] < g[0]),
        "gaps must shrink: {gaps:?}"
    );
    assert!(gaps[3] < 1e-2, "256 steps: gap {}", gaps[3]);
    // Sum of the attribution against f(x) − f(baseline) computed here, not by the library.
    let e = Explainer::new()
        .method(Method::IntegratedGradients {
            steps: 256,
            baseline: Baseline::Tensor(TensorData::new(vec![0.3f32; 6], [6])),
            base: Base::Gradient,
        })
        .target(Target::Class(0))
        .explain(&model, tensor(x.clone(), [3, 6]))
        .unwrap();
    let f_x = score(&model, &x, [3, 6], 0);
    let f_b = score(&model, &[0.3; 6], [1, 6], 0)[0];
    for (s, sum) in e.relevance_sums().iter().enumerate() {
        assert!(
            (sum - (f_x[s] - f_b)).abs() < 1e-2,
            "sample {s}: {sum} vs {}",
            f_x[s] - f_b
        );
    }
}

#[test]
fn occlusion_on_a_linear_model_equals_the_analytic_score_drop() {
    let (c, h, w, k) = (2, 6, 5, 3);
    let mut r = rng(6);
    let weight = random_vec(&mut r, k * c * h * w, -1.0, 1.0);
    let model =
        Sequential::new()
            .push(Flatten)
            .push(linear(&weight, Some(&[0.1, 0.2, 0.3]), c * h * w, k));
    let x = random_vec(&mut r, c * h * w, -1.0, 1.0);
    let (window, stride, fill, target) = ([3, 2], [2, 2], 0.5f32, 2);
    let e = Explainer::new()
        .method(Method::Occlusion {
            window,
            stride,
            fill,
        })
        .target(Target::Class(target))
        .explain(
            &model,
            Tensor::<4>::from_data(TensorData::new(x.clone(), [1, c, h, w]), &device()),
        )
        .unwrap();
    // Analytic: covering window W drops the score by Σ_{p∈W} w_tp (x_p − fill); a pixel gets the
    // drops of all windows that cover it (windows clipped at the border).
    let mut expected = vec![0.0f32; c * h * w];
    for top in (0..h).step_by(stride[0]) {
        for left in (0..w).step_by(stride[1]) {
            let cells: Vec<usize> = (0..c)
                .flat_map(|ch| {
                    (top..(top + window[0]).min(h)).flat_map(move |y| {
                        (left..(left + window[1]).min(w)).map(move |x| (ch * h + y) * w + x)
                    })
                })
                .collect();
            let drop: f32 = cells
                .iter()
                .map(|p| weight[target * c * h * w + p] * (x[*p] - fill))
                .sum();
            for p in cells {
                expected[p] += drop;
            }
        }
    }
    assert_close(&values(e.relevance), &expected, 1e-5);
}

#[test]
fn smoothgrad_with_zero_noise_is_the_gradient_and_a_seed_makes_it_reproducible() {
    let model = tanh_mlp(7);
    let x = random_vec(&mut rng(8), 2 * 6, -1.0, 1.0);
    let smooth = |noise: f64, seed: u64| {
        attribution(
            &model,
            Method::SmoothGrad {
                samples: 8,
                noise,
                seed,
                base: Base::Gradient,
            },
            &x,
            [2, 6],
            3,
        )
    };
    assert_close(
        &smooth(0.0, 1),
        &attribution(&model, Method::Gradient, &x, [2, 6], 3),
        1e-6,
    );
    assert_eq!(smooth(0.2, 42), smooth(0.2, 42));
    assert!(
        relative_error(&smooth(0.2, 42), &smooth(0.2, 43)) > 1e-4,
        "another seed, other noise"
    );
    // One sample: the last sample is noise-free, so SmoothGrad is the gradient (as in Zennit).
    let one = attribution(
        &model,
        Method::SmoothGrad {
            samples: 1,
            noise: 0.5,
            seed: 0,
            base: Base::Gradient,
        },
        &x,
        [2, 6],
        3,
    );
    assert_close(
        &one,
        &attribution(&model, Method::Gradient, &x, [2, 6], 3),
        1e-6,
    );
}

#[test]
fn smoothgrad_and_integrated_gradients_run_over_lrp() {
    let model = tanh_mlp(9);
    let x = random_vec(&mut rng(10), 2 * 6, -1.0, 1.0);
    let lrp = Explainer::new()
        .rule(Rule::Epsilon { epsilon: 0.01 })
        .target(Target::Class(1));
    let plain = values(
        lrp.explain(&model, tensor(x.clone(), [2, 6]))
            .unwrap()
            .relevance,
    );
    let zero_noise = Method::SmoothGrad {
        samples: 3,
        noise: 0.0,
        seed: 0,
        base: Base::Lrp,
    };
    let smoothed = values(
        lrp.clone()
            .method(zero_noise)
            .explain(&model, tensor(x.clone(), [2, 6]))
            .unwrap()
            .relevance,
    );
    assert_close(&smoothed, &plain, 1e-6);
    let ig = Method::IntegratedGradients {
        steps: 1,
        baseline: Baseline::Zero,
        base: Base::Lrp,
    };
    let one_step = values(
        lrp.method(ig)
            .explain(&model, tensor(x.clone(), [2, 6]))
            .unwrap()
            .relevance,
    );
    let expected: Vec<f32> = plain.iter().zip(&x).map(|(r, x)| r * x).collect();
    assert_close(&one_step, &expected, 1e-6);
}

/// Gradient, Integrated Gradients and occlusion against Zennit's attributors (fixtures written
/// by tools/zennit-reference; the same models as the LRP fixtures).
#[test]
fn gradient_integrated_gradients_and_occlusion_match_zennit() {
    for (model_name, window) in [("mlp", [1, 2]), ("cnn", [4, 4])] {
        let fixture = ZennitFixture::open(Path::new(env!("CARGO_MANIFEST_DIR")), model_name);
        let loaded =
            interchange::load(&fixture.model_json(), &fixture.weights(), &device()).unwrap();
        let get = |k: &str| fixture.get(k);
        let targets = fixture.targets.clone();
        let (shape, x) = get("input");
        let run = |method: Method| -> Vec<f32> {
            let e = Explainer::new()
                .method(method)
                .target(Target::PerSample(targets.clone()));
            if shape.len() == 2 {
                values(
                    e.explain(
                        &loaded.model,
                        Tensor::<2>::from_data(
                            TensorData::new(x.clone(), [shape[0], shape[1]]),
                            &device(),
                        ),
                    )
                    .unwrap()
                    .relevance,
                )
            } else {
                let s = [shape[0], shape[1], shape[2], shape[3]];
                values(
                    e.explain(
                        &loaded.model,
                        Tensor::<4>::from_data(TensorData::new(x.clone(), s), &device()),
                    )
                    .unwrap()
                    .relevance,
                )
            }
        };
        let gradient = run(Method::Gradient);
        let err = relative_error(&gradient, &get("method.gradient").1);
        assert!(err < 1e-5, "{model_name} gradient: {err:.2e}");
        let ig = run(Method::IntegratedGradients {
            steps: 20,
            baseline: Baseline::Zero,
            base: Base::Gradient,
        });
        let err = relative_error(&ig, &get("method.integrated-gradients").1);
        assert!(err < 1e-5, "{model_name} integrated gradients: {err:.2e}");
        // Zennit reports the occluded score; lrp-grad the drop from the clean score. Windows
        // tile the input without overlap, so drop = f_t(x) − occluded score.
        let occlusion = run(Method::Occlusion {
            window,
            stride: window,
            fill: 0.0,
        });
        let (_, zennit_score) = get("method.occlusion-score");
        let (_, output) = get("method.occlusion-output"); // float64 clean scores
        let classes = output.len() / shape[0];
        let per = x.len() / shape[0];
        let expected: Vec<f32> = zennit_score
            .iter()
            .enumerate()
            .map(|(i, s)| output[(i / per) * classes + targets[i / per]] - s)
            .collect();
        // A drop is the difference of two float32 forward passes, so its round-off is relative
        // to the score, not to the (smaller) drop: 1e-4 of the largest drop here.
        let err = relative_error(&occlusion, &expected);
        assert!(err < 1e-4, "{model_name} occlusion: {err:.2e}");
        println!(
            "{model_name}: gradient and integrated gradients within 1e-5 of Zennit, occlusion {err:.1e}"
        );
    }
}
