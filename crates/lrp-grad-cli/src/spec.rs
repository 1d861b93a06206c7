//! Rule SPECs, composite names and attribution methods from the command line.

use anyhow::{Result, anyhow, bail};
use lrp_grad::{Base, Baseline, Bound, Composite, Method, Rule};

/// Parses a rule SPEC such as `epsilon:0.1`, `alpha-beta:2,1` or `z-box:-3,3` (the library's
/// grammar, `lrp_grad::text`). `bounds` are the `--low`/`--high` values, used when a z-box SPEC
/// has none of its own.
pub fn rule(spec: &str, bounds: Option<(f64, f64)>) -> Result<Rule> {
    if spec == "z-box" {
        let Some((low, high)) = bounds else {
            bail!("--rule z-box needs the input bounds: z-box:LOW,HIGH (or --low L --high H)");
        };
        return Ok(Rule::z_box(low, high)?);
    }
    spec.parse::<Rule>()
        .map_err(|e| anyhow!("--rule {spec}: {e}"))
}

/// The composite from `--rule` / `--composite` (default `epsilon-plus-flat`).
pub fn composite(
    rule_spec: Option<&str>,
    composite: Option<&str>,
    low: Option<f64>,
    high: Option<f64>,
) -> Result<Composite> {
    let bounds = match (low, high) {
        (Some(l), Some(h)) => Some((l, h)),
        (None, None) => None,
        _ => bail!("--low and --high go together"),
    };
    if let Some(spec) = rule_spec {
        return Ok(Composite::uniform(rule(spec, bounds)?));
    }
    let name = composite.unwrap_or("epsilon-plus-flat");
    if name == "epsilon-gamma-box" && bounds.is_none() {
        bail!("--composite epsilon-gamma-box needs the input bounds: --low L --high H");
    }
    Composite::named(
        name,
        bounds.map(|(l, h)| (Bound::Scalar(l), Bound::Scalar(h))),
    )
    .map_err(|e| anyhow!("--composite {name}: {e}"))
}

/// Method names, as `--method` takes them.
pub const METHODS: &str =
    "lrp, gradient, gradient-x-input, smoothgrad, integrated-gradients, occlusion";

/// Parameters of the attribution methods.
pub struct MethodArgs<'a> {
    pub name: &'a str,
    pub samples: Option<usize>,
    pub noise: Option<f64>,
    pub seed: u64,
    pub steps: Option<usize>,
    pub baseline: Option<Baseline>,
    pub window: Option<usize>,
    pub stride: Option<usize>,
    pub fill: f32,
    pub over_lrp: bool,
}

pub fn method(args: MethodArgs<'_>) -> Result<Method> {
    let base = if args.over_lrp {
        Base::Lrp
    } else {
        Base::Gradient
    };
    let method = match args.name {
        "lrp" => Method::Lrp,
        "gradient" => Method::Gradient,
        "gradient-x-input" => Method::GradientTimesInput,
        "smoothgrad" => Method::SmoothGrad {
            samples: args.samples.unwrap_or(lrp_grad::DEFAULT_SAMPLES),
            noise: args.noise.unwrap_or(lrp_grad::DEFAULT_NOISE_LEVEL),
            seed: args.seed,
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
                fill: args.fill,
            }
        }
        other => bail!("unknown method `{other}`; expected one of {METHODS}"),
    };
    method
        .validate()
        .map_err(|e| anyhow!("--method {}: {e}", args.name))?;
    Ok(method)
}
