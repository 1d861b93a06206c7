//! `lrp-grad`: explain a model (ONNX, or JSON + safetensors) on inputs given as .npy.

mod answers;
mod args;
mod bench;
mod evaluate;
mod evaluate_text;
mod explain;
mod info;
mod inputs;
mod metric;
mod model;
mod npy;
mod output;
mod prompt;
mod ragged;
mod report;
mod spec;
mod tokens;

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use burn::tensor::{Device, Tensor};
use clap::{Parser, Subcommand};

pub(crate) use args::{ModelArgs, RuleArgs};
use explain::ExplainArgs;
pub(crate) use explain::{Batch, batch};
use info::InfoArgs;

/// mimalloc rather than the system allocator: Burn's CPU backends allocate and free
/// activation-sized buffers on every operation, and glibc's malloc hands such large blocks back
/// to the system each time, so every new buffer starts with page faults (a fifth to a quarter
/// of an explanation's time on mnist-cnn).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lrp-grad",
    version,
    about = "Explain neural-network predictions with Layer-wise Relevance Propagation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
enum Command {
    /// Explain inputs: write their relevance (.npy) and optionally a heatmap (.png).
    Explain(ExplainArgs),
    /// Show the model's layers, shapes, parameter counts and the rule each layer gets.
    Info(InfoArgs),
    /// Time forward, input gradient and LRP on random input.
    Bench(bench::BenchArgs),
    /// Compare methods' explanations of images: faithfulness (pixel flipping, region
    /// perturbation, selectivity), complexity and conservation.
    Evaluate(evaluate::EvaluateArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Explain(args) => explain::run(args),
        Command::Info(args) => info::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Evaluate(args) => evaluate::run(args),
    }
}

/// The default device (Burn picks the backend; `BURN_DEVICE` overrides it). Burn panics on a
/// `BURN_DEVICE` this build cannot serve; that becomes an error message here.
pub(crate) fn device() -> Result<Device> {
    let Ok(name) = std::env::var("BURN_DEVICE") else {
        return Ok(Device::default());
    };
    // A GPU backend may only fail when first used (no adapter): one tiny read-back finds out.
    let probe = || {
        let device = Device::default();
        Tensor::<1>::zeros([1], &device).into_scalar::<f32>();
        device
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device = std::panic::catch_unwind(probe);
    std::panic::set_hook(hook);
    device.map_err(|_| anyhow!("BURN_DEVICE={name}: this build of lrp-grad has no such backend, or the device cannot be opened (unset it to use the default CPU backend)"))
}
