//! The model is a Burn module: Burn's layers go in as they are, it trains with Burn's optimizers,
//! saves with Burn's recorders, loads from the interchange format; the canonizer keeps outputs;
//! explanations never change the model.

mod common;

use burn::module::{Module, RunningState};
use burn::nn::conv::Conv2dConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{
    BatchNormConfig, DropoutConfig, Gelu, LeakyReluConfig, LinearConfig, PaddingConfig2d, Relu,
    Sigmoid, Tanh,
};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::{assert_close, device, random_vec, rng, tensor, values};
use lrp_grad::{Explainer, FeatureShape, Flatten, Sequential, explain, interchange};

/// A small CNN with batch norm after a conv and after a linear layer, running statistics set.
fn cnn_with_batch_norm(device: &Device) -> Sequential {
    let mut bn2d = BatchNormConfig::new(4).init(device);
    let mut bn1d = BatchNormConfig::new(6).init(device);
    let mut r = rng(5);
    let mut stats = |bn: &mut burn::nn::BatchNorm, n: usize| {
        bn.running_mean = RunningState::new(Tensor::from_data(
            TensorData::new(random_vec(&mut r, n, -0.5, 0.5), [n]),
            device,
        ));
        bn.running_var = RunningState::new(Tensor::from_data(
            TensorData::new(random_vec(&mut r, n, 0.5, 2.0), [n]),
            device,
        ));
        bn.gamma = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(random_vec(&mut r, n, 0.5, 1.5), [n]),
            device,
        ));
        bn.beta = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(random_vec(&mut r, n, -0.5, 0.5), [n]),
            device,
        ));
    };
    stats(&mut bn2d, 4);
    stats(&mut bn1d, 6);
    Sequential::new()
        .push(
            Conv2dConfig::new([1, 4], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        )
        .push(bn2d)
        .push(Relu::new())
        .push(MaxPool2dConfig::new([2, 2]).init())
        .push(Flatten)
        .push(LinearConfig::new(4 * 4 * 4, 6).init(device))
        .push(bn1d)
        .push(LeakyReluConfig::new().init())
        .push(DropoutConfig::new(0.3).init())
        .push(LinearConfig::new(6, 3).init(device))
}

#[test]
fn canonizing_merges_batch_norm_and_keeps_the_outputs() {
    let model = cnn_with_batch_norm(&device()).valid();
    let x = tensor(random_vec(&mut rng(1), 2 * 64, -1.0, 1.0), [2, 1, 8, 8]);
    let canonical = model.canonize().unwrap();
    assert!(canonical.layers.iter().all(|l| l.kind() != "batch_norm"));
    assert_eq!(canonical.len(), model.len(), "indices stay the same");
    assert_close(
        &values(canonical.forward(x.clone())),
        &values(model.forward(x)),
        1e-6,
    );
}

#[test]
fn explaining_leaves_a_training_model_unchanged() {
    let device = device().autodiff();
    let model = cnn_with_batch_norm(&device);
    let x = tensor(random_vec(&mut rng(2), 2 * 64, -1.0, 1.0), [2, 1, 8, 8]);
    let before = values(model.valid().forward(x.clone()));
    let explanation = explain(&model, x.clone().autodiff()).unwrap();
    assert_eq!(explanation.relevance.dims(), [2, 1, 8, 8]);
    // The explanation used inference behaviour: its output is the validation output.
    assert_close(&values(explanation.output), &before, 1e-6);
    assert_eq!(
        values(model.valid().forward(x)),
        before,
        "running statistics must not move"
    );
}

#[test]
fn the_model_trains_with_burn_optimizers_and_round_trips_through_burn_records() {
    let device = device().autodiff();
    let smooth_mlp = || {
        Sequential::new()
            .push(LinearConfig::new(4, 16).init(&device))
            .push(Tanh::new())
            .push(LinearConfig::new(16, 8).init(&device))
            .push(Gelu::new())
            .push(LinearConfig::new(8, 8).init(&device))
            .push(Sigmoid::new())
            .push(LinearConfig::new(8, 2).init(&device))
    };
    let mut model = smooth_mlp();
    // Two separable classes: the sign of the first feature.
    let mut r = rng(3);
    let xs = random_vec(&mut r, 32 * 4, -1.0, 1.0);
    let labels: Vec<i64> = (0..32).map(|i| (xs[i * 4] > 0.0) as i64).collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs, [32, 4]), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [32]), &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..60 {
        let loss = loss_fn.forward(model.forward(x.clone()), y.clone());
        losses.push(values(loss.clone())[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.02, model, grads);
    }
    assert!(
        losses[59] < 0.5 * losses[0],
        "loss {} -> {}",
        losses[0],
        losses[59]
    );

    let dir = std::env::temp_dir().join(format!("lrp-grad-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("model");
    model.clone().valid().save_file(&file).unwrap();
    let loaded = smooth_mlp().load_file(&file);
    let probe = tensor(random_vec(&mut r, 3 * 4, -1.0, 1.0), [3, 4]);
    assert_close(
        &values(loaded.valid().forward(probe.clone())),
        &values(model.valid().forward(probe)),
        1e-6,
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_model_saved_in_the_interchange_format_loads_back_with_the_same_relevance() {
    let model = cnn_with_batch_norm(&device()).valid();
    let dir = std::env::temp_dir().join(format!("lrp-grad-interchange-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, weights) = (dir.join("model.json"), dir.join("weights.safetensors"));
    let shape = FeatureShape::image(1, 8, 8);
    interchange::save(&model, shape, &json, &weights).unwrap();
    let loaded = interchange::load(&json, &weights, &device()).unwrap();
    assert_eq!(loaded.input_shape, shape);
    let x = tensor(random_vec(&mut rng(4), 3 * 64, -1.0, 1.0), [3, 1, 8, 8]);
    let original = Explainer::new().explain(&model, x.clone()).unwrap();
    let reloaded = Explainer::new().explain(&loaded.model, x).unwrap();
    assert_close(&values(reloaded.output), &values(original.output), 1e-6);
    assert_close(
        &values(reloaded.relevance),
        &values(original.relevance),
        1e-6,
    );
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated in favour of flex; it is still a supported backend
fn the_ndarray_backend_gives_the_same_relevance_as_flex() {
    use burn::backend::NdArrayDevice;
    let flex = device();
    let ndarray = Device::from(NdArrayDevice::default());
    let model = cnn_with_batch_norm(&flex).valid();
    let x = tensor(random_vec(&mut rng(6), 2 * 64, -1.0, 1.0), [2, 1, 8, 8]);
    let on_flex = explain(&model, x.clone()).unwrap();
    let on_ndarray = explain(&model.clone().to_device(&ndarray), x.to_device(&ndarray)).unwrap();
    assert_close(
        &values(on_ndarray.relevance),
        &values(on_flex.relevance),
        1e-5,
    );
}
