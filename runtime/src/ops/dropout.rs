//! Dropout with a seeded, stateless mask (inverted scaling by 1/(1-p) at train time).
//! The backward pass recomputes the mask from the same seed.

use edge4d_shaders::util::DROPOUT;

use super::{f32_input, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

/// Threshold below which a 32-bit hash keeps an element: floor((1 - p) 2^32).
pub fn keep_threshold(p: f32) -> u32 {
    ((1.0 - p as f64) * 4294967296.0)
        .floor()
        .min(u32::MAX as f64) as u32
}

fn apply(s: &mut Step<'_>, op: &'static str, x: &Tensor, p: f32, seed: u32) -> Result<Tensor> {
    f32_input(op, "x", x)?;
    if !(0.0..1.0).contains(&p) {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("drop probability must be in [0, 1), got {p}"),
        });
    }
    if p == 0.0 {
        return Ok(x.clone());
    }
    let out = s.alloc(x.shape(), DType::F32);
    let params = crate::params::util::Dropout {
        n: u(x.numel()),
        seed,
        keep_threshold: keep_threshold(p),
        inv_keep: 1.0 / (1.0 - p),
    };
    s.dispatch(
        &DROPOUT,
        "apply_mask",
        &[read(0, x), write(1, &out)],
        2,
        &params,
        groups_1d(x.numel()),
    );
    Ok(out)
}

/// Zeroes each element with probability p (mask from `seed`), scales the rest by 1/(1-p).
pub fn dropout(s: &mut Step<'_>, x: &Tensor, p: f32, seed: u32) -> Result<Tensor> {
    apply(s, "dropout", x, p, seed)
}

/// Gradient of `dropout` with the same p and seed.
pub fn dropout_backward(s: &mut Step<'_>, grad: &Tensor, p: f32, seed: u32) -> Result<Tensor> {
    apply(s, "dropout_backward", grad, p, seed)
}
