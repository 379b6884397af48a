//! One concept-distillation training step, recorded as a single submission: Point-MAE
//! encoder (train mode) → concept head over every layer's input → MSE against the
//! teacher prefixes → backward through head and encoder → AdamW (Point-MAE's groups).

use std::collections::HashMap;
use std::path::Path;

use edge4d_runtime::models::concept::{ConceptConfig, ConceptHead};
use edge4d_runtime::models::params::Spec;
use edge4d_runtime::models::pointmae::{PointMae, PointMaeConfig};
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::mse::{mse, mse_backward};
use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::engine::{Learner, RunState};
use crate::optim::{Groups, Optimizer, OptimizerConfig, OptimizerKind};
use crate::rng::SplitMix64;

/// The head's parameters live under this prefix in a distillation checkpoint; the
/// encoder's keep Point-MAE's names, so fine-tuning loads the file as it is.
pub const HEAD_PREFIX: &str = "head.";

pub struct ConceptDistiller {
    dev: Device,
    pub encoder: PointMae,
    pub head: ConceptHead,
    pub params: ParamStore,
    opt: Optimizer,
    /// Epoch, step, schedule and the run's random stream (order, augmentation).
    pub run: RunState,
    points: Tensor,
    prefix: Tensor,
    one: Tensor,
    pub batch: usize,
}

/// The concept head's sizes from an encoder config, or an error naming the missing keys.
pub fn concept_config(cfg: &PointMaeConfig) -> Result<ConceptConfig> {
    match (
        cfg.concepts,
        cfg.prefix_length,
        cfg.prefix_dim,
        cfg.concept_hidden,
    ) {
        (Some(concepts), Some(prefix_length), Some(prefix_dim), Some(hidden)) => {
            Ok(ConceptConfig {
                dim: cfg.trans_dim,
                heads: cfg.num_heads,
                concepts,
                prefix_length,
                prefix_dim,
                hidden,
            })
        }
        _ => Err(Error::Config {
            path: "point-mae config".into(),
            detail:
                "concept distillation needs concepts, prefix_length, prefix_dim and concept_hidden"
                    .into(),
        }),
    }
}

/// Point-MAE's PointcloudScaleAndTranslate, per cloud: per-axis scale U(2/3, 3/2), then
/// per-axis shift U(−0.2, 0.2).
pub fn scale_and_translate(cloud: &mut [f32], rng: &mut SplitMix64) {
    let scale: [f32; 3] = std::array::from_fn(|_| rng.uniform(2.0 / 3.0, 1.5));
    let shift: [f32; 3] = std::array::from_fn(|_| rng.uniform(-0.2, 0.2));
    for p in cloud.chunks_exact_mut(3) {
        for k in 0..3 {
            p[k] = p[k] * scale[k] + shift[k];
        }
    }
}

impl ConceptDistiller {
    /// A distiller for batches of `batch` clouds of `points` points; `seed` initialises
    /// the weights, `run` says how the steps go.
    pub fn new(
        dev: &Device,
        cfg: PointMaeConfig,
        batch: usize,
        points: usize,
        weight_decay: f32,
        seed: u64,
        run: RunState,
    ) -> Result<Self> {
        let cc = concept_config(&cfg)?;
        let encoder = PointMae::new(cfg)?;
        let head = ConceptHead::new(cc, HEAD_PREFIX)?;
        let mut spec: Spec = encoder.spec();
        head.spec(&mut spec);
        let params = ParamStore::init(dev, spec, seed)?;
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
            points: dev.zeros(&[batch, points, 3])?,
            prefix: dev.zeros(&[batch, cc.prefix_length, cc.prefix_dim])?,
            one: dev.upload(&[1.0], &[1])?,
            encoder,
            head,
            params,
            opt,
            run,
            batch,
        })
    }

    /// One step on `clouds` (batch × points × 3) and their teacher prefixes at the
    /// schedule's learning rate; returns the loss tensor (read it when convenient:
    /// reading waits for the step).
    pub fn step(&mut self, clouds: &[f32], prefixes: &[f32]) -> Result<Tensor> {
        let lr = self.run.lr() as f32;
        if clouds.len() != self.points.numel() || prefixes.len() != self.prefix.numel() {
            return Err(Error::InvalidArgument {
                op: "concept distillation step",
                detail: format!(
                    "{} cloud values and {} prefix values for batch {:?} and {:?}",
                    clouds.len(),
                    prefixes.len(),
                    self.points.shape(),
                    self.prefix.shape()
                ),
            });
        }
        self.dev.write_at(&self.points, 0, clouds)?;
        self.dev.write_at(&self.prefix, 0, prefixes)?;
        let (enc, head, p, opt) = (&self.encoder, &self.head, &self.params, &mut self.opt);
        let (points, prefix, one) = (&self.points, &self.prefix, &self.one);
        self.dev
            .run(|s| {
                let fwd = enc.forward(s, p, points, true)?;
                let concepts = head.forward(s, p, &fwd.blocks.layer_inputs)?;
                let loss = mse(s, &concepts.pred, prefix)?;
                let g_pred = mse_backward(s, &concepts.pred, prefix, one)?;
                let mut grads = Grads::new();
                let g_inputs = head.backward(s, p, &concepts, &g_pred, &mut grads)?;
                enc.backward(s, p, &fwd, None, &g_inputs, &mut grads)?;
                opt.step_store(s, p, &grads, lr, false)?;
                Ok(loss)
            })
            .inspect(|_| self.run.step += 1)
    }

    /// Predicted prefixes (B, k_cap, d_cap) for clouds, eval mode (for validation).
    pub fn predict(&self, clouds: &[f32]) -> Result<Vec<f32>> {
        self.dev.write_at(&self.points, 0, clouds)?;
        let pred = self.dev.run(|s| {
            let fwd = self.encoder.forward(s, &self.params, &self.points, false)?;
            Ok(self
                .head
                .forward(s, &self.params, &fwd.blocks.layer_inputs)?
                .pred)
        })?;
        self.dev.read(&pred)
    }

    /// Starts from a checkpoint (e.g. an earlier distillation): returns how many tensors
    /// were loaded and the names left as initialised.
    pub fn init_from(&mut self, path: &Path) -> Result<(usize, Vec<String>)> {
        super::init_from(&self.dev, &mut self.params, path)
    }

    /// Encoder (Point-MAE names) and head (`head.*`) weights, atomically.
    pub fn save(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        self.params.save(&self.dev, path, metadata)
    }
}

impl Learner for ConceptDistiller {
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
