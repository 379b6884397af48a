//! Softmax over the last axis: forward and backward.

use edge4d_shaders::norm::SOFTMAX;

use super::{f32_input, same_shape, u};
use crate::step::{fold_groups, read, write};
use crate::{DType, Result, Step, Tensor};

fn rows_cols(x: &Tensor) -> (usize, usize) {
    let d = *x.shape().last().unwrap_or(&1);
    (x.numel() / d.max(1), d)
}

/// softmax(x) along the last axis.
pub fn softmax(s: &mut Step<'_>, x: &Tensor) -> Result<Tensor> {
    f32_input("softmax", "x", x)?;
    let (rows, d) = rows_cols(x);
    let y = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        &SOFTMAX,
        "forward",
        &[read(0, x), write(2, &y)],
        3,
        &crate::params::norm::Rows {
            rows: u(rows),
            d: u(d),
            ..Default::default()
        },
        fold_groups(rows),
    );
    Ok(y)
}

/// Gradient of softmax from its output y: y * (g - sum(g * y)).
pub fn softmax_backward(s: &mut Step<'_>, y: &Tensor, grad: &Tensor) -> Result<Tensor> {
    f32_input("softmax_backward", "y", y)?;
    f32_input("softmax_backward", "grad", grad)?;
    same_shape("softmax_backward", "grad vs y", grad, y)?;
    let (rows, d) = rows_cols(y);
    let gx = s.alloc(y.shape(), DType::F32);
    s.dispatch(
        &SOFTMAX,
        "backward",
        &[read(0, y), read(1, grad), write(2, &gx)],
        3,
        &crate::params::norm::Rows {
            rows: u(rows),
            d: u(d),
            ..Default::default()
        },
        fold_groups(rows),
    );
    Ok(gx)
}
