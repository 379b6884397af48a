//! The live streaming driver behind `cargo run --example stream_depth` and
//! `edge4d stream`: frames from a humanoid performance seen by a virtual depth camera
//! or from a folder of 16-bit PNG depth frames go through an [`ActionStream`], one line
//! per frame (prediction, truth, latency), then a summary; optionally on-device
//! fine-tuning from a labelled performance, and PNG snapshots of each frame.

use std::path::{Path, PathBuf};
use std::time::Instant;

use edge4d_runtime::{Device, Error};

use crate::depth_io::{read_depth_png, DepthIntrinsics};
use crate::humanoid::camera::DepthNoise;
use crate::humanoid::generate::{Assets, GenConfig, Split, View, ACTIONS};
use crate::humanoid::sequence::perform;
use crate::render::{cloud_png, Caption};
use crate::rng::SplitMix64;
use crate::stream::{load_model, ActionStream, StreamOptions};

type BoxError = Box<dyn std::error::Error>;

/// println! unless `silent` (benchmarks print JSON only).
macro_rules! say {
    ($silent:expr, $($t:tt)*) => {
        if !$silent {
            println!($($t)*)
        }
    };
}

/// What to stream and how (the flags of `edge4d stream` and the `stream_depth` example).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Model config (TOML) [default: configs/humanoid-small.toml]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model weights (safetensors) [default: models/humanoid-action.safetensors]
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Frames per window (the model's clip length)
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Points per frame fed to the model
    #[arg(long, default_value_t = 512)]
    pub points: usize,
    /// Actions the humanoid performs, in a random order (1 to 15)
    #[arg(long, default_value_t = 15, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=15))]
    pub actions: usize,
    /// Frames per action (15 frames per second)
    #[arg(long, default_value_t = 45)]
    pub frames_per_action: usize,
    /// Seed of the viewpoint, the action order and the point sampling
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Recompute every window from scratch instead of reusing the tube features of
    /// frames already seen (for comparison)
    #[arg(long)]
    pub no_reuse: bool,
    /// Stream 16-bit PNG depth frames from this folder (sorted by name) with its
    /// intrinsics.json, or a TUM RGB-D style folder (depth.txt, depth/*.png at 5000 per
    /// metre); an optional labels.txt gives each frame's action (name or index)
    #[arg(long)]
    pub depth_dir: Option<PathBuf>,
    /// Adapt on the device: stream a labelled performance from the same camera, run
    /// fine-tuning steps, then stream the evaluation performance again
    #[arg(long)]
    pub finetune: bool,
    /// Fine-tuning steps (with --finetune)
    #[arg(long, default_value_t = 40)]
    pub finetune_steps: usize,
    /// Write a PNG of each frame's point cloud coloured by prediction into this folder
    #[arg(long)]
    pub render: Option<PathBuf>,
    /// Print only the summaries
    #[arg(long, short)]
    pub quiet: bool,
    /// Print nothing (benchmarks read the report instead).
    #[arg(skip)]
    pub silent: bool,
}

/// Outcome of a live run: one entry per streamed frame.
pub struct LiveReport {
    pub adapter: String,
    pub frames: Vec<FrameResult>,
    /// After on-device fine-tuning (with `finetune`), the same performance again.
    pub after_finetune: Option<Vec<FrameResult>>,
}

/// The bundled model's files in this repository.
pub fn bundled_model() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    (
        root.join("configs/humanoid-small.toml"),
        root.join("models/humanoid-action.safetensors"),
    )
}

/// One streamed frame's outcome.
pub struct FrameResult {
    pub truth: Option<usize>,
    pub predicted: Option<usize>,
    pub latency_ms: f64,
    /// GPU dispatches recorded for the prediction.
    pub dispatches: usize,
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
    stream: &mut ActionStream,
    args: &LiveArgs,
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
    if !args.quiet && !args.silent {
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
    if let (Some(dir), Some(p), Some(latest)) = (&args.render, predicted, stream.latest()) {
        let pts: Vec<f32> = intrinsics
            .back_project(depth)
            .into_iter()
            .flatten()
            .collect();
        let truth_name = truth.map(|t| class_name(t, classes));
        let predicted_name = class_name(p, classes);
        let caption = Caption {
            frame: frame as u64,
            truth: truth.zip(truth_name.as_deref()),
            predicted: (p, &predicted_name),
            confidence: latest.probabilities[p],
        };
        cloud_png(
            &dir.join(format!("frame_{frame:05}.png")),
            &pts,
            480,
            360,
            &caption,
        )?;
    }
    Ok(FrameResult {
        truth,
        predicted,
        latency_ms,
        dispatches: stream.dispatches_last(),
    })
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Prints a summary of `results` and returns the frame accuracy (None without labels).
pub fn summarize(title: &str, results: &[FrameResult], silent: bool) -> Option<f64> {
    let predicted: Vec<&FrameResult> = results.iter().filter(|r| r.predicted.is_some()).collect();
    let mut lat: Vec<f64> = predicted.iter().map(|r| r.latency_ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let labelled: Vec<&&FrameResult> = predicted.iter().filter(|r| r.truth.is_some()).collect();
    let accuracy = (!labelled.is_empty()).then(|| {
        labelled.iter().filter(|r| r.truth == r.predicted).count() as f64 / labelled.len() as f64
    });
    say!(silent, "\n{title}");
    say!(silent, "  frames streamed        {}", results.len());
    say!(silent, "  frames predicted       {}", predicted.len());
    match accuracy {
        Some(a) => say!(
            silent,
            "  frame accuracy         {:.1}% ({} of {})",
            a * 100.0,
            labelled.iter().filter(|r| r.truth == r.predicted).count(),
            labelled.len()
        ),
        None => say!(silent, "  frame accuracy         n/a (no labels)"),
    }
    if lat.is_empty() {
        say!(
            silent,
            "  latency                n/a (no frame was predicted)"
        );
    } else {
        say!(
            silent,
            "  latency p50 / p95 / max  {:.1} / {:.1} / {:.1} ms",
            percentile(&lat, 0.5),
            percentile(&lat, 0.95),
            lat.last().copied().unwrap_or(f64::NAN)
        );
        let mean = lat.iter().sum::<f64>() / lat.len() as f64;
        say!(
            silent,
            "  throughput             {:.1} frames/s",
            1e3 / mean
        );
    }
    accuracy
}

/// Streams one humanoid performance: `labelled` frames are labelled for fine-tuning.
fn stream_performance(
    stream: &mut ActionStream,
    args: &LiveArgs,
    assets: &Assets,
    view: &View,
    seed: u64,
    labelled: bool,
) -> Result<Vec<FrameResult>, BoxError> {
    let cfg = GenConfig {
        noise: DepthNoise::KINECT,
        ..GenConfig::default()
    };
    let intrinsics = cfg.intrinsics.depth_intrinsics();
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
            .map_err(|e| Error::InvalidArgument {
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
    stream: &mut ActionStream,
    args: &LiveArgs,
    dir: &Path,
) -> Result<Vec<FrameResult>, BoxError> {
    // A TUM RGB-D style folder lists its frames in depth.txt; otherwise every PNG in
    // name order, with intrinsics.json.
    let (intrinsics, files): (DepthIntrinsics, Vec<PathBuf>) = if crate::tum::is_tum(dir) {
        let frames = crate::tum::frames(dir)?;
        (
            crate::tum::intrinsics(dir)?,
            frames.into_iter().map(|f| f.path).collect(),
        )
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: cannot list: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png"))
            .collect();
        files.sort();
        (DepthIntrinsics::load(&dir.join("intrinsics.json"))?, files)
    };
    if files.is_empty() {
        return Err(format!("{}: no .png depth frames", dir.display()).into());
    }
    if files.len() < args.window {
        return Err(format!(
            "{}: {} depth frames, fewer than the window of {} the model predicts from",
            dir.display(),
            files.len(),
            args.window
        )
        .into());
    }
    let classes = stream.num_classes();
    let labels_path = dir.join("labels.txt");
    let labels: Vec<Option<usize>> = match std::fs::read_to_string(&labels_path) {
        Ok(text) => text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let l = l.trim();
                if l.is_empty() {
                    return Ok(None);
                }
                let class = ACTIONS
                    .iter()
                    .position(|a| *a == l)
                    .or_else(|| l.parse().ok())
                    .ok_or_else(|| {
                        format!(
                            "{} line {}: {l:?} is neither an action name nor a class number",
                            labels_path.display(),
                            i + 1
                        )
                    })?;
                if class >= classes {
                    return Err(format!(
                        "{} line {}: class {class} is beyond the model's {classes} classes",
                        labels_path.display(),
                        i + 1
                    ));
                }
                Ok(Some(class))
            })
            .collect::<Result<_, String>>()?,
        Err(_) => vec![],
    };
    let mut results = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let (w, h, depth) = read_depth_png(f)?;
        if (w, h) != (intrinsics.width, intrinsics.height) {
            return Err(format!(
                "{}: {w}x{h} does not match the intrinsics' {}x{}",
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

/// Streams as `args` says, printing a line per frame (unless quiet) and summaries.
pub fn run(dev: &Device, args: &LiveArgs) -> Result<LiveReport, BoxError> {
    if let Some(dir) = &args.render {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (bundled_config, bundled_weights) = bundled_model();
    let config = args.config.clone().unwrap_or(bundled_config);
    let weights = args.weights.clone().unwrap_or(bundled_weights);
    let (model, params) = load_model(dev, &config, &weights)?;
    say!(args.silent,
        "edge4d stream on {}\nmodel {} ({} classes), window {} frames x {} points, tube-feature reuse {}",
        dev.adapter(),
        weights.display(),
        model.cfg.num_classes,
        args.window,
        args.points,
        if args.no_reuse { "off" } else { "on" }
    );
    let mut stream = ActionStream::new(
        dev,
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
    let adapter = dev.adapter().to_string();
    if let Some(dir) = &args.depth_dir {
        let frames = stream_folder(&mut stream, args, dir)?;
        summarize(
            &format!("{} depth frames", dir.display()),
            &frames,
            args.silent,
        );
        return Ok(LiveReport {
            adapter,
            frames,
            after_finetune: None,
        });
    }
    let assets = Assets::bundled()?;
    // A viewpoint, body scale and speed from the test side of the dataset's split.
    let mut rng = SplitMix64::new(args.seed);
    let view = View::sample(Split::Test, &assets.motions[0], &mut rng);
    say!(args.silent,
        "virtual camera: azimuth {:.0} deg, elevation {:.0} deg, {:.1} m away; body scale {}, speed {}",
        view.azimuth_deg, view.elevation_deg, view.distance, view.scale, view.speed
    );
    let frames = stream_performance(&mut stream, args, &assets, &view, args.seed, false)?;
    let acc_before = summarize("summary", &frames, args.silent);
    let mut after_finetune = None;
    if args.finetune {
        say!(
            args.silent,
            "\nfine-tuning on the device: a labelled performance from the same camera"
        );
        let quiet = LiveArgs {
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
        say!(
            args.silent,
            "  {} steps on {} labelled windows: mean loss {loss:.3}, {:.1} s",
            args.finetune_steps,
            stream.labelled_windows(),
            t0.elapsed().as_secs_f64()
        );
        let after = stream_performance(&mut stream, &quiet, &assets, &view, args.seed, false)?;
        let acc_after = summarize(
            "after fine-tuning (the same performance again)",
            &after,
            args.silent,
        );
        if let (Some(b), Some(a)) = (acc_before, acc_after) {
            say!(
                args.silent,
                "\nframe accuracy before / after fine-tuning: {:.1}% / {:.1}%",
                b * 100.0,
                a * 100.0
            );
        }
        after_finetune = Some(after);
    }
    Ok(LiveReport {
        adapter,
        frames,
        after_finetune,
    })
}
