//! Twins of `shaders/wgsl/reduce/`: sum, mean and max over an axis with their backward
//! gathers, and the two-pass column sum. Each output is one loop in index order, as the
//! kernels, so results do not depend on the thread count.

use crate::params::reduce;

use super::{par_rows, par_rows2, Args, KernelFn};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("axis", "sum") => sum,
        ("axis", "mean") => mean,
        ("axis", "max_arg") => max_arg,
        ("axis", "sum_backward") => sum_backward,
        ("axis", "mean_backward") => mean_backward,
        ("axis", "max_backward") => max_backward,
        ("colsum", "partial") => colsum_partial,
        ("colsum", "finish") => colsum_finish,
        _ => return None,
    })
}

impl reduce::Axis {
    fn dims(&self) -> (usize, usize, usize) {
        (self.outer as usize, self.len as usize, self.inner as usize)
    }
}

/// y[o, i] = sum over a of x[o, a, i], summed in a order; `scale` applied after.
fn sum_into(a: &Args<'_>, mean: bool) {
    let p: reduce::Axis = a.params();
    let (outer, len, inner) = p.dims();
    let x = a.f32(0);
    let y = &mut a.f32_mut(1)[..outer * inner];
    par_rows(y, inner, |o0, rows| {
        for (r, out) in rows.chunks_mut(inner).enumerate() {
            let base = (o0 + r) * len * inner;
            out.copy_from_slice(&x[base..base + inner]);
            for step in 1..len {
                let row = &x[base + step * inner..base + (step + 1) * inner];
                for (v, &xv) in out.iter_mut().zip(row) {
                    *v += xv;
                }
            }
            if mean {
                for v in out.iter_mut() {
                    *v /= len as f32;
                }
            }
        }
    });
}

fn sum(a: &Args<'_>) {
    sum_into(a, false)
}

fn mean(a: &Args<'_>) {
    sum_into(a, true)
}

fn max_arg(a: &Args<'_>) {
    let p: reduce::Axis = a.params();
    let (outer, len, inner) = p.dims();
    let x = a.f32(0);
    let y = &mut a.f32_mut(1)[..outer * inner];
    let arg = &mut a.u32_mut(2)[..outer * inner];
    par_rows2(y, inner, arg, inner, |o0, ys, args| {
        for (r, (out, am)) in ys.chunks_mut(inner).zip(args.chunks_mut(inner)).enumerate() {
            let base = (o0 + r) * len * inner;
            out.copy_from_slice(&x[base..base + inner]);
            am.fill(0);
            for step in 1..len {
                let row = &x[base + step * inner..base + (step + 1) * inner];
                for ((v, m), &xv) in out.iter_mut().zip(am.iter_mut()).zip(row) {
                    if xv > *v {
                        *v = xv;
                        *m = step as u32;
                    }
                }
            }
        }
    });
}

/// y[o, a, i] = f(o * inner + i, a) for every input element.
fn gather_back(a: &Args<'_>, f: impl Fn(usize, usize) -> f32 + Sync + Send) {
    let p: reduce::Axis = a.params();
    let (outer, len, inner) = p.dims();
    let y = &mut a.f32_mut(1)[..outer * len * inner];
    par_rows(y, inner, |row0, rows| {
        for (r, out) in rows.chunks_mut(inner).enumerate() {
            let row = row0 + r;
            let (o, step) = (row / len, row % len);
            for (i, v) in out.iter_mut().enumerate() {
                *v = f(o * inner + i, step);
            }
        }
    });
}

fn sum_backward(a: &Args<'_>) {
    let g = a.f32(3);
    gather_back(a, |o, _| g[o])
}

fn mean_backward(a: &Args<'_>) {
    let p: reduce::Axis = a.params();
    let g = a.f32(3);
    gather_back(a, |o, _| g[o] / p.len as f32)
}

fn max_backward(a: &Args<'_>) {
    let g = a.f32(3);
    let arg = a.u32(4);
    gather_back(a, |o, step| if arg[o] == step as u32 { g[o] } else { 0.0 })
}

fn colsum_partial(a: &Args<'_>) {
    let p: reduce::Colsum = a.params();
    let (rows, cols, chunk_rows, chunks) = (
        p.rows as usize,
        p.cols as usize,
        p.chunk_rows as usize,
        p.chunks as usize,
    );
    let x = a.f32(0);
    let partials = &mut a.f32_mut(1)[..chunks * cols];
    par_rows(partials, cols, |c0, out_rows| {
        for (r, out) in out_rows.chunks_mut(cols).enumerate() {
            let r0 = (c0 + r) * chunk_rows;
            let r1 = (r0 + chunk_rows).min(rows);
            out.fill(0.0);
            for row in r0..r1 {
                for (v, &xv) in out.iter_mut().zip(&x[row * cols..(row + 1) * cols]) {
                    *v += xv;
                }
            }
        }
    });
}

fn colsum_finish(a: &Args<'_>) {
    let p: reduce::Colsum = a.params();
    let (cols, chunks) = (p.cols as usize, p.chunks as usize);
    let partials = a.f32_mut(1);
    let out = &mut a.f32_mut(2)[..cols];
    out.fill(0.0);
    for c in 0..chunks {
        for (v, &pv) in out.iter_mut().zip(&partials[c * cols..(c + 1) * cols]) {
            *v += pv;
        }
    }
}
