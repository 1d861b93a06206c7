//! Rule SPECs, composite names and attribution methods from the command line.

use anyhow::{Context, Result, anyhow, bail};
use lrp_grad::{Base, Baseline, Bound, Composite, Method, Rule};

pub const RULE_SPECS: &str = "zero, epsilon[:EPS], gamma[:GAMMA], alpha-beta[:ALPHA,BETA], z-plus, z-box:LOW,HIGH, flat, w-square";

/// Parses a rule SPEC such as `epsilon:0.1`, `alpha-beta:2,1` or `z-box:-3,3`. `bounds` are the
/// `--low`/`--high` values, used when a z-box SPEC has none of its own.
pub fn rule(spec: &str, bounds: Option<(f64, f64)>) -> Result<Rule> {
    let (name, args) = match spec.split_once(':') {
        Some((name, args)) => (name, Some(args)),
        None => (spec, None),
    };
    let numbers = |expected: usize| -> Result<Vec<f64>> {
        let args = args.unwrap_or_default();
        let values: Vec<f64> = args
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .with_context(|| format!("--rule {spec}: `{v}` is not a number"))
            })
            .collect::<Result<_>>()?;
        if values.len() != expected {
            bail!(
                "--rule {spec}: expected {expected} number(s) after `{name}:`, got {}",
                values.len()
            );
        }
        Ok(values)
    };
    let no_args = |rule: Rule| -> Result<Rule> {
        match args {
            None => Ok(rule),
            Some(_) => bail!("--rule {spec}: `{name}` takes no parameters"),
        }
    };
    let rule = match name {
        "zero" => no_args(Rule::Zero)?,
        "epsilon" => Rule::epsilon(if args.is_some() {
            numbers(1)?[0]
        } else {
            lrp_grad::DEFAULT_EPSILON
        })?,
        "gamma" => Rule::gamma(if args.is_some() {
            numbers(1)?[0]
        } else {
            lrp_grad::DEFAULT_GAMMA
        })?,
        "alpha-beta" => {
            let ab = if args.is_some() {
                numbers(2)?
            } else {
                vec![2.0, 1.0]
            };
            Rule::alpha_beta(ab[0], ab[1])?
        }
        "z-plus" => no_args(Rule::ZPlus)?,
        "z-box" => {
            let (low, high) = match (args, bounds) {
                (Some(_), _) => {
                    let b = numbers(2)?;
                    (b[0], b[1])
                }
                (None, Some(b)) => b,
                (None, None) => bail!(
                    "--rule z-box needs the input bounds: z-box:LOW,HIGH (or --low L --high H)"
                ),
            };
            Rule::z_box(low, high)?
        }
        "flat" => no_args(Rule::Flat)?,
        "w-square" => no_args(Rule::WSquare)?,
        other => bail!("unknown rule `{other}` in --rule {spec}; expected one of {RULE_SPECS}"),
    };
    Ok(rule)
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
