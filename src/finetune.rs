//! `edge4d finetune`: supervised training of a P4Transformer on a clip dataset file,
//! with a progress bar, JSON-lines metrics, atomic checkpoints and bitwise resume.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use edge4d_runtime::models::params::Spec;
use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::{Device, Error, TensorFile};
use edge4d_trainer::augment;
use edge4d_trainer::dataset::{ClipDataset, Labels};
use edge4d_trainer::engine::{self, EpochEndFn, EpochScores, Progress, StepFn, TrainOptions};
use edge4d_trainer::finetune::{FinetuneConfig, Finetuner, OptimizerKind};
use edge4d_trainer::run_dir::{RunDir, Start};
use indicatif::{ProgressBar, ProgressStyle};

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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Optimizer {
    Sgd,
    Adamw,
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

/// Flags every training run takes (`finetune` and `pretrain`).
#[derive(Args)]
pub struct TrainArgs {
    /// Model config (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Dataset: one safetensors file with `clip` (B, L, N, 3) and `label` (B) or (B, L)
    /// (pre-training: `clip` and optionally `partial`).
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder: checkpoint.safetensors, model.safetensors, metrics.jsonl, curves.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Start from these weights (a state_dict under PyTorch's names; tensors the model
    /// lacks are ignored and the ones the file lacks, such as a new head, initialised).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Continue from a checkpoint written by an earlier run (same config and data).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start a new run in an --out that holds one: its metrics.jsonl starts afresh and
    /// its model and checkpoint files are replaced as epochs end.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    #[arg(long, default_value_t = 14, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    /// sgd (P4Transformer tasks' default) or adamw. Point-MAE tasks always use AdamW
    /// with Point-MAE's parameter groups and cosine decay.
    #[arg(long, value_enum)]
    pub optimizer: Option<Optimizer>,
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// SGD momentum (default 0.9).
    #[arg(long)]
    pub momentum: Option<f32>,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f32,
    /// Linear warm-up from 1e-5·lr (WarmupMultiStepLR), in epochs; train-msr.py uses 10.
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: u64,
    /// Epochs at which the learning rate is multiplied by --gamma (e.g. 20,30).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<u64>,
    /// Learning-rate factor at each milestone (default 0.1).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Cosine decay to 0 over --epochs (after the warm-up) instead of milestones.
    #[arg(long)]
    pub cosine: bool,
    /// Clip the gradients' global 2-norm to this before each update.
    #[arg(long)]
    pub clip_grad_norm: Option<f32>,
    /// Keep the file's clip order.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Train on the clips as stored. Otherwise each training clip is augmented as the
    /// reference does: per-axis scale U(0.9, 1.1) (MSR-Action3D) for action
    /// recognition and for C2P's partial clips; scale U(0.8, 1.2) about the first
    /// frame's centre and an x-flip for action segmentation (HOI4D, without the
    /// original code's flip bug).
    #[arg(long)]
    pub no_augment: bool,
    /// Seed of the initial weights and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Read the loss back every this many steps (each read waits for the GPU).
    #[arg(long, default_value_t = 10)]
    pub log_every: u64,
}

impl TrainArgs {
    /// Refuses the flags Point-MAE's training (AdamW with parameter groups, warm-up and
    /// cosine decay) cannot honour, naming each, instead of ignoring them.
    pub fn refuse_for_pointmae(&self, what: &str) -> Result<(), Error> {
        let mut unused = Vec::new();
        if self.optimizer == Some(Optimizer::Sgd) {
            unused.push("--optimizer sgd");
        }
        if self.momentum.is_some() {
            unused.push("--momentum");
        }
        if !self.milestones.is_empty() {
            unused.push("--milestones");
        }
        if self.gamma.is_some() {
            unused.push("--gamma");
        }
        if self.clip_grad_norm.is_some() {
            unused.push("--clip-grad-norm");
        }
        if self.resume.is_some() {
            unused.push("--resume");
        }
        if unused.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: "flags",
            detail: format!(
                "{what} trains with AdamW (Point-MAE's parameter groups), a linear warm-up and cosine decay, and cannot use {}; leave {} out",
                unused.join(", "),
                if unused.len() == 1 { "it" } else { "them" }
            ),
        })
    }

    /// Opens --out for this run (after any --resume checkpoint is loaded: `epoch` and
    /// `step` are where it continues), printing what opening changed.
    pub fn run_dir(&self, epoch: u64, step: u64) -> Result<RunDir, Error> {
        let start = if self.resume.is_some() {
            Start::Resume { epoch, step }
        } else {
            Start::Fresh {
                overwrite: self.overwrite,
            }
        };
        let run = RunDir::open(&self.out, start)?;
        for note in &run.notes {
            println!("{note}");
        }
        Ok(run)
    }

    /// The optimizer and schedule settings for `iters` steps per epoch.
    pub fn finetune_config(&self) -> FinetuneConfig {
        FinetuneConfig {
            optimizer: match self.optimizer {
                None | Some(Optimizer::Sgd) => OptimizerKind::Sgd,
                Some(Optimizer::Adamw) => OptimizerKind::AdamW,
            },
            lr: self.lr,
            momentum: self.momentum.unwrap_or(0.9),
            weight_decay: self.weight_decay,
            warmup_epochs: self.warmup_epochs,
            milestones: self.milestones.clone(),
            gamma: self.gamma.unwrap_or(0.1),
            batch_size: self.batch_size.max(1),
            shuffle: !self.no_shuffle,
            seed: self.seed,
            cosine_epochs: self.cosine.then_some(self.epochs),
            clip_grad_norm: self.clip_grad_norm,
        }
    }

    /// Weights: from --init (matching tensors; the rest initialised) or initialised.
    /// An --init file that holds none of `backbone`'s tensors (a head, predictors, or
    /// another model's weights only) is refused with the names it should have.
    pub fn params(&self, dev: &Device, spec: Spec, backbone: &Spec) -> Result<ParamStore, Error> {
        let fresh = ParamStore::init(dev, spec, self.seed)?;
        let Some(path) = &self.init else {
            return Ok(fresh);
        };
        let file = TensorFile::open(path)?;
        let (params, loaded, skipped) = fresh.load_matching(dev, &file)?;
        if backbone.iter().all(|p| skipped.contains(&p.name)) {
            let expected: Vec<&str> = backbone.iter().take(4).map(|p| p.name.as_str()).collect();
            let found: Vec<String> = file.names().into_iter().take(4).collect();
            return Err(Error::TensorFile {
                path: path.display().to_string(),
                detail: format!(
                    "--init holds none of the backbone's {} tensors: expected names such as {} (bare, or under `model.` as the official C2P checkpoint has them); the file has {}",
                    backbone.len(),
                    expected.join(", "),
                    if found.is_empty() { "no tensor".to_string() } else { format!("e.g. {}", found.join(", ")) }
                ),
            });
        }
        println!(
            "init: {loaded} tensors from {}; initialised {}",
            path.display(),
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        );
        Ok(params)
    }
}

pub fn run(dev: &Device, args: &FinetuneArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.task == Task::Classification {
        return crate::concept::classify(
            dev,
            args.val.as_deref(),
            args.val_every,
            args.label_fraction,
            &args.train,
        );
    }
    if args.task == Task::SemanticSegmentation {
        return crate::finetune_seg::run(dev, args.val.as_deref(), args.val_every, &args.train);
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
    train_loop(
        dev,
        &args.train,
        &mut ft,
        &data,
        cfg.model.name(),
        |ft, chunk| {
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
        |ft, last| {
            // Training-set accuracy costs a full extra pass: only at the end of the run.
            let train = if last {
                Some(accuracy(dev, ft, &data, batch)?)
            } else {
                None
            };
            let val_due = ft.epoch % args.val_every.max(1) == 0 || last;
            let val = val
                .as_ref()
                .filter(|_| val_due)
                .map(|v| accuracy(dev, ft, v, batch))
                .transpose()?;
            Ok((train, val))
        },
    )
}

/// The training loop `finetune` and `pretrain` share ([`engine::train`]) with a
/// progress bar, the run's header and a summary table (`epoch_end` measures accuracies).
pub fn train_loop(
    dev: &Device,
    t: &TrainArgs,
    ft: &mut Finetuner,
    data: &ClipDataset,
    what: &str,
    mut step: impl FnMut(&mut Finetuner, &[usize]) -> Result<edge4d_runtime::Tensor, Error>,
    mut epoch_end: impl FnMut(&Finetuner, bool) -> Result<EpochScores, Error>,
) -> Result<(), Box<dyn std::error::Error>> {
    train_loop_with_metric(dev, t, ft, data, what, "acc", &mut step, &mut epoch_end)
}

/// [`train_loop`] whose per-epoch score is `metric` ("acc", "mIoU", …): it names the
/// summary table's columns and is recorded in metrics.jsonl.
#[allow(clippy::too_many_arguments)]
pub fn train_loop_with_metric(
    dev: &Device,
    t: &TrainArgs,
    ft: &mut Finetuner,
    data: &ClipDataset,
    what: &str,
    metric: &str,
    step: &mut StepFn<'_>,
    epoch_end: &mut EpochEndFn<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    let opts = TrainOptions {
        out: t.out.clone(),
        epochs: t.epochs,
        batch_size: t.batch_size,
        log_every: t.log_every,
        resume: t.resume.clone(),
        overwrite: t.overwrite,
        metadata: HashMap::from([("config".to_string(), std::fs::read_to_string(&t.config)?)]),
        metric: metric.to_string(),
    };
    let [_, l, n, _] = data.clips_shape;
    println!("adapter: {}", dev.adapter());
    let mut bar = Bar {
        bar: None,
        header: format!("{what}: {} clips of {l} frames x {n} points", data.len()),
        epochs: t.epochs,
        batch: t.batch_size,
    };
    let started = Instant::now();
    let summary = engine::train(dev, &opts, ft, data.len(), step, epoch_end, &mut bar)?;
    println!(
        "{:>6} {:>10} {:>10} {:>10}",
        "epoch",
        "loss",
        format!("train {metric}"),
        format!("val {metric}")
    );
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    for e in &summary {
        println!(
            "{:>6} {:>10.4} {:>10} {:>10}",
            e.epoch,
            e.train_loss,
            pct(e.train_score),
            pct(e.val_score)
        );
    }
    println!(
        "done in {:.1} s; model: {}; metrics: {}",
        started.elapsed().as_secs_f64(),
        t.out.join("model.safetensors").display(),
        t.out.join("metrics.jsonl").display()
    );
    Ok(())
}

/// A run's progress as a terminal progress bar.
struct Bar {
    bar: Option<ProgressBar>,
    header: String,
    epochs: u64,
    batch: usize,
}

impl Progress for Bar {
    fn begin(&mut self, total: u64, done: u64, first_epoch: u64, per_epoch: u64, notes: &[String]) {
        for note in notes {
            println!("{note}");
        }
        println!(
            "{}, {per_epoch} steps per epoch (batch {}), epochs {first_epoch}..{}",
            self.header, self.batch, self.epochs
        );
        let bar = ProgressBar::new(total).with_position(done);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps  epoch {prefix}  {msg}  [{elapsed} < {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar = Some(bar);
    }

    fn epoch(&mut self, epoch: u64) {
        if let Some(b) = &self.bar {
            b.set_prefix(epoch.to_string());
        }
    }

    fn step(&mut self, read: Option<(f32, f64, f64)>) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if let Some((loss, lr, rate)) = read {
                b.set_message(format!("loss {loss:.4}  lr {lr:.2e}  {rate:.1} clips/s"));
            }
        }
    }

    fn end(&mut self, finished: bool) {
        if let Some(b) = self.bar.take() {
            if finished {
                b.finish();
            } else {
                b.abandon();
            }
        }
    }
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
