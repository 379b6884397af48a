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
use crate::recording::{RecordedPrediction, Recorder, Replay, TopicChoice};
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
    /// Replay a ROS 2 recording (MCAP): sensor_msgs/Image depth (16UC1 millimetres or
    /// 32FC1 metres) with its CameraInfo, or sensor_msgs/PointCloud2, in log-time order
    #[arg(long, conflicts_with = "depth_dir")]
    pub mcap: Option<PathBuf>,
    /// The recording's depth image topic (default: its only depth image topic)
    #[arg(long, requires = "mcap")]
    pub depth_topic: Option<String>,
    /// The CameraInfo topic of the depth images (default: the image topic's sibling
    /// camera_info, else the one CameraInfo topic with the images' frame_id)
    #[arg(long, requires = "mcap")]
    pub camera_info_topic: Option<String>,
    /// The recording's PointCloud2 topic (default: its only point cloud topic, when it
    /// has no depth image topic)
    #[arg(long, requires = "mcap", conflicts_with = "depth_topic")]
    pub points_topic: Option<String>,
    /// Record every predicted frame as MCAP for Foxglove: the point cloud coloured by the
    /// predicted class (foxglove.PointCloud on /edge4d/points) and the prediction
    /// (/edge4d/prediction), stamped like the input
    #[arg(long)]
    pub record: Option<PathBuf>,
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

/// One frame to push: points in metres in the camera frame, with its time.
struct Input<'a> {
    index: usize,
    time_ns: u64,
    frame_id: &'a str,
    points: &'a [[f32; 3]],
    truth: Option<usize>,
}

/// Frames per second of the virtual camera and of PNG folders (their time stamps).
const FOLDER_FPS: u64 = 15;

/// Pushes one frame, prints its line, optionally renders and records it and (when
/// `label`) labels it for fine-tuning.
fn push_frame(
    stream: &mut ActionStream,
    args: &LiveArgs,
    input: &Input,
    label: bool,
    recorder: &mut Option<Recorder>,
) -> Result<FrameResult, BoxError> {
    let Input {
        index: frame,
        truth,
        points,
        ..
    } = *input;
    let flat: Vec<f32> = points.iter().flatten().copied().collect();
    let t0 = Instant::now();
    let predicted = stream.push_points(&flat)?.map(|p| p.class);
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
    if let (Some(p), Some(latest)) = (predicted, stream.latest()) {
        let truth_name = truth.map(|t| class_name(t, classes));
        let predicted_name = class_name(p, classes);
        if let Some(dir) = &args.render {
            let caption = Caption {
                frame: frame as u64,
                truth: truth.zip(truth_name.as_deref()),
                predicted: (p, &predicted_name),
                confidence: latest.probabilities[p],
            };
            cloud_png(
                &dir.join(format!("frame_{frame:05}.png")),
                &flat,
                480,
                360,
                &caption,
            )?;
        }
        if let Some(rec) = recorder {
            rec.write(&RecordedPrediction {
                frame: frame as u64,
                log_time_ns: input.time_ns,
                frame_id: input.frame_id,
                points,
                class: p,
                class_name: &predicted_name,
                probabilities: &latest.probabilities,
                latency_ms,
                truth: truth.zip(truth_name.as_deref()),
            })?;
        }
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
    recorder: &mut Option<Recorder>,
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
            let points = intrinsics.back_project(&depth);
            let input = Input {
                index: frame,
                time_ns: frame as u64 * 1_000_000_000 / FOLDER_FPS,
                frame_id: "virtual_depth_camera",
                points: &points,
                truth: Some(action),
            };
            let r = push_frame(stream, args, &input, labelled, recorder).map_err(|e| {
                Error::InvalidArgument {
                    op: "stream_depth",
                    detail: e.to_string(),
                }
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
    recorder: &mut Option<Recorder>,
) -> Result<Vec<FrameResult>, BoxError> {
    // A TUM RGB-D style folder lists its frames in depth.txt; otherwise every PNG in
    // name order, with intrinsics.json.
    let (intrinsics, files, times): (DepthIntrinsics, Vec<PathBuf>, Vec<u64>) =
        if crate::tum::is_tum(dir) {
            let frames = crate::tum::frames(dir)?;
            (
                crate::tum::intrinsics(dir)?,
                frames.iter().map(|f| f.path.clone()).collect(),
                frames.iter().map(|f| (f.timestamp * 1e9) as u64).collect(),
            )
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: cannot list: {e}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect();
            files.sort();
            let times = (0..files.len() as u64)
                .map(|i| i * 1_000_000_000 / FOLDER_FPS)
                .collect();
            (
                DepthIntrinsics::load(&dir.join("intrinsics.json"))?,
                files,
                times,
            )
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
        let points = intrinsics.back_project(&depth);
        if points.is_empty() {
            return Err(format!("{}: no valid pixel (all zero)", f.display()).into());
        }
        let input = Input {
            index: i,
            time_ns: times[i],
            frame_id: "depth_camera",
            points: &points,
            truth: labels.get(i).copied().flatten(),
        };
        results.push(push_frame(stream, args, &input, false, recorder)?);
    }
    Ok(results)
}

/// Streams a ROS 2 recording's depth images or point clouds in log-time order. Frames
/// without a valid point are skipped (and counted); a broken message or a cut ends the
/// replay with an error after the frames before it.
fn stream_mcap(
    stream: &mut ActionStream,
    args: &LiveArgs,
    path: &Path,
    recorder: &mut Option<Recorder>,
) -> Result<Vec<FrameResult>, BoxError> {
    let replay = Replay::open(
        path,
        &TopicChoice {
            depth_topic: args.depth_topic.clone(),
            camera_info_topic: args.camera_info_topic.clone(),
            points_topic: args.points_topic.clone(),
        },
    )?;
    say!(
        args.silent,
        "replaying {}: {}",
        path.display(),
        replay.describe()
    );
    let mut results = Vec::new();
    let mut skipped = 0;
    for frame in replay.frames()? {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                if !results.is_empty() {
                    summarize(
                        &format!("{} (up to the error)", path.display()),
                        &results,
                        args.silent,
                    );
                }
                return Err(e.into());
            }
        };
        if frame.points.is_empty() {
            skipped += 1;
            continue;
        }
        let input = Input {
            index: results.len(),
            time_ns: frame.log_time_ns,
            frame_id: &frame.frame_id,
            points: &frame.points,
            truth: None,
        };
        results.push(push_frame(stream, args, &input, false, recorder)?);
    }
    if skipped > 0 {
        say!(
            args.silent,
            "{skipped} frames without a valid point were skipped"
        );
    }
    if results.is_empty() {
        return Err(format!("{}: no frame with a valid point to stream", path.display()).into());
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
    let mut recorder = match &args.record {
        Some(path) => Some(Recorder::create(path)?),
        None => None,
    };
    let finish = |recorder: Option<Recorder>| -> Result<(), BoxError> {
        if let Some(rec) = recorder {
            let path = rec.finish()?;
            say!(
                args.silent,
                "recorded the predictions to {} (open it in Foxglove)",
                path.display()
            );
        }
        Ok(())
    };
    if let Some(path) = &args.mcap {
        let frames = match stream_mcap(&mut stream, args, path, &mut recorder) {
            Ok(frames) => frames,
            Err(e) => {
                // Keep what was predicted before a cut or a broken message.
                finish(recorder.take())?;
                return Err(e);
            }
        };
        summarize(&path.display().to_string(), &frames, args.silent);
        finish(recorder)?;
        return Ok(LiveReport {
            adapter,
            frames,
            after_finetune: None,
        });
    }
    if let Some(dir) = &args.depth_dir {
        let frames = stream_folder(&mut stream, args, dir, &mut recorder)?;
        summarize(
            &format!("{} depth frames", dir.display()),
            &frames,
            args.silent,
        );
        finish(recorder)?;
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
    let frames = stream_performance(
        &mut stream,
        args,
        &assets,
        &view,
        args.seed,
        false,
        &mut recorder,
    )?;
    let acc_before = summarize("summary", &frames, args.silent);
    finish(recorder)?;
    let mut after_finetune = None;
    if args.finetune {
        say!(
            args.silent,
            "\nfine-tuning on the device: a labelled performance from the same camera"
        );
        let quiet = LiveArgs {
            quiet: true,
            render: None,
            record: None,
            ..args.clone()
        };
        stream_performance(
            &mut stream,
            &quiet,
            &assets,
            &view,
            args.seed ^ 0xCA11,
            true,
            &mut None,
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
        let after = stream_performance(
            &mut stream,
            &quiet,
            &assets,
            &view,
            args.seed,
            false,
            &mut None,
        )?;
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
