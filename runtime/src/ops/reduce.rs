//! Sum, mean and max over one axis (max also returns the argmax its backward needs).
//! The reduced axis is removed from the output shape.

use edge4d_shaders::reduce::AXIS;

use super::{axis_index, f32_input, split_axis, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

fn reduced_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut out = shape.to_vec();
    out.remove(axis);
    out
}

fn forward(
    s: &mut Step<'_>,
    entry: &'static str,
    x: &Tensor,
    axis: isize,
) -> Result<(Tensor, Tensor)> {
    f32_input(entry, "x", x)?;
    let axis = axis_index(entry, axis, x.shape().len())?;
    let (outer, len, inner) = split_axis(x.shape(), axis);
    let shape = reduced_shape(x.shape(), axis);
    let y = s.alloc(&shape, DType::F32);
    let arg = s.alloc(&shape, DType::U32);
    s.dispatch(
        &AXIS,
        entry,
        &[read(0, x), write(1, &y), write(2, &arg)],
        5,
        &crate::params::reduce::Axis {
            outer: u(outer),
            len: u(len),
            inner: u(inner),
            ..Default::default()
        },
        groups_1d(outer * inner),
    );
    Ok((y, arg))
}

/// Sum over `axis` (negative counts from the end).
pub fn sum(s: &mut Step<'_>, x: &Tensor, axis: isize) -> Result<Tensor> {
    Ok(forward(s, "sum", x, axis)?.0)
}

/// Mean over `axis`.
pub fn mean(s: &mut Step<'_>, x: &Tensor, axis: isize) -> Result<Tensor> {
    Ok(forward(s, "mean", x, axis)?.0)
}

/// Max over `axis` and the index of the max (the lowest index among ties).
pub fn max(s: &mut Step<'_>, x: &Tensor, axis: isize) -> Result<(Tensor, Tensor)> {
    forward(s, "max_arg", x, axis)
}

fn backward(
    s: &mut Step<'_>,
    entry: &'static str,
    grad: &Tensor,
    arg: Option<&Tensor>,
    input_shape: &[usize],
    axis: isize,
) -> Result<Tensor> {
    f32_input(entry, "grad", grad)?;
    let axis = axis_index(entry, axis, input_shape.len())?;
    let expected = reduced_shape(input_shape, axis);
    if grad.shape() != expected.as_slice() {
        return Err(Error::Shape {
            op: entry,
            detail: format!(
                "grad {:?} should be {expected:?} for input {input_shape:?}",
                grad.shape()
            ),
        });
    }
    let (outer, len, inner) = split_axis(input_shape, axis);
    let gx = s.alloc(input_shape, DType::F32);
    let mut binds = vec![write(1, &gx), read(3, grad)];
    if let Some(arg) = arg {
        if arg.dtype() != DType::U32 || arg.shape() != grad.shape() {
            return Err(Error::Shape {
                op: entry,
                detail: format!(
                    "argmax {:?} {:?} should be U32 {:?}",
                    arg.dtype(),
                    arg.shape(),
                    grad.shape()
                ),
            });
        }
        binds.push(read(4, arg));
    }
    s.dispatch(
        &AXIS,
        entry,
        &binds,
        5,
        &crate::params::reduce::Axis {
            outer: u(outer),
            len: u(len),
            inner: u(inner),
            ..Default::default()
        },
        groups_1d(outer * len * inner),
    );
    Ok(gx)
}

/// Gradient of `sum`: g broadcast back over the axis.
pub fn sum_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    input_shape: &[usize],
    axis: isize,
) -> Result<Tensor> {
    backward(s, "sum_backward", grad, None, input_shape, axis)
}

/// Gradient of `mean`: g / len broadcast back over the axis.
pub fn mean_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    input_shape: &[usize],
    axis: isize,
) -> Result<Tensor> {
    backward(s, "mean_backward", grad, None, input_shape, axis)
}

/// Gradient of `max`: g routed to the argmax position, zero elsewhere (a gather).
pub fn max_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    argmax: &Tensor,
    input_shape: &[usize],
    axis: isize,
) -> Result<Tensor> {
    backward(s, "max_backward", grad, Some(argmax), input_shape, axis)
}
