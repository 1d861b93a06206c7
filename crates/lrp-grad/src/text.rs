//! Rules, composites, methods and strategies as text: `FromStr` and `Display`, one grammar for
//! the command line, configuration files and messages.
//!
//! | type | text |
//! |---|---|
//! | [`Rule`] | `zero`, `epsilon[:EPS]`, `gamma[:GAMMA]`, `alpha-beta[:ALPHA,BETA]`, `z-plus`, `z-box:LOW,HIGH`, `flat`, `w-square`, `pass`, `norm`, `lxt-epsilon[:EPS]`, `gradient`, `block` |
//! | [`Composite`] | each of [`COMPOSITE_NAMES`](crate::COMPOSITE_NAMES); `epsilon-gamma-box` as `epsilon-gamma-box:LOW,HIGH` |
//! | [`Method`] | `lrp`, `gradient`, `gradient-x-input`, `smoothgrad`, `integrated-gradients`, `occlusion` (default parameters) |
//! | [`Strategy`] | `auto`, `layer-wise` |
//!
//! ```
//! use lrp_grad::Rule;
//! let rule: Rule = "alpha-beta:2,1".parse()?;
//! assert_eq!(rule, Rule::AlphaBeta { alpha: 2.0, beta: 1.0 });
//! assert_eq!(rule.to_string(), "alpha-beta:2,1");
//! # Ok::<(), lrp_grad::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::composite::Composite;
use crate::error::{Error, Result};
use crate::explain::Strategy;
use crate::methods::Method;
use crate::rules::{Bound, DEFAULT_EPSILON, DEFAULT_GAMMA, LXT_EPSILON, Rule};

/// The rule grammar, for messages.
pub const RULE_SYNTAX: &str = "zero, epsilon[:EPS], gamma[:GAMMA], alpha-beta[:ALPHA,BETA], z-plus, z-box:LOW,HIGH, flat, w-square, pass, norm, lxt-epsilon[:EPS], gradient, block";

/// `name[:a,b,…]` split into the name and its numbers.
fn split<'a>(what: &'static str, text: &'a str) -> Result<(&'a str, Option<Vec<f64>>)> {
    let Some((name, args)) = text.split_once(':') else {
        return Ok((text, None));
    };
    let numbers = args
        .split(',')
        .map(|v| {
            v.trim().parse::<f64>().map_err(|_| Error::Parse {
                what,
                text: text.to_string(),
                reason: format!("`{v}` is not a number"),
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok((name, Some(numbers)))
}

/// The numbers of `name`, exactly `count` of them, or `default` when none are given.
fn numbers(
    what: &'static str,
    text: &str,
    name: &str,
    given: Option<Vec<f64>>,
    count: usize,
    default: Option<Vec<f64>>,
) -> Result<Vec<f64>> {
    let error = |reason: String| Error::Parse {
        what,
        text: text.to_string(),
        reason,
    };
    match (given, default) {
        (Some(values), _) if values.len() == count => Ok(values),
        (Some(values), _) => Err(error(format!(
            "`{name}` takes {count} number(s), got {}",
            values.len()
        ))),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(error(format!(
            "`{name}` needs {count} number(s): `{name}:…`"
        ))),
    }
}

impl FromStr for Rule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Rule> {
        let (name, given) = split("rule", text)?;
        let n = |count: usize, default: Option<Vec<f64>>| {
            numbers("rule", text, name, given.clone(), count, default)
        };
        let rule = match name {
            "zero" => n(0, Some(vec![])).map(|_| Rule::Zero)?,
            "epsilon" => Rule::epsilon(n(1, Some(vec![DEFAULT_EPSILON]))?[0])?,
            "gamma" => Rule::gamma(n(1, Some(vec![DEFAULT_GAMMA]))?[0])?,
            "alpha-beta" => {
                let ab = n(2, Some(vec![2.0, 1.0]))?;
                Rule::alpha_beta(ab[0], ab[1])?
            }
            "z-plus" => n(0, Some(vec![])).map(|_| Rule::ZPlus)?,
            "z-box" => {
                let b = n(2, None)?;
                Rule::z_box(b[0], b[1])?
            }
            "flat" => n(0, Some(vec![])).map(|_| Rule::Flat)?,
            "w-square" => n(0, Some(vec![])).map(|_| Rule::WSquare)?,
            "pass" => n(0, Some(vec![])).map(|_| Rule::Pass)?,
            "norm" => n(0, Some(vec![])).map(|_| Rule::Norm)?,
            "lxt-epsilon" => {
                let epsilon = n(1, Some(vec![LXT_EPSILON]))?[0];
                let rule = Rule::LxtEpsilon { epsilon };
                rule.validate()?;
                rule
            }
            "gradient" => n(0, Some(vec![])).map(|_| Rule::Gradient)?,
            "block" => n(0, Some(vec![])).map(|_| Rule::Block)?,
            other => {
                return Err(Error::Parse {
                    what: "rule",
                    text: text.to_string(),
                    reason: format!("unknown rule `{other}`; expected one of {RULE_SYNTAX}"),
                });
            }
        };
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    /// The text [`Rule::from_str`] reads back (tensor bounds of z-box shown by shape).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: &Bound| match b {
            Bound::Scalar(v) => v.to_string(),
            Bound::Tensor(data) => format!("tensor{:?}", data.shape()),
        };
        match self {
            Rule::Epsilon { epsilon } => write!(f, "epsilon:{epsilon}"),
            Rule::LxtEpsilon { epsilon } => write!(f, "lxt-epsilon:{epsilon}"),
            Rule::Gamma { gamma } => write!(f, "gamma:{gamma}"),
            Rule::AlphaBeta { alpha, beta } => write!(f, "alpha-beta:{alpha},{beta}"),
            Rule::ZBox { low, high } => write!(f, "z-box:{},{}", bound(low), bound(high)),
            Rule::Custom(custom) => write!(f, "custom:{}", custom.name),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Composite {
    type Err = Error;

    /// A built-in composite; `epsilon-gamma-box` takes its bounds as `epsilon-gamma-box:LOW,HIGH`.
    fn from_str(text: &str) -> Result<Composite> {
        let (name, given) = split("composite", text)?;
        if name == "epsilon-gamma-box" {
            let b = numbers("composite", text, name, given, 2, None)?;
            return Composite::epsilon_gamma_box(b[0], b[1]);
        }
        numbers("composite", text, name, given, 0, Some(vec![]))?;
        Composite::named(name, None)
    }
}

impl FromStr for Method {
    type Err = Error;

    /// A method by name, with its default parameters.
    fn from_str(text: &str) -> Result<Method> {
        Ok(match text {
            "lrp" => Method::Lrp,
            "gradient" => Method::Gradient,
            "gradient-x-input" => Method::GradientTimesInput,
            "smoothgrad" => Method::smooth_grad(),
            "integrated-gradients" => Method::IntegratedGradients {
                steps: crate::methods::DEFAULT_SAMPLES,
                baseline: Default::default(),
                base: crate::methods::Base::Gradient,
            },
            "occlusion" => Method::Occlusion {
                window: [crate::methods::DEFAULT_OCCLUSION_WINDOW; 2],
                stride: [crate::methods::DEFAULT_OCCLUSION_WINDOW; 2],
                fill: 0.0,
            },
            other => {
                return Err(Error::Parse {
                    what: "method",
                    text: other.to_string(),
                    reason: "expected one of lrp, gradient, gradient-x-input, smoothgrad, integrated-gradients, occlusion".into(),
                });
            }
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Strategy> {
        match text {
            "auto" => Ok(Strategy::Auto),
            "layer-wise" => Ok(Strategy::LayerWise),
            other => Err(Error::Parse {
                what: "strategy",
                text: other.to_string(),
                reason: "expected auto or layer-wise".into(),
            }),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Auto => "auto",
            Strategy::LayerWise => "layer-wise",
        })
    }
}

#[cfg(test)]
mod tests {

    /// Every rule `RULE_SYNTAX` lists parses (given its numbers), and every built-in rule's
    /// name is listed: the one list the parser's error and `--rule`'s help show.
    #[test]
    fn every_listed_rule_parses_and_every_rule_is_listed() {
        let names: Vec<&str> = RULE_SYNTAX
            .split(", ")
            .map(|spec| spec.split(['[', ':']).next().unwrap())
            .collect();
        for name in &names {
            let text = if *name == "z-box" {
                "z-box:0,1".to_string()
            } else {
                name.to_string()
            };
            let rule: Rule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.name(), *name);
        }
        for rule in crate::rules::tests::every_built_in_rule() {
            assert!(
                names.contains(&rule.name()),
                "{} is not in RULE_SYNTAX",
                rule.name()
            );
        }
    }

    use super::*;

    #[test]
    fn every_rule_reads_back_what_it_writes() {
        for text in [
            "zero",
            "epsilon:0.25",
            "gamma:1.5",
            "alpha-beta:2,1",
            "z-plus",
            "z-box:-3,3",
            "flat",
            "w-square",
            "pass",
            "norm",
        ] {
            let rule: Rule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.to_string(), text);
        }
        assert_eq!(
            "epsilon".parse::<Rule>().unwrap(),
            Rule::Epsilon {
                epsilon: DEFAULT_EPSILON
            }
        );
    }

    #[test]
    fn bad_text_says_what_is_wrong() {
        let message = |text: &str| text.parse::<Rule>().unwrap_err().to_string();
        assert!(
            message("z-box").contains("`z-box` needs 2 number(s)"),
            "{}",
            message("z-box")
        );
        assert!(message("gamma:x").contains("`x` is not a number"));
        assert!(message("epsilon:1,2").contains("takes 1 number(s), got 2"));
        assert!(message("lrp-0").contains("unknown rule `lrp-0`"));
        assert!(message("alpha-beta:2,2").contains("alpha - beta must equal 1"));
        let err = "epsilon-gamma-box"
            .parse::<Composite>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs 2 number(s)"), "{err}");
        assert!("epsilon-gamma-box:0,1".parse::<Composite>().is_ok());
        assert!(
            "layerwise"
                .parse::<Strategy>()
                .unwrap_err()
                .to_string()
                .contains("auto or layer-wise")
        );
        assert_eq!(
            "smoothgrad".parse::<Method>().unwrap().to_string(),
            "smoothgrad"
        );
    }
}
