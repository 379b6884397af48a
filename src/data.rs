//! `edge4d data humanoid`: render the labelled human-motion dataset (train and test
//! splits with unseen views, bodies and speeds) to single-file clip datasets.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use edge4d_trainer::concept::pairs::write_objects;
use edge4d_trainer::humanoid::generate::{generate, Assets, GenConfig, Split, ACTIONS};
use edge4d_trainer::humanoid::segments::{generate_sequences, SequenceConfig};

#[derive(Subcommand)]
pub enum DataCommand {
    /// DeepMimic motion capture on the pybullet humanoid, seen by a virtual depth camera.
    Humanoid(HumanoidArgs),
    /// MSR-Action3D from its raw `aAA_sSS_eEE_sdepth.bin` files or MeteorNet's
    /// preprocessed `aAA_sSS_eEE_sdepth.npz` (subjects 1–5 train, 6–10 test), as
    /// P4Transformer's dataset reads them.
    Msr(MsrArgs),
    /// Synthia 4D from MeteorNet's preprocessed per-frame `.npz` files: two half-crop
    /// clips per listed frame, with colours, per-point labels, loss masks and weights.
    Synthia(SynthiaArgs),
    /// HOI4D from the reference repositories' `.h5` files: action segmentation (one
    /// label per frame) or semantic segmentation (3-frame clips, one label per point).
    Hoi4d(Hoi4dArgs),
    /// Synthetic RGB-D scans of six object classes (colour + depth PNGs, intrinsics,
    /// labels): paired image + point data for concept distillation and classification.
    Objects(ObjectsArgs),
    /// A labelled ROS 2 recording (MCAP: depth images with CameraInfo, or PointCloud2)
    /// cut into sliding clips of resampled frames, labelled from a CSV of
    /// start,end,action intervals: one dataset file for `finetune`.
    Mcap(McapArgs),
    /// A labelled TUM RGB-D style folder (depth.txt, depth/*.png at 5000 per metre)
    /// cut into sliding clips like `data mcap`, labelled from the same CSV.
    Tum(TumArgs),
}

#[derive(Args)]
pub struct TumArgs {
    /// The folder (holding depth.txt).
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    clips: ClipArgs,
}

#[derive(Args)]
pub struct McapArgs {
    /// The recording.
    #[arg(long)]
    mcap: PathBuf,
    #[command(flatten)]
    clips: ClipArgs,
    /// The recording's depth image topic (default: its only one).
    #[arg(long)]
    depth_topic: Option<String>,
    /// The depth images' CameraInfo topic (default: the sibling camera_info, else the
    /// one with their frame_id).
    #[arg(long)]
    camera_info_topic: Option<String>,
    /// The recording's PointCloud2 topic (default: its only one, when it has no depth
    /// image topic).
    #[arg(long, conflicts_with = "depth_topic")]
    points_topic: Option<String>,
}

/// How `data mcap` and `data tum` cut and label clips.
#[derive(Args)]
pub struct ClipArgs {
    /// CSV of labelled intervals: start,end,action per row (seconds from the first frame,
    /// or absolute times; the action a class index or a name).
    #[arg(long)]
    labels: PathBuf,
    /// Output dataset file (safetensors); class names go beside it in
    /// <out>.classes.txt.
    #[arg(long)]
    out: PathBuf,
    /// Frames per clip.
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// Points per frame.
    #[arg(long, default_value_t = 512)]
    points: usize,
    /// Frames between the starts of consecutive clips.
    #[arg(long, default_value_t = 4)]
    stride: usize,
    /// One label per frame (action segmentation) instead of the clip's last frame's.
    #[arg(long)]
    per_frame: bool,
    /// Seed of the point resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn mcap(args: &McapArgs) -> Result<(), Box<dyn std::error::Error>> {
    use edge4d_trainer::recording::{dataset, labels::ActionLabels, Replay, TopicChoice};
    let t = Instant::now();
    let labels = ActionLabels::load(&args.clips.labels)?;
    let replay = Replay::open(
        &args.mcap,
        &TopicChoice {
            depth_topic: args.depth_topic.clone(),
            camera_info_topic: args.camera_info_topic.clone(),
            points_topic: args.points_topic.clone(),
        },
    )?;
    println!("reading {}: {}", args.mcap.display(), replay.describe());
    let made = dataset::clips_from_recording(&replay, &labels, &args.clips.options())?;
    args.clips.save(&labels, made, t)
}

fn tum(args: &TumArgs) -> Result<(), Box<dyn std::error::Error>> {
    use edge4d_trainer::depth_io::read_depth_png;
    use edge4d_trainer::recording::{dataset, labels::ActionLabels};
    let t = Instant::now();
    let labels = ActionLabels::load(&args.clips.labels)?;
    let frames = edge4d_trainer::tum::frames(&args.dir)?;
    let intrinsics = edge4d_trainer::tum::intrinsics(&args.dir)?;
    println!(
        "reading {}: {} depth frames",
        args.dir.display(),
        frames.len()
    );
    let points = frames.iter().map(|f| {
        let (w, h, depth) = read_depth_png(&f.path)?;
        if (w, h) != (intrinsics.width, intrinsics.height) {
            return Err(edge4d_runtime::Error::TensorFile {
                path: f.path.display().to_string(),
                detail: format!(
                    "{w}x{h} does not match the intrinsics' {}x{}",
                    intrinsics.width, intrinsics.height
                ),
            });
        }
        Ok(((f.timestamp * 1e9) as u64, intrinsics.back_project(&depth)))
    });
    let made = dataset::clips_from_frames(points, &labels, &args.clips.options())?;
    args.clips.save(&labels, made, t)
}

impl ClipArgs {
    fn options(&self) -> edge4d_trainer::recording::dataset::ClipOptions {
        edge4d_trainer::recording::dataset::ClipOptions {
            frames: self.frames,
            points: self.points,
            stride: self.stride,
            per_frame: self.per_frame,
            seed: self.seed,
        }
    }

    /// Writes the dataset and its class names, and says what they hold.
    fn save(
        &self,
        labels: &edge4d_trainer::recording::labels::ActionLabels,
        (data, report): (
            edge4d_trainer::dataset::ClipDataset,
            edge4d_trainer::recording::dataset::ClipReport,
        ),
        started: Instant,
    ) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(dir) = self.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        data.save(&self.out)?;
        let mut names = self.out.clone().into_os_string();
        names.push(".classes.txt");
        let names = PathBuf::from(names);
        edge4d_runtime::tensor_file::write_bytes_atomic(
            &names,
            (labels.classes.join("\n") + "\n").as_bytes(),
        )?;
        println!(
            "{} frames read ({} labelled, {} without a valid point); {} clips of {} frames x {} points, labels per {}",
            report.frames_read,
            report.frames_labelled,
            report.frames_without_points,
            report.clips,
            self.frames,
            self.points,
            if self.per_frame { "frame" } else { "clip" }
        );
        for (c, name) in labels.classes.iter().enumerate() {
            println!("  class {c:2} {name:<20} {} clips", report.per_class[c]);
        }
        println!(
            "wrote {} and {} in {:.1} s",
            self.out.display(),
            names.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

#[derive(Args)]
pub struct MsrArgs {
    /// Folder holding the raw `*_sdepth.bin` or preprocessed `*_sdepth.npz` files.
    #[arg(long)]
    dir: PathBuf,
    /// Output folder: train.safetensors and test.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Frames per clip (the paper: 24).
    #[arg(long, default_value_t = 24)]
    frames: usize,
    /// Points per frame (the paper: 2048).
    #[arg(long, default_value_t = 2048)]
    points: usize,
    /// Start a clip at every this many frames.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    stride: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct SynthiaArgs {
    /// Folder of `<SEQ>-<frame:06d>.npz` files (the reference's `data/pc`).
    #[arg(long)]
    root: PathBuf,
    /// Split list, e.g. trainval_raw.txt or test_raw.txt.
    #[arg(long)]
    list: PathBuf,
    /// labelweights.npz (key `labelweights`): the loss's class weights.
    #[arg(long)]
    labelweights: Option<PathBuf>,
    /// Test split: uniform class weights, as the reference evaluates.
    #[arg(long)]
    test: bool,
    /// Output dataset file.
    #[arg(long)]
    out: PathBuf,
    /// Points per frame (the reference: 16384).
    #[arg(long, default_value_t = 16384)]
    points: usize,
    /// Frames per clip (the reference: 3).
    #[arg(long, default_value_t = 3)]
    frames: usize,
    /// Read only the first this many listed frames.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Hoi4dTask {
    /// `pcd` (n, T, P, 3) + `label` (n, T).
    ActionSegmentation,
    /// `pcd` (n, 300, P, 3) + `semantic` (n, 300, P).
    SemanticSegmentation,
}

#[derive(Args)]
pub struct Hoi4dArgs {
    #[arg(long, value_enum)]
    task: Hoi4dTask,
    /// The .h5 files, concatenated in this order.
    #[arg(long, num_args = 1.., required = true)]
    files: Vec<PathBuf>,
    /// Output dataset file.
    #[arg(long)]
    out: PathBuf,
    /// Resample every frame to this many points (default: keep the file's).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    points: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct HumanoidArgs {
    /// Output folder: train.safetensors, test.safetensors, split.json.
    #[arg(long)]
    out: PathBuf,
    /// Folder with humanoid.urdf and the humanoid3d_*.txt clips (default: the bundled copy).
    #[arg(long)]
    motions: Option<PathBuf>,
    /// Training clips per action.
    #[arg(long, default_value_t = 40)]
    train_clips: usize,
    /// Test clips per action.
    #[arg(long, default_value_t = 10)]
    test_clips: usize,
    /// Frames per clip.
    #[arg(long, default_value_t = 16)]
    frames: usize,
    /// Points per frame.
    #[arg(long, default_value_t = 512)]
    points: usize,
    /// Render without depth noise.
    #[arg(long)]
    no_noise: bool,
    /// Label every point with its body part (torso, head, right/left arm, right/left
    /// leg) for semantic segmentation, instead of each clip with its action.
    #[arg(long)]
    body_parts: bool,
    /// Action segmentation (HOI4D-style): every clip is a long sequence in which the
    /// subject performs several actions in a row, with blended transitions, labelled
    /// per frame. --train-clips and --test-clips then count sequences (not per
    /// action) and --frames is their length (HOI4D: 150).
    #[arg(long, conflicts_with = "body_parts")]
    sequences: bool,
    /// With --sequences: each action lasts MIN,MAX frames (uniformly at random).
    #[arg(long, default_value = "20,50", value_parser = frame_range)]
    segment_frames: (usize, usize),
    /// With --sequences: frames over which the body moves into the next action.
    #[arg(long, default_value_t = 6)]
    transition_frames: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cmd: &DataCommand) -> Result<(), Box<dyn std::error::Error>> {
    let args = match cmd {
        DataCommand::Humanoid(args) => args,
        DataCommand::Msr(args) => return msr(args),
        DataCommand::Synthia(args) => return synthia(args),
        DataCommand::Hoi4d(args) => return hoi4d(args),
        DataCommand::Objects(args) => return objects(args),
        DataCommand::Mcap(args) => return mcap(args),
        DataCommand::Tum(args) => return tum(args),
    };
    let assets = match &args.motions {
        Some(dir) => Assets::load(dir)?,
        None => Assets::bundled()?,
    };
    let mut cfg = GenConfig {
        frames: args.frames,
        points: args.points,
        body_part_labels: args.body_parts,
        ..GenConfig::default()
    };
    if args.no_noise {
        cfg.noise = edge4d_trainer::humanoid::camera::DepthNoise::NONE;
    }
    let seq = SequenceConfig {
        frames: args.frames,
        min_segment: args.segment_frames.0,
        max_segment: args.segment_frames.1,
        transition: args.transition_frames,
    };
    if args.sequences {
        seq.check()?;
    }
    std::fs::create_dir_all(&args.out)?;
    for (split, name, clips) in [
        (Split::Train, "train", args.train_clips),
        (Split::Test, "test", args.test_clips),
    ] {
        let t0 = Instant::now();
        let path = args.out.join(format!("{name}.safetensors"));
        if args.sequences {
            let data = generate_sequences(&assets, split, clips, &cfg, &seq, args.seed)?;
            data.save(&path)?;
            println!(
                "{name}: {clips} sequences of {} frames x {} points, actions of {}-{} frames -> {} in {:.1} s",
                seq.frames,
                cfg.points,
                seq.min_segment,
                seq.max_segment,
                path.display(),
                t0.elapsed().as_secs_f64()
            );
            continue;
        }
        let data = generate(&assets, split, clips, &cfg, args.seed)?;
        data.save(&path)?;
        println!(
            "{name}: {} clips ({} actions x {clips}) of {} frames x {} points -> {} in {:.1} s",
            data.len(),
            ACTIONS.len(),
            cfg.frames,
            cfg.points,
            path.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    let split = serde_json::json!({
        "actions": ACTIONS,
        "labels": if args.body_parts { "body part per point" } else if args.sequences { "action per frame" } else { "action per clip" },
        "sequences": args.sequences.then(|| serde_json::json!({"frames": seq.frames, "segment_frames": [seq.min_segment, seq.max_segment], "transition_frames": seq.transition})),
        "body_parts": edge4d_trainer::humanoid::body::BODY_PARTS,
        "units": "camera frame, millimetres / 300 (MSR-Action3D)",
        "camera": {"width": cfg.intrinsics.width, "height": cfg.intrinsics.height, "focal_px": cfg.intrinsics.focal,
                   "noise": if args.no_noise { "none" } else { "sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2 m" }},
        "train": {"azimuth_deg": "0, 60, ..., 300 +- 10", "body_scale": [0.9, 1.0, 1.1], "speed": [0.8, 1.0, 1.2]},
        "test": {"azimuth_deg": "30, 90, ..., 330 +- 10", "body_scale": [0.95, 1.05], "speed": [0.9, 1.1]},
        "both": {"elevation_deg": "0..20", "distance_m": "2.5..3.5", "fps": cfg.fps},
        "seed": args.seed,
    });
    std::fs::write(
        args.out.join("split.json"),
        serde_json::to_string_pretty(&split)?,
    )?;
    Ok(())
}

fn msr(args: &MsrArgs) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.out)?;
    for (train, name) in [(true, "train"), (false, "test")] {
        let data = edge4d_trainer::msr::clips(
            &args.dir,
            train,
            args.frames,
            args.points,
            args.stride,
            args.seed,
        )?;
        let path = args.out.join(format!("{name}.safetensors"));
        data.save(&path)?;
        println!(
            "{name}: {} clips of {} frames x {} points -> {}",
            data.len(),
            args.frames,
            args.points,
            path.display()
        );
    }
    Ok(())
}

fn synthia(args: &SynthiaArgs) -> Result<(), Box<dyn std::error::Error>> {
    use edge4d_trainer::synthia::{load, SynthiaConfig};
    let cfg = SynthiaConfig {
        frames: args.frames,
        points: args.points,
        limit: args.limit,
        seed: args.seed,
        ..SynthiaConfig::default()
    };
    let data = load(
        &args.root,
        &args.list,
        args.labelweights.as_deref(),
        !args.test,
        &cfg,
    )?;
    data.save(&args.out)?;
    println!(
        "{} half-crop clips of {} frames x {} points -> {}",
        data.len(),
        args.frames,
        args.points,
        args.out.display()
    );
    Ok(())
}

fn hoi4d(args: &Hoi4dArgs) -> Result<(), Box<dyn std::error::Error>> {
    use edge4d_trainer::hoi4d;
    let data = match args.task {
        Hoi4dTask::ActionSegmentation => {
            hoi4d::action_segmentation(&args.files, args.points, args.seed)?
        }
        Hoi4dTask::SemanticSegmentation => {
            hoi4d::semantic_segmentation(&args.files, 3, args.points, args.seed)?
        }
    };
    data.save(&args.out)?;
    let [b, l, n, _] = data.clips_shape;
    println!(
        "{b} clips of {l} frames x {n} points -> {}",
        args.out.display()
    );
    Ok(())
}

/// `MIN,MAX` frames, 1 ≤ MIN ≤ MAX.
fn frame_range(s: &str) -> Result<(usize, usize), String> {
    let parsed = s
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((a, b)) if 1 <= a && a <= b => Ok((a, b)),
        _ => Err(format!("{s:?} is not MIN,MAX frames with 1 <= MIN <= MAX")),
    }
}

#[derive(Args)]
pub struct ObjectsArgs {
    /// Output folder: train/ and test/, each colour + depth PNGs, intrinsics.json,
    /// labels.txt and classes.txt.
    #[arg(long)]
    out: PathBuf,
    /// Training frames per class.
    #[arg(long, default_value_t = 24)]
    train_per_class: usize,
    /// Test frames per class (other random objects).
    #[arg(long, default_value_t = 8)]
    test_per_class: usize,
    /// Image side in pixels (colour and depth).
    #[arg(long, default_value_t = 128)]
    side: usize,
    /// Object classes: the first N of sphere, box, cylinder, cone, torus, capsule,
    /// octahedron, hex_prism, wedge, pyramid, ellipsoid, cross.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=12))]
    classes: u16,
    /// Viewpoints per object (the object turned; same shape, size and colour).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    views: u16,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn objects(args: &ObjectsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let (classes, views) = (args.classes as usize, args.views as usize);
    let train = write_objects(
        &args.out.join("train"),
        args.train_per_class,
        classes,
        views,
        args.side,
        args.seed,
    )?;
    let test = write_objects(
        &args.out.join("test"),
        args.test_per_class,
        classes,
        views,
        args.side,
        args.seed ^ 0x7e57,
    )?;
    println!(
        "wrote {train} training and {test} test RGB-D frames ({classes} classes, {views} views per object) to {} in {:.1} s",
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
