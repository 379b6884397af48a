//! Linear layers (PyTorch `nn.Linear` and 1×1 convolutions over channels-last rows).

use crate::ops::matmul::{matmul, matmul_backward};
use crate::{Result, Step, Tensor};

/// y = x Wᵀ + b over the last axis of x; W is (out, in).
pub fn linear(s: &mut Step<'_>, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.numel() / in_f.max(1);
    let y = matmul(s, &x.reshape(&[rows, in_f])?, w, b, false, true)?;
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap() = out_f;
    y.reshape(&shape)
}

/// (dx, dW, db) of `linear`.
pub fn linear_backward(
    s: &mut Step<'_>,
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    with_bias: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.numel() / in_f.max(1);
    let g = matmul_backward(
        s,
        &x.reshape(&[rows, in_f])?,
        w,
        &grad.reshape(&[rows, out_f])?,
        false,
        true,
        with_bias,
    )?;
    Ok((g.a.reshape(x.shape())?, g.b, g.bias))
}

/// `linear` with the parameters `name.weight` (any trailing 1×1 dims) and `name.bias`.
pub(crate) fn linear_param(
    s: &mut Step<'_>,
    p: &super::params::ParamStore,
    x: &Tensor,
    name: &str,
) -> Result<Tensor> {
    linear(
        s,
        x,
        &p.matrix(&format!("{name}.weight"))?,
        Some(p.get(&format!("{name}.bias"))?),
    )
}

/// Backward of `linear` with the parameters `name.weight` (any trailing 1×1 dims) and,
/// when `bias`, `name.bias`: accumulates their gradients and returns dx.
pub(crate) fn linear_param_backward(
    s: &mut Step<'_>,
    p: &super::params::ParamStore,
    grads: &mut super::params::Grads,
    x: &Tensor,
    name: &str,
    grad: &Tensor,
    bias: bool,
) -> Result<Tensor> {
    let weight = format!("{name}.weight");
    let (gx, gw, gb) = linear_backward(s, x, &p.matrix(&weight)?, grad, bias)?;
    let shape = p.get(&weight)?.shape().to_vec();
    super::params::accumulate(s, grads, &weight, gw.reshape(&shape)?)?;
    if let Some(gb) = gb {
        super::params::accumulate(s, grads, &format!("{name}.bias"), gb)?;
    }
    Ok(gx)
}
