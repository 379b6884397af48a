//! Supervised fine-tuning of a P4Transformer (action recognition: one label per clip;
//! action segmentation: one label per frame) or of the 4D semantic segmentation net
//! (one label per point, weighted and masked). One training step — forward, loss,
//! backward and the optimizer update of every parameter — is recorded into one GPU
//! submission; the loss is read back only when the caller asks.
//!
//! Checkpoints hold the model (under PyTorch's names), the optimizer state, the schedule
//! position and the data-order RNG, so a resumed run continues bitwise identically.

use std::collections::HashMap;
use std::path::Path;

use edge4d_runtime::models::synthia::{segmentation_loss, SegmentationNet};
use edge4d_runtime::models::{Grads, P4Transformer, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::ops::optim::clip_grad_norm;
use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::c2p::model::C2pObjective;
use crate::checkpoint;
use crate::engine::{Learner, RunState};
use crate::optim::{Groups, Optimizer, OptimizerConfig};
use crate::rng::SplitMix64;
use crate::schedule::{Schedule, WarmupCosine, WarmupMultiStep};

pub use crate::optim::OptimizerKind;

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneConfig {
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f32,
    pub weight_decay: f32,
    pub warmup_epochs: u64,
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// Cosine decay to 0 over this many epochs (after the warm-up) instead of the
    /// multi-step schedule.
    pub cosine_epochs: Option<u64>,
    /// Clip the gradients' global 2-norm to this before each update.
    pub clip_grad_norm: Option<f32>,
}

impl Default for FinetuneConfig {
    /// train-msr.py: SGD lr 0.01, momentum 0.9, weight decay 1e-4, warm-up 10 epochs,
    /// milestones [20, 30], γ 0.1, batch 14.
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            warmup_epochs: 10,
            milestones: vec![20, 30],
            gamma: 0.1,
            batch_size: 14,
            shuffle: true,
            seed: 0,
            cosine_epochs: None,
            clip_grad_norm: None,
        }
    }
}

/// What a [`Finetuner`] trains, and the names its weights take in a model file.
pub trait TrainedModel {
    /// The file name of parameter `name` (its own, unless the model's files nest it).
    fn file_name(&self, name: &str) -> String {
        name.to_string()
    }
}

impl TrainedModel for P4Transformer {}
impl TrainedModel for SegmentationNet {}

/// C2P pre-training: the head-less per-frame backbone and the objective (predictors,
/// InfoNCE terms, teacher) distilled through it.
pub struct C2pPretraining {
    pub backbone: P4Transformer,
    pub objective: C2pObjective,
    backbone_names: std::collections::HashSet<String>,
}

impl C2pPretraining {
    pub fn new(backbone: P4Transformer, objective: C2pObjective) -> Self {
        let backbone_names = backbone.spec().into_iter().map(|p| p.name).collect();
        Self {
            backbone,
            objective,
            backbone_names,
        }
    }
}

impl TrainedModel for C2pPretraining {
    /// The official pre-training checkpoint's names (`models/AS_p4_pretrain.py`): the
    /// backbone under `model.`, the predictors as they are.
    fn file_name(&self, name: &str) -> String {
        if self.backbone_names.contains(name) {
            format!("model.{name}")
        } else {
            name.to_string()
        }
    }
}

/// A model being fine-tuned, with its optimizer, schedule and data order.
pub struct Finetuner<M = P4Transformer> {
    dev: Device,
    pub model: M,
    pub params: ParamStore,
    pub cfg: FinetuneConfig,
    /// Epoch, step, schedule and data-order RNG.
    pub run: RunState,
    trainable: Vec<String>,
    opt: Optimizer,
    one: Tensor,
}

impl<M: TrainedModel> Finetuner<M> {
    /// A fine-tuner for `iters_per_epoch` steps per epoch (the schedule is in iterations).
    pub fn new(
        dev: &Device,
        model: M,
        params: ParamStore,
        cfg: FinetuneConfig,
        iters_per_epoch: u64,
    ) -> Result<Self> {
        let trainable: Vec<String> = params
            .spec()
            .iter()
            .cloned()
            .filter(|p| p.trainable)
            .map(|p| p.name)
            .collect();
        let opt = Optimizer::for_store(
            dev,
            &params,
            OptimizerConfig {
                kind: cfg.optimizer,
                momentum: cfg.momentum,
                weight_decay: cfg.weight_decay,
                groups: Groups::AllDecay,
            },
        )?;
        let iters = iters_per_epoch.max(1);
        let schedule = match cfg.cosine_epochs {
            None => Schedule::MultiStep(WarmupMultiStep::from_epochs(
                cfg.lr,
                &cfg.milestones,
                cfg.gamma,
                cfg.warmup_epochs,
                iters,
            )),
            Some(total) => Schedule::Cosine(WarmupCosine {
                base_lr: cfg.lr,
                min_lr: 0.0,
                warmup_start_lr: cfg.lr * 1e-5,
                warmup_iters: cfg.warmup_epochs * iters,
                total_iters: total * iters,
            }),
        };
        Ok(Self {
            dev: dev.clone(),
            model,
            params,
            run: RunState::new(schedule, cfg.shuffle, SplitMix64::new(cfg.seed)),
            cfg,
            trainable,
            opt,
            one: dev.upload(&[1.0], &[1])?,
        })
    }

    /// The learning rate the next step uses.
    pub fn lr(&self) -> f64 {
        self.run.lr()
    }

    /// The run's random stream (data order, augmentation), saved in checkpoints.
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.run.rng
    }

    /// Writes the model's parameters atomically under the names its files use
    /// ([`TrainedModel::file_name`]: PyTorch's; C2P's pre-training checkpoint nests the
    /// backbone under `model.`).
    pub fn save_model(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let model = &self.model;
        self.params
            .save_renamed(&self.dev, path, metadata, |n| model.file_name(n))
    }
}

impl Finetuner<P4Transformer> {
    /// Records and submits one training step; returns the (device-side) mean loss.
    /// `labels` holds one label per clip or, for per-frame models, per output frame.
    pub fn train_step(&mut self, clip: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let lr = self.lr() as f32;
        let model = &self.model;
        let (params, one) = (&self.params, &self.one);
        let (opt, trainable, cfg) = (&mut self.opt, &self.trainable, &self.cfg);
        let loss = self.dev.run(|s| {
            let fwd = model.forward(s, params, clip)?;
            let classes = *fwd.logits.shape().last().unwrap_or(&1);
            let logits = fwd
                .logits
                .reshape(&[fwd.logits.numel() / classes, classes])?;
            if labels.numel() != logits.shape()[0] {
                return Err(Error::Shape {
                    op: "finetune",
                    detail: format!(
                        "{} labels for {} predictions",
                        labels.numel(),
                        logits.shape()[0]
                    ),
                });
            }
            let (loss, _) = cross_entropy(s, &logits, labels)?;
            let g = cross_entropy_backward(s, &logits, labels, one)?.reshape(fwd.logits.shape())?;
            let mut grads = Grads::new();
            model.backward(s, params, &fwd, &g, &mut grads)?;
            record_update(s, params, opt, trainable, cfg, &grads, lr)?;
            Ok(loss)
        })?;
        self.run.step += 1;
        Ok(loss)
    }

    /// Logits (flattened to rows of classes) for a batch, without training.
    pub fn predict(&self, clip: &Tensor) -> Result<(Vec<f32>, usize)> {
        let model = &self.model;
        let logits = self
            .dev
            .run(|s| Ok(model.forward(s, &self.params, clip)?.logits))?;
        let classes = *logits.shape().last().unwrap_or(&1);
        Ok((self.dev.read(&logits)?, classes))
    }
}

impl Finetuner<C2pPretraining> {
    /// Records and submits one C2P pre-training step on a batch of partial and complete
    /// clips (both (B, L, N, 3)); returns the (device-side) total loss.
    pub fn pretrain_step(&mut self, partial: &Tensor, complete: &Tensor) -> Result<Tensor> {
        let lr = self.lr() as f32;
        let (objective, model) = (&self.model.objective, &self.model.backbone);
        let params = &self.params;
        let (opt, trainable, cfg) = (&mut self.opt, &self.trainable, &self.cfg);
        let loss = self.dev.run(|s| {
            let fwd = objective.forward(s, model, params, partial, complete)?;
            let (grads, ..) = objective.backward(s, model, params, &fwd)?;
            record_update(s, params, opt, trainable, cfg, &grads, lr)?;
            Ok(fwd.terms.total)
        })?;
        self.run.step += 1;
        Ok(loss)
    }
}

impl Finetuner<SegmentationNet> {
    /// Records and submits one semantic-segmentation step: `xyz` (B, L, N, 3), `rgb`
    /// (B, L, 3, N), `labels` (B·L·N) U32 and `row_weight` (B·L·N), each point's loss
    /// weight from [`edge4d_runtime::models::synthia::segmentation_row_weights`].
    /// Returns the (device-side) loss.
    pub fn segmentation_step(
        &mut self,
        xyz: &Tensor,
        rgb: &Tensor,
        labels: &Tensor,
        row_weight: &Tensor,
    ) -> Result<Tensor> {
        let lr = self.lr() as f32;
        let model = &self.model;
        let (params, one) = (&self.params, &self.one);
        let (opt, trainable, cfg) = (&mut self.opt, &self.trainable, &self.cfg);
        let loss = self.dev.run(|s| {
            let fwd = model.forward(s, params, xyz, rgb, true)?;
            let (loss, g) = segmentation_loss(s, &fwd.logits, labels, row_weight, one)?;
            let mut grads = Grads::new();
            model.backward(s, params, &fwd, &g, &mut grads)?;
            record_update(s, params, opt, trainable, cfg, &grads, lr)?;
            Ok(loss)
        })?;
        self.run.step += 1;
        Ok(loss)
    }
}

impl<M: TrainedModel> Learner for Finetuner<M> {
    fn run(&self) -> &RunState {
        &self.run
    }

    fn run_mut(&mut self) -> &mut RunState {
        &mut self.run
    }

    /// Restores everything `save_checkpoint` wrote (the model must match).
    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let position = checkpoint::load(&self.dev, path, &mut self.params, &mut self.opt)?;
        self.run.restore(position);
        Ok(())
    }

    /// Writes model, optimizer state, schedule position and RNG atomically.
    fn save_checkpoint(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let position = self.run.position();
        checkpoint::save(&self.dev, path, &self.params, &self.opt, position, metadata)
    }

    fn save_model(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        Finetuner::save_model(self, path, metadata)
    }
}

/// Clips the gradients (when configured) and records the optimizer update of every
/// trainable parameter.
fn record_update(
    s: &mut edge4d_runtime::Step<'_>,
    params: &ParamStore,
    opt: &mut Optimizer,
    trainable: &[String],
    cfg: &FinetuneConfig,
    grads: &edge4d_runtime::models::Grads,
    lr: f32,
) -> Result<()> {
    if let Some(max_norm) = cfg.clip_grad_norm {
        let all = trainable
            .iter()
            .map(|n| {
                grads.get(n).ok_or_else(|| Error::InvalidArgument {
                    op: "finetune",
                    detail: format!("no gradient for trainable parameter {n}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        clip_grad_norm(s, &all, max_norm)?;
    }
    opt.step_store(s, params, grads, lr, true)
}
