//! Mean squared error with mean reduction (torch.nn.functional.mse_loss): the concept
//! distillation loss (reference-spec §7.7) and Point-MAE's fixture loss. Built from the
//! elementwise kernels and the deterministic column sum, so it needs no kernel of its own.

use super::elementwise::{add, mul, scale};
use super::f32_input;
use super::reduce::sum;
use super::util::colsum;
use crate::{Error, Result, Step, Tensor};

fn check(op: &'static str, pred: &Tensor, target: &Tensor) -> Result<usize> {
    f32_input(op, "pred", pred)?;
    f32_input(op, "target", target)?;
    if pred.shape() != target.shape() || pred.numel() == 0 {
        return Err(Error::Shape {
            op,
            detail: format!(
                "pred {:?} and target {:?} must have the same non-empty shape",
                pred.shape(),
                target.shape()
            ),
        });
    }
    Ok(pred.numel())
}

/// mean((pred − target)²) as a (1,) tensor.
pub fn mse(s: &mut Step<'_>, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let n = check("mse", pred, target)?;
    let neg = scale(s, target, -1.0)?;
    let diff = add(s, pred, &neg)?;
    let sq = mul(s, &diff, &diff)?;
    let cols = *pred.shape().last().unwrap();
    let per_col = colsum(s, &sq, n / cols, cols)?;
    let total = sum(s, &per_col.reshape(&[1, cols])?, 1)?;
    scale(s, &total, 1.0 / n as f32)
}

/// d pred = 2 (pred − target) / n · grad_loss, with grad_loss a (1,) tensor.
pub fn mse_backward(
    s: &mut Step<'_>,
    pred: &Tensor,
    target: &Tensor,
    grad_loss: &Tensor,
) -> Result<Tensor> {
    let n = check("mse_backward", pred, target)?;
    if grad_loss.numel() != 1 {
        return Err(Error::Shape {
            op: "mse_backward",
            detail: format!("grad_loss must hold one value, got {:?}", grad_loss.shape()),
        });
    }
    let neg = scale(s, target, -1.0)?;
    let diff = add(s, pred, &neg)?;
    let g = scale(s, &diff, 2.0 / n as f32)?;
    // (n, 1) so the one-element factor broadcasts as a trailing operand.
    mul(s, &g.reshape(&[n, 1])?, &grad_loss.reshape(&[1])?)?.reshape(pred.shape())
}
