//! `edge4d bench`: kernel timings as JSON lines.

mod attention;
mod concept;
mod p4;

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
    /// One C2P pre-training step (configs/humanoid-c2p.toml, B 8 × 12 × 256): forward,
    /// InfoNCE, backward and SGD.
    C2p,
    /// Attention at the paper-MSR shape (--batch-size clips × 8 heads, 768 tokens, head
    /// dim 128), forward and forward+backward, fused against unfused: time, peak
    /// memory, dispatches.
    Attention,
    /// Farthest point sampling and ball query at the paper's sizes.
    PointOps,
    /// Peak memory of one full training step (forward, loss, backward, SGD) of each
    /// P4Transformer config (--configs fixture,humanoid-small,paper-msr) at
    /// --batch-size clips.
    Memory,
    /// The 4D semantic segmentation net: forward (eval, train) and forward+backward per
    /// clip (--configs humanoid-parts,paper-synthia).
    Segmentation,
    /// Per-frame latency of the live stream (the stream_depth job), with and without
    /// reuse of the tube features of frames already seen.
    Stream,
    /// One concept-distillation step (Point-MAE + concept head forward, MSE, backward,
    /// AdamW) at batch 8, for point-mae configs given with --configs (default: the tiny
    /// and the paper's).
    Concept,
    /// The frozen 2D teacher (--teacher-onnx) through tract: load time and ms per
    /// image; --input/--output to compare its prefix with another runtime's.
    Teacher,
    /// One process's time to its first prediction (`bench stream` runs it twice).
    #[value(hide = true)]
    FirstFrame,
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
    /// Model configurations to time: p4transformer (fixture, humanoid-small, paper-msr);
    /// segmentation (humanoid-parts, paper-synthia or a .toml file; default
    /// humanoid-parts).
    #[arg(long, value_delimiter = ',', default_values_t = ["fixture".to_string(), "paper-msr".to_string()])]
    configs: Vec<String>,
    /// Clips per step (bench memory, bench attention; the paper trains MSR-Action3D at
    /// 14).
    #[arg(long, default_value_t = 14, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,
    /// bench teacher: the ONNX teacher (image (1, 3, 224, 224) → prefix (1, k, d)).
    #[arg(long, value_name = "MODEL.onnx")]
    teacher_onnx: Option<std::path::PathBuf>,
    /// bench teacher: a safetensors file whose `image` (1, 3, 224, 224) is the input
    /// (default: a ramp from −2 to 2).
    #[arg(long)]
    input: Option<std::path::PathBuf>,
    /// bench teacher: write the prefix here (safetensors, `prefix`).
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

pub fn run(dev: &Device, args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.op {
        BenchOp::Matmul => {}
        BenchOp::P4transformer => {
            return p4::p4transformer(dev, &args.configs, args.warmup, args.repeats, args.json)
        }
        BenchOp::Segmentation => {
            let configs: Vec<String> = if args
                .configs
                .iter()
                .any(|c| c.contains("parts") || c.contains("synthia"))
            {
                args.configs.clone()
            } else {
                vec!["humanoid-parts".into()]
            };
            return p4::segmentation(dev, &configs, args.warmup, args.repeats, args.json);
        }
        BenchOp::PointOps => return p4::point_ops(dev, args.warmup, args.repeats, args.json),
        BenchOp::Stream => return stream(dev, args.json),
        BenchOp::FirstFrame => {
            println!("{}", first_frame(dev)?);
            return Ok(());
        }
        BenchOp::Memory => return p4::memory(dev, &args.configs, args.batch_size, args.json),
        BenchOp::Attention => {
            return attention::attention(dev, args.batch_size, args.warmup, args.repeats, args.json)
        }
        BenchOp::C2p => return p4::c2p(dev, args.warmup, args.repeats, args.json),
        BenchOp::Teacher => {
            let path = args
                .teacher_onnx
                .as_deref()
                .ok_or("bench teacher needs --teacher-onnx MODEL.onnx")?;
            return concept::teacher(
                path,
                args.input.as_deref(),
                args.output.as_deref(),
                args.warmup,
                args.repeats,
                args.json,
            );
        }
        BenchOp::Concept => {
            let defaults = ["fixture".to_string(), "paper-msr".to_string()];
            let configs: Vec<std::path::PathBuf> = if args.configs == defaults {
                vec![
                    "configs/pointmae-concept-tiny.toml".into(),
                    "configs/pointmae-concept.toml".into(),
                ]
            } else {
                args.configs.iter().map(Into::into).collect()
            };
            return concept::bench(dev, &configs, 8, args.warmup, args.repeats, args.json);
        }
    }
    let kernels: Vec<MatmulKernel> = match &args.kernel {
        Some(k) => vec![MatmulKernel::parse(k).ok_or_else(|| {
            format!("unknown kernel {k:?}: expected naive, tiled, regblock or regblock8")
        })?],
        // Every rung is the same native product on the CPU backend.
        None if dev.is_native_cpu() => vec![MatmulKernel::for_device(dev)],
        None => MatmulKernel::ALL.to_vec(),
    };
    let kernel_name = |k: MatmulKernel| {
        if dev.is_native_cpu() {
            "gemm"
        } else {
            k.name()
        }
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
                        "kernel": kernel_name(kernel),
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
                println!(
                    "{n:>6} {:>10} {median:>12.3} {gflops:>10.2}",
                    kernel_name(kernel)
                );
            }
        }
    }
    Ok(())
}

/// The stream_depth job, silent, over 4 actions of 45 frames, with and without reuse.
/// Time from opening the bundled model's stream to its first prediction in this
/// process (pipeline compilation included), then one steady frame.
fn first_frame(dev: &Device) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    use edge4d_trainer::live::bundled_model;
    use edge4d_trainer::stream::{load_model, ActionStream, StreamOptions};
    let started = Instant::now();
    let (config, weights) = bundled_model();
    let (model, params) = load_model(dev, &config, &weights)?;
    let opts = StreamOptions::default();
    let (window, points) = (opts.window, opts.points);
    let mut stream = ActionStream::new(dev, model, params, opts)?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let compiled_at_open = dev.compiled_pipelines();
    let mut rng = edge4d_trainer::rng::SplitMix64::new(7);
    let mut frame = || -> Vec<f32> {
        (0..points)
            .flat_map(|_| {
                [
                    rng.uniform(-0.4, 0.4),
                    rng.uniform(-0.8, 0.8),
                    rng.uniform(2.0, 2.6),
                ]
            })
            .collect()
    };
    let mut first = None;
    for _ in 0..window {
        if stream.push_points(&frame())?.is_some() {
            first = Some(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let first_frame_ms = first.ok_or("the stream made no prediction after a full window")?;
    let compiled_by_frames = dev.compiled_pipelines() - compiled_at_open;
    let t = Instant::now();
    stream.push_points(&frame())?;
    let steady_ms = t.elapsed().as_secs_f64() * 1e3;
    let adapter = dev.adapter();
    Ok(serde_json::json!({
        "op": "stream_first_frame",
        "backend": adapter.backend,
        "adapter": adapter.name,
        "open_ms": open_ms,
        "warm_up_ms": stream.warm_up_ms(),
        "first_frame_ms": first_frame_ms,
        "steady_frame_ms": steady_ms,
        "pipelines_compiled_at_open": compiled_at_open,
        "pipelines_compiled_by_frames": compiled_by_frames,
        "pipeline_cache": edge4d_runtime::pipeline_cache::cache_dir()
            .map(|d| d.display().to_string()),
    }))
}

/// `first_frame` in two fresh processes sharing empty cache directories — edge4d's
/// and the drivers' own shader caches (Mesa's, NVIDIA's) — so the first compiles every
/// pipeline (cold) and the second starts from what the first left (warm).
fn first_frame_cold_and_warm(
    dev: &Device,
) -> Result<[serde_json::Value; 2], Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let cache = std::env::temp_dir().join(format!("edge4d-first-frame-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let run = || -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let out = std::process::Command::new(&exe)
            .args(["bench", "first-frame"])
            .env("EDGE4D_BACKEND", &dev.adapter().backend)
            .env("EDGE4D_CACHE_DIR", cache.join("edge4d"))
            .env("XDG_CACHE_HOME", cache.join("xdg"))
            .env("MESA_SHADER_CACHE_DIR", cache.join("mesa"))
            .env("__GL_SHADER_DISK_CACHE_PATH", cache.join("nvidia"))
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "bench first-frame failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text
            .lines()
            .last()
            .ok_or("bench first-frame printed nothing")?;
        Ok(serde_json::from_str(last)?)
    };
    let both = run().and_then(|cold| Ok([cold, run()?]));
    let _ = std::fs::remove_dir_all(&cache);
    both
}

fn stream(dev: &Device, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    use clap::Parser;
    use edge4d_trainer::live::{percentile, run, LiveArgs};
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        live: LiveArgs,
    }
    let adapter = dev.adapter();
    let [cold, warm] = first_frame_cold_and_warm(dev)?;
    let ms = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "op": "stream_first_frame",
                "backend": adapter.backend,
                "adapter": adapter.name,
                "cold_first_frame_ms": ms(&cold, "first_frame_ms"),
                "warm_first_frame_ms": ms(&warm, "first_frame_ms"),
                "cold_warm_up_ms": ms(&cold, "warm_up_ms"),
                "warm_warm_up_ms": ms(&warm, "warm_up_ms"),
                "steady_frame_ms": ms(&warm, "steady_frame_ms"),
            })
        );
    } else {
        println!("adapter: {adapter}");
        println!(
            "first prediction after opening the stream: {:.0} ms in a cold process (pipelines compiled: {:.0} ms), {:.0} ms in a warm one ({:.0} ms); then {:.1} ms per frame",
            ms(&cold, "first_frame_ms"),
            ms(&cold, "warm_up_ms"),
            ms(&warm, "first_frame_ms"),
            ms(&warm, "warm_up_ms"),
            ms(&warm, "steady_frame_ms"),
        );
    }
    if !json {
        println!(
            "{:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "reuse", "frames", "p50 ms", "p95 ms", "max ms", "frames/s", "accuracy"
        );
    }
    for reuse in [true, false] {
        let mut live = Defaults::parse_from(["bench"]).live;
        live.actions = 4;
        live.no_reuse = !reuse;
        live.silent = true;
        let report = run(dev, &live)?;
        p4::print_profile(
            dev,
            if reuse {
                "stream (reuse)"
            } else {
                "stream (no reuse)"
            },
        );
        let predicted: Vec<_> = report
            .frames
            .iter()
            .filter(|f| f.predicted.is_some())
            .collect();
        let mut lat: Vec<f64> = predicted.iter().map(|f| f.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
        let accuracy = predicted.iter().filter(|f| f.truth == f.predicted).count() as f64
            / predicted.len().max(1) as f64;
        let (p50, p95, max) = (
            percentile(&lat, 0.5),
            percentile(&lat, 0.95),
            lat.last().copied().unwrap_or(f64::NAN),
        );
        let round = |v: f64| (v * 100.0).round() / 100.0;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "op": "stream",
                    "reuse": reuse,
                    "window": live.window,
                    "points": live.points,
                    "frames": lat.len(),
                    "backend": adapter.backend,
                    "adapter": adapter.name,
                    "device_type": adapter.device_type,
                    "p50_ms": round(p50),
                    "p95_ms": round(p95),
                    "max_ms": round(max),
                    "frames_per_s": round(1e3 / mean),
                    "frame_accuracy": round(accuracy),
                    "dispatches_per_frame": predicted.last().map_or(0, |f| f.dispatches),
                })
            );
        } else {
            println!(
                "{:>6} {:>8} {p50:>9.1} {p95:>9.1} {max:>9.1} {:>9.1} {:>8.1}%",
                reuse,
                lat.len(),
                1e3 / mean,
                accuracy * 100.0
            );
        }
    }
    Ok(())
}
