//! BatchNorm over channels (torch.nn.BatchNorm1d / 2d semantics) for input
//! (n, c) or (n, c, l...): train mode uses batch statistics and updates the running
//! statistics in place with `momentum`; eval mode uses the running statistics.

use edge4d_shaders::norm::BATCHNORM;

use super::{f32_input, u};
use crate::step::{read, write, MAX_GROUPS};
use crate::{DType, Error, Result, Step, Tensor};

/// Running statistics and hyper-parameters, named as PyTorch's module.
pub struct BatchNormState<'a> {
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub eps: f32,
    pub momentum: f32,
    pub train: bool,
}

/// What the backward pass needs: the mean and 1/std that normalised x.
pub struct BatchNormSaved {
    pub stats: Tensor,
    pub train: bool,
}

fn dims(op: &'static str, x: &Tensor, gamma: &Tensor) -> Result<(usize, usize, usize)> {
    f32_input(op, "x", x)?;
    f32_input(op, "gamma", gamma)?;
    let sh = x.shape();
    if sh.len() < 2 {
        return Err(Error::Shape {
            op,
            detail: format!("x must be (n, c) or (n, c, ...), got {sh:?}"),
        });
    }
    let (n, c) = (sh[0], sh[1]);
    let l: usize = sh[2..].iter().product();
    if gamma.numel() != c {
        return Err(Error::Shape {
            op,
            detail: format!(
                "gamma has {} elements for {c} channels of x {sh:?}",
                gamma.numel()
            ),
        });
    }
    if c > MAX_GROUPS as usize {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("{c} channels exceed {MAX_GROUPS}"),
        });
    }
    Ok((n, c, l))
}

/// Normalises x per channel; in train mode also updates the running statistics.
pub fn batchnorm(
    s: &mut Step<'_>,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    state: &BatchNormState<'_>,
) -> Result<(Tensor, BatchNormSaved)> {
    let (n, c, l) = dims("batchnorm", x, gamma)?;
    for (what, t) in [
        ("beta", beta),
        ("running_mean", state.running_mean),
        ("running_var", state.running_var),
    ] {
        if t.numel() != c {
            return Err(Error::Shape {
                op: "batchnorm",
                detail: format!("{what} has {} elements for {c} channels", t.numel()),
            });
        }
    }
    if state.train && n * l < 2 {
        return Err(Error::InvalidArgument {
            op: "batchnorm",
            detail: format!(
                "train mode needs more than one value per channel, x is {:?}",
                x.shape()
            ),
        });
    }
    if !(state.eps > 0.0 && state.eps.is_finite() && (0.0..=1.0).contains(&state.momentum)) {
        return Err(Error::InvalidArgument {
            op: "batchnorm",
            detail: format!(
                "eps {} must be positive, momentum {} in [0, 1]",
                state.eps, state.momentum
            ),
        });
    }
    let y = s.alloc(x.shape(), DType::F32);
    let stats = s.alloc(&[c, 2], DType::F32);
    s.dispatch(
        &BATCHNORM,
        "forward",
        &[
            read(0, x),
            read(1, gamma),
            read(2, beta),
            write(3, &y),
            write(4, &stats),
            write(5, state.running_mean),
            write(6, state.running_var),
        ],
        10,
        &crate::params::norm::BatchNorm {
            n: u(n),
            c: u(c),
            l: u(l),
            eps: state.eps,
            momentum: state.momentum,
            train: state.train as u32,
            ..Default::default()
        },
        [c as u32, 1, 1],
    );
    Ok((
        y,
        BatchNormSaved {
            stats,
            train: state.train,
        },
    ))
}

/// Gradients (dx, dgamma, dbeta).
pub fn batchnorm_backward(
    s: &mut Step<'_>,
    x: &Tensor,
    gamma: &Tensor,
    saved: &BatchNormSaved,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (n, c, l) = dims("batchnorm_backward", x, gamma)?;
    super::same_shape("batchnorm_backward", "grad vs x", grad, x)?;
    let gx = s.alloc(x.shape(), DType::F32);
    let dgamma = s.alloc(gamma.shape(), DType::F32);
    let dbeta = s.alloc(gamma.shape(), DType::F32);
    s.dispatch(
        &BATCHNORM,
        "backward",
        &[
            read(0, x),
            read(1, gamma),
            write(3, &gx),
            write(4, &saved.stats),
            read(7, grad),
            write(8, &dgamma),
            write(9, &dbeta),
        ],
        10,
        &crate::params::norm::BatchNorm {
            n: u(n),
            c: u(c),
            l: u(l),
            eps: 0.0,
            momentum: 0.0,
            train: saved.train as u32,
            ..Default::default()
        },
        [c as u32, 1, 1],
    );
    Ok((gx, dgamma, dbeta))
}
