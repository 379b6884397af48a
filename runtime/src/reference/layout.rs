//! Slice, concat and permute.

use super::split_axis;

pub fn slice(x: &[f64], shape: &[usize], axis: usize, start: usize, len: usize) -> Vec<f64> {
    let (outer, n, inner) = split_axis(shape, axis);
    let mut out = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        out.extend_from_slice(&x[(o * n + start) * inner..(o * n + start + len) * inner]);
    }
    out
}

pub fn slice_backward(
    grad: &[f64],
    shape: &[usize],
    axis: usize,
    start: usize,
    len: usize,
) -> Vec<f64> {
    let (outer, n, inner) = split_axis(shape, axis);
    let mut gx = vec![0.0; outer * n * inner];
    for o in 0..outer {
        gx[(o * n + start) * inner..(o * n + start + len) * inner]
            .copy_from_slice(&grad[o * len * inner..(o + 1) * len * inner]);
    }
    gx
}

/// Concatenates parts (each with its shape) along `axis`.
pub fn concat(parts: &[(&[f64], &[usize])], axis: usize) -> Vec<f64> {
    let outer: usize = parts[0].1[..axis].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for (x, shape) in parts {
            let (_, n, inner) = split_axis(shape, axis);
            out.extend_from_slice(&x[o * n * inner..(o + 1) * n * inner]);
        }
    }
    out
}

/// Output axis k is input axis perm[k].
pub fn permute(x: &[f64], shape: &[usize], perm: &[usize]) -> Vec<f64> {
    let rank = shape.len();
    let mut strides = vec![1; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut out = vec![0.0; x.len()];
    let mut idx = vec![0usize; rank];
    for o in out.iter_mut() {
        *o = x[(0..rank).map(|k| idx[k] * strides[perm[k]]).sum::<usize>()];
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}
