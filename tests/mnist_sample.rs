//! The bundled MNIST sample (`data/mnist-sample/`): the first 500 test digits in the original
//! IDX format and the trained CNN, which the examples fall back to without `MNIST_DIR`.

use burn::tensor::Device;
use lrp_grad::Explainer;
use lrp_grad_suite::mnist;

#[test]
fn the_bundled_cnn_reads_the_bundled_digits() {
    let dir = mnist::sample_dir();
    let test = mnist::load(&dir, "t10k").expect("the sample reads as MNIST's test split");
    assert_eq!(test.len(), 500);
    // The first test labels of MNIST (7, 2, 1, 0, 4, 1, 4, 9, 5, 9).
    assert_eq!(&test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let loaded = lrp_grad::interchange::load(
        &dir.join("cnn.json"),
        &dir.join("cnn.safetensors"),
        &Device::default(),
    )
    .expect("float16 weights load as float32");
    let model = loaded.model;
    let all: Vec<usize> = (0..test.len()).collect();
    let x = lrp_grad_suite::train::images(&test, &all, &Device::default());
    let e = Explainer::new().explain(&model, x).expect("explains");
    let predicted = e.targets.expect("predicted classes");
    let correct = predicted
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    assert!(correct >= 490, "{correct} of 500 right");
}
