//! `edge4d bench`: kernel timings as JSON lines.

use std::time::Instant;

use clap::{Args, ValueEnum};
use edge4d_runtime::ops::matmul::{matmul_with, MatmulKernel};
use edge4d_runtime::Device;

#[derive(Clone, Copy, ValueEnum)]
pub enum BenchOp {
    /// C = A B for square matrices, every rung of the matmul ladder.
    Matmul,
    /// P4Transformer forward and forward+backward per clip (--configs fixture,paper-msr).
    P4transformer,
    /// Farthest point sampling and ball query at the paper's sizes.
    PointOps,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    op: BenchOp,
    /// Square sizes to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [256usize, 512, 1024])]
    sizes: Vec<usize>,
    /// Timed repeats per configuration (after warm-up); the median is reported.
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// Untimed runs before measuring (pipeline compilation, caches).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Only this rung: naive, tiled, regblock or regblock8 (default: all).
    #[arg(long)]
    kernel: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// p4transformer: model configurations to time (fixture, humanoid-small, paper-msr).
    #[arg(long, value_delimiter = ',', default_values_t = ["fixture".to_string(), "paper-msr".to_string()])]
    configs: Vec<String>,
}

pub fn run(dev: &Device, args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.op {
        BenchOp::Matmul => {}
        BenchOp::P4transformer => {
            return crate::bench_p4::p4transformer(
                dev,
                &args.configs,
                args.warmup,
                args.repeats,
                args.json,
            )
        }
        BenchOp::PointOps => {
            return crate::bench_p4::point_ops(dev, args.warmup, args.repeats, args.json)
        }
    }
    let kernels: Vec<MatmulKernel> = match &args.kernel {
        Some(k) => vec![MatmulKernel::parse(k).ok_or_else(|| {
            format!("unknown kernel {k:?}: expected naive, tiled, regblock or regblock8")
        })?],
        None => MatmulKernel::ALL.to_vec(),
    };
    let adapter = dev.adapter();
    if !args.json {
        println!("adapter: {adapter}");
        println!(
            "{:>6} {:>10} {:>12} {:>10}",
            "size", "kernel", "median ms", "GFLOP/s"
        );
    }
    for &n in &args.sizes {
        let data: Vec<f32> = (0..n * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let a = dev.upload(&data, &[n, n])?;
        let b = dev.upload(&data, &[n, n])?;
        for &kernel in &kernels {
            let once = || -> Result<f64, edge4d_runtime::Error> {
                let t0 = Instant::now();
                dev.run(|s| matmul_with(s, kernel, &a, &b, false, false))?;
                dev.wait()?;
                Ok(t0.elapsed().as_secs_f64() * 1e3)
            };
            for _ in 0..args.warmup {
                once()?;
            }
            let mut times = (0..args.repeats.max(1))
                .map(|_| once())
                .collect::<Result<Vec<_>, _>>()?;
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let gflops = 2.0 * (n as f64).powi(3) / (median * 1e-3) / 1e9;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "op": "matmul",
                        "kernel": kernel.name(),
                        "shape": [n, n, n],
                        "backend": adapter.backend,
                        "adapter": adapter.name,
                        "device_type": adapter.device_type,
                        "repeats": times.len(),
                        "median_ms": (median * 1000.0).round() / 1000.0,
                        "gflops": (gflops * 100.0).round() / 100.0,
                        "default": kernel == MatmulKernel::for_device(dev),
                    })
                );
            } else {
                println!("{n:>6} {:>10} {median:>12.3} {gflops:>10.2}", kernel.name());
            }
        }
    }
    Ok(())
}
