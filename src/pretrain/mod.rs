//! `edge4d pretrain --method c2p`: complete-to-partial 4D distillation on unlabelled
//! clips, with the same loop, progress bar, metrics, checkpoints and resume as
//! `finetune`. The result loads with `edge4d finetune --init`.

mod concept;

use clap::{Args, ValueEnum};
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::models::{ModelKind, P4TransformerConfig};
use edge4d_runtime::ops::partial_view::partial_views;
use edge4d_runtime::reference::partial_view::{trajectory, Screen};
use edge4d_runtime::{Device, Error, Tensor};
use edge4d_trainer::augment;
use edge4d_trainer::c2p::loss::LossVariant;
use edge4d_trainer::c2p::model::{C2pObjective, TeacherMode, TimeInput};
use edge4d_trainer::dataset::ClipDataset;
use edge4d_trainer::finetune::{C2pPretraining, Finetuner};
use edge4d_trainer::rng::SplitMix64;

use crate::train_args::{train_loop, LoopPlan, TrainArgs};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Complete-to-partial 4D distillation (C2P).
    C2p,
    /// 2D→3D concept distillation: Point-MAE + concept queries against a frozen 2D
    /// teacher's prefix (an ONNX model, --teacher), on paired RGB-D frames.
    ConceptDistill,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Norm {
    /// BatchNorm1d per clip (the official code).
    Bn,
    /// LayerNorm (the paper).
    Ln,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Teacher {
    /// Shared weights, gradients through both passes (the official code).
    Shared,
    /// Shared weights, no gradient through the teacher.
    StopGradient,
    /// A separate P4DConv-only teacher with its own weights (the paper).
    Separate,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Terms {
    /// Same-frame, next-frame and previous-frame InfoNCE, 0.5 / 0.25 / 0.25 (HOI4D).
    Bidirectional,
    /// Same-frame and next-frame, 0.5 / 0.5 (MSR-Action3D).
    ForwardOnly,
    /// Time window 1: the same-frame term alone (the paper's 3D-distillation
    /// ablation).
    SameFrame,
    /// Time window 5: same frame 0.5, predicted frames i±1 and i±2 0.125 each.
    Window5,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pair {
    /// Student on the partial clip, teacher on the complete one (C2P).
    C2p,
    /// Both on the complete clip (ablation).
    C2c,
    /// Both on the partial clip (ablation).
    P2p,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Views {
    /// Virtual camera trajectories with z-buffer occlusion (the paper), on the GPU.
    Camera,
    /// Random point dropping: a random half of each frame's points (ablation).
    Drop,
}

#[derive(Args)]
pub struct PretrainArgs {
    #[arg(long, value_enum, default_value_t = Method::C2p)]
    method: Method,
    #[command(flatten)]
    c2p: C2pArgs,
    #[command(flatten)]
    concept: ConceptArgs,
    #[command(flatten)]
    train: TrainArgs,
}

/// What only C2P pre-training takes.
#[derive(Args)]
#[command(next_help_heading = "C2P (--method c2p)")]
pub struct C2pArgs {
    /// Predictor normalisation.
    #[arg(long, value_enum, default_value_t = Norm::Bn)]
    predictor_norm: Norm,
    /// The teacher's weights.
    #[arg(long, value_enum, default_value_t = Teacher::Shared)]
    teacher_mode: Teacher,
    /// Which InfoNCE terms.
    #[arg(long, value_enum, default_value_t = Terms::Bidirectional)]
    terms: Terms,
    /// Hold the positional embedding's time input at 0 for every frame during
    /// pre-training (student and teacher), so the same-frame term cannot find its
    /// positive by the frame index; fine-tuning sees time as usual.
    #[arg(long)]
    no_time: bool,
    /// What the student and the teacher see.
    #[arg(long, value_enum, default_value_t = Pair::C2p)]
    pair: Pair,
    /// How partial clips are made when the dataset has no `partial` tensor (new views
    /// every epoch).
    #[arg(long, value_enum, default_value_t = Views::Camera)]
    views: Views,
    /// Random zoom of the camera trajectories: each clip's camera distance is scaled by
    /// U(1 − zoom, 1 + zoom) (the paper; the official code has none, 0).
    #[arg(long, default_value_t = 0.0)]
    zoom: f32,
    /// Dataset units per raw MSR-Action3D unit (millimetre): the z-buffer's 0.001 mm
    /// tolerance is scaled by it. edge4d's datasets use mm ÷ 300.
    #[arg(long, default_value_t = 1.0 / 300.0)]
    units_per_mm: f64,
}

/// What only concept distillation takes.
#[derive(Args)]
#[command(next_help_heading = "Concept distillation (--method concept-distill)")]
pub struct ConceptArgs {
    /// The frozen 2D teacher: an ONNX file mapping a CLIP-preprocessed image
    /// (1, 3, 224, 224) to the prefix (1, prefix_length, prefix_dim).
    #[arg(long, value_name = "MODEL.onnx")]
    teacher_onnx: Option<std::path::PathBuf>,
    /// The teacher-prefix cache (default OUT/prefixes.safetensors).
    #[arg(long)]
    prefix_cache: Option<std::path::PathBuf>,
}

/// Views (B, L, 3) of one random trajectory per clip (§5.4: left→right or
/// right→left, level or up-and-down or down-and-up), at a distance scaled per clip by
/// U(1 − zoom, 1 + zoom) (the paper's zoom; 0 as in the official code).
fn trajectories(rng: &mut SplitMix64, clips: usize, frames: usize, zoom: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(clips * frames * 3);
    for _ in 0..clips {
        let reverse = rng.next_u64() % 2 == 1;
        let vertical = (rng.next_u64() % 3) as i32 - 1;
        let scale = if zoom > 0.0 {
            rng.uniform(1.0 - zoom, 1.0 + zoom)
        } else {
            1.0
        };
        for (h, v) in trajectory(frames, reverse, vertical) {
            out.extend([h as f32, v as f32, scale]);
        }
    }
    out
}

/// A random half of each frame's points, resampled back to N (the drop ablation).
fn drop_points(clips: &[f32], n: usize, rng: &mut SplitMix64) -> Vec<f32> {
    let mut out = Vec::with_capacity(clips.len());
    for frame in clips.chunks_exact(n * 3) {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let keep = n.div_ceil(2);
        for i in 0..n {
            let src = order[i % keep];
            out.extend_from_slice(&frame[src * 3..src * 3 + 3]);
        }
    }
    out
}

pub fn run(dev: &Device, args: &PretrainArgs) -> Result<(), Box<dyn std::error::Error>> {
    let train = args;
    if args.method == Method::ConceptDistill {
        let teacher =
            args.concept.teacher_onnx.as_deref().ok_or(
                "--method concept-distill needs the 2D teacher: --teacher-onnx MODEL.onnx",
            )?;
        return concept::distill(
            dev,
            teacher,
            args.concept.prefix_cache.as_deref(),
            &args.train,
        );
    }
    if args.concept.teacher_onnx.is_some() || args.concept.prefix_cache.is_some() {
        return Err("--teacher-onnx and --prefix-cache are for --method concept-distill; C2P's teacher is chosen with --teacher-mode".into());
    }
    let args = &args.c2p;
    let teacher = args.teacher_mode;
    let t = &train.train;
    let cfg = P4TransformerConfig::load(&t.config)?;
    if cfg.model != ModelKind::ActionSeg {
        return Err(format!(
            "config {} builds {}; C2P pre-trains a per-frame backbone: model = \"p4transformer-actionseg\"",
            t.config.display(),
            cfg.model.name()
        )
        .into());
    }
    if !(0.0..1.0).contains(&args.zoom) {
        return Err(format!("--zoom must be in [0, 1), got {}", args.zoom).into());
    }
    let data = ClipDataset::load(&t.data)?;
    if data.is_empty() {
        return Err(format!("{}: the dataset holds no clips", t.data.display()).into());
    }
    let (backbone, objective) = C2pObjective::new(
        dev,
        cfg.clone(),
        match args.predictor_norm {
            Norm::Bn => PredictorNorm::BatchNorm,
            Norm::Ln => PredictorNorm::LayerNorm,
        },
        match args.terms {
            Terms::Bidirectional => LossVariant::Bidirectional,
            Terms::ForwardOnly => LossVariant::ForwardOnly,
            Terms::SameFrame => LossVariant::SameFrame,
            Terms::Window5 => LossVariant::Window5,
        },
        match teacher {
            Teacher::Shared => TeacherMode::Shared,
            Teacher::StopGradient => TeacherMode::StopGradient,
            Teacher::Separate => TeacherMode::Separate,
        },
        if args.no_time {
            TimeInput::Zero
        } else {
            TimeInput::FrameIndex
        },
    )?;
    if args.no_time {
        println!("positional embedding: time input 0 in pre-training (--no-time)");
    }
    let params = t.params(dev, objective.spec(&backbone), &backbone.spec())?;
    let batch = t.batch_size.max(1);
    let iters = data.len().div_ceil(batch) as u64;
    let model = C2pPretraining::new(backbone, objective);
    let mut ft = Finetuner::new(dev, model, params, t.finetune_config(), iters)?;
    let [_, l, n, _] = data.clips_shape;
    let screen = Screen {
        threshold: 0.001 * args.units_per_mm,
        ..Screen::default()
    };
    if data.partial.is_none() {
        println!(
            "partial views: {} made on the fly (the dataset has no `partial`)",
            match args.views {
                Views::Camera => "camera trajectories with z-buffer occlusion",
                Views::Drop => "random point dropping",
            }
        );
    }
    let mut step = |ft: &mut Finetuner<C2pPretraining>, chunk: &[usize]| -> Result<Tensor, Error> {
        let (complete, _) = data.batch(chunk);
        let b = chunk.len();
        let shape = [b, l, n, 3];
        let complete_t = dev.upload(&complete, &shape)?;
        let partial_t = match (&args.pair, data.partial_batch(chunk)) {
            (Pair::C2c, _) => complete_t.clone(),
            (_, Some(mut partial)) => {
                if !t.no_augment {
                    for c in partial.chunks_exact_mut(l * n * 3) {
                        augment::scale_axes(c, ft.rng(), 0.9, 1.1);
                    }
                }
                dev.upload(&partial, &shape)?
            }
            (_, None) => match args.views {
                Views::Drop => dev.upload(&drop_points(&complete, n, ft.rng()), &shape)?,
                Views::Camera => {
                    let angles = trajectories(ft.rng(), b, l, args.zoom);
                    let angles = dev.upload(&angles, &[b, l, 3])?;
                    let seed = ft.rng().next_u64() as u32;
                    dev.run(|s| {
                        Ok(partial_views(s, &complete_t, &angles, n, &screen, seed)?.points)
                    })?
                }
            },
        };
        let teacher_input = match args.pair {
            Pair::P2p => &partial_t,
            _ => &complete_t,
        };
        ft.pretrain_step(&partial_t, teacher_input)
    };
    let plan = LoopPlan::clips("C2P pre-training", &data);
    train_loop(dev, t, &mut ft, plan, &mut step, &mut |_, _| {
        Ok((None, None))
    })?;
    Ok(())
}
