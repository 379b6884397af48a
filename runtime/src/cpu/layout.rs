//! Twins of `shaders/wgsl/layout/`: copies along an axis and axis permutations.

use crate::params::layout;

use super::{par_rows, Args, KernelFn};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("copy_axis", "copy_axis") => copy_axis,
        ("permute", "permute") => permute,
        _ => return None,
    })
}

fn copy_axis(a: &Args<'_>) {
    let p: layout::CopyAxis = a.params();
    let src = a.f32(0);
    let [outer, inner, len, src_len, src_start, dst_len, dst_start] = [
        p.outer,
        p.inner,
        p.len,
        p.src_len,
        p.src_start,
        p.dst_len,
        p.dst_start,
    ]
    .map(|v| v as usize);
    let dst = &mut a.f32_mut(1)[..outer * dst_len * inner];
    // One chunk of whole outer rows of dst per task; each copies its contiguous run.
    par_rows(dst, dst_len * inner, |o0, rows| {
        for (r, row) in rows.chunks_mut(dst_len * inner).enumerate() {
            let o = o0 + r;
            let from = (o * src_len + src_start) * inner;
            row[dst_start * inner..(dst_start + len) * inner]
                .copy_from_slice(&src[from..from + len * inner]);
        }
    });
}

fn permute(a: &Args<'_>) {
    let p: layout::Permute = a.params();
    let src = a.f32(0);
    let rank = (p.rank as usize).min(8);
    let dims = &p.out_dims[..rank];
    let strides = &p.src_strides[..rank];
    let dst = &mut a.f32_mut(1)[..p.n as usize];
    if rank == 0 {
        dst.copy_from_slice(&src[..dst.len()]);
        return;
    }
    let last = dims[rank - 1] as usize;
    let last_stride = strides[rank - 1] as usize;
    // Whole rows along the last output axis: one source offset per row, then a strided walk.
    par_rows(dst, last, |row0, rows| {
        for (r, out) in rows.chunks_mut(last).enumerate() {
            let mut rem = (row0 + r) as u32;
            let mut base = 0usize;
            for k in (0..rank - 1).rev() {
                base += (rem % dims[k]) as usize * strides[k] as usize;
                rem /= dims[k];
            }
            if last_stride == 1 {
                out.copy_from_slice(&src[base..base + last]);
            } else {
                for (j, v) in out.iter_mut().enumerate() {
                    *v = src[base + j * last_stride];
                }
            }
        }
    });
}
