//! Optimizers that own their per-parameter state and record one update per parameter
//! into the same step as the forward and backward passes.

use edge4d_runtime::ops::optim::{adamw_step, sgd_step, AdamWConfig, SgdConfig};
use edge4d_runtime::{Device, Error, Result, Step, Tensor};

fn check_pairs(
    op: &'static str,
    n_state: usize,
    params: &[&Tensor],
    grads: &[&Tensor],
) -> Result<()> {
    if params.len() != n_state || grads.len() != n_state {
        return Err(Error::InvalidArgument {
            op,
            detail: format!(
                "optimizer built for {n_state} parameters, given {} parameters and {} gradients",
                params.len(),
                grads.len()
            ),
        });
    }
    Ok(())
}

/// torch.optim.SGD.
pub struct Sgd {
    pub config: SgdConfig,
    momentum: Vec<Tensor>,
}

impl Sgd {
    /// Momentum buffers (zeros) for parameters of these shapes.
    pub fn new(dev: &Device, params: &[&Tensor], config: SgdConfig) -> Result<Self> {
        let momentum = params
            .iter()
            .map(|p| dev.zeros(p.shape()))
            .collect::<Result<_>>()?;
        Ok(Self { config, momentum })
    }

    /// Records w -= lr * update for every (parameter, gradient) pair.
    pub fn step(&mut self, s: &mut Step<'_>, params: &[&Tensor], grads: &[&Tensor]) -> Result<()> {
        check_pairs("Sgd::step", self.momentum.len(), params, grads)?;
        for ((w, g), buf) in params.iter().zip(grads).zip(&self.momentum) {
            sgd_step(s, w, g, buf, &self.config)?;
        }
        Ok(())
    }

    /// Momentum buffers, in parameter order (for checkpoints).
    pub fn state(&self) -> &[Tensor] {
        &self.momentum
    }
}

/// torch.optim.AdamW.
pub struct AdamW {
    pub config: AdamWConfig,
    step: u64,
    moments: Vec<(Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(dev: &Device, params: &[&Tensor], config: AdamWConfig) -> Result<Self> {
        let moments = params
            .iter()
            .map(|p| Ok((dev.zeros(p.shape())?, dev.zeros(p.shape())?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            step: 0,
            moments,
        })
    }

    pub fn step(&mut self, s: &mut Step<'_>, params: &[&Tensor], grads: &[&Tensor]) -> Result<()> {
        check_pairs("AdamW::step", self.moments.len(), params, grads)?;
        self.step += 1;
        for ((w, g), (m, v)) in params.iter().zip(grads).zip(&self.moments) {
            adamw_step(s, w, g, m, v, &self.config, self.step)?;
        }
        Ok(())
    }

    /// Number of updates taken.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }
}
