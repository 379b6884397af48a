//! Object classification fine-tuning of a (distilled) Point-MAE encoder: AdamW with
//! Point-MAE's groups, dropout seeds per step, one submission per step.

use std::collections::HashMap;
use std::path::Path;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::models::pointmae_cls::PointMaeClassifier;
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::engine::{Learner, RunState};
use crate::optim::{Groups, Optimizer, OptimizerConfig, OptimizerKind};

pub struct ObjectClassifier {
    dev: Device,
    pub model: PointMaeClassifier,
    pub params: ParamStore,
    opt: Optimizer,
    /// Epoch, step, schedule and the run's random stream (order, augmentation, dropout).
    pub run: RunState,
    points: Tensor,
    one: Tensor,
    pub batch: usize,
}

impl ObjectClassifier {
    pub fn new(
        dev: &Device,
        cfg: PointMaeConfig,
        batch: usize,
        points: usize,
        weight_decay: f32,
        seed: u64,
        run: RunState,
    ) -> Result<Self> {
        let model = PointMaeClassifier::new(cfg)?;
        let params = ParamStore::init(dev, model.spec(), seed)?;
        let opt = Optimizer::for_store(
            dev,
            &params,
            OptimizerConfig {
                kind: OptimizerKind::AdamW,
                momentum: 0.0,
                weight_decay,
                groups: Groups::PointMae,
            },
        )?;
        Ok(Self {
            dev: dev.clone(),
            model,
            params,
            opt,
            run,
            points: dev.zeros(&[batch, points, 3])?,
            one: dev.upload(&[1.0], &[1])?,
            batch,
        })
    }

    /// Starts from a distillation (or any Point-MAE) checkpoint: returns how many
    /// tensors were loaded and the names left as initialised (the classification head).
    pub fn init_from(&mut self, path: &Path) -> Result<(usize, Vec<String>)> {
        super::init_from(&self.dev, &mut self.params, path)
    }

    fn check(&self, clouds: &[f32]) -> Result<()> {
        if clouds.len() != self.points.numel() {
            return Err(Error::InvalidArgument {
                op: "object classifier",
                detail: format!(
                    "{} cloud values for a batch of {:?}",
                    clouds.len(),
                    self.points.shape()
                ),
            });
        }
        Ok(())
    }

    /// One step at the schedule's learning rate; returns the mean cross-entropy tensor.
    /// The run's random stream (saved in its checkpoints) seeds the head's dropouts.
    pub fn train_step(&mut self, clouds: &[f32], labels: &[u32]) -> Result<Tensor> {
        self.check(clouds)?;
        let lr = self.run.lr() as f32;
        self.dev.write_at(&self.points, 0, clouds)?;
        let labels = self.dev.upload_u32(labels, &[labels.len()])?;
        let rng = &mut self.run.rng;
        let seeds = [rng.next_u64() as u32, rng.next_u64() as u32];
        let (model, p, opt, points, one) = (
            &self.model,
            &self.params,
            &mut self.opt,
            &self.points,
            &self.one,
        );
        self.dev
            .run(|s| {
                let fwd = model.forward(s, p, points, true, seeds)?;
                let (loss, _) = cross_entropy(s, &fwd.logits, &labels)?;
                let g = cross_entropy_backward(s, &fwd.logits, &labels, one)?;
                let mut grads = Grads::new();
                model.backward(s, p, &fwd, &g, &mut grads)?;
                opt.step_store(s, p, &grads, lr, false)?;
                Ok(loss)
            })
            .inspect(|_| self.run.step += 1)
    }

    /// Logits (batch × classes), eval mode.
    pub fn predict(&self, clouds: &[f32]) -> Result<Vec<f32>> {
        self.check(clouds)?;
        self.dev.write_at(&self.points, 0, clouds)?;
        let logits = self.dev.run(|s| {
            Ok(self
                .model
                .forward(s, &self.params, &self.points, false, [0, 0])?
                .logits)
        })?;
        self.dev.read(&logits)
    }

    pub fn save(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        self.params.save(&self.dev, path, metadata)
    }
}

impl Learner for ObjectClassifier {
    fn run(&self) -> &RunState {
        &self.run
    }

    fn run_mut(&mut self) -> &mut RunState {
        &mut self.run
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let position = crate::checkpoint::load(&self.dev, path, &mut self.params, &mut self.opt)?;
        self.run.restore(position);
        Ok(())
    }

    fn save_checkpoint(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let position = self.run.position();
        crate::checkpoint::save(&self.dev, path, &self.params, &self.opt, position, metadata)
    }

    fn save_model(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        self.save(path, metadata)
    }
}

/// (accuracy, per class (right, all)) of `clf` on `data` (every sample labelled).
pub fn evaluate(
    clf: &ObjectClassifier,
    data: &super::pairs::PairedDataset,
    classes: usize,
) -> edge4d_runtime::Result<(f64, Vec<(usize, usize)>)> {
    let batch = clf.batch;
    let order: Vec<usize> = (0..data.len()).collect();
    let mut per_class = vec![(0usize, 0usize); classes];
    for chunk in order.chunks(batch) {
        let ids: Vec<usize> = (0..batch).map(|i| chunk[i % chunk.len()]).collect();
        let clouds: Vec<f32> = ids
            .iter()
            .flat_map(|&i| data.samples[i].points.iter().copied())
            .collect();
        let logits = clf.predict(&clouds)?;
        for (k, &i) in chunk.iter().enumerate() {
            let row = &logits[k * classes..(k + 1) * classes];
            let pred = (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            let label = data.samples[i].label.unwrap();
            per_class[label].1 += 1;
            if pred == label {
                per_class[label].0 += 1;
            }
        }
    }
    let (right, all) = per_class.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    Ok((right as f64 / all.max(1) as f64, per_class))
}
