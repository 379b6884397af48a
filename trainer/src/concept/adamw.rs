//! AdamW with Point-MAE's parameter groups: no weight decay on 1-D parameters, biases
//! and token-like parameters (`*token*`, `cls_pos`, concept `queries`).

use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::optim::{adamw_step, AdamWConfig};
use edge4d_runtime::{Device, Result, Step, Tensor};

pub struct GroupedAdamW {
    names: Vec<String>,
    decays: Vec<bool>,
    moments: Vec<(Tensor, Tensor)>,
    pub weight_decay: f32,
    pub steps: u64,
}

/// Whether Point-MAE's `add_weight_decay` decays this parameter.
pub fn decays(name: &str, shape: &[usize]) -> bool {
    !(shape.len() <= 1
        || name.ends_with(".bias")
        || name.contains("token")
        || name.ends_with("cls_pos")
        || name.ends_with("queries"))
}

impl GroupedAdamW {
    /// State for every trainable parameter of `params`.
    pub fn new(dev: &Device, params: &ParamStore, weight_decay: f32) -> Result<Self> {
        let mut names = Vec::new();
        let mut decay = Vec::new();
        let mut moments = Vec::new();
        for p in params.spec().iter().filter(|p| p.trainable) {
            names.push(p.name.clone());
            decay.push(decays(&p.name, &p.shape));
            moments.push((dev.zeros(&p.shape)?, dev.zeros(&p.shape)?));
        }
        Ok(Self {
            names,
            decays: decay,
            moments,
            weight_decay,
            steps: 0,
        })
    }

    /// Records one update of every parameter that received a gradient (parameters the
    /// loss does not reach, e.g. the final norm during distillation, stay as they are).
    pub fn step(
        &mut self,
        s: &mut Step<'_>,
        params: &ParamStore,
        grads: &Grads,
        lr: f32,
    ) -> Result<()> {
        self.steps += 1;
        for ((name, decay), (m, v)) in self.names.iter().zip(&self.decays).zip(&self.moments) {
            if let Some(g) = grads.get(name) {
                let cfg = AdamWConfig {
                    lr,
                    weight_decay: if *decay { self.weight_decay } else { 0.0 },
                    ..AdamWConfig::default()
                };
                adamw_step(s, params.get(name)?, g, m, v, &cfg, self.steps)?;
            }
        }
        Ok(())
    }
}
