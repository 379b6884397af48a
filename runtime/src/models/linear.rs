//! Linear layers (PyTorch `nn.Linear` and 1×1 convolutions over channels-last rows).

use crate::ops::matmul::{matmul_backward_epilogue, matmul_epilogue, Epilogue};
use crate::{Result, Step, Tensor};

/// y = x Wᵀ + b over the last axis of x; W is (out, in).
pub fn linear(s: &mut Step<'_>, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    linear_epilogue(s, x, w, b, Epilogue::None).map(|(y, _)| y)
}

/// `linear` finished by `epilogue` in the same kernel; the second output is the GELU's
/// (with [`Epilogue::Gelu`]). Epilogue operands are shaped like y.
pub fn linear_epilogue(
    s: &mut Step<'_>,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    epilogue: Epilogue<'_>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.numel() / in_f.max(1);
    let (y, act) = matmul_epilogue(s, &x.reshape(&[rows, in_f])?, w, b, false, true, epilogue)?;
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap() = out_f;
    Ok((
        y.reshape(&shape)?,
        act.map(|a| a.reshape(&shape)).transpose()?,
    ))
}

/// (dx, dW, db) of `linear`.
pub fn linear_backward(
    s: &mut Step<'_>,
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    with_bias: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    linear_backward_epilogue(s, x, w, grad, with_bias, Epilogue::None)
}

/// `linear_backward` whose dx is finished by `dx_epilogue` (operands shaped like x).
pub fn linear_backward_epilogue(
    s: &mut Step<'_>,
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
    with_bias: bool,
    dx_epilogue: Epilogue<'_>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let rows = x.numel() / in_f.max(1);
    let g = matmul_backward_epilogue(
        s,
        &x.reshape(&[rows, in_f])?,
        w,
        &grad.reshape(&[rows, out_f])?,
        false,
        true,
        with_bias,
        dx_epilogue,
    )?;
    Ok((g.a.reshape(x.shape())?, g.b, g.bias))
}
