//! Flags every training run takes (`finetune`, `pretrain`) and the loop that drives
//! the P4 tasks' runs from the command line: [`engine::train`] with a progress bar, the
//! run's header and a summary table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use edge4d_runtime::models::params::Spec;
use edge4d_runtime::models::ParamStore;
use edge4d_runtime::{Device, Error, TensorFile};
use edge4d_trainer::dataset::ClipDataset;
use edge4d_trainer::engine::{
    self, EpochEndFn, EpochSummary, Learner, Progress, RunState, StepFn, TrainOptions,
};
use edge4d_trainer::finetune::{FinetuneConfig, OptimizerKind};
use edge4d_trainer::rng::SplitMix64;
use edge4d_trainer::schedule::{Schedule, WarmupCosine};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Optimizer {
    Sgd,
    Adamw,
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
    /// Stop once this many epochs are complete, leaving a checkpoint to --resume; the
    /// schedule still spans --epochs (a long run split into sessions).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub stop_after_epoch: Option<u64>,
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
    /// Point-MAE's schedule: linear warm-up from 1e-6 over --warmup-epochs, then cosine
    /// decay to 1e-6 at --epochs.
    pub fn warmup_cosine(&self, iters_per_epoch: u64) -> WarmupCosine {
        WarmupCosine {
            base_lr: self.lr,
            min_lr: 1e-6,
            warmup_start_lr: 1e-6,
            warmup_iters: self.warmup_epochs * iters_per_epoch,
            total_iters: self.epochs * iters_per_epoch,
        }
    }

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

    /// A Point-MAE run's state for `iters` steps per epoch: warm-up and cosine decay,
    /// the data order seeded by --seed and `stream` (one per task).
    pub fn pointmae_run(&self, iters: u64, stream: u64) -> RunState {
        RunState::new(
            Schedule::Cosine(self.warmup_cosine(iters)),
            !self.no_shuffle,
            SplitMix64::new(self.seed ^ stream),
        )
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

/// What a command tells [`train_loop`] about its run.
pub struct LoopPlan {
    /// The run's header line ("p4transformer-msr: 240 clips of 24 frames x 2048 points").
    pub header: String,
    pub samples: usize,
    /// The per-epoch score ("acc", "mIoU"): names the summary's columns and is recorded
    /// in metrics.jsonl.
    pub metric: &'static str,
    /// Stored in every checkpoint and model file besides the config text.
    pub metadata: HashMap<String, String>,
    /// Every batch exactly `--batch-size` samples (see [`TrainOptions::full_batches`]).
    pub full_batches: bool,
}

impl LoopPlan {
    /// A P4 task's plan on a clip dataset, scored by accuracy.
    pub fn clips(what: &str, data: &ClipDataset) -> Self {
        let [_, l, n, _] = data.clips_shape;
        Self {
            header: format!("{what}: {} clips of {l} frames x {n} points", data.len()),
            samples: data.len(),
            metric: "acc",
            metadata: HashMap::new(),
            full_batches: false,
        }
    }
}

/// The training loop every `finetune` and `pretrain` task runs ([`engine::train`]) with
/// a progress bar, the run's header and a summary table (`epoch_end` measures scores).
pub fn train_loop<L: Learner>(
    dev: &Device,
    t: &TrainArgs,
    learner: &mut L,
    plan: LoopPlan,
    step: &mut StepFn<'_, L>,
    epoch_end: &mut EpochEndFn<'_, L>,
) -> Result<Vec<EpochSummary>, Box<dyn std::error::Error>> {
    let mut metadata = plan.metadata;
    metadata.insert("config".to_string(), std::fs::read_to_string(&t.config)?);
    let metric = plan.metric;
    let opts = TrainOptions {
        out: t.out.clone(),
        epochs: t.epochs,
        batch_size: t.batch_size,
        log_every: t.log_every,
        stop_after_epoch: t.stop_after_epoch,
        resume: t.resume.clone(),
        overwrite: t.overwrite,
        metadata,
        metric: metric.to_string(),
        full_batches: plan.full_batches,
    };
    println!("adapter: {}", dev.adapter());
    let mut bar = Bar {
        bar: None,
        header: plan.header,
        epochs: t.epochs,
        batch: t.batch_size,
    };
    let started = Instant::now();
    let summary = engine::train(dev, &opts, learner, plan.samples, step, epoch_end, &mut bar)?;
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
    Ok(summary)
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

/// A progress bar of `len` steps labelled `what`.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} {{msg}} [{{elapsed}}<{{eta}}]"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}
