//! The one optimizer every task trains with: torch.optim.SGD (momentum) or
//! torch.optim.AdamW over named parameters, each with the weight decay of its group,
//! recording one update per parameter into the same step as the forward and backward
//! passes. Its state saves to and loads from checkpoints under torch's names.

use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::optim::{adamw_step, sgd_step, AdamWConfig, SgdConfig};
use edge4d_runtime::tensor_file::Stored;
use edge4d_runtime::{Device, Error, HostTensor, Result, Step, Tensor, TensorFile};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    AdamW,
}

/// How parameters are grouped for weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Groups {
    /// Every parameter decays (torch's default, as the P4Transformer scripts use it).
    AllDecay,
    /// Point-MAE's `add_weight_decay`: no decay on 1-D parameters, biases and token-like
    /// parameters (`*token*`, `cls_pos`, concept `queries`).
    PointMae,
}

impl Groups {
    /// Whether the parameter `name` of `shape` decays.
    pub fn decays(self, name: &str, shape: &[usize]) -> bool {
        match self {
            Self::AllDecay => true,
            Self::PointMae => {
                !(shape.len() <= 1
                    || name.ends_with(".bias")
                    || name.contains("token")
                    || name.ends_with("cls_pos")
                    || name.ends_with("queries"))
            }
        }
    }
}

/// Hyper-parameters that do not change during a run (the learning rate is given per
/// step, by the schedule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// SGD momentum.
    pub momentum: f32,
    pub weight_decay: f32,
    pub groups: Groups,
}

enum State {
    Sgd { momentum: Tensor },
    AdamW { m: Tensor, v: Tensor },
}

pub struct Optimizer {
    pub config: OptimizerConfig,
    names: Vec<String>,
    decay: Vec<bool>,
    state: Vec<State>,
    /// Updates taken (AdamW's bias correction counts them).
    steps: u64,
}

impl Optimizer {
    /// State (zeros) for parameters `named` (name, shape), in the order `step` takes them.
    pub fn new(
        dev: &Device,
        named: &[(String, Vec<usize>)],
        config: OptimizerConfig,
    ) -> Result<Self> {
        let mut state = Vec::with_capacity(named.len());
        for (_, shape) in named {
            state.push(match config.kind {
                OptimizerKind::Sgd => State::Sgd {
                    momentum: dev.zeros(shape)?,
                },
                OptimizerKind::AdamW => State::AdamW {
                    m: dev.zeros(shape)?,
                    v: dev.zeros(shape)?,
                },
            });
        }
        Ok(Self {
            names: named.iter().map(|(n, _)| n.clone()).collect(),
            decay: named
                .iter()
                .map(|(n, s)| config.groups.decays(n, s))
                .collect(),
            state,
            config,
            steps: 0,
        })
    }

    /// State for every trainable parameter of `params`, in spec order.
    pub fn for_store(dev: &Device, params: &ParamStore, config: OptimizerConfig) -> Result<Self> {
        let named: Vec<(String, Vec<usize>)> = params
            .spec()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect();
        Self::new(dev, &named, config)
    }

    /// The parameters' names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Updates taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Records the update of every parameter with a gradient (`grads[i]` for
    /// `params[i]`, in the order given to `new`); a parameter without one stays as it is.
    pub fn step(
        &mut self,
        s: &mut Step<'_>,
        params: &[&Tensor],
        grads: &[Option<&Tensor>],
        lr: f32,
    ) -> Result<()> {
        if params.len() != self.names.len() || grads.len() != self.names.len() {
            return Err(Error::InvalidArgument {
                op: "optimizer",
                detail: format!(
                    "built for {} parameters, given {} parameters and {} gradients",
                    self.names.len(),
                    params.len(),
                    grads.len()
                ),
            });
        }
        self.steps += 1;
        for (i, (w, g)) in params.iter().zip(grads).enumerate() {
            let Some(g) = g else { continue };
            let weight_decay = if self.decay[i] {
                self.config.weight_decay
            } else {
                0.0
            };
            match &self.state[i] {
                State::Sgd { momentum } => {
                    let c = SgdConfig {
                        lr,
                        momentum: self.config.momentum,
                        weight_decay,
                        nesterov: false,
                    };
                    sgd_step(s, w, g, momentum, &c)?;
                }
                State::AdamW { m, v } => {
                    let c = AdamWConfig {
                        lr,
                        weight_decay,
                        ..AdamWConfig::default()
                    };
                    adamw_step(s, w, g, m, v, &c, self.steps)?;
                }
            }
        }
        Ok(())
    }

    /// [`step`](Self::step) on the parameters of `params` by name. With
    /// `every_gradient`, a parameter without a gradient is an error naming it;
    /// otherwise it stays as it is (a part the loss does not reach).
    pub fn step_store(
        &mut self,
        s: &mut Step<'_>,
        params: &ParamStore,
        grads: &Grads,
        lr: f32,
        every_gradient: bool,
    ) -> Result<()> {
        let weights = self
            .names
            .iter()
            .map(|n| params.get(n))
            .collect::<Result<Vec<_>>>()?;
        let gradients: Vec<Option<&Tensor>> = self.names.iter().map(|n| grads.get(n)).collect();
        if every_gradient {
            if let Some(i) = gradients.iter().position(Option::is_none) {
                return Err(Error::InvalidArgument {
                    op: "optimizer",
                    detail: format!("no gradient for trainable parameter {}", self.names[i]),
                });
            }
        }
        self.step(s, &weights, &gradients, lr)
    }

    /// The state as checkpoint tensors under torch's names
    /// (`optimizer.momentum_buffer.NAME`, `optimizer.exp_avg(_sq).NAME`,
    /// `trainer.adamw_step`).
    pub fn save_state(&self, dev: &Device) -> Result<Vec<(String, Stored)>> {
        let read = |t: &Tensor| -> Result<Stored> {
            Ok(Stored::F32(HostTensor::new(dev.read(t)?, t.shape())))
        };
        let mut out = Vec::new();
        for (name, state) in self.names.iter().zip(&self.state) {
            match state {
                State::Sgd { momentum } => {
                    out.push((format!("optimizer.momentum_buffer.{name}"), read(momentum)?))
                }
                State::AdamW { m, v } => {
                    out.push((format!("optimizer.exp_avg.{name}"), read(m)?));
                    out.push((format!("optimizer.exp_avg_sq.{name}"), read(v)?));
                }
            }
        }
        if self.config.kind == OptimizerKind::AdamW {
            out.push((
                "trainer.adamw_step".into(),
                Stored::I64(vec![self.steps as i64], vec![]),
            ));
        }
        Ok(out)
    }

    /// Restores what [`save_state`](Self::save_state) wrote.
    pub fn load_state(&mut self, dev: &Device, file: &TensorFile) -> Result<()> {
        let upload = |name: &str| -> Result<Tensor> {
            let h = file.f32(name)?;
            dev.upload(&h.data, &h.shape)
        };
        for (name, state) in self.names.iter().zip(self.state.iter_mut()) {
            *state = match state {
                State::Sgd { .. } => State::Sgd {
                    momentum: upload(&format!("optimizer.momentum_buffer.{name}"))?,
                },
                State::AdamW { .. } => State::AdamW {
                    m: upload(&format!("optimizer.exp_avg.{name}"))?,
                    v: upload(&format!("optimizer.exp_avg_sq.{name}"))?,
                },
            };
        }
        if self.config.kind == OptimizerKind::AdamW {
            let (v, _) = file.i64("trainer.adamw_step")?;
            self.steps = v.first().copied().ok_or_else(|| Error::TensorFile {
                path: file.path().to_string(),
                detail: "trainer.adamw_step is empty".into(),
            })? as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Groups;

    #[test]
    fn point_mae_groups_spare_vectors_biases_and_tokens() {
        let g = Groups::PointMae;
        assert!(g.decays("blocks.0.attn.qkv.weight", &[9, 3]));
        assert!(!g.decays("blocks.0.norm1.weight", &[3]));
        assert!(!g.decays("cls_head_finetune.0.bias", &[4]));
        assert!(!g.decays("cls_token", &[1, 1, 3]));
        assert!(!g.decays("cls_pos", &[1, 1, 3]));
        assert!(!g.decays("concept.queries", &[4, 3]));
        assert!(Groups::AllDecay.decays("x.bias", &[4]));
    }
}
