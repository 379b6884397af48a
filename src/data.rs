//! `edge4d data humanoid`: render the labelled human-motion dataset (train and test
//! splits with unseen views, bodies and speeds) to single-file clip datasets.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use edge4d_trainer::humanoid::generate::{generate, Assets, GenConfig, Split, ACTIONS};

#[derive(Subcommand)]
pub enum DataCommand {
    /// DeepMimic motion capture on the pybullet humanoid, seen by a virtual depth camera.
    Humanoid(HumanoidArgs),
    /// MSR-Action3D from its raw `aAA_sSS_eEE_sdepth.bin` files (subjects 1–5 train,
    /// 6–10 test), as MeteorNet's preprocessing and P4Transformer's dataset read it.
    Msr(MsrArgs),
    /// Synthetic RGB-D scans of six object classes (colour + depth PNGs, intrinsics,
    /// labels): paired image + point data for concept distillation and classification.
    Objects(crate::concept::ObjectsArgs),
}

#[derive(Args)]
pub struct MsrArgs {
    /// Folder holding the raw `*_sdepth.bin` files.
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
    #[arg(long, default_value_t = 1)]
    stride: usize,
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
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(cmd: &DataCommand) -> Result<(), Box<dyn std::error::Error>> {
    let args = match cmd {
        DataCommand::Humanoid(args) => args,
        DataCommand::Msr(args) => return msr(args),
        DataCommand::Objects(args) => return crate::concept::objects(args),
    };
    let assets = match &args.motions {
        Some(dir) => Assets::load(dir)?,
        None => Assets::bundled()?,
    };
    let mut cfg = GenConfig {
        frames: args.frames,
        points: args.points,
        ..GenConfig::default()
    };
    if args.no_noise {
        cfg.noise = edge4d_trainer::humanoid::camera::DepthNoise::NONE;
    }
    std::fs::create_dir_all(&args.out)?;
    for (split, name, clips) in [
        (Split::Train, "train", args.train_clips),
        (Split::Test, "test", args.test_clips),
    ] {
        let t0 = Instant::now();
        let data = generate(&assets, split, clips, &cfg, args.seed)?;
        let path = args.out.join(format!("{name}.safetensors"));
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
