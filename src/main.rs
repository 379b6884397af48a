//! The `edge4d` command line.

mod bench;
mod data;
mod demo;
mod eval;
mod finetune;
mod infer;
mod info;
mod plot;
mod pretrain;
mod stream;
mod train_args;

use clap::{Parser, Subcommand};
use edge4d_runtime::{BackendChoice, Device, DeviceOptions};

/// Run and train 4D point-cloud-sequence networks on any GPU (Vulkan, Metal, DX12, GL),
/// with every kernel written in WGSL, or natively on the CPU.
#[derive(Parser)]
#[command(name = "edge4d", version, about, long_about = None)]
struct Cli {
    /// Backend: auto (a real GPU, else cpu), vulkan, metal, dx12, gl or cpu (native
    /// kernels). Mesa's software GPUs (lavapipe, llvmpipe) run only when named (vulkan,
    /// gl). Overrides EDGE4D_BACKEND.
    #[arg(long, global = true, env = "EDGE4D_BACKEND", default_value = "auto")]
    backend: String,

    /// Threads of the cpu backend (default: every core). Overrides EDGE4D_THREADS.
    #[arg(long, global = true, env = "EDGE4D_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the backends edge4d can use (GPU adapters, the native CPU backend with its
    /// threads and SIMD level) and their limits, and the one selected.
    Info,
    /// Measure kernels; prints one JSON object per line with --json.
    Bench(bench::BenchArgs),
    /// Train a small MLP on the spiral dataset on the GPU (forward, backward and SGD
    /// in one submission per step) and report loss and accuracy.
    Demo(demo::DemoArgs),
    /// Run a P4Transformer-family model on a clip: --config model.toml --weights
    /// weights.safetensors --input clip.safetensors --output out.safetensors.
    Infer(infer::InferArgs),
    /// Fine-tune a P4Transformer on a clip dataset (safetensors with `clip` and
    /// `label`): progress bar, metrics.jsonl, atomic checkpoints, --resume. With
    /// --task classification: a Point-MAE encoder on a folder of labelled RGB-D frames.
    Finetune(finetune::FinetuneArgs),
    /// Pre-train a backbone without labels: --method c2p distils complete clips into
    /// partial views (made on the GPU from virtual camera trajectories, or read from the
    /// dataset's `partial`); --method concept-distill aligns a Point-MAE encoder's
    /// concept queries with a frozen 2D teacher's prefix (--teacher model.onnx) on
    /// paired RGB-D frames. The result loads with `finetune --init`.
    Pretrain(pretrain::PretrainArgs),
    /// Evaluate a model on a clip dataset (accuracy and a per-class table; Acc, Edit and
    /// F1@{10,25,50} for per-frame labels).
    Eval(eval::EvalArgs),
    /// Draw a run's metrics.jsonl as a PNG of loss and accuracy curves.
    Plot(plot::PlotArgs),
    /// Stream depth frames into an action model: prediction, truth and latency per
    /// frame, then accuracy and latency p50/p95/max. By default the humanoid performs
    /// for a virtual depth camera in front of the bundled model (the `stream_depth`
    /// example); --depth-dir streams real 16-bit PNG depth, --finetune adapts on the
    /// device, --render writes a PNG per frame.
    Stream(stream::StreamArgs),
    /// Make datasets: the rendered human-motion dataset, or MSR-Action3D from its raw files.
    #[command(subcommand)]
    Data(data::DataCommand),
}

fn main() {
    edge4d_runtime::prepare_headless_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn open(backend: &str, threads: Option<u16>) -> Result<Device, edge4d_runtime::Error> {
    Device::new(&DeviceOptions {
        backend: BackendChoice::parse(backend)?,
        threads: threads.map(usize::from),
    })
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Info => info::run(&cli.backend, cli.threads),
        Command::Bench(args) => bench::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Demo(args) => demo::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Infer(args) => infer::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Finetune(args) => finetune::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Pretrain(args) => pretrain::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Data(cmd) => data::run(&cmd),
        Command::Plot(args) => plot::run(&args),
        Command::Eval(args) => eval::run(&open(&cli.backend, cli.threads)?, &args),
        Command::Stream(args) => stream::run(&open(&cli.backend, cli.threads)?, &args),
    }
}
