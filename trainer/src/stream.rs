//! A live action stream: depth or point frames in, a prediction per frame out, and
//! on-device adaptation from labelled frames.
//!
//! Each frame is back-projected (depth) or taken as is (points, metres, camera frame:
//! x right, y down, z forward), scaled to the model's units, resampled to the model's
//! points per frame and pushed into a [`P4Stream`], which reuses the tube features of
//! frames already seen. Labelled windows are kept (up to a bound) and fine-tuning steps
//! train on them with the ordinary [`Finetuner`]; the stream's cache is dropped after
//! each update because the tube weights changed.

use std::collections::VecDeque;
use std::path::Path;

use edge4d_runtime::models::{ModelKind, P4Stream, P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::{Device, Error, Result, TensorFile};

use crate::depth_io::DepthIntrinsics;
use crate::finetune::{FinetuneConfig, Finetuner, OptimizerKind};
use crate::humanoid::generate::resample;
use crate::rng::SplitMix64;

/// MSR-Action3D's units (millimetres ÷ 300), which the bundled models use.
pub const MSR_UNITS_PER_METRE: f32 = 1000.0 / 300.0;

/// How a stream turns frames into model input and adapts.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Frames per window (the model's clip length).
    pub window: usize,
    /// Points per frame after resampling.
    pub points: usize,
    /// Model units per metre.
    pub units_per_metre: f32,
    /// Reuse the tube features of frames already seen (false: recompute every window).
    pub reuse: bool,
    /// Seed of the point resampling and of the fine-tuning batches.
    pub seed: u64,
    /// Labelled windows kept for fine-tuning (a uniform sample of all of them).
    pub max_labelled: usize,
    /// On-device fine-tuning: SGD with this learning rate, momentum 0.9, no decay.
    pub finetune_lr: f64,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            window: 16,
            points: 512,
            units_per_metre: MSR_UNITS_PER_METRE,
            reuse: true,
            seed: 0,
            max_labelled: 512,
            finetune_lr: 0.005,
        }
    }
}

/// The prediction for the latest frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index of the frame (0-based, in push order).
    pub frame: u64,
    /// Softmax over the classes.
    pub probabilities: Vec<f32>,
    /// The most probable class.
    pub class: usize,
}

/// The most SGD steps one [`ActionStream::finetune`] call takes.
pub const MAX_FINETUNE_STEPS: usize = 1_000_000;

/// One live stream on a device, with its own copy of the model's weights.
pub struct ActionStream {
    dev: Device,
    tuner: Finetuner,
    stream: P4Stream,
    opts: StreamOptions,
    rng: SplitMix64,
    /// Host copies of the last `window` frames (model units) and their labels.
    recent: VecDeque<(Vec<f32>, Option<u32>)>,
    labelled: VecDeque<(Vec<f32>, u32)>,
    /// Labelled windows offered so far (the reservoir's denominator).
    labelled_seen: u64,
    latest: Option<Prediction>,
    warm_up_ms: f64,
}

/// Loads a model config (TOML) and its weights: a state_dict under PyTorch's names, or
/// a training checkpoint of `edge4d finetune` (its optimizer state is ignored).
pub fn load_model(
    dev: &Device,
    config: &Path,
    weights: &Path,
) -> Result<(P4Transformer, ParamStore)> {
    let cfg = P4TransformerConfig::load(config)?;
    let model = P4Transformer::new(cfg)?;
    let file = TensorFile::open(weights)?;
    let checkpoint = file.contains("trainer.step");
    let params = ParamStore::load(dev, model.spec(), &file, "", checkpoint)?;
    Ok((model, params))
}

impl ActionStream {
    /// A stream running `model` with `params` (a per-clip or per-frame action model).
    pub fn new(
        dev: &Device,
        model: P4Transformer,
        params: ParamStore,
        opts: StreamOptions,
    ) -> Result<Self> {
        if model.cfg.model == ModelKind::Synthia {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: "streams run action models (p4transformer-msr or -actionseg); the segmentation net is not streamable".into(),
            });
        }
        if !(opts.units_per_metre.is_finite() && opts.units_per_metre > 0.0) {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!(
                    "units_per_metre must be positive, got {}",
                    opts.units_per_metre
                ),
            });
        }
        let stream = P4Stream::new(dev, &model, opts.window, opts.points, opts.reuse)?;
        let tune = FinetuneConfig {
            optimizer: OptimizerKind::Sgd,
            lr: opts.finetune_lr,
            momentum: 0.9,
            weight_decay: 0.0,
            warmup_epochs: 0,
            milestones: vec![],
            gamma: 1.0,
            batch_size: 8,
            shuffle: true,
            seed: opts.seed,
            cosine_epochs: None,
            clip_grad_norm: Some(10.0),
        };
        let mut stream = Self {
            dev: dev.clone(),
            tuner: Finetuner::new(dev, model, params, tune, 1)?,
            stream,
            rng: SplitMix64::new(opts.seed ^ 0x5743_4541_4D21),
            opts,
            recent: VecDeque::new(),
            labelled: VecDeque::new(),
            labelled_seen: 0,
            latest: None,
            warm_up_ms: 0.0,
        };
        stream.warm_up()?;
        Ok(stream)
    }

    /// On a GPU, compiles every pipeline a prediction needs now rather than on the
    /// first frame: one window of a synthetic cloud goes through the model, then the
    /// window starts empty again (the random stream is restored, so predictions are
    /// those of a stream that never warmed up). The compiled pipelines are written to
    /// the user's cache directory where the backend allows (Vulkan), so the next
    /// process compiles nothing. Nothing to do on the native CPU backend.
    fn warm_up(&mut self) -> Result<()> {
        if self.dev.is_native_cpu() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let rng = self.rng;
        let n = self.opts.points;
        let cloud: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t = i as f32 / n as f32 * std::f32::consts::TAU * 7.0;
                [
                    0.3 * t.cos(),
                    0.8 * (i as f32 / n as f32) - 0.4,
                    2.0 + 0.3 * t.sin(),
                ]
            })
            .collect();
        for _ in 0..self.opts.window {
            self.push_points(&cloud)?;
        }
        self.reset_window()?;
        self.rng = rng;
        if let Err(e) = self.dev.save_pipeline_cache() {
            log::warn!("{e}");
        }
        self.warm_up_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(())
    }

    /// Milliseconds the constructor spent compiling the model's pipelines (0 on the
    /// native CPU backend).
    pub fn warm_up_ms(&self) -> f64 {
        self.warm_up_ms
    }

    pub fn options(&self) -> &StreamOptions {
        &self.opts
    }

    pub fn num_classes(&self) -> usize {
        self.tuner.model.cfg.num_classes
    }

    /// Tube features computed for the latest prediction (the rest were reused).
    pub fn tube_features_computed(&self) -> usize {
        self.stream.computed_last()
    }

    /// GPU dispatches the latest prediction recorded.
    pub fn dispatches_last(&self) -> usize {
        self.stream.dispatches_last()
    }

    /// Tube features (output frames of the tube embedding) in one window.
    pub fn tube_features_per_window(&self) -> usize {
        self.tuner
            .model
            .tube
            .frames_out(self.opts.window)
            .unwrap_or(0)
    }

    /// Frames pushed so far.
    pub fn frames_pushed(&self) -> u64 {
        self.stream.frames_pushed()
    }

    /// The latest prediction (None until a whole window has arrived).
    pub fn latest(&self) -> Option<&Prediction> {
        self.latest.as_ref()
    }

    /// Pushes a depth image (row-major, `intrinsics.width × height`, 0 = no return) and
    /// returns the new prediction once a whole window has arrived.
    pub fn push_depth(
        &mut self,
        depth: &[u16],
        intrinsics: &DepthIntrinsics,
    ) -> Result<Option<&Prediction>> {
        let want = intrinsics.width * intrinsics.height;
        if depth.len() != want {
            return Err(Error::Shape {
                op: "stream",
                detail: format!(
                    "depth frame has {} pixels, intrinsics say {}x{} = {want}",
                    depth.len(),
                    intrinsics.width,
                    intrinsics.height
                ),
            });
        }
        let pts = intrinsics.back_project(depth);
        if pts.is_empty() {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!(
                    "depth frame {} has no valid pixel (all zero)",
                    self.stream.frames_pushed()
                ),
            });
        }
        self.push_cloud(&pts)
    }

    /// Pushes a point frame: `xyz` holds (x, y, z) triples in metres in the camera frame.
    pub fn push_points(&mut self, xyz: &[f32]) -> Result<Option<&Prediction>> {
        if xyz.is_empty() || xyz.len() % 3 != 0 {
            return Err(Error::Shape {
                op: "stream",
                detail: format!(
                    "a point frame needs a positive multiple of 3 values (x, y, z), got {}",
                    xyz.len()
                ),
            });
        }
        if let Some(i) = xyz.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!("point frame value {i} is {} (not finite)", xyz[i]),
            });
        }
        let pts: Vec<[f32; 3]> = xyz.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        self.push_cloud(&pts)
    }

    fn push_cloud(&mut self, pts: &[[f32; 3]]) -> Result<Option<&Prediction>> {
        let frame = resample(
            pts,
            self.opts.points,
            self.opts.units_per_metre,
            &mut self.rng,
        );
        self.stream.push(&self.dev, &frame)?;
        self.recent.push_back((frame, None));
        if self.recent.len() > self.opts.window {
            self.recent.pop_front();
        }
        if !self.stream.ready() {
            return Ok(None);
        }
        let (model, params) = (&self.tuner.model, &self.tuner.params);
        let stream = &mut self.stream;
        let logits = self.dev.run(|s| stream.forward(s, model, params))?;
        let logits = self.dev.read(&logits)?;
        if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!(
                    "the model's output for frame {} is not finite (logit {i} is {}): the points or the weights hold values too large for f32 arithmetic (check the depth scale and the weights file)",
                    self.stream.frames_pushed() - 1,
                    logits[i]
                ),
            });
        }
        // Per-frame models give a row per output frame: the last is the latest.
        let classes = model.cfg.num_classes;
        let row = &logits[logits.len() - classes..];
        let top = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = row.iter().map(|v| (v - top).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let probabilities: Vec<f32> = exp.iter().map(|e| e / sum).collect();
        let class =
            crate::metrics::argmax(&probabilities.iter().map(|&p| p as f64).collect::<Vec<_>>());
        self.latest = Some(Prediction {
            frame: self.stream.frames_pushed() - 1,
            probabilities,
            class,
        });
        Ok(self.latest.as_ref())
    }

    /// Starts a new window (e.g. a new scene), keeping the weights and labelled windows.
    pub fn reset_window(&mut self) -> Result<()> {
        self.stream = P4Stream::new(
            &self.dev,
            &self.tuner.model,
            self.opts.window,
            self.opts.points,
            self.opts.reuse,
        )?;
        self.recent.clear();
        self.latest = None;
        Ok(())
    }

    /// Labels the latest frame. A full window whose frames all carry labels is kept for
    /// fine-tuning — for per-clip models only when they all carry this label, since a
    /// clip classifier learns one action per clip (windows across a change of action
    /// would teach it mixed clips).
    pub fn label_latest(&mut self, label: u32) -> Result<()> {
        if label as usize >= self.num_classes() {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!(
                    "label {label} is out of range for {} classes",
                    self.num_classes()
                ),
            });
        }
        let Some(last) = self.recent.back_mut() else {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: "no frame to label yet: push a frame first".into(),
            });
        };
        last.1 = Some(label);
        if self.recent.len() < self.opts.window {
            return Ok(());
        }
        let usable = match self.tuner.model.cfg.model {
            ModelKind::ActionSeg => self.recent.iter().all(|(_, l)| l.is_some()),
            _ => self.recent.iter().all(|(_, l)| *l == Some(label)),
        };
        if !usable {
            return Ok(());
        }
        let clip: Vec<f32> = self.recent.iter().flat_map(|(f, _)| f.clone()).collect();
        // Reservoir sampling: the kept windows stay a uniform sample of every labelled
        // window so far, so a long stream does not forget its early actions.
        self.labelled_seen += 1;
        if self.labelled.len() < self.opts.max_labelled {
            self.labelled.push_back((clip, label));
        } else {
            let j = (self.tuner.rng().next_u64() % self.labelled_seen) as usize;
            if j < self.labelled.len() {
                self.labelled[j] = (clip, label);
            }
        }
        Ok(())
    }

    /// Labelled windows kept for fine-tuning.
    pub fn labelled_windows(&self) -> usize {
        self.labelled.len()
    }

    /// Runs `steps` (1 to [`MAX_FINETUNE_STEPS`]) SGD steps on random batches of the
    /// labelled windows (per-clip models); returns the mean loss. The stream's cached
    /// features are dropped.
    pub fn finetune(&mut self, steps: usize, batch_size: usize) -> Result<f32> {
        if !(1..=MAX_FINETUNE_STEPS).contains(&steps) {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: format!(
                    "{steps} fine-tuning steps: give 1 to {MAX_FINETUNE_STEPS} per call"
                ),
            });
        }
        if self.labelled.is_empty() {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: "no labelled window to fine-tune on: label at least one full window".into(),
            });
        }
        if self.tuner.model.cfg.model != ModelKind::Msr {
            return Err(Error::InvalidArgument {
                op: "stream",
                detail: "on-device fine-tuning from streamed labels covers per-clip models (p4transformer-msr)".into(),
            });
        }
        let batch = batch_size.clamp(1, self.labelled.len());
        let (l, n) = (self.opts.window, self.opts.points);
        // Losses are read back a chunk of steps at a time: the device never waits on the
        // host within a chunk, and memory stays bounded however many steps are asked.
        const READ_EVERY: usize = 64;
        let mut total = 0.0;
        let mut losses = Vec::with_capacity(READ_EVERY.min(steps));
        for step in 0..steps {
            let mut clips = Vec::with_capacity(batch * l * n * 3);
            let mut labels = Vec::with_capacity(batch);
            for _ in 0..batch {
                let i = (self.tuner.rng().next_u64() % self.labelled.len() as u64) as usize;
                clips.extend_from_slice(&self.labelled[i].0);
                labels.push(self.labelled[i].1);
            }
            let clip = self.dev.upload(&clips, &[batch, l, n, 3])?;
            let labels = self.dev.upload_u32(&labels, &[batch])?;
            losses.push(self.tuner.train_step(&clip, &labels)?);
            if losses.len() == READ_EVERY || step + 1 == steps {
                for loss in losses.drain(..) {
                    let loss = self.dev.read(&loss)?[0];
                    if !loss.is_finite() {
                        self.stream.invalidate();
                        return Err(Error::InvalidArgument {
                            op: "stream",
                            detail: format!(
                                "fine-tuning loss became {loss} at step {}; stop and reload the weights",
                                step + 1
                            ),
                        });
                    }
                    total += loss;
                }
            }
        }
        self.stream.invalidate();
        Ok(total / steps.max(1) as f32)
    }

    /// Saves the stream's current weights (a state_dict under PyTorch's names),
    /// atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.tuner.params.save(&self.dev, path, Default::default())
    }
}
