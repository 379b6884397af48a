//! Optimizer update kernels, one parameter tensor per call, updating in place:
//! SGD as torch.optim.SGD (dampening 0) and AdamW as torch.optim.AdamW.

use edge4d_shaders::optim::{ADAMW, CLIP, SGD};

use super::{f32_input, same_shape, u};
use crate::params::optim as params;
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
    let params = params::Sgd {
        n: u(w.numel()),
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        nesterov: cfg.nesterov as u32,
        ..Default::default()
    };
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
    let params = params::Adamw {
        n: u(w.numel()),
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
        step_size,
        bias2_sqrt,
    };
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

/// Scales `grads` in place so their global 2-norm is at most `max_norm`
/// (torch.nn.utils.clip_grad_norm_). Returns a device tensor [coefficient, norm before
/// clipping]; nothing is read back.
pub fn clip_grad_norm(s: &mut Step<'_>, grads: &[&Tensor], max_norm: f32) -> Result<Tensor> {
    check_hyper("clip_grad_norm", &[("max_norm", max_norm)])?;
    if grads.is_empty() {
        return Err(Error::InvalidArgument {
            op: "clip_grad_norm",
            detail: "no gradients given".into(),
        });
    }
    let partials = s.alloc(&[grads.len()], crate::DType::F32);
    let coef = s.alloc(&[2], crate::DType::F32);
    for (slot, g) in grads.iter().enumerate() {
        f32_input("clip_grad_norm", "grad", g)?;
        s.dispatch(
            &CLIP,
            "sumsq",
            &[write(0, g), write(1, &partials)],
            3,
            &params::Clip {
                n: u(g.numel()),
                slot: u(slot),
                max_norm,
                ..Default::default()
            },
            [1, 1, 1],
        );
    }
    s.dispatch(
        &CLIP,
        "coefficient",
        &[write(1, &partials), write(2, &coef)],
        3,
        &params::Clip {
            n: u(grads.len()),
            max_norm,
            ..Default::default()
        },
        [1, 1, 1],
    );
    for g in grads {
        s.dispatch(
            &CLIP,
            "scale",
            &[write(0, g), write(2, &coef)],
            3,
            &params::Clip {
                n: u(g.numel()),
                max_norm,
                ..Default::default()
            },
            groups_1d(g.numel()),
        );
    }
    Ok(coef)
}
