//! Criterion benchmarks: forward, input gradient and LRP (ε, epsilon-plus-flat,
//! epsilon-gamma-box; one pass and layer-wise) on the fixed benchmark models: mnist-cnn (b64),
//! vgg-small (b16), ResNet-18 (b8, 3×64×64 and 3×224×224); forward, gradient, AttnLRP and
//! CP-LRP on the MNIST ViT (b64).
//!
//! `cargo bench --bench lrp` (add `-- mnist-cnn` to run one model).

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use lrp_grad::{Composite, Explainer, Graph, Method, Rule, Strategy};
use lrp_grad_suite::zoo;

fn sum(t: Tensor<4>) -> f32 {
    // Reading one number back makes sure the work has finished, on every backend.
    t.sum().into_scalar::<f32>()
}

fn bench_model(c: &mut Criterion, name: &str, model: Graph, dims: [usize; 4]) {
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
    let composites = [
        (
            "lrp-epsilon",
            Composite::uniform(Rule::Epsilon { epsilon: 1e-6 }),
        ),
        ("lrp-epsilon-plus-flat", Composite::epsilon_plus_flat()),
        (
            "lrp-epsilon-gamma-box",
            Composite::epsilon_gamma_box(0.0, 1.0).unwrap(),
        ),
    ];
    bench_composites(&mut group, &model, &x, composites);
    group.finish();
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

/// Forward, gradient and AttnLRP / CP-LRP (one pass and layer-wise) on a transformer.
fn bench_transformer(c: &mut Criterion, name: &str, model: Graph, dims: [usize; 4]) {
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
    let composites = [
        ("attn-lrp", Composite::attn_lrp()),
        ("cp-lrp", Composite::cp_lrp()),
    ];
    bench_composites(&mut group, &model, &x, composites);
    group.finish();
}

fn benchmarks(c: &mut Criterion) {
    let device = Device::default();
    device.seed(1);
    let chain = |model: &lrp_grad::Sequential| Graph::from_sequential(model);
    bench_model(
        c,
        "mnist-cnn",
        chain(&zoo::mnist_cnn(&device)),
        [64, 1, 28, 28],
    );
    bench_model(
        c,
        "vgg-small",
        chain(&zoo::vgg_small(&device)),
        [16, 3, 64, 64],
    );
    bench_model(c, "resnet18-64", zoo::resnet18(10, &device), [8, 3, 64, 64]);
    bench_transformer(c, "mnist-vit", zoo::mnist_vit(&device), [64, 1, 28, 28]);
    bench_model(
        c,
        "resnet18-224",
        zoo::resnet18(1000, &device),
        [8, 3, 224, 224],
    );
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
