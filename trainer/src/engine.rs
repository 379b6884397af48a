//! The training loop every task shares (action recognition, action segmentation,
//! semantic segmentation, C2P pre-training, concept distillation, Point-MAE
//! classification): resume from a checkpoint, epochs of shuffled batches, the loss read
//! back every `log_every` steps, a stop on a non-finite loss before anything is saved,
//! metrics.jsonl, the model and an atomic checkpoint after every epoch, curves.png.
//!
//! A task is a [`Learner`] (its model, optimizer and [`RunState`]) plus two closures:
//! `step` records one optimizer step on a batch and returns the device-side loss;
//! `epoch_end` measures the epoch's scores. How the run is shown (a progress bar,
//! nothing) is the caller's [`Progress`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::checkpoint::RunPosition;
use crate::rng::SplitMix64;
use crate::run_dir::{Record, RunDir, Start};
use crate::schedule::Schedule;

/// Where a run stands and what orders it: the part of every task the engine drives.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    /// Completed epochs.
    pub epoch: u64,
    /// Optimizer steps taken (the schedule's iteration).
    pub step: u64,
    /// The run's random stream (data order, augmentation, dropout), saved in checkpoints.
    pub rng: SplitMix64,
    pub schedule: Schedule,
    /// Shuffle each epoch's order (else file order).
    pub shuffle: bool,
}

impl RunState {
    /// A run at its start.
    pub fn new(schedule: Schedule, shuffle: bool, rng: SplitMix64) -> Self {
        Self {
            epoch: 0,
            step: 0,
            rng,
            schedule,
            shuffle,
        }
    }

    /// The learning rate the next step uses.
    pub fn lr(&self) -> f64 {
        self.schedule.lr(self.step)
    }

    /// The order of the next epoch's samples (shuffled when configured).
    pub fn epoch_order(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.shuffle {
            self.rng.shuffle(&mut order);
        }
        order
    }

    /// What a checkpoint stores.
    pub fn position(&self) -> RunPosition {
        RunPosition {
            epoch: self.epoch,
            step: self.step,
            rng: self.rng,
        }
    }

    /// Continues from a checkpoint's position.
    pub fn restore(&mut self, position: RunPosition) {
        self.epoch = position.epoch;
        self.step = position.step;
        self.rng = position.rng;
    }
}

/// A model being trained, as the engine sees it: its run state and its files.
pub trait Learner {
    fn run(&self) -> &RunState;
    fn run_mut(&mut self) -> &mut RunState;
    /// Restores weights, optimizer state and run position (bitwise resume).
    fn load_checkpoint(&mut self, path: &Path) -> Result<()>;
    /// Writes weights, optimizer state and run position atomically.
    fn save_checkpoint(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()>;
    /// Writes the weights under PyTorch's names atomically.
    fn save_model(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()>;
}

/// How a run is driven.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Output folder: checkpoint.safetensors, model.safetensors, metrics.jsonl,
    /// curves.png.
    pub out: PathBuf,
    pub epochs: u64,
    pub batch_size: usize,
    /// Read the loss back every this many steps (and at each epoch's last step).
    pub log_every: u64,
    /// End this call once this many epochs are complete (the schedule still spans
    /// `epochs`); `resume` continues from there.
    pub stop_after_epoch: Option<u64>,
    /// Continue from this checkpoint (bitwise as if never stopped).
    pub resume: Option<PathBuf>,
    /// Start a new run in an `out` that holds one.
    pub overwrite: bool,
    /// Stored in every checkpoint and model file (e.g. the config text).
    pub metadata: HashMap<String, String>,
    /// What the epoch scores are ("acc", "mIoU", …).
    pub metric: String,
    /// Every batch holds exactly `batch_size` samples: the epoch's last one wraps round
    /// to the start of the order (for models built for one batch size).
    pub full_batches: bool,
}

/// Per-epoch scores a task reports: (train, val), each when measured.
pub type EpochScores = (Option<f64>, Option<f64>);
/// Records one optimizer step on a batch (sample indices); returns the device-side loss.
pub type StepFn<'a, L> = dyn FnMut(&mut L, &[usize]) -> Result<Tensor> + 'a;
/// Measures (train, val) after an epoch; the flag says whether it is the last.
pub type EpochEndFn<'a, L> = dyn FnMut(&L, bool) -> Result<EpochScores> + 'a;

/// What a run reports as it goes. Every method does nothing by default.
pub trait Progress {
    /// Before the first step: steps in the whole run, steps already done (resume), the
    /// epoch it starts from, steps per epoch, and what opening the folder changed.
    fn begin(
        &mut self,
        _total: u64,
        _done: u64,
        _first_epoch: u64,
        _per_epoch: u64,
        _notes: &[String],
    ) {
    }
    /// An epoch (counted from 1) starts.
    fn epoch(&mut self, _epoch: u64) {}
    /// A step ended; with (loss, lr, samples per second) when the loss was read back.
    fn step(&mut self, _read: Option<(f32, f64, f64)>) {}
    /// The run stopped; `finished` is false when it stopped on an error.
    fn end(&mut self, _finished: bool) {}
}

/// A [`Progress`] that shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// One finished epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochSummary {
    pub epoch: u64,
    /// Mean of the losses read back during the epoch.
    pub train_loss: f64,
    pub train_score: Option<f64>,
    pub val_score: Option<f64>,
}

/// Trains `ft` on `samples` samples for `opts.epochs` epochs; returns the epochs this
/// call ran.
pub fn train<L: Learner>(
    dev: &Device,
    opts: &TrainOptions,
    ft: &mut L,
    samples: usize,
    step: &mut StepFn<'_, L>,
    epoch_end: &mut EpochEndFn<'_, L>,
    progress: &mut dyn Progress,
) -> Result<Vec<EpochSummary>> {
    if samples == 0 {
        return Err(Error::InvalidArgument {
            op: "training",
            detail: "the dataset holds no samples".into(),
        });
    }
    if let Some(ckpt) = &opts.resume {
        ft.load_checkpoint(ckpt)?;
    }
    let batch = opts.batch_size.max(1);
    let iters = samples.div_ceil(batch) as u64;
    let start = match opts.resume {
        Some(_) => Start::Resume {
            epoch: ft.run().epoch,
            step: ft.run().step,
        },
        None => Start::Fresh {
            overwrite: opts.overwrite,
        },
    };
    let mut run = RunDir::open(&opts.out, start)?;
    progress.begin(
        opts.epochs * iters,
        ft.run().step,
        ft.run().epoch,
        iters,
        &run.notes,
    );
    let result = epochs(dev, opts, ft, samples, step, epoch_end, progress, &mut run);
    progress.end(result.is_ok());
    result
}

/// An epoch's batches: consecutive chunks of `order`; with `full`, the last one wraps
/// round to the start of the order.
pub fn epoch_batches(order: &[usize], batch: usize, full: bool) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    (0..order.len().div_ceil(batch))
        .map(|b| {
            let end = if full {
                (b + 1) * batch
            } else {
                ((b + 1) * batch).min(order.len())
            };
            (b * batch..end).map(|i| order[i % order.len()]).collect()
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn epochs<L: Learner>(
    dev: &Device,
    opts: &TrainOptions,
    ft: &mut L,
    samples: usize,
    step: &mut StepFn<'_, L>,
    epoch_end: &mut EpochEndFn<'_, L>,
    progress: &mut dyn Progress,
    run: &mut RunDir,
) -> Result<Vec<EpochSummary>> {
    let batch = opts.batch_size.max(1);
    let iters = samples.div_ceil(batch) as u64;
    let mut summary = Vec::new();
    let last = opts
        .stop_after_epoch
        .map_or(opts.epochs, |e| e.min(opts.epochs));
    while ft.run().epoch < last {
        progress.epoch(ft.run().epoch + 1);
        let order = ft.run_mut().epoch_order(samples);
        let (mut loss_sum, mut loss_count) = (0.0f64, 0usize);
        let epoch_start = Instant::now();
        for (i, chunk) in epoch_batches(&order, batch, opts.full_batches)
            .iter()
            .enumerate()
        {
            let lr = ft.run().lr();
            let before = ft.run().step;
            let loss = step(ft, chunk)?;
            // Every step function takes exactly one optimizer step.
            ft.run_mut().step = before + 1;
            let (done, epoch) = (ft.run().step, ft.run().epoch);
            if !done.is_multiple_of(opts.log_every.max(1)) && i as u64 + 1 != iters {
                progress.step(None);
                continue;
            }
            let v = dev.read(&loss)?[0];
            if !v.is_finite() {
                return Err(diverged(v as f64, done, epoch + 1, &opts.out));
            }
            loss_sum += v as f64;
            loss_count += 1;
            let rate = ((i + 1) * batch) as f64 / epoch_start.elapsed().as_secs_f64();
            progress.step(Some((v, lr, rate)));
            run.log(&Record::Step {
                epoch: epoch + 1,
                step: done,
                loss: v as f64,
                lr,
                samples_per_s: Some(rate),
            })?;
        }
        ft.run_mut().epoch += 1;
        let epoch = ft.run().epoch;
        let (train_score, val_score) = epoch_end(ft, epoch == opts.epochs)?;
        let train_loss = loss_sum / loss_count.max(1) as f64;
        run.log(&Record::Epoch {
            epoch,
            train_loss,
            train_accuracy: train_score,
            val_accuracy: val_score,
            metric: opts.metric.clone(),
        })?;
        ft.save_checkpoint(
            &opts.out.join("checkpoint.safetensors"),
            opts.metadata.clone(),
        )?;
        ft.save_model(&opts.out.join("model.safetensors"), opts.metadata.clone())?;
        run.plot()?;
        summary.push(EpochSummary {
            epoch,
            train_loss,
            train_score,
            val_score,
        });
    }
    Ok(summary)
}

/// The error of a run stopped by a non-finite `loss` at `step` of `epoch` (from 1),
/// before anything was saved.
pub fn diverged(loss: f64, step: u64, epoch: u64, out: &std::path::Path) -> Error {
    Error::InvalidArgument {
        op: "training",
        detail: format!(
            "the loss became {loss} at step {step} (epoch {epoch}); stopped without saving, the last checkpoint in {} is intact",
            out.display()
        ),
    }
}
