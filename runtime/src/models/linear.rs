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
