//! The training loop the P4 tasks share (action recognition, action segmentation,
//! semantic segmentation, C2P pre-training): resume from a checkpoint, epochs of
//! shuffled batches, the loss read back every `log_every` steps, a stop on a
//! non-finite loss before anything is saved, metrics.jsonl, the model and an atomic
//! checkpoint after every epoch, curves.png.
//!
//! A task plugs in as two closures: `step` records one optimizer step on a batch and
//! returns the device-side loss; `epoch_end` measures the epoch's scores. How the run
//! is shown (a progress bar, nothing) is the caller's [`Progress`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::finetune::Finetuner;
use crate::run_dir::{Record, RunDir, Start};

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
}

/// Per-epoch scores a task reports: (train, val), each when measured.
pub type EpochScores = (Option<f64>, Option<f64>);
/// Records one optimizer step on a batch (sample indices); returns the device-side loss.
pub type StepFn<'a> = dyn FnMut(&mut Finetuner, &[usize]) -> Result<Tensor> + 'a;
/// Measures (train, val) after an epoch; the flag says whether it is the last.
pub type EpochEndFn<'a> = dyn FnMut(&Finetuner, bool) -> Result<EpochScores> + 'a;

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
pub fn train(
    dev: &Device,
    opts: &TrainOptions,
    ft: &mut Finetuner,
    samples: usize,
    step: &mut StepFn<'_>,
    epoch_end: &mut EpochEndFn<'_>,
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
            epoch: ft.epoch,
            step: ft.step,
        },
        None => Start::Fresh {
            overwrite: opts.overwrite,
        },
    };
    let mut run = RunDir::open(&opts.out, start)?;
    progress.begin(opts.epochs * iters, ft.step, ft.epoch, iters, &run.notes);
    let result = epochs(dev, opts, ft, samples, step, epoch_end, progress, &mut run);
    progress.end(result.is_ok());
    result
}

#[allow(clippy::too_many_arguments)]
fn epochs(
    dev: &Device,
    opts: &TrainOptions,
    ft: &mut Finetuner,
    samples: usize,
    step: &mut StepFn<'_>,
    epoch_end: &mut EpochEndFn<'_>,
    progress: &mut dyn Progress,
    run: &mut RunDir,
) -> Result<Vec<EpochSummary>> {
    let batch = opts.batch_size.max(1);
    let iters = samples.div_ceil(batch) as u64;
    let mut summary = Vec::new();
    let last = opts
        .stop_after_epoch
        .map_or(opts.epochs, |e| e.min(opts.epochs));
    while ft.epoch < last {
        progress.epoch(ft.epoch + 1);
        let order = ft.epoch_order(samples);
        let (mut loss_sum, mut loss_count) = (0.0f64, 0usize);
        let epoch_start = Instant::now();
        for (i, chunk) in order.chunks(batch).enumerate() {
            let lr = ft.lr();
            let loss = step(ft, chunk)?;
            if !ft.step.is_multiple_of(opts.log_every.max(1)) && i as u64 + 1 != iters {
                progress.step(None);
                continue;
            }
            let v = dev.read(&loss)?[0];
            if !v.is_finite() {
                return Err(diverged(v as f64, ft.step, ft.epoch + 1, &opts.out));
            }
            loss_sum += v as f64;
            loss_count += 1;
            let rate = ((i + 1) * batch) as f64 / epoch_start.elapsed().as_secs_f64();
            progress.step(Some((v, lr, rate)));
            run.log(&Record::Step {
                epoch: ft.epoch + 1,
                step: ft.step,
                loss: v as f64,
                lr,
                samples_per_s: Some(rate),
            })?;
        }
        ft.epoch += 1;
        let (train_score, val_score) = epoch_end(ft, ft.epoch == opts.epochs)?;
        let train_loss = loss_sum / loss_count.max(1) as f64;
        run.log(&Record::Epoch {
            epoch: ft.epoch,
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
            epoch: ft.epoch,
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
