//! The `lrp-grad` binary: round trips, Zennit's fixtures through the command line, and every
//! kind of bad input (clear message naming the file and field, non-zero exit, no output file).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use lrp_grad::{Composite, Explainer, FeatureShape, Flatten, Sequential, Target, interchange};
use predicates::prelude::*;
use safetensors::SafeTensors;
use tempfile::TempDir;

#[path = "../../../tests/common/zennit.rs"]
#[allow(dead_code)] // shared with the library tests, which use all of it
mod zennit;
use zennit::ZennitFixture;

fn lrp_grad() -> Command {
    Command::cargo_bin("lrp-grad").unwrap()
}

fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    let shape: Vec<u64> = shape.iter().map(|d| *d as u64).collect();
    let mut bytes = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = file.shape().iter().map(|d| *d as usize).collect();
    (shape, file.into_vec::<f32>().unwrap())
}

fn max_relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected
        .iter()
        .fold(0f64, |m, v| m.max(v.abs() as f64))
        .max(1e-12);
    actual
        .iter()
        .zip(expected)
        .fold(0f64, |m, (a, e)| m.max((*a as f64 - *e as f64).abs()))
        / scale
}

/// A small CNN saved in the interchange format, plus a random input.
struct Fixture {
    dir: TempDir,
    model: Sequential,
    input: Vec<f32>,
}

impl Fixture {
    fn new() -> Self {
        let device = Device::default();
        device.seed(7);
        let model = Sequential::new()
            .push(
                Conv2dConfig::new([1, 4], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(&device),
            )
            .push(Relu::new())
            .push(MaxPool2dConfig::new([2, 2]).init())
            .push(Flatten)
            .push(LinearConfig::new(4 * 4 * 4, 10).init(&device))
            .push(Relu::new())
            .push(LinearConfig::new(10, 3).init(&device));
        let dir = TempDir::new().unwrap();
        let shape = FeatureShape::image(1, 8, 8);
        interchange::save(
            &model,
            shape,
            &dir.path().join("m.json"),
            &dir.path().join("w.safetensors"),
        )
        .unwrap();
        let x: Tensor<4> = Tensor::random([5, 1, 8, 8], Distribution::Uniform(0.0, 1.0), &device);
        let input = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        write_npy(&dir.path().join("x.npy"), &[5, 1, 8, 8], &input);
        Fixture { dir, model, input }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn explain(&self) -> Command {
        self.explain_input(&self.path("x.npy"))
    }

    fn explain_input(&self, input: &Path) -> Command {
        let mut cmd = lrp_grad();
        cmd.arg("explain")
            .arg("--model")
            .arg(self.path("m.json"))
            .arg("--weights")
            .arg(self.path("w.safetensors"))
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(self.path("r.npy"));
        cmd
    }

    fn library(&self, explainer: Explainer) -> Vec<f32> {
        let x = Tensor::<4>::from_data(
            TensorData::new(self.input.clone(), [5, 1, 8, 8]),
            &Device::default(),
        );
        let e = explainer.explain(&self.model, x).unwrap();
        e.relevance
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }
}

#[test]
fn a_model_built_in_rust_and_explained_by_the_cli_gives_the_library_relevance() {
    let f = Fixture::new();
    f.explain()
        .args(["--batch-size", "2", "--heatmap"])
        .arg(f.path("h.png"))
        .assert()
        .success();
    let (shape, relevance) = read_npy(&f.path("r.npy"));
    assert_eq!(shape, [5, 1, 8, 8]);
    assert!(max_relative_error(&relevance, &f.library(Explainer::new())) < 1e-5);
    let png = image::open(f.path("h.png")).unwrap();
    assert_eq!(
        (png.width(), png.height()),
        // 8×8 digits upscaled 14×, each with a 10-pixel caption (prediction and score).
        (2 + 5 * (8 * 14 + 2), 2 + (8 * 14 + 10 + 2))
    );

    f.explain()
        .args([
            "--composite",
            "epsilon-gamma-box",
            "--low",
            "-3",
            "--high",
            "3",
            "--target",
            "1",
            "--output-relevance",
            "one-hot",
        ])
        .assert()
        .success();
    let expected = f.library(
        Explainer::new()
            .composite(Composite::epsilon_gamma_box(-3.0, 3.0).unwrap())
            .target(Target::Class(1))
            .output_relevance(lrp_grad::OutputRelevance::OneHot),
    );
    let err = max_relative_error(&read_npy(&f.path("r.npy")).1, &expected);
    // Same code on both sides; float sums may be split differently across threads, so equal
    // up to round-off, which the stabilized divisions amplify where outputs are near zero (one
    // run in many measured just above 1e-5).
    assert!(err < 1e-4, "epsilon-gamma-box through the CLI: {err:.2e}");
}

#[test]
fn a_single_sample_without_batch_dimension_keeps_its_shape() {
    let f = Fixture::new();
    write_npy(&f.path("one.npy"), &[1, 8, 8], &f.input[..64]);
    f.explain_input(&f.path("one.npy")).assert().success();
    assert_eq!(read_npy(&f.path("r.npy")).0, [1, 8, 8]);
}

/// A sequence model (`input_shape` `[T, D]`, a linear layer on every token): an `.npy` of
/// `[N, T, D]` in, relevance `[N, T, D]` out, as the library gives it.
#[test]
fn a_sequence_model_takes_and_returns_n_t_d() {
    let device = Device::default();
    device.seed(3);
    let (t, d) = (4, 5);
    let model = Sequential::new()
        .push(LinearConfig::new(d, 6).init(&device))
        .push(Relu::new())
        .push(Flatten)
        .push(LinearConfig::new(t * 6, 3).init(&device));
    let dir = TempDir::new().unwrap();
    let (json, weights) = (dir.path().join("m.json"), dir.path().join("w.safetensors"));
    interchange::save(&model, FeatureShape::sequence(t, d), &json, &weights).unwrap();
    let x: Tensor<3> = Tensor::random([2, t, d], Distribution::Uniform(-1.0, 1.0), &device);
    let input = x.clone().into_data().try_to_vec::<f32>().unwrap();
    write_npy(&dir.path().join("x.npy"), &[2, t, d], &input);
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(&json)
        .arg("--weights")
        .arg(&weights)
        .arg("--input")
        .arg(dir.path().join("x.npy"))
        .arg("--output")
        .arg(dir.path().join("r.npy"))
        .args(["--rule", "epsilon"])
        .assert()
        .success();
    let (shape, relevance) = read_npy(&dir.path().join("r.npy"));
    assert_eq!(shape, [2, t, d]);
    let expected = Explainer::new()
        .rule(lrp_grad::Rule::Epsilon { epsilon: 1e-6 })
        .explain(&model, x)
        .unwrap()
        .relevance
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(max_relative_error(&relevance, &expected) < 1e-5);
}

/// The command line's rule or composite options for a Zennit fixture case.
fn case_args(case: &serde_json::Value) -> Vec<String> {
    match (case["rule"].as_str(), case["composite"].as_str()) {
        (Some(rule), _) => {
            let p = |k: &str| case[k].as_f64().unwrap().to_string();
            let spec = match rule {
                "epsilon" => format!("epsilon:{}", p("epsilon")),
                "gamma" => format!("gamma:{}", p("gamma")),
                "alpha-beta" => format!("alpha-beta:{},{}", p("alpha"), p("beta")),
                "z-box" => format!("z-box:{},{}", p("low"), p("high")),
                other => other.to_string(),
            };
            vec!["--rule".into(), spec]
        }
        (None, Some(composite)) => {
            let mut a = vec!["--composite".into(), composite.to_string()];
            if let Some(low) = case.get("low") {
                a.extend([
                    "--low".into(),
                    low.to_string(),
                    "--high".into(),
                    case["high"].to_string(),
                ]);
            }
            a
        }
        _ => panic!("a case has a rule or a composite: {case}"),
    }
}

/// `explain` on a fixture's JSON model and `x.npy` in `tmp`, for `class`: the relevance.
fn explain_json_model(folder: &Path, tmp: &Path, args: &[String], class: usize) -> Vec<f32> {
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(folder.join("model.json"))
        .arg("--weights")
        .arg(folder.join("weights.safetensors"))
        .arg("--input")
        .arg(tmp.join("x.npy"))
        .arg("--output")
        .arg(tmp.join("r.npy"))
        .args(args)
        .args(["--target", &class.to_string()])
        .assert()
        .success();
    read_npy(&tmp.join("r.npy")).1
}

/// Every rule and composite of the Zennit fixtures, through the binary.
#[test]
fn zennit_fixtures_through_the_command_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = TempDir::new().unwrap();
    let mut worst = 0f64;
    let mut runs = 0;
    for model in ["mlp", "cnn"] {
        let fixture = ZennitFixture::open(&root, model);
        let folder = fixture.folder.clone();
        let get = |k: &str| fixture.get(k);
        let (shape, input) = get("input");
        let per = input.len() / shape[0];
        let targets = fixture.targets.clone();
        for (key, case) in fixture.cases() {
            if case.get("low").is_some_and(|l| l.is_string()) {
                continue; // tensor bounds: library only (the CLI takes scalar --low/--high)
            }
            let mut args = case_args(case);
            args.extend([
                "--output-relevance".into(),
                case["output_relevance"].as_str().unwrap().into(),
            ]);
            let (_, expected) = get(&format!("relevance.{key}"));
            // One run per target class over the samples with that target.
            let mut classes = targets.clone();
            classes.sort();
            classes.dedup();
            for class in classes {
                let samples: Vec<usize> = (0..targets.len())
                    .filter(|s| targets[*s] == class)
                    .collect();
                let pick = |t: &[f32]| -> Vec<f32> {
                    (samples.iter())
                        .flat_map(|s| t[s * per..(s + 1) * per].to_vec())
                        .collect()
                };
                let mut sub_shape = shape.clone();
                sub_shape[0] = samples.len();
                write_npy(&tmp.path().join("x.npy"), &sub_shape, &pick(&input));
                let r = explain_json_model(&folder, tmp.path(), &args, class);
                let err = max_relative_error(&r, &pick(&expected));
                assert!(err < 1e-5, "{model}/{key} class {class}: {err:.2e}");
                worst = worst.max(err);
                runs += 1;
            }
        }
    }
    println!("{runs} CLI runs, worst relative error {worst:.2e}");
}

/// Runs the command, expects failure with every `parts` in stderr and no output file.
#[track_caller]
fn fails(f: &Fixture, cmd: &mut Command, parts: &[&str]) {
    let out = cmd.assert().failure();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    for part in parts {
        assert!(stderr.contains(part), "stderr `{stderr}` lacks `{part}`");
    }
    assert!(!f.path("r.npy").exists(), "an output file was left behind");
    assert!(!f.path("h.png").exists(), "a heatmap was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn with_model_json(f: &Fixture, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = f.path("m.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(path, json.to_string()).unwrap();
}

fn with_weights(
    f: &Fixture,
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)>),
) {
    let path = f.path("w.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let mut entries: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec(), v.dtype()))
        .collect();
    edit(&mut entries);
    let views: Vec<_> = entries
        .iter()
        .map(|(k, s, d, t)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*t, s.clone(), d).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn malformed_json_names_the_file_and_position() {
    let f = Fixture::new();
    std::fs::write(
        f.path("m.json"),
        "{\"input_shape\": [1, 8, 8], \"layers\": [",
    )
    .unwrap();
    fails(&f, &mut f.explain(), &["m.json", "EOF"]);
}

#[test]
fn unknown_kind_names_the_layer() {
    let f = Fixture::new();
    with_model_json(&f, |j| j["layers"][1]["kind"] = "swish".into());
    fails(
        &f,
        &mut f.explain(),
        &["m.json", "layers[1]", "unknown variant `swish`"],
    );
}

#[test]
fn missing_field_names_the_layer() {
    let f = Fixture::new();
    with_model_json(&f, |j| {
        j["layers"][4]
            .as_object_mut()
            .unwrap()
            .remove("out_features");
    });
    fails(
        &f,
        &mut f.explain(),
        &["m.json", "layers[4]", "missing field `out_features`"],
    );
}

#[test]
fn inconsistent_in_features_names_the_layer_and_shapes() {
    let f = Fixture::new();
    with_model_json(&f, |j| j["layers"][4]["in_features"] = 60.into());
    with_weights(&f, |w| {
        // Keep the weights consistent with the (wrong) description: the shape error must come
        // from the layer chain, not from the weights.
        let e = w.iter_mut().find(|e| e.0 == "4.weight").unwrap();
        e.1 = vec![10, 60];
        e.2.truncate(10 * 60 * 4);
    });
    fails(
        &f,
        &mut f.explain(),
        &["m.json", "layers[4]", "[N, 60]", "[64]"],
    );
}

#[test]
fn missing_extra_misshapen_and_mistyped_tensors() {
    let f = Fixture::new();
    with_weights(&f, |w| w.retain(|e| e.0 != "0.bias"));
    fails(
        &f,
        &mut f.explain(),
        &["w.safetensors", "`0.bias` is missing"],
    );

    let f = Fixture::new();
    with_weights(&f, |w| {
        w.push((
            "9.weight".into(),
            vec![1],
            vec![0; 4],
            safetensors::Dtype::F32,
        ))
    });
    fails(
        &f,
        &mut f.explain(),
        &["w.safetensors", "`9.weight` is not used"],
    );

    let f = Fixture::new();
    with_weights(&f, |w| {
        let e = w.iter_mut().find(|e| e.0 == "6.bias").unwrap();
        e.1 = vec![2];
        e.2.truncate(8);
    });
    fails(
        &f,
        &mut f.explain(),
        &["w.safetensors", "`6.bias` has shape [2]; expected [3]"],
    );

    let f = Fixture::new();
    with_weights(&f, |w| {
        let e = w.iter_mut().find(|e| e.0 == "6.bias").unwrap();
        e.3 = safetensors::Dtype::I32;
    });
    fails(
        &f,
        &mut f.explain(),
        &[
            "w.safetensors",
            "`6.bias` has dtype I32; expected a float type",
        ],
    );

    let f = Fixture::new();
    std::fs::write(f.path("w.safetensors"), b"not safetensors").unwrap();
    fails(
        &f,
        &mut f.explain(),
        &["w.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn bad_npy_inputs() {
    let f = Fixture::new();
    write_npy(&f.path("x.npy"), &[5, 1, 7, 8], &vec![0.0; 5 * 56]);
    fails(
        &f,
        &mut f.explain(),
        &["x.npy", "shape [5, 1, 7, 8]", "[N, 1, 8, 8]"],
    );

    let f = Fixture::new();
    let mut bytes = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<i32>::new()
            .default_dtype()
            .shape(&[1, 8, 8])
            .writer(&mut bytes)
            .begin_nd()
            .unwrap();
        w.extend(0..64).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(f.path("x.npy"), bytes).unwrap();
    fails(
        &f,
        &mut f.explain(),
        &["x.npy", "holds integers", "float32"],
    );

    let f = Fixture::new();
    let bytes = std::fs::read(f.path("x.npy")).unwrap();
    std::fs::write(f.path("x.npy"), &bytes[..bytes.len() - 100]).unwrap();
    fails(&f, &mut f.explain(), &["x.npy", "corrupt"]);

    let f = Fixture::new();
    std::fs::write(f.path("x.npy"), b"garbage").unwrap();
    fails(&f, &mut f.explain(), &["x.npy", "not a valid .npy file"]);

    let f = Fixture::new();
    let mut x = f.input.clone();
    x[70] = f32::NAN;
    write_npy(&f.path("x.npy"), &[5, 1, 8, 8], &x);
    fails(
        &f,
        &mut f.explain(),
        &["x.npy", "non-finite input", "flat index 70"],
    );
}

#[test]
fn bad_targets_rules_composites_and_bounds() {
    let f = Fixture::new();
    fails(
        &f,
        f.explain().args(["--target", "3"]),
        &["x.npy", "m.json", "target class 3", "3 outputs"],
    );
    fails(
        &f,
        f.explain().args(["--rule", "epsilonn"]),
        &["unknown rule `epsilonn`", "z-plus"],
    );
    fails(
        &f,
        f.explain().args(["--rule", "alpha-beta:3,1"]),
        &["alpha - beta must equal 1"],
    );
    fails(
        &f,
        f.explain().args(["--rule", "epsilon:abc"]),
        &["`abc` is not a number"],
    );
    fails(
        &f,
        f.explain().args(["--composite", "epsilon-max"]),
        &["unknown composite `epsilon-max`"],
    );
    fails(
        &f,
        f.explain().args(["--composite", "epsilon-gamma-box"]),
        &["needs the input bounds", "--low"],
    );
    fails(
        &f,
        f.explain().args(["--rule", "z-box"]),
        &["z-box needs the input bounds"],
    );
    fails(
        &f,
        f.explain()
            .args(["--cmap", "rainbow", "--heatmap"])
            .arg(f.path("h.png")),
        &["--cmap", "unknown colour map"],
    );
    fails(
        &f,
        f.explain().args(["--method", "magic"]),
        &["unknown method `magic`"],
    );
}

#[test]
fn info_shows_layers_shapes_parameters_and_rules() {
    let f = Fixture::new();
    lrp_grad()
        .arg("info")
        .arg("--model")
        .arg(f.path("m.json"))
        .args([
            "--composite",
            "epsilon-gamma-box",
            "--low",
            "0",
            "--high",
            "1",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 classes, 723 parameters"))
        .stdout(predicate::str::contains("conv2d 1→4 k3x3 s1 p1"))
        .stdout(predicate::str::contains("[4, 8, 8]"))
        .stdout(predicate::str::contains("z-box"))
        .stdout(predicate::str::contains("winner-takes-all"))
        .stdout(predicate::str::contains("epsilon (ε = 0.000001)"));
}

#[test]
fn bench_prints_one_json_object() {
    let f = Fixture::new();
    let out = lrp_grad()
        .arg("bench")
        .arg("--model")
        .arg(f.path("m.json"))
        .arg("--weights")
        .arg(f.path("w.safetensors"))
        .args(["--batch", "4", "--runs", "2", "--json"])
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let modes: Vec<&str> = json["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mode"].as_str().unwrap())
        .collect();
    assert_eq!(
        modes,
        ["forward", "gradient", "lrp (composite epsilon-plus-flat)"]
    );
    assert!(json["modes"][2]["median_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_attribution_method_through_the_command_line_equals_the_library() {
    use lrp_grad::{Base, Baseline, Method};
    let f = Fixture::new();
    let cases: Vec<(Vec<&str>, Method)> = vec![
        (vec!["--method", "gradient"], Method::Gradient),
        (
            vec!["--method", "gradient-x-input"],
            Method::GradientTimesInput,
        ),
        (
            vec![
                "--method",
                "smoothgrad",
                "--samples",
                "5",
                "--noise",
                "0.2",
                "--seed",
                "9",
            ],
            Method::SmoothGrad {
                samples: 5,
                noise: 0.2,
                seed: 9,
                base: Base::Gradient,
            },
        ),
        (
            vec!["--method", "smoothgrad", "--over-lrp", "--samples", "3"],
            Method::SmoothGrad {
                samples: 3,
                noise: 0.1,
                seed: 0,
                base: Base::Lrp,
            },
        ),
        (
            vec!["--method", "integrated-gradients", "--steps", "7"],
            Method::IntegratedGradients {
                steps: 7,
                baseline: Baseline::Zero,
                base: Base::Gradient,
            },
        ),
        (
            vec![
                "--method",
                "occlusion",
                "--window",
                "4",
                "--stride",
                "2",
                "--fill",
                "-1",
            ],
            Method::Occlusion {
                window: [4, 4],
                stride: [2, 2],
                fill: -1.0,
            },
        ),
    ];
    for (args, method) in cases {
        f.explain().args(&args).assert().success();
        let expected = f.library(Explainer::new().method(method));
        let err = max_relative_error(&read_npy(&f.path("r.npy")).1, &expected);
        assert!(err < 1e-5, "{args:?}: {err:.2e}");
    }
    // A baseline file for Integrated Gradients.
    write_npy(&f.path("b.npy"), &[1, 8, 8], &[0.25; 64]);
    f.explain()
        .args(["--method", "integrated-gradients", "--baseline"])
        .arg(f.path("b.npy"))
        .assert()
        .success();
    let expected = f.library(Explainer::new().method(Method::IntegratedGradients {
        steps: 20,
        baseline: Baseline::Tensor(TensorData::new(vec![0.25f32; 64], [1, 8, 8])),
        base: Base::Gradient,
    }));
    assert!(max_relative_error(&read_npy(&f.path("r.npy")).1, &expected) < 1e-5);
    std::fs::remove_file(f.path("r.npy")).unwrap();
    fails(
        &f,
        f.explain()
            .args(["--method", "smoothgrad", "--samples", "0"]),
        &["--method smoothgrad", "samples must be at least 1"],
    );
}

#[test]
fn an_unavailable_burn_device_is_an_error_not_a_panic() {
    let f = Fixture::new();
    fails(
        &f,
        f.explain().env("BURN_DEVICE", "no-such-backend"),
        &["BURN_DEVICE=no-such-backend", "no such backend"],
    );
}

/// The ONNX fixtures of `tools/onnx-reference` (`tests/fixtures/onnx/<family>` of the workspace).
fn onnx_fixture(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(family)
}

#[test]
fn an_onnx_model_from_either_exporter_explains_as_zennit_does() {
    let folder = onnx_fixture("efficientnet");
    let fixture = ZennitFixture::open_folder(folder.clone());
    let dir = TempDir::new().unwrap();
    let (shape, input) = fixture.get("input");
    let x = dir.path().join("x.npy");
    write_npy(&x, &shape, &input);
    let expected = fixture.get("relevance.epsilon-gamma-box").1;
    for exporter in ["dynamo.onnx", "script.onnx"] {
        let out = dir.path().join(format!("{exporter}.npy"));
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(folder.join(exporter))
            .arg("--input")
            .arg(&x)
            .arg("--output")
            .arg(&out)
            .args(["--composite", "epsilon-gamma-box", "--low=-3", "--high=3"])
            .args(["--output-relevance", "one-hot"])
            .assert()
            .success();
        let (out_shape, relevance) = read_npy(&out);
        assert_eq!(out_shape, shape);
        let error = max_relative_error(&relevance, &expected);
        assert!(error < 1e-4, "{exporter}: {error:.2e}");
    }
}

/// A transformer encoder exported with `torch.onnx.export`, explained with AttnLRP and CP-LRP
/// through the command line: an `.npy` of embeddings `[N, T, D]` in, relevance `[N, T, D]` out,
/// LXT 2.1's relevance (tools/lxt-reference) to 1e-5 of its largest value.
#[test]
fn a_transformer_from_onnx_explains_as_lxt_does() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lxt/encoder");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let dir = TempDir::new().unwrap();
    let (shape, input) = &reference["input"];
    let x = dir.path().join("x.npy");
    write_npy(&x, shape, input);
    assert_lxt_parity(&folder, &x, shape, |composite| composite.to_string());
}

/// `lrp-grad explain --composite attn-lrp|cp-lrp` on the fixture's `model.onnx` gives LXT's
/// relevance (`reference.safetensors`, under `key(composite)`) to 1e-5 of its largest value.
fn assert_lxt_parity(folder: &Path, input: &Path, shape: &[usize], key: fn(&str) -> String) {
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let dir = TempDir::new().unwrap();
    for composite in ["attn-lrp", "cp-lrp"] {
        let out = dir.path().join(format!("{composite}.npy"));
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(folder.join("model.onnx"))
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(&out)
            .args(["--composite", composite])
            .assert()
            .success();
        let (out_shape, relevance) = read_npy(&out);
        assert_eq!(out_shape, shape);
        let expected = &reference[&key(composite)].1;
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error = relevance
            .iter()
            .zip(expected)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(error < 1e-5, "{composite}: {error:.2e}");
    }
}

/// Token ids as an int64 `.npy` of `shape`.
fn write_ids_npy(path: &Path, shape: &[usize], ids: &[f32]) {
    use npyz::WriterBuilder;
    let mut bytes = Vec::new();
    let dims: Vec<u64> = shape.iter().map(|d| *d as u64).collect();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&dims)
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    writer.extend(ids.iter().map(|&v| v as i64)).unwrap();
    writer.finish().unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `transformers`' BERT classifier from its ONNX export (eager attention) on token ids: the
/// relevance per token equals LXT's for AttnLRP and CP-LRP.
#[test]
fn a_bert_classifier_from_transformers_explains_token_ids_as_lxt() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lxt/bert");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let dir = TempDir::new().unwrap();
    let (shape, ids) = &reference["ids"];
    let ids_path = dir.path().join("ids.npy");
    write_ids_npy(&ids_path, shape, ids);
    assert_lxt_parity(&folder, &ids_path, shape, |composite| {
        format!("{composite}.tokens")
    });
}

/// A text model on token ids: an int64 `.npy` `[N, T]` in, relevance per token `[N, T]` out
/// (LXT's), the tokens coloured by relevance in the terminal (`--vocab`) and as HTML (`--html`);
/// float inputs and text flags on other models are errors.
#[test]
fn a_text_model_takes_token_ids_and_renders_relevance_per_token() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lxt/text");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let dir = TempDir::new().unwrap();
    let (shape, ids) = &reference["ids"];
    let ids_path = dir.path().join("ids.npy");
    write_ids_npy(&ids_path, shape, ids);
    let (out, html) = (dir.path().join("r.npy"), dir.path().join("r.html"));
    let run = lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(folder.join("model.onnx"))
        .arg("--input")
        .arg(&ids_path)
        .arg("--output")
        .arg(&out)
        .args(["--composite", "attn-lrp", "--vocab"])
        .arg(folder.join("vocab.txt"))
        .arg("--html")
        .arg(&html)
        .assert()
        .success();
    let stdout = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    // Sample 0 is "plot but very and but great": each token on a coloured background.
    assert!(
        stdout.contains("\x1b[48;2;") && stdout.contains("plot"),
        "{stdout}"
    );
    let (out_shape, relevance) = read_npy(&out);
    assert_eq!(&out_shape, shape);
    let expected = &reference["attn-lrp.tokens"].1;
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let error = relevance
        .iter()
        .zip(expected)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale;
    assert!(error < 1e-5, "{error:.2e}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.matches("<span").count() == ids.len());
    lrp_grad()
        .args(["info", "--model"])
        .arg(folder.join("model.onnx"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "input token ids [6] (vocabulary 16) embedded to [6, 8]",
        ));

    let floats = dir.path().join("floats.npy");
    write_npy(&floats, shape, ids);
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(folder.join("model.onnx"))
        .arg("--input")
        .arg(&floats)
        .arg("--output")
        .arg(dir.path().join("never.npy"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "give token ids as an integer .npy",
        ));
    assert!(!dir.path().join("never.npy").exists());
    let f = Fixture::new();
    f.explain()
        .arg("--vocab")
        .arg(folder.join("vocab.txt"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("--vocab is for text models"));
}

#[test]
fn info_lists_every_onnx_node_with_its_inputs_and_rule() {
    let model = onnx_fixture("resnet").join("dynamo.onnx");
    lrp_grad()
        .args(["info", "--model"])
        .arg(&model)
        .assert()
        .success()
        .stdout(predicate::str::contains("input [3, 32, 32], 5 classes"))
        .stdout(predicate::str::contains("add ←"))
        .stdout(predicate::str::contains("max_pool2d ← "))
        .stdout(predicate::str::contains("winner-takes-all"))
        .stdout(predicate::str::contains("norm"));
}

/// Runs `explain` on `model` and expects failure with every piece of `message`, and no output.
fn explain_fails(model: &Path, extra: &[&str], message: &[&str]) {
    let dir = TempDir::new().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, &[1, 3, 32, 32], &vec![0.5; 3 * 32 * 32]);
    let out = dir.path().join("r.npy");
    let mut assert = lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(model)
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(&out)
        .args(extra)
        .assert()
        .failure();
    for piece in message {
        assert = assert.stderr(predicate::str::contains(*piece));
    }
    assert!(!out.exists(), "no output file after an error");
}

#[test]
fn bad_onnx_models_are_refused_with_the_file_and_the_reason() {
    let dir = TempDir::new().unwrap();
    // The dynamo exporter's weights live beside the model: copied alone, the model misses them.
    let alone = dir.path().join("dynamo.onnx");
    std::fs::copy(onnx_fixture("resnet").join("dynamo.onnx"), &alone).unwrap();
    explain_fails(&alone, &[], &["dynamo.onnx", "dynamo.onnx.data", "missing"]);
    // A truncated file.
    let bytes = std::fs::read(onnx_fixture("resnet").join("script.onnx")).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    explain_fails(
        &truncated,
        &[],
        &["truncated.onnx", "cannot read the ONNX model"],
    );
    // An operator the loader does not translate: the node, its operator and the list.
    let errors = onnx_fixture("errors");
    explain_fails(
        &errors.join("unsupported.onnx"),
        &[],
        &["unsupported.onnx", "Abs", "supported operators: Conv"],
    );
    // A model on token ids (an embedding lookup, then a dense layer) takes ids [N, 3], not an
    // image.
    explain_fails(
        &errors.join("int_input.onnx"),
        &[],
        &["x.npy", "int_input.onnx", "[3]"],
    );
    // Weights given to a model that holds its own.
    let model = onnx_fixture("resnet").join("script.onnx");
    explain_fails(&model, &["--weights", "w.safetensors"], &["drop --weights"]);
}

#[test]
fn an_input_that_does_not_fit_an_onnx_model_names_both_shapes() {
    let dir = TempDir::new().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, &[1, 3, 16, 16], &vec![0.5; 3 * 16 * 16]);
    let out = dir.path().join("r.npy");
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(onnx_fixture("resnet").join("script.onnx"))
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("[1, 3, 16, 16]"))
        .stderr(predicate::str::contains("[3, 32, 32]"));
    assert!(!out.exists());
}

/// A 32×32 RGB test picture: smooth ramps, so that every channel differs.
fn rgb_picture() -> image::RgbImage {
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8])
    })
}

/// The picture's values as the CLI must see them: channel planes of pixel / 255, normalised.
fn planes(picture: &image::RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    (0..3)
        .flat_map(|c| {
            picture
                .pixels()
                .map(move |p| (p.0[c] as f32 / 255.0 - mean[c]) / std[c])
        })
        .collect()
}

fn explain_cmd(model: &Path, inputs: &[&Path], output: &Path) -> Command {
    let mut cmd = lrp_grad();
    cmd.arg("explain").arg("--model").arg(model).arg("--input");
    for input in inputs {
        cmd.arg(input);
    }
    cmd.arg("--output").arg(output);
    cmd
}

#[test]
fn png_and_jpeg_rgb_and_rgba_images_are_the_arrays_they_hold() {
    let model = onnx_fixture("resnet").join("script.onnx");
    let dir = TempDir::new().unwrap();
    let picture = rgb_picture();
    let png = dir.path().join("ramp.png");
    picture.save(&png).unwrap();
    let rgba = dir.path().join("ramp-rgba.png");
    image::DynamicImage::ImageRgb8(picture.clone())
        .to_rgba8()
        .save(&rgba)
        .unwrap();
    let (mean, std) = ([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]);
    let npy = dir.path().join("ramp.npy");
    write_npy(&npy, &[1, 3, 32, 32], &planes(&picture, mean, std));
    let normalise = ["--mean", "0.5,0.4,0.3", "--std", "0.2,0.25,0.3"];
    let from_array = dir.path().join("r-npy.npy");
    explain_cmd(&model, &[&npy], &from_array).assert().success();
    for image in [&png, &rgba] {
        let out = dir.path().join("r-image.npy");
        explain_cmd(&model, &[image], &out)
            .args(normalise)
            .assert()
            .success();
        let (shape, relevance) = read_npy(&out);
        assert_eq!(shape, [1, 3, 32, 32]);
        assert_eq!(relevance, read_npy(&from_array).1, "{}", image.display());
    }
    // JPEG is lossy: decoded by the `image` crate, it must equal that crate's own decoding.
    let jpeg = dir.path().join("ramp.jpg");
    picture.save(&jpeg).unwrap();
    let decoded = image::open(&jpeg).unwrap().to_rgb8();
    write_npy(&npy, &[1, 3, 32, 32], &planes(&decoded, mean, std));
    explain_cmd(&model, &[&npy], &from_array).assert().success();
    let out = dir.path().join("r-jpeg.npy");
    explain_cmd(&model, &[&jpeg], &out)
        .args(normalise)
        .assert()
        .success();
    assert_eq!(read_npy(&out).1, read_npy(&from_array).1);
}

#[test]
fn grey_8_and_16_bit_images_and_directories_sorted_by_name() {
    let f = Fixture::new(); // a [1, 8, 8] model
    let dir = TempDir::new().unwrap();
    let pictures = dir.path().join("pictures");
    std::fs::create_dir(&pictures).unwrap();
    let grey8 = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 30 + y) as u8]));
    let grey16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(8, 8, |x, y| {
        image::Luma([(x * 7000 + y * 3) as u16])
    });
    grey8.save(pictures.join("b.png")).unwrap();
    grey16.save(pictures.join("a.png")).unwrap();
    let mut values: Vec<f32> = grey16.pixels().map(|p| p.0[0] as f32 / 65535.0).collect();
    values.extend(grey8.pixels().map(|p| p.0[0] as f32 / 255.0));
    let npy = dir.path().join("x.npy");
    write_npy(&npy, &[2, 1, 8, 8], &values);
    let summary = dir.path().join("summary.json");
    f.explain_input(&pictures)
        .arg("--summary")
        .arg(&summary)
        .assert()
        .success();
    let (shape, from_images) = read_npy(&f.path("r.npy"));
    assert_eq!(shape, [2, 1, 8, 8]);
    f.explain_input(&npy).assert().success();
    let from_array = read_npy(&f.path("r.npy")).1;
    assert!(max_relative_error(&from_images, &from_array) < 1e-6);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let names: Vec<&str> = summary["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["input"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.png", "b.png"]);
}

#[test]
fn bounds_of_the_normalisation_are_the_per_channel_bounds_given_by_hand() {
    let model = onnx_fixture("resnet").join("script.onnx");
    let dir = TempDir::new().unwrap();
    let png = dir.path().join("ramp.png");
    rgb_picture().save(&png).unwrap();
    let derived = dir.path().join("derived.npy");
    explain_cmd(&model, &[&png], &derived)
        .args([
            "--preset",
            "none",
            "--mean",
            "0.5,0.4,0.3",
            "--std",
            "0.2,0.25,0.3",
        ])
        .args(["--composite", "epsilon-gamma-box"])
        .assert()
        .success();
    // (0 − m)/s and (1 − m)/s per channel.
    let given = dir.path().join("given.npy");
    explain_cmd(&model, &[&png], &given)
        .args(["--mean", "0.5,0.4,0.3", "--std", "0.2,0.25,0.3"])
        .args(["--composite", "epsilon-gamma-box"])
        .args(["--low=-2.5,-1.6,-1", "--high=2.5,2.4,2.3333333"])
        .assert()
        .success();
    let error = max_relative_error(&read_npy(&derived).1, &read_npy(&given).1);
    assert!(error < 1e-6, "{error:.2e}");
}

#[test]
fn the_answers_table_and_summary_hold_the_library_numbers() {
    let f = Fixture::new();
    let summary = f.path("summary.json");
    let labels = f.path("labels.txt");
    std::fs::write(&labels, "cat\ndog\nbird\n").unwrap();
    let targets = f.path("targets.txt");
    std::fs::write(&targets, "0\n1\n2\n0\n1\n").unwrap();
    let output = f
        .explain()
        .arg("--summary")
        .arg(&summary)
        .arg("--labels")
        .arg(&labels)
        .arg("--targets")
        .arg(&targets)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(output).unwrap();
    assert!(table.contains("x.npy[4]"), "{table}");
    assert!(table.contains("Σ relevance"), "{table}");
    let x = Tensor::<4>::from_data(
        TensorData::new(f.input.clone(), [5, 1, 8, 8]),
        &Device::default(),
    );
    let e = Explainer::new()
        .target(Target::PerSample(vec![0, 1, 2, 0, 1]))
        .explain(&f.model, x)
        .unwrap();
    let sums = e.relevance_sums();
    let logits = e
        .output
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let names = ["cat", "dog", "bird"];
    for (i, sample) in summary["samples"].as_array().unwrap().iter().enumerate() {
        let row = &logits[i * 3..i * 3 + 3];
        let predicted = (0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        assert_eq!(sample["input"], format!("x.npy[{i}]"));
        assert_eq!(sample["target"], [0, 1, 2, 0, 1][i]);
        assert_eq!(sample["predicted"], predicted);
        assert_eq!(sample["label"], names[predicted]);
        assert!((sample["score"].as_f64().unwrap() - row[predicted] as f64).abs() < 1e-5);
        assert!((sample["relevance_sum"].as_f64().unwrap() - sums[i] as f64).abs() < 1e-5);
    }
}

#[test]
fn heatmap_dir_writes_one_png_per_sample_named_after_its_input() {
    let model = onnx_fixture("resnet").join("script.onnx");
    let dir = TempDir::new().unwrap();
    let pictures = dir.path().join("in");
    std::fs::create_dir(&pictures).unwrap();
    for name in ["x.png", "y.png"] {
        rgb_picture().save(pictures.join(name)).unwrap();
    }
    let maps = dir.path().join("maps");
    explain_cmd(&model, &[&pictures], &dir.path().join("r.npy"))
        .arg("--heatmap-dir")
        .arg(&maps)
        .arg("--overlay")
        .arg("--quiet")
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    for name in ["x.png", "y.png"] {
        let map = image::open(maps.join(name)).unwrap().to_rgb8();
        // 32 px scaled by 112 / 32 = 3, and a 10-pixel caption (prediction and score) below.
        assert_eq!((map.width(), map.height()), (96, 106));
        let ink = (0..96)
            .flat_map(|x| (96..106).map(move |y| (x, y)))
            .filter(|&(x, y)| map.get_pixel(x, y).0 == [0, 0, 0])
            .count();
        assert!(ink > 20, "the caption is written");
    }
}

#[test]
fn flags_the_method_or_input_does_not_use_are_errors_and_write_nothing() {
    let f = Fixture::new();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--method", "gradient", "--composite", "epsilon-gamma-box"],
            "--composite applies to LRP",
        ),
        (
            &["--rule", "epsilon", "--low", "0", "--high", "1"],
            "which rule epsilon does not use",
        ),
        (
            &["--method", "gradient", "--samples", "5"],
            "--samples does not apply to --method gradient",
        ),
        (
            &["--method", "lrp", "--steps", "5"],
            "--steps does not apply",
        ),
        (
            &["--method", "smoothgrad", "--window", "2"],
            "--window does not apply",
        ),
        (
            &["--method", "gradient", "--over-lrp"],
            "--over-lrp does not apply",
        ),
        (&["--resize", "8"], "--resize applies to image inputs"),
        (
            &["--rule", "z-box", "--low=-1,0", "--high", "1"],
            "expected 1 or one per channel (1)",
        ),
    ];
    for (extra, message) in cases {
        f.explain()
            .args(extra)
            .assert()
            .failure()
            .stderr(predicate::str::contains(message));
        assert!(!f.path("r.npy").exists(), "{extra:?} left an output");
    }
    // Targets that do not fit.
    let targets = f.path("t.txt");
    std::fs::write(&targets, "0\n1\n").unwrap();
    f.explain()
        .arg("--targets")
        .arg(&targets)
        .assert()
        .failure()
        .stderr(predicate::str::contains("2 targets for 5 sample(s)"));
    assert!(!f.path("r.npy").exists());
}

#[test]
fn an_os_error_is_reported_once() {
    let f = Fixture::new();
    let out = f.dir.path().join("a-directory");
    std::fs::create_dir(&out).unwrap();
    let assert = lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(f.path("m.json"))
        .arg("--weights")
        .arg(f.path("w.safetensors"))
        .arg("--input")
        .arg(f.path("x.npy"))
        .arg("--output")
        .arg(&out)
        .assert()
        .failure();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

/// Re-encodes every float32 tensor of the fixture's weights with `encode`, as dtype `dtype`.
fn reencode_weights(f: &Fixture, dtype: safetensors::Dtype, encode: fn(f32) -> Vec<u8>) {
    with_weights(f, |w| {
        for e in w.iter_mut() {
            e.2 =
                e.2.chunks_exact(4)
                    .flat_map(|b| encode(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect();
            e.3 = dtype;
        }
    });
}

#[test]
fn f64_f16_and_bf16_weights_are_converted_to_float32() {
    type Codec = (safetensors::Dtype, fn(f32) -> Vec<u8>, fn(f32) -> f32);
    let cases: [Codec; 3] = [
        (
            safetensors::Dtype::F64,
            |v| (v as f64).to_le_bytes().to_vec(),
            |v| v,
        ),
        (
            safetensors::Dtype::F16,
            |v| {
                burn::tensor::f16::from_f32(v)
                    .to_bits()
                    .to_le_bytes()
                    .to_vec()
            },
            |v| burn::tensor::f16::from_f32(v).to_f32(),
        ),
        (
            safetensors::Dtype::BF16,
            |v| {
                burn::tensor::bf16::from_f32(v)
                    .to_bits()
                    .to_le_bytes()
                    .to_vec()
            },
            |v| burn::tensor::bf16::from_f32(v).to_f32(),
        ),
    ];
    // One fixture (tests run in parallel and share Burn's seeded generator): its weights are
    // rewritten for each case.
    let f = Fixture::new();
    let original = std::fs::read(f.path("w.safetensors")).unwrap();
    for (dtype, encode, round) in cases {
        // The reference: float32 weights holding the values the narrower type can represent.
        std::fs::write(f.path("w.safetensors"), &original).unwrap();
        with_weights(&f, |w| {
            for e in w.iter_mut() {
                e.2 = e
                    .2
                    .chunks_exact(4)
                    .flat_map(|b| round(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
                    .collect();
            }
        });
        f.explain().assert().success();
        let expected = read_npy(&f.path("r.npy")).1;
        std::fs::write(f.path("w.safetensors"), &original).unwrap();
        reencode_weights(&f, dtype, encode);
        f.explain().assert().success();
        assert_eq!(read_npy(&f.path("r.npy")).1, expected, "{dtype:?}");
    }
}

#[test]
fn extra_tensors_are_an_error_unless_allowed_and_then_listed() {
    let f = Fixture::new();
    with_weights(&f, |w| {
        w.push((
            "head.weight".into(),
            vec![2],
            vec![0; 8],
            safetensors::Dtype::F32,
        ));
    });
    fails(
        &f,
        &mut f.explain(),
        &["`head.weight` is not used", "--allow-unused-weights"],
    );
    f.explain()
        .arg("--allow-unused-weights")
        .assert()
        .success()
        .stderr(predicate::str::contains("unused: head.weight"));
}

#[test]
fn a_pytorch_pickle_gets_a_hint_to_save_safetensors_or_export_onnx() {
    let f = Fixture::new();
    std::fs::write(f.path("w.pt"), b"PK\x03\x04 pickle").unwrap();
    fails(
        &f,
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(f.path("m.json"))
            .arg("--weights")
            .arg(f.path("w.pt"))
            .arg("--input")
            .arg(f.path("x.npy"))
            .arg("--output")
            .arg(f.path("r.npy")),
        &["w.pt", "safetensors.torch.save_file", "torch.onnx.export"],
    );
}

/// `explain --help` lists every rule and built-in composite (from the library's lists), and
/// the README's composite table names each composite.
#[test]
fn the_help_and_the_readme_list_every_composite() {
    let help = lrp_grad().args(["explain", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    // Rules: the whole list, as the help shows it (however clap wraps it).
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(lrp_grad::text::RULE_SYNTAX),
        "`--rule` help omits rules:\n{help}"
    );
    for name in lrp_grad::COMPOSITE_NAMES {
        assert!(
            help.contains(name),
            "`explain --help` omits {name}:\n{help}"
        );
        assert!(
            readme.contains(&format!("| `{name}`")),
            "README has no table row for the composite {name}"
        );
    }
}

/// `lrp-grad explain --model FOLDER --input IDS --composite C`, writing the relevance and the
/// summary into `dir`; their paths.
fn explain_checkpoint(
    folder: &Path,
    ids: &Path,
    composite: &str,
    dir: &Path,
) -> (PathBuf, PathBuf) {
    let (out, summary) = (dir.join("r.npy"), dir.join("s.json"));
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(folder)
        .arg("--input")
        .arg(ids)
        .arg("--output")
        .arg(&out)
        .arg("--summary")
        .arg(&summary)
        .args(["--composite", composite, "--quiet"])
        .assert()
        .success();
    (out, summary)
}

/// A Hugging Face checkpoint directory (Qwen2: biases, a tied head) on token ids: per-token
/// relevance of the predicted next token equals LXT 2.1's efficient AttnLRP and CP-LRP, and the
/// summary names the prediction; `--weights` beside a directory is refused.
#[test]
fn a_checkpoint_directory_explains_the_next_token_as_lxt_efficient() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf/qwen2");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let dir = TempDir::new().unwrap();
    let (shape, ids) = &reference["ids"];
    let ids_path = dir.path().join("ids.npy");
    write_ids_npy(&ids_path, shape, ids);
    for (composite, mode) in [
        ("attn-lrp-efficient", "attnlrp"),
        ("cp-lrp-efficient", "cplrp"),
    ] {
        let (out, summary) = explain_checkpoint(&folder, &ids_path, composite, dir.path());
        let (out_shape, relevance) = read_npy(&out);
        assert_eq!(&out_shape, shape);
        let expected = &reference[&format!("relevance.{mode}")].1;
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error =
            (relevance.iter().zip(expected)).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(error < 1e-5, "{composite}: {error:.2e}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        let logits = &reference["logits"].1;
        let vocab = logits.len() / shape[0];
        let argmax = (0..vocab)
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap();
        assert_eq!(json["samples"][0]["predicted"], argmax);
    }
    let f = Fixture::new();
    fails(
        &f,
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(&folder)
            .arg("--weights")
            .arg(folder.join("model.safetensors"))
            .arg("--input")
            .arg(&ids_path)
            .arg("--output")
            .arg(f.path("r.npy")),
        &["is a checkpoint directory", "drop --weights"],
    );
}

/// Every family's checkpoint (and Gemma 3 with its logit softcap) from the command line: the
/// per-token relevance of the predicted token (a classifier's class) equals LXT 2.1's efficient
/// AttnLRP and CP-LRP (where LXT has it) within the suite's tolerance, and the summary's
/// prediction and score are transformers' argmax and its logit.
#[test]
fn every_family_explains_from_the_command_line_as_lxt_efficient() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf");
    let families = [
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "phi3",
        "gpt2",
        "gemma3",
        "gemma3-softcap",
        "bert",
    ];
    let dir = TempDir::new().unwrap();
    for family in families {
        let folder = fixtures.join(family);
        let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
        let cases: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("cases.json")).unwrap())
                .unwrap();
        let (shape, ids) = &reference["ids"];
        let ids_path = dir.path().join(format!("{family}.npy"));
        write_ids_npy(&ids_path, shape, ids);
        for (composite, mode) in [
            ("attn-lrp-efficient", "attnlrp"),
            ("cp-lrp-efficient", "cplrp"),
        ] {
            let Some(floor) = cases["modes"][mode]["lxt_f32_distance"].as_f64() else {
                continue; // LXT has no CP-LRP map for BERT
            };
            let (out, summary) = explain_checkpoint(&folder, &ids_path, composite, dir.path());
            let (out_shape, relevance) = read_npy(&out);
            assert_eq!(&out_shape, shape, "{family}");
            let expected = &reference[&format!("relevance.{mode}")].1;
            let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let error = (relevance.iter().zip(expected))
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                / scale;
            let tolerance = (4.0 * floor).max(1e-4) as f32;
            assert!(error <= tolerance, "{family} {composite}: {error:.2e}");
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
            let logits = &reference["logits"].1;
            let classes = logits.len() / shape[0];
            for (i, row) in logits.chunks(classes).enumerate() {
                let argmax = (0..classes)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap();
                let sample = &json["samples"][i];
                assert_eq!(sample["predicted"], argmax, "{family} sample {i}");
                let score = sample["score"].as_f64().unwrap() as f32;
                let want = row[argmax];
                assert!(
                    (score - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{family} sample {i}: score {score}, transformers' logit {want}"
                );
            }
        }
    }
}

/// `--text` through the checkpoint's tokenizer.json (a word-level tokenizer over the Qwen2
/// fixture's ids, `tools/hf-reference/tokenizer.py`): the reference prompts written as words give
/// LXT's per-token relevance, the tokens print coloured and the summary names the predicted
/// token's text; `--target-token` picks the explained token by its text.
#[test]
fn text_is_tokenised_with_the_checkpoints_tokenizer() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf/qwen2");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let tokenizer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("tokenizer.json")).unwrap())
            .unwrap();
    let mut words = vec![String::new(); 64];
    for (word, id) in tokenizer["model"]["vocab"].as_object().unwrap() {
        words[id.as_u64().unwrap() as usize] = word.clone();
    }
    let (shape, ids) = &reference["ids"];
    let texts: Vec<String> = (ids.chunks(shape[1]))
        .map(|row| {
            row.iter()
                .map(|&id| words[id as usize].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let dir = TempDir::new().unwrap();
    let (out, summary) = (dir.path().join("r.npy"), dir.path().join("s.json"));
    let run = lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(&folder)
        .arg("--text")
        .args(&texts)
        .arg("--output")
        .arg(&out)
        .arg("--summary")
        .arg(&summary)
        .args(["--composite", "attn-lrp-efficient"])
        .assert()
        .success();
    let stdout = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("\x1b[48;2;") && stdout.contains(&words[ids[0] as usize]),
        "{stdout}"
    );
    let (_, relevance) = read_npy(&out);
    let expected = &reference["relevance.attnlrp"].1;
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let error =
        (relevance.iter().zip(expected)).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
    assert!(error < 1e-5, "{error:.2e}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let predicted = json["samples"][0]["predicted"].as_u64().unwrap() as usize;
    assert_eq!(json["samples"][0]["label"], words[predicted].as_str());
    // The explained token by its text.
    lrp_grad()
        .arg("explain")
        .arg("--model")
        .arg(&folder)
        .arg("--text")
        .arg(&texts[0])
        .arg("--output")
        .arg(&out)
        .arg("--summary")
        .arg(&summary)
        .args(["--target-token", "paris", "--quiet"])
        .assert()
        .success();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        json["samples"][0]["target"],
        words.iter().position(|w| w == "paris").unwrap()
    );
    let f = Fixture::new();
    fails(
        &f,
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(&folder)
            .arg("--text")
            .arg(&texts[0])
            .arg("--output")
            .arg(f.path("r.npy"))
            .args(["--target-token", "paris rome"]),
        &["--target-token \"paris rome\" is 2 tokens"],
    );
}

/// Token ids padded on the left and on the right, with an attention mask: each sample is
/// explained on its own tokens (LXT's relevance for the two reference prompts at their places,
/// 0 at the padding), and a shorter sample as if it ran alone.
#[test]
fn padded_token_ids_with_an_attention_mask_explain_each_sample_on_its_own_tokens() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf/qwen2");
    let reference = zennit::read_f32_tensors(&folder.join("reference.safetensors"));
    let (shape, ids) = &reference["ids"];
    let t = shape[1];
    let (a, b) = (&ids[..t], &ids[t..]);
    // Rows of 9: a left-padded, b right-padded, the first 5 tokens of a right-padded.
    let pad = [0.0f32; 4];
    let rows = [
        [&pad[..2], a].concat(),
        [b, &pad[..2]].concat(),
        [&a[..5], &pad[..4]].concat(),
    ];
    let masks = [
        [vec![0.0; 2], vec![1.0; 7]].concat(),
        [vec![1.0; 7], vec![0.0; 2]].concat(),
        [vec![1.0; 5], vec![0.0; 4]].concat(),
    ];
    let dir = TempDir::new().unwrap();
    let (ids_path, mask_path, short_path) = (
        dir.path().join("ids.npy"),
        dir.path().join("mask.npy"),
        dir.path().join("short.npy"),
    );
    write_ids_npy(&ids_path, &[3, 9], &rows.concat());
    write_ids_npy(&mask_path, &[3, 9], &masks.concat());
    write_ids_npy(&short_path, &[1, 5], &a[..5]);
    let explain = |input: &Path, mask: Option<&Path>, out: &Path| {
        let mut cmd = lrp_grad();
        cmd.arg("explain")
            .arg("--model")
            .arg(&folder)
            .arg("--input")
            .arg(input);
        if let Some(mask) = mask {
            cmd.arg("--attention-mask").arg(mask);
        }
        cmd.arg("--output")
            .arg(out)
            .args(["--composite", "attn-lrp-efficient", "--quiet"]);
        cmd.assert().success();
        read_npy(out)
    };
    let (out_shape, r) = explain(&ids_path, Some(&mask_path), &dir.path().join("r.npy"));
    assert_eq!(out_shape, [3, 9]);
    let (_, alone) = explain(&short_path, None, &dir.path().join("alone.npy"));
    let expected = &reference["relevance.attnlrp"].1;
    let want = [
        [&[0.0f32; 2][..], &expected[..t]].concat(),
        [&expected[t..], &[0.0f32; 2][..]].concat(),
        [&alone[..], &[0.0f32; 4][..]].concat(),
    ]
    .concat();
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let error = (r.iter().zip(&want)).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
    assert!(error < 1e-5, "{error:.2e}\n{r:?}\n{want:?}");
}

/// Zennit's layer and name maps on the command line: ε on every layer with `--layer-rule
/// conv=z-plus` is Zennit's EpsilonPlus (the fixture's Zennit relevance), and `--name-rule` on
/// top of it overrides one node; a bad class or map is refused by name.
#[test]
fn layer_and_name_rules_compose_zennit_layer_maps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = ZennitFixture::open(&root, "cnn");
    let (shape, input) = fixture.get("input");
    let (_, expected) = fixture.get("relevance.epsilon-plus/logit");
    let targets = fixture.targets.clone();
    let dir = TempDir::new().unwrap();
    let per = input.len() / shape[0];
    let class = targets[0];
    let samples: Vec<usize> = (0..targets.len())
        .filter(|&s| targets[s] == class)
        .collect();
    let pick = |t: &[f32]| -> Vec<f32> {
        (samples.iter())
            .flat_map(|s| t[s * per..(s + 1) * per].to_vec())
            .collect()
    };
    let mut sub = shape.clone();
    sub[0] = samples.len();
    write_npy(&dir.path().join("x.npy"), &sub, &pick(&input));
    let args: Vec<String> = ["--rule", "epsilon", "--layer-rule", "conv=z-plus"]
        .map(String::from)
        .to_vec();
    let r = explain_json_model(&fixture.folder, dir.path(), &args, class);
    let err = max_relative_error(&r, &pick(&expected));
    assert!(
        err < 1e-5,
        "epsilon + conv=z-plus vs Zennit's EpsilonPlus: {err:.2e}"
    );
    // A name rule overrides the layer map on the nodes it names: the relevance changes.
    let mut named = args.clone();
    named.extend(["--name-rule", "0=flat"].map(String::from));
    let r2 = explain_json_model(&fixture.folder, dir.path(), &named, class);
    assert!(
        max_relative_error(&r2, &r) > 1e-3,
        "the name rule changed nothing"
    );
    let f = Fixture::new();
    fails(
        &f,
        lrp_grad()
            .arg("explain")
            .arg("--model")
            .arg(fixture.folder.join("model.json"))
            .arg("--weights")
            .arg(fixture.folder.join("weights.safetensors"))
            .arg("--input")
            .arg(dir.path().join("x.npy"))
            .arg("--output")
            .arg(f.path("r.npy"))
            .args(["--layer-rule", "convolution=z-plus"]),
        &["unknown layer class `convolution`", "conv, linear"],
    );
}

/// The Zennit CNN fixture and its inputs written as `x.npy` in a new temporary folder.
fn cnn_inputs() -> (ZennitFixture, TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = ZennitFixture::open(&root, "cnn");
    let (shape, input) = fixture.get("input");
    let dir = TempDir::new().unwrap();
    let x = dir.path().join("x.npy");
    write_npy(&x, &shape, &input);
    (fixture, dir, x)
}

/// `lrp-grad evaluate` on the Zennit CNN fixture's model with the inputs `x`.
fn evaluate_cnn(fixture: &ZennitFixture, x: &Path) -> Command {
    let mut cmd = lrp_grad();
    cmd.arg("evaluate")
        .arg("--model")
        .arg(fixture.folder.join("model.json"))
        .arg("--weights")
        .arg(fixture.folder.join("weights.safetensors"))
        .arg("--input")
        .arg(x);
    cmd
}

/// `evaluate` compares methods on images: a table on stdout, JSON with each method's
/// metrics and mean curves (12 pixel-flipping steps of 12 whole pixels, 9 patches,
/// ROAD's percentages, MPRT's layers top first) and the curves as PNG; bad arguments are
/// clear errors and nothing is written.
#[test]
fn evaluate_compares_methods_with_the_metrics() {
    let (fixture, dir, x) = cnn_inputs();
    let (json, plot) = (dir.path().join("m.json"), dir.path().join("curves.png"));
    let evaluate = || evaluate_cnn(&fixture, &x);
    let run = evaluate()
        .args(["--composite", "epsilon-plus", "--methods", "lrp,gradient-x-input"])
        .args(["--features-in-step", "12", "--road-percentages", "10,50,90"])
        .args(["--metrics", "pixel-flipping,region-perturbation,road,completeness,random-logit,mprt,input-invariance"])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .assert()
        .success();
    let stdout = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    for expected in [
        "| lrp |",
        "| gradient-x-input |",
        "ROAD AUC",
        "MPRT mean similarity",
        "input invariance",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let methods = report["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 2);
    let len = |m: &serde_json::Value, key: &str| m[key].as_array().unwrap().len();
    assert_eq!(len(&methods[0], "pixel_flipping"), 12);
    assert_eq!(len(&methods[0], "region_perturbation"), 9);
    assert_eq!(len(&methods[0], "road"), 3);
    assert_eq!(
        methods[0]["mprt_steps"],
        serde_json::json!(["13", "11", "7", "4", "0"])
    );
    for m in methods {
        for (name, value) in m["metrics"].as_object().unwrap() {
            assert!(
                value.as_f64().is_some_and(f64::is_finite),
                "{name}: {value}"
            );
        }
    }
    assert_eq!(&std::fs::read(&plot).unwrap()[1..4], b"PNG");
}

/// `evaluate` names the argument at fault: a patch that does not divide the image, zero values
/// per step, a percentage outside (0, 100), an unknown metric, a plot without curves.
#[test]
fn evaluate_refuses_bad_arguments() {
    let (fixture, dir, x) = cnn_inputs();
    let evaluate = || evaluate_cnn(&fixture, &x);
    let f = Fixture::new();
    fails(
        &f,
        evaluate().args(["--patch", "5"]),
        &["patch size 5", "12 × 12"],
    );
    fails(
        &f,
        evaluate().args(["--features-in-step", "0"]),
        &["features_in_step 0"],
    );
    fails(
        &f,
        evaluate().args(["--metrics", "road", "--road-percentages", "100"]),
        &["ROAD percentage 100", "(0, 100)"],
    );
    fails(
        &f,
        evaluate().args(["--metrics", "roads"]),
        &["invalid value 'roads'", "road"],
    );
    fails(
        &f,
        evaluate()
            .args(["--metrics", "complexity", "--plot"])
            .arg(dir.path().join("none.png")),
        &["none of the metrics asked for has a curve"],
    );
}

/// `evaluate` on a checkpoint directory and token ids: AttnLRP's token removal on the
/// key-value recall model, where the answer depends on one token — AttnLRP's area between the
/// LeRF and MoRF curves is large and beats gradient × input's.
#[test]
fn evaluate_on_token_ids_measures_token_removal() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/recall");
    let prompts = zennit::read_f32_tensors(&folder.join("prompts.safetensors"));
    let (shape, ids) = &prompts["ids"];
    let dir = TempDir::new().unwrap();
    let ids_path = dir.path().join("ids.npy");
    write_ids_npy(&ids_path, &[32, shape[1]], &ids[..32 * shape[1]]);
    let run = lrp_grad()
        .arg("evaluate")
        .arg("--model")
        .arg(&folder)
        .arg("--input")
        .arg(&ids_path)
        .args([
            "--composite",
            "attn-lrp-efficient",
            "--methods",
            "lrp,gradient-x-input",
        ])
        .assert()
        .success();
    let stdout = String::from_utf8(run.get_output().stdout.clone()).unwrap();
    let area = |method: &str| -> f64 {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {method} |")))
            .unwrap();
        row.split('|').nth(2).unwrap().trim().parse().unwrap()
    };
    assert!(
        area("lrp") > 10.0 && area("lrp") > area("gradient-x-input"),
        "{stdout}"
    );
}
