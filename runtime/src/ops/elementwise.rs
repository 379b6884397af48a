//! add, mul, scale: forward and backward. `b` may broadcast over the trailing axes of
//! `a` (its element count divides a's and its shape is a suffix of a's shape).

use edge4d_shaders::elementwise::{BINARY, SCALE};

use super::{f32_input, u, util::colsum};
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

fn check_broadcast(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    f32_input(op, "a", a)?;
    f32_input(op, "b", b)?;
    let (sa, sb) = (a.shape(), b.shape());
    if sb.len() > sa.len() || sa[sa.len() - sb.len()..] != *sb {
        return Err(Error::Shape {
            op,
            detail: format!("b {sb:?} must equal a {sa:?} or a trailing part of it"),
        });
    }
    Ok(())
}

fn binary(s: &mut Step<'_>, entry: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    check_broadcast(entry, a, b)?;
    let out = s.alloc(a.shape(), DType::F32);
    s.dispatch(
        &BINARY,
        entry,
        &[read(0, a), read(1, b), write(2, &out)],
        3,
        &crate::params::elementwise::Binary {
            n: u(a.numel()),
            nb: u(b.numel()),
            ..Default::default()
        },
        groups_1d(a.numel()),
    );
    Ok(out)
}

/// a + b.
pub fn add(s: &mut Step<'_>, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(s, "add", a, b)
}

/// Gradients of a + b: (g, g summed over the broadcast axes).
pub fn add_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    b_shape: &[usize],
) -> Result<(Tensor, Tensor)> {
    f32_input("add_backward", "grad", grad)?;
    let nb: usize = b_shape.iter().product();
    if nb == 0 || grad.numel() % nb != 0 {
        return Err(Error::Shape {
            op: "add_backward",
            detail: format!("b {b_shape:?} does not tile grad {:?}", grad.shape()),
        });
    }
    let gb = if nb == grad.numel() {
        grad.clone()
    } else {
        colsum(s, grad, grad.numel() / nb, nb)?
    };
    Ok((grad.clone(), gb.reshape(b_shape)?))
}

/// a * b (elementwise).
pub fn mul(s: &mut Step<'_>, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(s, "mul", a, b)
}

/// Gradients of a * b: (g * b, sum over broadcast axes of g * a).
pub fn mul_backward(
    s: &mut Step<'_>,
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
) -> Result<(Tensor, Tensor)> {
    check_broadcast("mul_backward", a, b)?;
    super::same_shape("mul_backward", "grad vs a", grad, a)?;
    let ga = mul(s, grad, b)?;
    let gab = mul(s, grad, a)?;
    let gb = if b.numel() == a.numel() {
        gab
    } else {
        colsum(s, &gab, a.numel() / b.numel(), b.numel())?
    };
    Ok((ga, gb.reshape(b.shape())?))
}

/// alpha * x. Its backward is `scale(grad, alpha)`.
pub fn scale(s: &mut Step<'_>, x: &Tensor, alpha: f32) -> Result<Tensor> {
    f32_input("scale", "x", x)?;
    super::finite("scale", "alpha", alpha)?;
    let out = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        &SCALE,
        "scale",
        &[read(0, x), write(1, &out)],
        2,
        &crate::params::elementwise::Scale {
            n: u(x.numel()),
            alpha,
            ..Default::default()
        },
        groups_1d(x.numel()),
    );
    Ok(out)
}
