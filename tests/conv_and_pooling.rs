//! Convolutions (stride, padding, dilation, groups, several channels) and pooling against an
//! explicit loop implementation, for every rule.

mod common;

use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use common::reference::{self, Matrix};
use common::{ConvGeometry, assert_close, conv, random_vec, relative_error, rng, tensor, values};
use lrp_grad::{Composite, Explainer, Flatten, LayerType, Rule, Sequential, Target};

/// Explains a one-layer model (plus a flatten, so the output is one score per unit) with a
/// custom output relevance and returns the input relevance.
fn explain_single(
    model: Sequential,
    rule: Rule,
    x: &[f32],
    shape: [usize; 4],
    r_out: &[f32],
    outputs: usize,
) -> Vec<f32> {
    let explanation = Explainer::new()
        .composite(Composite::new().with_index(0, rule))
        .target(Target::Relevance(tensor(
            r_out.to_vec(),
            [shape[0], outputs],
        )))
        .explain(&model.push(Flatten), tensor(x.to_vec(), shape))
        .unwrap();
    values(explanation.relevance)
}

fn check_against_reference(
    rule: &Rule,
    m: &Matrix,
    actual: &[f32],
    x: &[f32],
    r_out: &[f32],
    batch: usize,
) {
    let (n_in, n_out) = (x.len() / batch, r_out.len() / batch);
    for n in 0..batch {
        let xs: Vec<f64> = x[n * n_in..(n + 1) * n_in]
            .iter()
            .map(|v| *v as f64)
            .collect();
        let rs: Vec<f64> = r_out[n * n_out..(n + 1) * n_out]
            .iter()
            .map(|v| *v as f64)
            .collect();
        let expected: Vec<f32> = reference::lrp(rule, m, &xs, &rs)
            .iter()
            .map(|v| *v as f32)
            .collect();
        let err = relative_error(&actual[n * n_in..(n + 1) * n_in], &expected);
        assert!(err < 1e-5, "{rule:?}, sample {n}: relative error {err:.2e}");
    }
}

#[test]
fn conv_with_stride_padding_dilation_and_groups_equals_explicit_loops_for_every_rule() {
    let geometries = [
        ConvGeometry {
            in_channels: 3,
            out_channels: 4,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            groups: 1,
        },
        ConvGeometry {
            in_channels: 2,
            out_channels: 3,
            kernel: [3, 2],
            stride: [2, 1],
            padding: [2, 1],
            dilation: [2, 1],
            groups: 1,
        },
        ConvGeometry {
            in_channels: 4,
            out_channels: 6,
            kernel: [2, 3],
            stride: [1, 2],
            padding: [0, 1],
            dilation: [1, 2],
            groups: 2,
        },
    ];
    let mut rng = rng(3);
    let (batch, h, w) = (2, 7, 6);
    for g in geometries {
        let weight = random_vec(
            &mut rng,
            g.out_channels * g.in_channels / g.groups * g.kernel[0] * g.kernel[1],
            -1.0,
            1.0,
        );
        let bias = random_vec(&mut rng, g.out_channels, -0.3, 0.3);
        let x = random_vec(&mut rng, batch * g.in_channels * h * w, -1.0, 1.0);
        let (m, [o, ho, wo]) = Matrix::conv(g, &weight, Some(&bias), [g.in_channels, h, w]);
        // R_out = z·u (u ∈ [0, 1)): relevance proportional to the activation, as LRP produces
        // it; a random R over a near-zero z would only measure f32 round-off in R/z.
        let u = random_vec(&mut rng, batch * o * ho * wo, 0.0, 1.0);
        let n_in = g.in_channels * h * w;
        let r_out: Vec<f32> = (0..batch)
            .flat_map(|n| {
                m.forward(
                    &x[n * n_in..(n + 1) * n_in]
                        .iter()
                        .map(|v| *v as f64)
                        .collect::<Vec<_>>(),
                )
            })
            .zip(&u)
            .map(|(z, u)| (z * *u as f64) as f32)
            .collect();
        for rule in reference::all_rules() {
            let model = Sequential::new().push(conv(g, &weight, Some(&bias)));
            let actual = explain_single(
                model,
                rule.clone(),
                &x,
                [batch, g.in_channels, h, w],
                &r_out,
                o * ho * wo,
            );
            check_against_reference(&rule, &m, &actual, &x, &r_out, batch);
        }
    }
}

#[test]
fn z_box_takes_per_value_bounds() {
    let g = ConvGeometry {
        in_channels: 2,
        out_channels: 3,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let mut rng = rng(5);
    let (h, w) = (4, 5);
    let weight = random_vec(&mut rng, 3 * 2 * 9, -1.0, 1.0);
    let x = random_vec(&mut rng, 2 * h * w, -1.0, 1.0);
    let low = random_vec(&mut rng, 2 * h * w, -2.0, -1.0);
    let high = random_vec(&mut rng, 2 * h * w, 1.0, 2.0);
    let (m, [o, ho, wo]) = Matrix::conv(g, &weight, None, [2, h, w]);
    let r_out = random_vec(&mut rng, o * ho * wo, 0.0, 1.0);
    let data = |v: &Vec<f32>| burn::tensor::TensorData::new(v.clone(), [2, h, w]);
    let rule = Rule::z_box(data(&low), data(&high)).unwrap();
    let actual = explain_single(
        Sequential::new().push(conv(g, &weight, None)),
        rule.clone(),
        &x,
        [1, 2, h, w],
        &r_out,
        o * ho * wo,
    );
    check_against_reference(&rule, &m, &actual, &x, &r_out, 1);
}

#[test]
fn z_box_takes_bounds_per_sample_and_shared_bounds_broadcast() {
    let g = ConvGeometry {
        in_channels: 2,
        out_channels: 3,
        kernel: [3, 2],
        stride: [2, 1],
        padding: [1, 0],
        dilation: [1, 1],
        groups: 1,
    };
    let mut rng = rng(6);
    let (batch, h, w) = (3, 5, 4);
    let n_in = 2 * h * w;
    let weight = random_vec(&mut rng, 3 * 2 * 6, -1.0, 1.0);
    let bias = random_vec(&mut rng, 3, -0.3, 0.3);
    let x = random_vec(&mut rng, batch * n_in, -1.0, 1.0);
    let (m, [o, ho, wo]) = Matrix::conv(g, &weight, Some(&bias), [2, h, w]);
    let r_out = random_vec(&mut rng, batch * o * ho * wo, 0.0, 1.0);
    let model = || Sequential::new().push(conv(g, &weight, Some(&bias)));
    let data = |v: &[f32], shape: Vec<usize>| burn::tensor::TensorData::new(v.to_vec(), shape);

    // One bound per sample, `[N, C, H, W]`: each sample is explained with its own bounds.
    let low = random_vec(&mut rng, batch * n_in, -2.0, -1.0);
    let high = random_vec(&mut rng, batch * n_in, 1.0, 2.0);
    let shape = vec![batch, 2, h, w];
    let rule = Rule::z_box(data(&low, shape.clone()), data(&high, shape)).unwrap();
    let actual = explain_single(model(), rule, &x, [batch, 2, h, w], &r_out, o * ho * wo);
    for n in 0..batch {
        let sample = |v: &[f32]| data(&v[n * n_in..(n + 1) * n_in], vec![2, h, w]);
        let rule = Rule::z_box(sample(&low), sample(&high)).unwrap();
        let (at, rt) = (n * n_in, n * o * ho * wo);
        check_against_reference(
            &rule,
            &m,
            &actual[at..at + n_in],
            &x[at..at + n_in],
            &r_out[rt..rt + o * ho * wo],
            1,
        );
    }

    // Per-channel bounds `[C, 1, 1]`, shared by every sample, equal the same bounds spelt out.
    let (low, high) = ([-1.5f32, -0.5], [0.5f32, 2.0]);
    let rule = Rule::z_box(data(&low, vec![2, 1, 1]), data(&high, vec![2, 1, 1])).unwrap();
    let actual = explain_single(model(), rule, &x, [batch, 2, h, w], &r_out, o * ho * wo);
    let spelt = |v: [f32; 2]| {
        let full: Vec<f32> = v.iter().flat_map(|b| vec![*b; h * w]).collect();
        data(&full, vec![2, h, w])
    };
    let rule = Rule::z_box(spelt(low), spelt(high)).unwrap();
    check_against_reference(&rule, &m, &actual, &x, &r_out, batch);
}

#[test]
fn average_pooling_gets_the_norm_rule() {
    let mut rng = rng(9);
    let (c, h, w) = (2, 6, 6);
    let x = random_vec(&mut rng, c * h * w, 0.0, 1.0);
    let pool = AvgPool2dConfig::new([3, 2]).with_strides([2, 2]).init();
    let (m, [_, ho, wo]) = Matrix::avg_pool([c, h, w], [3, 2], [2, 2]);
    let r_out = random_vec(&mut rng, c * ho * wo, 0.0, 1.0);
    let explanation = Explainer::new()
        .composite(Composite::new()) // the base map gives average pooling `norm`
        .target(Target::Relevance(tensor(r_out.clone(), [1, c * ho * wo])))
        .explain(
            &Sequential::new().push(pool).push(Flatten),
            tensor(x.clone(), [1, c, h, w]),
        )
        .unwrap();
    check_against_reference(
        &Rule::Norm,
        &m,
        &values(explanation.relevance),
        &x,
        &r_out,
        1,
    );
}

#[test]
fn max_pooling_sends_relevance_to_the_winner_and_on_ties_to_the_first() {
    // One 2x2 window per quadrant; the top-right window has a tie (two 5s).
    #[rustfmt::skip]
    let x = vec![
        1.0, 2.0,   5.0, 5.0,
        3.0, 0.5,   1.0, 0.0,

        0.0, -1.0,  2.0, 9.0,
        -2.0, -0.5, 8.0, 1.0,
    ];
    let r_out = vec![10.0f32, 20.0, 30.0, 40.0];
    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let explanation = Explainer::new()
        .composite(Composite::new())
        .target(Target::Relevance(tensor(r_out, [1, 4])))
        .explain(
            &Sequential::new().push(pool).push(Flatten),
            tensor(x, [1, 1, 4, 4]),
        )
        .unwrap();
    #[rustfmt::skip]
    let expected = vec![
        0.0, 0.0,   20.0, 0.0,
        10.0, 0.0,  0.0, 0.0,

        30.0, 0.0,  0.0, 40.0,
        0.0, 0.0,   0.0, 0.0,
    ];
    assert_eq!(values(explanation.relevance), expected);
}

#[test]
fn composites_assign_rules_by_type_first_layer_and_index() {
    use lrp_grad::Propagation;
    let g = ConvGeometry {
        in_channels: 1,
        out_channels: 2,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let w = vec![0.1f32; 18];
    let model = Sequential::new()
        .push(conv(g, &w, None))
        .push(burn::nn::Relu::new())
        .push(conv(
            ConvGeometry {
                in_channels: 2,
                ..g
            },
            &[0.1f32; 36],
            None,
        ))
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(common::linear(&[0.1; 8 * 3], None, 8, 3));
    let plan = Composite::epsilon_gamma_box(-1.0, 1.0)
        .unwrap()
        .plan(&model)
        .unwrap();
    let names: Vec<String> = plan.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        names,
        [
            "z-box",
            "pass",
            "gamma (γ = 0.25)",
            "winner-takes-all",
            "pass",
            "epsilon (ε = 0.000001)"
        ]
    );
    let plan = Composite::epsilon_plus_flat()
        .with_type(LayerType::Dense, Rule::Zero)
        .with_index(2, Rule::WSquare)
        .plan(&model)
        .unwrap();
    assert_eq!(plan[0], Propagation::Rule(Rule::Flat));
    assert_eq!(plan[2], Propagation::Rule(Rule::WSquare));
    assert_eq!(plan[5], Propagation::Rule(Rule::Zero));
    // The same model explained end to end with each built-in composite keeps the input shape.
    for name in lrp_grad::COMPOSITE_NAMES {
        let composite = Composite::named(name, Some((0.0.into(), 1.0.into()))).unwrap();
        let x = tensor(vec![0.5f32; 2 * 16], [2, 1, 4, 4]);
        let explanation = Explainer::new()
            .composite(composite)
            .explain(&model, x)
            .unwrap();
        assert_eq!(explanation.relevance.dims(), [2, 1, 4, 4], "{name}");
        assert_close(
            &explanation
                .relevance_sums()
                .iter()
                .map(|s| s.is_finite() as u8 as f32)
                .collect::<Vec<_>>(),
            &[1.0, 1.0],
            0.0,
        );
    }
}
