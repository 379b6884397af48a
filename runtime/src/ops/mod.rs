//! GPU ops. Each module pairs an op's forward and backward wrappers around its WGSL
//! kernels (in `edge4d-shaders`); `crate::reference` holds the matching CPU
//! specification. Wrappers check shapes and types and only record work into a
//! [`crate::Step`]; nothing runs until the step is submitted.

pub mod activation;
pub mod attention;
pub mod batchnorm;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod layernorm;
pub mod layout;
pub mod matmul;
pub mod mse;
pub mod optim;
pub mod p4dconv;
pub mod partial_view;
pub mod point;
pub mod reduce;
pub mod softmax;
pub mod util;

use crate::{DType, Error, Result, Tensor};

pub(crate) fn u(x: usize) -> u32 {
    x as u32
}

pub(crate) fn nonempty(op: &'static str, what: &'static str, t: &Tensor) -> Result<()> {
    if t.numel() == 0 {
        return Err(Error::Empty {
            op,
            what,
            shape: t.shape().to_vec(),
        });
    }
    Ok(())
}

pub(crate) fn f32_input(op: &'static str, what: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::DType {
            op,
            what,
            expected: DType::F32,
            got: t.dtype(),
        });
    }
    nonempty(op, what, t)
}

pub(crate) fn same_shape(op: &'static str, what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape {
            op,
            detail: format!("{what}: {:?} vs {:?}", a.shape(), b.shape()),
        });
    }
    Ok(())
}

pub(crate) fn finite(op: &'static str, what: &'static str, v: f32) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::NonFinite {
            op,
            what,
            index: 0,
            value: v,
        });
    }
    Ok(())
}

/// Resolves a possibly negative axis against a rank.
pub(crate) fn axis_index(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a as usize >= rank {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("axis {axis} out of range for rank {rank}"),
        });
    }
    Ok(a as usize)
}

/// (outer, len, inner) view of `shape` around `axis`.
pub(crate) fn split_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}
