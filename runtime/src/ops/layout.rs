//! Slice, concat and permute (transpose), forward and backward. Reshape is
//! `Tensor::reshape`, a view that copies nothing.

use edge4d_shaders::layout::{COPY_AXIS, PERMUTE};

use super::{axis_index, f32_input, split_axis, u, util::zeros};
use crate::params::layout as params;
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

#[allow(clippy::too_many_arguments)]
fn copy_axis(
    s: &mut Step<'_>,
    src: &Tensor,
    dst: &Tensor,
    axis: usize,
    len: usize,
    src_start: usize,
    dst_start: usize,
) {
    let (outer, src_len, inner) = split_axis(src.shape(), axis);
    let dst_len = dst.shape()[axis];
    s.dispatch(
        &COPY_AXIS,
        "copy_axis",
        &[read(0, src), write(1, dst)],
        2,
        &crate::params::layout::CopyAxis {
            outer: u(outer),
            inner: u(inner),
            len: u(len),
            src_len: u(src_len),
            src_start: u(src_start),
            dst_len: u(dst_len),
            dst_start: u(dst_start),
            ..Default::default()
        },
        groups_1d(outer * len * inner),
    );
}

/// Copies src[.., src_start..src_start+len, ..] into dst[.., dst_start.., ..] along
/// `axis`; every other dimension must agree. Streams use it to assemble cached slices.
pub fn copy_into(
    s: &mut Step<'_>,
    src: &Tensor,
    src_start: usize,
    dst: &Tensor,
    dst_start: usize,
    axis: usize,
    len: usize,
) -> Result<()> {
    f32_input("copy_into", "src", src)?;
    f32_input("copy_into", "dst", dst)?;
    let (a, b) = (src.shape(), dst.shape());
    let fits = a.len() == b.len()
        && axis < a.len()
        && (0..a.len()).all(|i| i == axis || a[i] == b[i])
        && src_start + len <= a[axis]
        && dst_start + len <= b[axis];
    if !fits || len == 0 {
        return Err(Error::Shape {
            op: "copy_into",
            detail: format!(
                "cannot copy {len} along axis {axis} from {a:?} at {src_start} into {b:?} at {dst_start}"
            ),
        });
    }
    copy_axis(s, src, dst, axis, len, src_start, dst_start);
    Ok(())
}

/// x[..., start..start+len, ...] along `axis`.
pub fn slice(
    s: &mut Step<'_>,
    x: &Tensor,
    axis: isize,
    start: usize,
    len: usize,
) -> Result<Tensor> {
    f32_input("slice", "x", x)?;
    let ax = axis_index("slice", axis, x.shape().len())?;
    if len == 0 || start + len > x.shape()[ax] {
        return Err(Error::Shape {
            op: "slice",
            detail: format!(
                "range {start}..{} outside axis {ax} of {:?}",
                start + len,
                x.shape()
            ),
        });
    }
    let mut shape = x.shape().to_vec();
    shape[ax] = len;
    let out = s.alloc(&shape, DType::F32);
    copy_axis(s, x, &out, ax, len, start, 0);
    Ok(out)
}

/// Gradient of `slice`: g placed at the range, zeros elsewhere.
pub fn slice_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    input_shape: &[usize],
    axis: isize,
    start: usize,
) -> Result<Tensor> {
    f32_input("slice_backward", "grad", grad)?;
    let ax = axis_index("slice_backward", axis, input_shape.len())?;
    let len = grad.shape().get(ax).copied().unwrap_or(0);
    let mut expect = input_shape.to_vec();
    expect[ax] = len;
    if grad.shape() != expect.as_slice() || start + len > input_shape[ax] {
        return Err(Error::Shape {
            op: "slice_backward",
            detail: format!(
                "grad {:?} at {start} does not fit input {input_shape:?} on axis {ax}",
                grad.shape()
            ),
        });
    }
    let gx = zeros(s, input_shape)?;
    copy_axis(s, grad, &gx, ax, len, 0, start);
    Ok(gx)
}

/// Concatenates along `axis`; all other dimensions must agree.
pub fn concat(s: &mut Step<'_>, parts: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = parts.first().ok_or(Error::InvalidArgument {
        op: "concat",
        detail: "no tensors given".into(),
    })?;
    let ax = axis_index("concat", axis, first.shape().len())?;
    let mut shape = first.shape().to_vec();
    shape[ax] = 0;
    for (i, p) in parts.iter().enumerate() {
        f32_input("concat", "part", p)?;
        let mut a = p.shape().to_vec();
        let mut b = first.shape().to_vec();
        if a.len() != b.len() {
            return Err(Error::Shape {
                op: "concat",
                detail: format!("part {i} {:?} vs part 0 {:?}", p.shape(), first.shape()),
            });
        }
        a[ax] = 0;
        b[ax] = 0;
        if a != b {
            return Err(Error::Shape {
                op: "concat",
                detail: format!(
                    "part {i} {:?} vs part 0 {:?} off axis {ax}",
                    p.shape(),
                    first.shape()
                ),
            });
        }
        shape[ax] += p.shape()[ax];
    }
    let out = s.alloc(&shape, DType::F32);
    let mut at = 0;
    for p in parts {
        copy_axis(s, p, &out, ax, p.shape()[ax], 0, at);
        at += p.shape()[ax];
    }
    Ok(out)
}

/// Gradient of `concat`: the slices of g matching each part's extent `sizes`.
pub fn concat_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    sizes: &[usize],
    axis: isize,
) -> Result<Vec<Tensor>> {
    let ax = axis_index("concat_backward", axis, grad.shape().len())?;
    if sizes.iter().sum::<usize>() != grad.shape()[ax] {
        return Err(Error::Shape {
            op: "concat_backward",
            detail: format!(
                "sizes {sizes:?} do not add up to axis {ax} of {:?}",
                grad.shape()
            ),
        });
    }
    let mut at = 0;
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        out.push(slice(s, grad, ax as isize, at, n)?);
        at += n;
    }
    Ok(out)
}

/// Permutes axes: output axis k is input axis `perm[k]` (rank <= 6).
pub fn permute(s: &mut Step<'_>, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    f32_input("permute", "x", x)?;
    let rank = x.shape().len();
    let mut seen = [false; 6];
    if rank > 6
        || perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::InvalidArgument {
            op: "permute",
            detail: format!(
                "{perm:?} is not a permutation of the {rank} axes of {:?}",
                x.shape()
            ),
        });
    }
    let mut in_strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        in_strides[k] = in_strides[k + 1] * x.shape()[k + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let mut params = params::Permute {
        n: u(x.numel()),
        rank: u(rank),
        out_dims: [1; 8],
        ..Default::default()
    };
    for k in 0..rank {
        params.out_dims[k] = u(out_shape[k]);
        params.src_strides[k] = u(in_strides[perm[k]]);
    }
    let out = s.alloc(&out_shape, DType::F32);
    s.dispatch(
        &PERMUTE,
        "permute",
        &[read(0, x), write(1, &out)],
        2,
        &params,
        groups_1d(x.numel()),
    );
    Ok(out)
}

/// Gradient of `permute`: g permuted by the inverse permutation.
pub fn permute_backward(s: &mut Step<'_>, grad: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut inverse = vec![0; perm.len()];
    for (k, &p) in perm.iter().enumerate() {
        if p >= perm.len() {
            return Err(Error::InvalidArgument {
                op: "permute_backward",
                detail: format!("{perm:?} is not a permutation"),
            });
        }
        inverse[p] = k;
    }
    permute(s, grad, &inverse)
}

/// Swaps two axes.
pub fn transpose(s: &mut Step<'_>, x: &Tensor, axis0: usize, axis1: usize) -> Result<Tensor> {
    let rank = x.shape().len();
    if axis0 >= rank || axis1 >= rank {
        return Err(Error::InvalidArgument {
            op: "transpose",
            detail: format!("axes {axis0}, {axis1} out of range for {:?}", x.shape()),
        });
    }
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(axis0, axis1);
    permute(s, x, &perm)
}
