//! Criterion benchmarks: forward, input gradient and LRP (ε, epsilon-plus-flat,
//! epsilon-gamma-box; one pass and layer-wise) on the fixed benchmark models: mnist-cnn (b64),
//! vgg-small (b16), ResNet-18 (b8, 3×64×64 and 3×224×224); forward, gradient, AttnLRP and
//! CP-LRP on the MNIST ViT (b64).
//!
//! `cargo bench --bench lrp` (add `-- mnist-cnn` to run one model).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use lrp_grad::{AsGraph, Composite, Explainer, Graph, Method, Rule, Strategy};
use lrp_grad_suite::zoo;

fn sum(t: Tensor<4>) -> f32 {
    // Reading one number back makes sure the work has finished, on every backend.
    t.sum().into_scalar::<f32>()
}

/// Forward, input gradient and each composite (one pass and layer-wise) on `model`.
fn bench_model(
    c: &mut Criterion,
    name: &str,
    model: Graph,
    dims: [usize; 4],
    composites: Vec<(&'static str, Composite)>,
) {
    let device = Device::default();
    device.seed(0);
    let model = model.valid();
    let x: Tensor<4> = Tensor::random(dims, Distribution::Uniform(0.0, 1.0), &device);
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.bench_function("forward", |b| {
        b.iter(|| model.forward(x.clone()).sum().into_scalar::<f32>())
    });
    let gradient = Explainer::new().method(Method::Gradient);
    group.bench_function("gradient", |b| {
        b.iter(|| sum(gradient.explain(&model, x.clone()).unwrap().relevance))
    });
    bench_composites(&mut group, &model, &x, composites);
    group.finish();
}

/// Zennit's composites of the CNN benchmarks.
fn cnn_composites() -> Vec<(&'static str, Composite)> {
    vec![
        (
            "lrp-epsilon",
            Composite::uniform(Rule::Epsilon { epsilon: 1e-6 }),
        ),
        ("lrp-epsilon-plus-flat", Composite::epsilon_plus_flat()),
        (
            "lrp-epsilon-gamma-box",
            Composite::epsilon_gamma_box(0.0, 1.0).unwrap(),
        ),
    ]
}

/// Each composite, one pass and layer-wise.
fn bench_composites(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    model: &Graph,
    x: &Tensor<4>,
    composites: impl IntoIterator<Item = (&'static str, Composite)>,
) {
    for (label, composite) in composites {
        for strategy in [Strategy::Auto, Strategy::LayerWise] {
            let explainer = Explainer::new()
                .composite(composite.clone())
                .strategy(strategy);
            let id = match strategy {
                Strategy::Auto => label.to_string(),
                Strategy::LayerWise => format!("{label}/layer-wise"),
            };
            group.bench_function(id, |b| {
                b.iter(|| sum(explainer.explain(model, x.clone()).unwrap().relevance))
            });
        }
    }
}

fn benchmarks(c: &mut Criterion) {
    let device = Device::default();
    device.seed(1);
    let chain = |model: &lrp_grad::Sequential| Graph::from_sequential(model);
    let cnn = chain(&zoo::mnist_cnn(&device));
    bench_model(c, "mnist-cnn", cnn, [64, 1, 28, 28], cnn_composites());
    let vgg = chain(&zoo::vgg_small(&device));
    bench_model(c, "vgg-small", vgg, [16, 3, 64, 64], cnn_composites());
    let resnet = zoo::resnet18(10, &device);
    bench_model(c, "resnet18-64", resnet, [8, 3, 64, 64], cnn_composites());
    let attention = vec![
        ("attn-lrp", Composite::attn_lrp()),
        ("cp-lrp", Composite::cp_lrp()),
    ];
    bench_model(
        c,
        "mnist-vit",
        zoo::mnist_vit(&device).as_graph().into_owned(),
        [64, 1, 28, 28],
        attention,
    );
    let resnet = zoo::resnet18(1000, &device);
    bench_model(
        c,
        "resnet18-224",
        resnet,
        [8, 3, 224, 224],
        cnn_composites(),
    );
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
