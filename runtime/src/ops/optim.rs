//! Optimizer update kernels, one parameter tensor per call, updating in place:
//! SGD as torch.optim.SGD (dampening 0) and AdamW as torch.optim.AdamW.

use edge4d_shaders::optim::{ADAMW, SGD};

use super::{f, f32_input, same_shape, u};
use crate::step::{groups_1d, read, write};
use crate::{Error, Result, Step, Tensor};

/// torch.optim.SGD hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

/// torch.optim.AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

fn check_hyper(op: &'static str, values: &[(&'static str, f32)]) -> Result<()> {
    for &(what, v) in values {
        if !v.is_finite() || v < 0.0 {
            return Err(Error::InvalidArgument {
                op,
                detail: format!("{what} must be finite and non-negative, got {v}"),
            });
        }
    }
    Ok(())
}

/// w -= lr * (momentum buffer update of grad + weight_decay * w). `momentum_buf`
/// starts at zeros and must be kept between steps.
pub fn sgd_step(
    s: &mut Step<'_>,
    w: &Tensor,
    grad: &Tensor,
    momentum_buf: &Tensor,
    cfg: &SgdConfig,
) -> Result<()> {
    f32_input("sgd_step", "w", w)?;
    same_shape("sgd_step", "grad vs w", grad, w)?;
    same_shape("sgd_step", "momentum_buf vs w", momentum_buf, w)?;
    check_hyper(
        "sgd_step",
        &[
            ("lr", cfg.lr),
            ("momentum", cfg.momentum),
            ("weight_decay", cfg.weight_decay),
        ],
    )?;
    let params = [
        u(w.numel()),
        f(cfg.lr),
        f(cfg.momentum),
        f(cfg.weight_decay),
        cfg.nesterov as u32,
    ];
    s.dispatch(
        &SGD,
        "step",
        &[write(0, w), read(1, grad), write(2, momentum_buf)],
        3,
        &params,
        groups_1d(w.numel()),
    );
    Ok(())
}

/// One AdamW update at step `t` (1-based). `m` and `v` start at zeros.
pub fn adamw_step(
    s: &mut Step<'_>,
    w: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    cfg: &AdamWConfig,
    t: u64,
) -> Result<()> {
    f32_input("adamw_step", "w", w)?;
    same_shape("adamw_step", "grad vs w", grad, w)?;
    same_shape("adamw_step", "m vs w", m, w)?;
    same_shape("adamw_step", "v vs w", v, w)?;
    check_hyper(
        "adamw_step",
        &[
            ("lr", cfg.lr),
            ("beta1", cfg.beta1),
            ("beta2", cfg.beta2),
            ("eps", cfg.eps),
            ("weight_decay", cfg.weight_decay),
        ],
    )?;
    if t == 0 || cfg.beta1 >= 1.0 || cfg.beta2 >= 1.0 {
        return Err(Error::InvalidArgument {
            op: "adamw_step",
            detail: format!("need t >= 1 and betas < 1, got t={t}, {cfg:?}"),
        });
    }
    // As torch with a Python-float step: bias corrections in double precision.
    let bias1 = 1.0 - (cfg.beta1 as f64).powf(t as f64);
    let bias2 = 1.0 - (cfg.beta2 as f64).powf(t as f64);
    let step_size = (cfg.lr as f64 / bias1) as f32;
    let bias2_sqrt = bias2.sqrt() as f32;
    let params = [
        u(w.numel()),
        f(cfg.lr),
        f(cfg.beta1),
        f(cfg.beta2),
        f(cfg.eps),
        f(cfg.weight_decay),
        f(step_size),
        f(bias2_sqrt),
    ];
    s.dispatch(
        &ADAMW,
        "step",
        &[write(0, w), read(1, grad), write(2, m), write(3, v)],
        4,
        &params,
        groups_1d(w.numel()),
    );
    Ok(())
}
