//! Rule SPECs, composite names and attribution methods from the command line.

use anyhow::{Result, anyhow, bail};
use burn::tensor::TensorData;
use lrp_grad::{Base, Baseline, Bound, Composite, Method, Rule};

/// Parses a rule SPEC such as `epsilon:0.1`, `alpha-beta:2,1` or `z-box:-3,3` (the library's
/// grammar, `lrp_grad::text`). `bounds` are the `--low`/`--high` values (or the bounds of the
/// image normalisation), used when a z-box SPEC has none of its own.
pub fn rule(spec: &str, bounds: Option<(Bound, Bound)>) -> Result<Rule> {
    if spec == "z-box" {
        let Some((low, high)) = bounds else {
            bail!("--rule z-box needs the input bounds: z-box:LOW,HIGH (or --low L --high H)");
        };
        return Ok(Rule::z_box(low, high)?);
    }
    spec.parse::<Rule>()
        .map_err(|e| anyhow!("--rule {spec}: {e}"))
}

/// Whether the rule SPEC or composite takes input bounds from `--low`/`--high`.
pub fn needs_bounds(rule_spec: Option<&str>, composite: Option<&str>) -> bool {
    match rule_spec {
        Some(spec) => spec == "z-box",
        None => composite == Some("epsilon-gamma-box"),
    }
}

/// The composite from `--rule` / `--composite` (default `epsilon-plus-flat`).
pub fn composite(
    rule_spec: Option<&str>,
    composite: Option<&str>,
    bounds: Option<(Bound, Bound)>,
) -> Result<Composite> {
    if let Some(spec) = rule_spec {
        return Ok(Composite::uniform(rule(spec, bounds)?));
    }
    let name = composite.unwrap_or("epsilon-plus-flat");
    if name == "epsilon-gamma-box" && bounds.is_none() {
        bail!(
            "--composite epsilon-gamma-box needs the input bounds: --low L --high H (per channel: --low=-2.1,-2.0,-1.8), or image inputs, whose bounds follow from --mean/--std"
        );
    }
    Composite::named(name, bounds).map_err(|e| anyhow!("--composite {name}: {e}"))
}

/// `--layer-rule TYPE=RULE` and `--name-rule NODE=RULE` on top of `composite` (Zennit's
/// `LayerMapComposite` and `NameMapComposite`): a later flag overrides an earlier one.
pub fn layer_maps(
    mut composite: Composite,
    by_type: &[String],
    by_name: &[String],
) -> Result<Composite> {
    for flag in by_type {
        let (ty, spec) = split_map("--layer-rule", flag)?;
        let Some(ty) = lrp_grad::LayerType::from_name(ty) else {
            let names: Vec<&str> = lrp_grad::LayerType::ALL.iter().map(|(_, n)| *n).collect();
            bail!(
                "--layer-rule {flag}: unknown layer class `{ty}`; expected one of {}",
                names.join(", ")
            );
        };
        composite = composite.with_type(
            ty,
            rule(spec, None).map_err(|e| anyhow!("--layer-rule {flag}: {e}"))?,
        );
    }
    for flag in by_name {
        let (pattern, spec) = split_map("--name-rule", flag)?;
        composite = composite.with_name(
            pattern,
            rule(spec, None).map_err(|e| anyhow!("--name-rule {flag}: {e}"))?,
        );
    }
    Ok(composite)
}

/// `KEY=RULE`.
fn split_map<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str)> {
    match text.split_once('=') {
        Some((key, spec)) if !key.is_empty() && !spec.is_empty() => Ok((key, spec)),
        _ => bail!("{flag} {text}: expected KEY=RULE (e.g. conv=gamma:0.25)"),
    }
}

/// `--low`/`--high` values as bounds: one value, or one per channel of an image model.
pub fn bounds(low: &[f64], high: &[f64], channels: Option<usize>) -> Result<(Bound, Bound)> {
    let bound = |values: &[f64], flag: &str| -> Result<Bound> {
        match (values, channels) {
            ([v], _) => Ok(Bound::Scalar(*v)),
            (v, Some(c)) if v.len() == c => Ok(per_channel(v.iter().map(|x| *x as f32).collect())),
            (v, Some(c)) => bail!(
                "--{flag}: {} values; expected 1 or one per channel ({c})",
                v.len()
            ),
            (v, None) => bail!(
                "--{flag}: {} values; expected 1 (the model takes vectors)",
                v.len()
            ),
        }
    };
    Ok((bound(low, "low")?, bound(high, "high")?))
}

/// Per-channel bounds `[C, 1, 1]`, broadcast over an image.
pub fn per_channel(values: Vec<f32>) -> Bound {
    let c = values.len();
    Bound::Tensor(TensorData::new(values, [c, 1, 1]))
}

/// Method names, as `--method` takes them.
pub const METHODS: &str =
    "lrp, gradient, gradient-x-input, smoothgrad, integrated-gradients, occlusion";

/// Parameters of the attribution methods.
pub struct MethodArgs<'a> {
    pub name: &'a str,
    pub samples: Option<usize>,
    pub noise: Option<f64>,
    pub seed: Option<u64>,
    pub steps: Option<usize>,
    pub baseline: Option<Baseline>,
    pub window: Option<usize>,
    pub stride: Option<usize>,
    pub fill: Option<f32>,
    pub over_lrp: bool,
}

impl<'a> MethodArgs<'a> {
    /// A method by name with its defaults.
    pub fn named(name: &'a str) -> Self {
        MethodArgs {
            name,
            samples: None,
            noise: None,
            seed: None,
            steps: None,
            baseline: None,
            window: None,
            stride: None,
            fill: None,
            over_lrp: false,
        }
    }

    /// Flags given that the method does not use: an error, not silence.
    fn unused(&self) -> Option<&'static str> {
        let uses = |methods: &[&str]| methods.contains(&self.name);
        [
            (self.samples.is_some(), "--samples", uses(&["smoothgrad"])),
            (self.noise.is_some(), "--noise", uses(&["smoothgrad"])),
            (self.seed.is_some(), "--seed", uses(&["smoothgrad"])),
            (
                self.steps.is_some(),
                "--steps",
                uses(&["integrated-gradients"]),
            ),
            (
                self.baseline.is_some(),
                "--baseline",
                uses(&["integrated-gradients"]),
            ),
            (self.window.is_some(), "--window", uses(&["occlusion"])),
            (self.stride.is_some(), "--stride", uses(&["occlusion"])),
            (self.fill.is_some(), "--fill", uses(&["occlusion"])),
            (
                self.over_lrp,
                "--over-lrp",
                uses(&["smoothgrad", "integrated-gradients"]),
            ),
        ]
        .into_iter()
        .find_map(|(given, flag, used)| (given && !used).then_some(flag))
    }

    /// Whether the method runs LRP (and so uses --rule/--composite and their bounds).
    pub fn uses_lrp(&self) -> bool {
        self.name == "lrp" || self.over_lrp
    }
}

pub fn method(args: MethodArgs<'_>) -> Result<Method> {
    let base = if args.over_lrp {
        Base::Lrp
    } else {
        Base::Gradient
    };
    if let Some(flag) = args.unused() {
        bail!("{flag} does not apply to --method {}", args.name);
    }
    let method = match args.name {
        "lrp" => Method::Lrp,
        "gradient" => Method::Gradient,
        "gradient-x-input" => Method::GradientTimesInput,
        "smoothgrad" => Method::SmoothGrad {
            samples: args.samples.unwrap_or(lrp_grad::DEFAULT_SAMPLES),
            noise: args.noise.unwrap_or(lrp_grad::DEFAULT_NOISE_LEVEL),
            seed: args.seed.unwrap_or(0),
            base,
        },
        "integrated-gradients" => Method::IntegratedGradients {
            steps: args.steps.unwrap_or(lrp_grad::DEFAULT_SAMPLES),
            baseline: args.baseline.unwrap_or_default(),
            base,
        },
        "occlusion" => {
            let window = args.window.unwrap_or(lrp_grad::DEFAULT_OCCLUSION_WINDOW);
            let stride = args.stride.unwrap_or(window);
            Method::Occlusion {
                window: [window; 2],
                stride: [stride; 2],
                fill: args.fill.unwrap_or(0.0),
            }
        }
        other => bail!("unknown method `{other}`; expected one of {METHODS}"),
    };
    method
        .validate()
        .map_err(|e| anyhow!("--method {}: {e}", args.name))?;
    Ok(method)
}
