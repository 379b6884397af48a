//! Row normalisations over the last axis: LayerNorm (torch.nn.LayerNorm with elementwise
//! affine) and L2 normalisation (F.normalize, the contrastive losses' cosine similarity).

use edge4d_shaders::norm::{L2NORMALIZE, LAYERNORM};

use super::{f32_input, same_shape, u, util::colsum};
use crate::step::{fold_groups, read, write};
use crate::{DType, Error, Result, Step, Tensor};

/// What the backward pass needs from the forward: per-row mean and 1/std.
pub struct LayerNormSaved {
    pub stats: Tensor,
    pub eps: f32,
}

fn check(op: &'static str, x: &Tensor, gamma: &Tensor) -> Result<(usize, usize)> {
    f32_input(op, "x", x)?;
    f32_input(op, "gamma", gamma)?;
    let d = *x.shape().last().unwrap_or(&0);
    if gamma.numel() != d {
        return Err(Error::Shape {
            op,
            detail: format!(
                "gamma has {} elements, last axis of x {:?} is {d}",
                gamma.numel(),
                x.shape()
            ),
        });
    }
    Ok((x.numel() / d, d))
}

/// y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis.
pub fn layernorm(
    s: &mut Step<'_>,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, LayerNormSaved)> {
    let (rows, d) = check("layernorm", x, gamma)?;
    same_shape("layernorm", "beta vs gamma", beta, gamma)?;
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::InvalidArgument {
            op: "layernorm",
            detail: format!("eps must be positive and finite, got {eps}"),
        });
    }
    let y = s.alloc(x.shape(), DType::F32);
    let stats = s.alloc(&[rows, 2], DType::F32);
    s.dispatch(
        &LAYERNORM,
        "forward",
        &[
            read(0, x),
            read(1, gamma),
            read(2, beta),
            write(3, &y),
            write(4, &stats),
        ],
        6,
        &crate::params::norm::Rows {
            rows: u(rows),
            d: u(d),
            eps,
            ..Default::default()
        },
        fold_groups(rows),
    );
    Ok((y, LayerNormSaved { stats, eps }))
}

/// Gradients (dx, dgamma, dbeta).
pub fn layernorm_backward(
    s: &mut Step<'_>,
    x: &Tensor,
    gamma: &Tensor,
    saved: &LayerNormSaved,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (rows, d) = check("layernorm_backward", x, gamma)?;
    same_shape("layernorm_backward", "grad vs x", grad, x)?;
    let params = crate::params::norm::Rows {
        rows: u(rows),
        d: u(d),
        eps: saved.eps,
        ..Default::default()
    };
    let gx = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        &LAYERNORM,
        "backward",
        &[
            read(0, x),
            read(1, gamma),
            write(3, &gx),
            write(4, &saved.stats),
            read(5, grad),
        ],
        6,
        &params,
        fold_groups(rows),
    );
    let gxhat = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        &LAYERNORM,
        "xhat_grad",
        &[
            read(0, x),
            write(3, &gxhat),
            write(4, &saved.stats),
            read(5, grad),
        ],
        6,
        &params,
        fold_groups(rows),
    );
    let dgamma = colsum(s, &gxhat, rows, d)?.reshape(gamma.shape())?;
    let dbeta = colsum(s, grad, rows, d)?.reshape(gamma.shape())?;
    Ok((gx, dgamma, dbeta))
}

/// What `l2normalize_backward` needs: the normalised rows and each row's max(‖x‖, eps).
pub struct L2NormSaved {
    pub y: Tensor,
    pub norms: Tensor,
    pub eps: f32,
}

/// y = x / max(‖x‖₂, eps) per row of the last axis (F.normalize(x, dim=-1)).
pub fn l2normalize(s: &mut Step<'_>, x: &Tensor, eps: f32) -> Result<(Tensor, L2NormSaved)> {
    f32_input("l2normalize", "x", x)?;
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(Error::InvalidArgument {
            op: "l2normalize",
            detail: format!("eps must be positive and finite, got {eps}"),
        });
    }
    let d = *x.shape().last().unwrap_or(&0);
    let rows = x.numel() / d.max(1);
    let y = s.alloc(x.shape(), DType::F32);
    let norms = s.alloc(&[rows], DType::F32);
    s.dispatch(
        &L2NORMALIZE,
        "forward",
        &[read(0, x), write(1, &y), write(2, &norms)],
        5,
        &crate::params::norm::Rows {
            rows: u(rows),
            d: u(d),
            eps,
            ..Default::default()
        },
        fold_groups(rows),
    );
    Ok((y.clone(), L2NormSaved { y, norms, eps }))
}

/// d x of `l2normalize` given d y.
pub fn l2normalize_backward(
    s: &mut Step<'_>,
    saved: &L2NormSaved,
    grad: &Tensor,
) -> Result<Tensor> {
    same_shape("l2normalize_backward", "grad vs y", grad, &saved.y)?;
    let d = *grad.shape().last().unwrap_or(&0);
    let rows = grad.numel() / d.max(1);
    let gx = s.alloc(grad.shape(), DType::F32);
    s.dispatch(
        &L2NORMALIZE,
        "backward",
        &[
            write(1, &saved.y),
            write(2, &saved.norms),
            read(3, grad),
            write(4, &gx),
        ],
        5,
        &crate::params::norm::Rows {
            rows: u(rows),
            d: u(d),
            eps: saved.eps,
            ..Default::default()
        },
        fold_groups(rows),
    );
    Ok(gx)
}
