//! `edge4d finetune`: supervised training of a P4Transformer on a clip dataset file,
//! with a progress bar, JSON-lines metrics, atomic checkpoints and bitwise resume.

mod classify;
mod segmentation;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig};
use edge4d_runtime::{Device, Error};
use edge4d_trainer::augment;
use edge4d_trainer::dataset::{ClipDataset, Labels};
use edge4d_trainer::finetune::Finetuner;

use crate::train_args::{train_loop, LoopPlan, TrainArgs};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// One label per clip (model p4transformer-msr).
    ActionRecognition,
    /// One label per frame (model p4transformer-actionseg).
    ActionSegmentation,
    /// One label per point (model p4transformer-synthia): weighted, masked
    /// cross-entropy; mIoU over the masked points.
    SemanticSegmentation,
    /// One label per object (model point-mae with num_classes; --data is a folder of
    /// labelled RGB-D frames, as `edge4d data objects` writes).
    Classification,
}

#[derive(Args)]
pub struct FinetuneArgs {
    /// What the labels mean.
    #[arg(long, value_enum)]
    task: Task,
    /// Held-out dataset (same layout) evaluated after every --val-every epochs.
    #[arg(long)]
    val: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    val_every: u64,
    /// Train on this fraction of the labelled clips (a seeded subset stratified by
    /// class, as in label-efficiency studies).
    #[arg(long, default_value_t = 1.0, value_parser = label_fraction)]
    label_fraction: f64,
    #[command(flatten)]
    train: TrainArgs,
}

pub fn run(dev: &Device, args: &FinetuneArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.task == Task::Classification {
        return classify::classify(
            dev,
            args.val.as_deref(),
            args.val_every,
            args.label_fraction,
            &args.train,
        );
    }
    if args.task == Task::SemanticSegmentation {
        return segmentation::run(dev, args.val.as_deref(), args.val_every, &args.train);
    }
    let cfg = P4TransformerConfig::load(&args.train.config)?;
    cfg.require_head("fine-tuned model")?;
    let want = match args.task {
        Task::ActionRecognition => ModelKind::Msr,
        _ => ModelKind::ActionSeg,
    };
    if cfg.model != want {
        return Err(format!(
            "config {} builds {}, but this task needs model = \"{}\"",
            args.train.config.display(),
            cfg.model.name(),
            want.name()
        )
        .into());
    }
    let mut data = ClipDataset::load(&args.train.data)?;
    if args.label_fraction < 1.0 {
        data = subset(&data, args.label_fraction, args.train.seed)?;
    }
    let val = args.val.as_ref().map(ClipDataset::load).transpose()?;
    if data.is_empty() {
        return Err(format!("{}: the dataset holds no clips", args.train.data.display()).into());
    }
    match (&data.labels, args.task) {
        (Labels::PerClip(_), Task::ActionRecognition)
        | (Labels::PerFrame(_), Task::ActionSegmentation) => {}
        (Labels::None, _) => {
            return Err(format!(
                "{}: the dataset has no `label` tensor; fine-tuning needs one ({}), pre-training (`edge4d pretrain`) does not",
                args.train.data.display(),
                if args.task == Task::ActionRecognition {
                    "(clips) for action recognition"
                } else {
                    "(clips, frames) for action segmentation"
                }
            )
            .into())
        }
        _ => {
            return Err(format!(
                "{}: labels are {} but the task needs {}",
                args.train.data.display(),
                if matches!(data.labels, Labels::PerClip(_)) {
                    "per clip"
                } else {
                    "per frame"
                },
                if args.task == Task::ActionRecognition {
                    "one per clip"
                } else {
                    "one per frame"
                }
            )
            .into())
        }
    }
    if data.classes_seen() > cfg.num_classes {
        return Err(format!(
            "{}: label {} is out of range for num_classes = {}",
            args.train.data.display(),
            data.classes_seen() - 1,
            cfg.num_classes
        )
        .into());
    }
    let model = P4Transformer::new(cfg.clone())?;
    let backbone = P4Transformer::backbone(cfg.clone())?.spec();
    let params = args.train.params(dev, model.spec(), &backbone)?;
    let batch = args.train.batch_size.max(1);
    let iters = data.len().div_ceil(batch) as u64;
    let mut ft = Finetuner::new(dev, model, params, args.train.finetune_config(), iters)?;
    let [_, l, n, _] = data.clips_shape;
    let task = args.task;
    let plan = LoopPlan::clips(cfg.model.name(), &data);
    train_loop(
        dev,
        &args.train,
        &mut ft,
        plan,
        &mut |ft: &mut Finetuner, chunk: &[usize]| {
            let (mut clips, labels) = data.batch(chunk);
            if !args.train.no_augment {
                for c in clips.chunks_exact_mut(l * n * 3) {
                    match task {
                        Task::ActionRecognition => augment::scale_axes(c, ft.rng(), 0.9, 1.1),
                        _ => {
                            augment::scale_about_centre(c, n, ft.rng(), 0.8, 1.2);
                            augment::flip_x(c, n, ft.rng());
                        }
                    }
                }
            }
            let clip = dev.upload(&clips, &[chunk.len(), l, n, 3])?;
            let labels = dev.upload_u32(&labels, &[labels.len()])?;
            ft.train_step(&clip, &labels)
        },
        &mut |ft: &Finetuner, last: bool| {
            // Training-set accuracy costs a full extra pass: only at the end of the run.
            let train = if last {
                Some(accuracy(dev, ft, &data, batch)?)
            } else {
                None
            };
            let val_due = ft.run.epoch % args.val_every.max(1) == 0 || last;
            let val = val
                .as_ref()
                .filter(|_| val_due)
                .map(|v| accuracy(dev, ft, v, batch))
                .transpose()?;
            Ok((train, val))
        },
    )?;
    Ok(())
}
/// Accuracy on `data` (per clip, or per frame), in eval passes of `batch` clips.
fn accuracy(dev: &Device, ft: &Finetuner, data: &ClipDataset, batch: usize) -> Result<f64, Error> {
    let [_, l, n, _] = data.clips_shape;
    let (mut hits, mut total) = (0usize, 0usize);
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(batch) {
        let (clips, labels) = data.batch(chunk);
        let clip = dev.upload(&clips, &[chunk.len(), l, n, 3])?;
        let (logits, classes) = ft.predict(&clip)?;
        for (row, &y) in logits.chunks(classes).zip(&labels) {
            let pred = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0;
            hits += (pred == y as usize) as usize;
            total += 1;
        }
    }
    Ok(hits as f64 / total.max(1) as f64)
}

/// A seeded subset holding `fraction` of each class's clips (at least one per class);
/// with per-frame labels, a random `fraction` of the sequences (at least one), as the
/// paper samples HOI4D's.
fn subset(data: &ClipDataset, fraction: f64, seed: u64) -> Result<ClipDataset, Error> {
    let keep = match &data.labels {
        Labels::PerClip(labels) => {
            let labels: Vec<usize> = labels.iter().map(|&y| y as usize).collect();
            edge4d_trainer::dataset::stratified_subset(&labels, fraction, seed)?
        }
        // One stratum: every sequence holds several actions.
        Labels::PerFrame(_) => {
            edge4d_trainer::dataset::stratified_subset(&vec![0; data.len()], fraction, seed)?
        }
        _ => {
            return Err(Error::InvalidArgument {
                op: "finetune",
                detail: "--label-fraction needs labels per clip or per frame".into(),
            })
        }
    };
    let (clips, kept_labels) = data.batch(&keep);
    let labels = match data.labels {
        Labels::PerFrame(_) => Labels::PerFrame(kept_labels),
        _ => Labels::PerClip(kept_labels),
    };
    Ok(ClipDataset {
        clips,
        clips_shape: [keep.len(), data.clips_shape[1], data.clips_shape[2], 3],
        labels,
        videos: data
            .videos
            .as_ref()
            .map(|v| keep.iter().map(|&i| v[i]).collect()),
        partial: data.partial_batch(&keep),
        ..Default::default()
    })
}

/// `--label-fraction`: a number in (0, 1].
fn label_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a fraction of the labels in (0, 1]")),
    }
}
