//! Streams depth frames into an action model and prints, per frame, the predicted and
//! true action and the latency; ends with accuracy and latency p50/p95/max.
//!
//! By default a virtual depth camera (MSR-Action3D's, 160×120) watches the humanoid
//! perform a sequence of actions from an unseen viewpoint, and the bundled model
//! (`models/humanoid-action.safetensors`, trained by `edge4d finetune`; see
//! `models/README.md`) predicts the action from the last 16 frames. Nothing is
//! downloaded and no GPU is needed.
//!
//! ```sh
//! cargo run --release --example stream_depth
//! cargo run --release --example stream_depth -- --finetune          # adapt on the device
//! cargo run --release --example stream_depth -- --render frames/    # PNG per frame
//! cargo run --release --example stream_depth -- --depth-dir DIR     # real 16-bit PNG depth
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use edge4d_runtime::{BackendChoice, Device, DeviceOptions};
use edge4d_trainer::depth_io::{read_depth_png, DepthIntrinsics};
use edge4d_trainer::humanoid::camera::{DepthNoise, Intrinsics};
use edge4d_trainer::humanoid::generate::{Assets, GenConfig, Split, View, ACTIONS};
use edge4d_trainer::humanoid::sequence::perform;
use edge4d_trainer::render::cloud_png;
use edge4d_trainer::rng::SplitMix64;
use edge4d_trainer::stream::{load_model, ActionStream, StreamOptions};

type BoxError = Box<dyn std::error::Error>;

#[derive(Parser, Debug, Clone)]
#[command(
    about = "Stream depth frames into an action model: prediction and latency per frame",
    long_about = "Stream depth frames into an action model and print, per frame, the predicted and true action and the latency, then accuracy and latency p50/p95/max.\n\nBy default a virtual depth camera watches the humanoid perform a sequence of actions from a viewpoint the model never saw, with the bundled model. --depth-dir streams real 16-bit PNG depth frames instead."
)]
struct Args {
    /// GPU backend: auto, vulkan, metal, dx12 or gl
    #[arg(long, env = "EDGE4D_BACKEND", default_value = "auto")]
    backend: String,
    /// Model config (TOML)
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/humanoid-small.toml"))]
    config: PathBuf,
    /// Model weights (safetensors state_dict)
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/models/humanoid-action.safetensors"))]
    weights: PathBuf,
    /// Frames per window (the model's clip length)
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Points per frame fed to the model
    #[arg(long, default_value_t = 512)]
    points: usize,
    /// Actions the humanoid performs, in a random order (at most 15)
    #[arg(long, default_value_t = 15)]
    actions: usize,
    /// Frames per action (15 frames per second)
    #[arg(long, default_value_t = 45)]
    frames_per_action: usize,
    /// Seed of the viewpoint, the action order and the point sampling
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Recompute every window from scratch instead of reusing the tube features of
    /// frames already seen (for comparison)
    #[arg(long)]
    no_reuse: bool,
    /// Stream 16-bit PNG depth frames from this folder (sorted by name) with its
    /// intrinsics.json; an optional labels.txt gives each frame's action (name or index)
    #[arg(long)]
    depth_dir: Option<PathBuf>,
    /// Adapt on the device: stream a labelled performance from the same camera, run
    /// fine-tuning steps, then stream the evaluation performance again
    #[arg(long)]
    finetune: bool,
    /// Fine-tuning steps (with --finetune)
    #[arg(long, default_value_t = 40)]
    finetune_steps: usize,
    /// Write a PNG of each frame's point cloud coloured by prediction into this folder
    #[arg(long)]
    render: Option<PathBuf>,
    /// Print only the summary
    #[arg(long, short)]
    quiet: bool,
}

/// One streamed frame's outcome.
struct FrameResult {
    truth: Option<usize>,
    predicted: Option<usize>,
    latency_ms: f64,
}

fn class_name(c: usize, classes: usize) -> String {
    if classes == ACTIONS.len() {
        ACTIONS[c].to_string()
    } else {
        format!("class {c}")
    }
}

/// Pushes one depth frame, prints its line, optionally renders it and (when `label`)
/// labels it for fine-tuning.
fn push_frame(
    stream: &mut ActionStream<'_>,
    args: &Args,
    frame: usize,
    depth: &[u16],
    intrinsics: &DepthIntrinsics,
    truth: Option<usize>,
    label: bool,
) -> Result<FrameResult, BoxError> {
    let t0 = Instant::now();
    let predicted = stream.push_depth(depth, intrinsics)?.map(|p| p.class);
    let latency_ms = t0.elapsed().as_secs_f64() * 1e3;
    let classes = stream.num_classes();
    if label {
        if let Some(t) = truth {
            stream.label_latest(t as u32)?;
        }
    }
    if !args.quiet {
        let truth_name = truth.map_or("?".into(), |t| class_name(t, classes));
        match (predicted, stream.latest()) {
            (Some(p), Some(pred)) => println!(
                "frame {frame:4}  true {truth_name:<15} pred {:<15} p={:.2}  {latency_ms:6.1} ms  (tube features computed {}/{})",
                class_name(p, classes),
                pred.probabilities[p],
                stream.tube_features_computed(),
                stream.tube_features_per_window(),
            ),
            _ => println!(
                "frame {frame:4}  true {truth_name:<15} (filling the window)  {latency_ms:6.1} ms"
            ),
        }
    }
    if let (Some(dir), Some(p)) = (&args.render, predicted) {
        let pts: Vec<f32> = intrinsics
            .back_project(depth)
            .into_iter()
            .flatten()
            .collect();
        cloud_png(
            &dir.join(format!("frame_{frame:05}.png")),
            &pts,
            320,
            240,
            truth,
            p,
        )?;
    }
    Ok(FrameResult {
        truth,
        predicted,
        latency_ms,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn summarize(title: &str, results: &[FrameResult]) -> Option<f64> {
    let predicted: Vec<&FrameResult> = results.iter().filter(|r| r.predicted.is_some()).collect();
    let mut lat: Vec<f64> = predicted.iter().map(|r| r.latency_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let labelled: Vec<&&FrameResult> = predicted.iter().filter(|r| r.truth.is_some()).collect();
    let accuracy = (!labelled.is_empty()).then(|| {
        labelled.iter().filter(|r| r.truth == r.predicted).count() as f64 / labelled.len() as f64
    });
    println!("\n{title}");
    println!("  frames streamed        {}", results.len());
    println!("  frames predicted       {}", predicted.len());
    match accuracy {
        Some(a) => println!(
            "  frame accuracy         {:.1}% ({} of {})",
            a * 100.0,
            labelled.iter().filter(|r| r.truth == r.predicted).count(),
            labelled.len()
        ),
        None => println!("  frame accuracy         n/a (no labels)"),
    }
    println!(
        "  latency p50 / p95 / max  {:.1} / {:.1} / {:.1} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.95),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
    println!("  throughput             {:.1} frames/s", 1e3 / mean);
    accuracy
}

/// The humanoid's camera as depth intrinsics (millimetre depth).
fn humanoid_intrinsics(i: Intrinsics) -> DepthIntrinsics {
    DepthIntrinsics {
        width: i.width,
        height: i.height,
        fx: i.focal,
        fy: i.focal,
        cx: i.width as f32 / 2.0,
        cy: i.height as f32 / 2.0,
        depth_scale: 0.001,
    }
}

/// Streams one humanoid performance: `labelled` frames are labelled for fine-tuning.
fn stream_performance(
    stream: &mut ActionStream<'_>,
    args: &Args,
    assets: &Assets,
    view: &View,
    seed: u64,
    labelled: bool,
) -> Result<Vec<FrameResult>, BoxError> {
    let cfg = GenConfig {
        noise: DepthNoise::KINECT,
        ..GenConfig::default()
    };
    let intrinsics = humanoid_intrinsics(cfg.intrinsics);
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..ACTIONS.len()).collect();
    rng.shuffle(&mut order);
    order.truncate(args.actions.clamp(1, ACTIONS.len()));
    let mut results = Vec::new();
    stream.reset_window()?;
    perform(
        assets,
        &order,
        args.frames_per_action,
        view,
        &cfg,
        &mut rng,
        |frame, depth, action| {
            let r = push_frame(
                stream,
                args,
                frame,
                &depth,
                &intrinsics,
                Some(action),
                labelled,
            )
            .map_err(|e| edge4d_runtime::Error::InvalidArgument {
                op: "stream_depth",
                detail: e.to_string(),
            })?;
            results.push(r);
            Ok(())
        },
    )?;
    Ok(results)
}

/// Streams a folder of 16-bit PNG depth frames.
fn stream_folder(
    stream: &mut ActionStream<'_>,
    args: &Args,
    dir: &Path,
) -> Result<Vec<FrameResult>, BoxError> {
    let intrinsics = DepthIntrinsics::load(&dir.join("intrinsics.json"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot list: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .png depth frames", dir.display()).into());
    }
    let labels: Vec<Option<usize>> = match std::fs::read_to_string(dir.join("labels.txt")) {
        Ok(text) => text
            .lines()
            .map(|l| {
                let l = l.trim();
                ACTIONS
                    .iter()
                    .position(|a| *a == l)
                    .or_else(|| l.parse().ok())
            })
            .collect(),
        Err(_) => vec![],
    };
    let mut results = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (w, h, depth) = read_depth_png(f)?;
        if (w, h) != (intrinsics.width, intrinsics.height) {
            return Err(format!(
                "{}: {w}x{h} does not match intrinsics.json's {}x{}",
                f.display(),
                intrinsics.width,
                intrinsics.height
            )
            .into());
        }
        let truth = labels.get(i).copied().flatten();
        results.push(push_frame(
            stream,
            args,
            i,
            &depth,
            &intrinsics,
            truth,
            false,
        )?);
    }
    Ok(results)
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let dev = Device::new(&DeviceOptions {
        backend: BackendChoice::parse(&args.backend)?,
    })?;
    if let Some(dir) = &args.render {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (model, params) = load_model(&dev, &args.config, &args.weights)?;
    println!(
        "edge4d stream_depth on {}\nmodel {} ({} classes), window {} frames x {} points, tube-feature reuse {}",
        dev.adapter(),
        args.weights.display(),
        model.cfg.num_classes,
        args.window,
        args.points,
        if args.no_reuse { "off" } else { "on" }
    );
    let mut stream = ActionStream::new(
        &dev,
        model,
        params,
        StreamOptions {
            window: args.window,
            points: args.points,
            reuse: !args.no_reuse,
            seed: args.seed,
            ..StreamOptions::default()
        },
    )?;
    if let Some(dir) = &args.depth_dir {
        let results = stream_folder(&mut stream, &args, dir)?;
        summarize(&format!("{} depth frames", dir.display()), &results);
        return Ok(());
    }
    let assets = Assets::bundled()?;
    // A viewpoint, body scale and speed from the test side of the dataset's split.
    let mut rng = SplitMix64::new(args.seed);
    let view = View::sample(Split::Test, &assets.motions[0], &mut rng);
    println!(
        "virtual camera: azimuth {:.0} deg, elevation {:.0} deg, {:.1} m away; body scale {}, speed {}",
        view.azimuth_deg, view.elevation_deg, view.distance, view.scale, view.speed
    );
    let before = stream_performance(&mut stream, &args, &assets, &view, args.seed, false)?;
    let acc_before = summarize("summary", &before);
    if args.finetune {
        println!("\nfine-tuning on the device: a labelled performance from the same camera");
        let quiet = Args {
            quiet: true,
            render: None,
            ..args.clone()
        };
        stream_performance(
            &mut stream,
            &quiet,
            &assets,
            &view,
            args.seed ^ 0xCA11,
            true,
        )?;
        let t0 = Instant::now();
        let loss = stream.finetune(args.finetune_steps, 8)?;
        println!(
            "  {} steps on {} labelled windows: mean loss {loss:.3}, {:.1} s",
            args.finetune_steps,
            stream.labelled_windows(),
            t0.elapsed().as_secs_f64()
        );
        let after = stream_performance(&mut stream, &quiet, &assets, &view, args.seed, false)?;
        let acc_after = summarize("after fine-tuning (the same performance again)", &after);
        if let (Some(b), Some(a)) = (acc_before, acc_after) {
            println!(
                "\nframe accuracy before / after fine-tuning: {:.1}% / {:.1}%",
                b * 100.0,
                a * 100.0
            );
        }
    }
    Ok(())
}
