//! Twins of `shaders/wgsl/elementwise/`: add and mul with a trailing broadcast, scale.

use crate::params::elementwise;

use super::{par_chunks, par_rows, Args, KernelFn, ELEMENTS};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("binary", "add") => add,
        ("binary", "mul") => mul,
        ("scale", "scale") => scale,
        _ => return None,
    })
}

fn binary(a: &Args<'_>, op: fn(f32, f32) -> f32) {
    let p: elementwise::Binary = a.params();
    let (n, nb) = (p.n as usize, p.nb as usize);
    let (x, y) = (&a.f32(0)[..n], &a.f32(1)[..nb]);
    let out = &mut a.f32_mut(2)[..n];
    // b repeats every nb elements (the op checks n % nb == 0): walk whole rows of nb so
    // no element needs a division.
    par_rows(out, nb, |r0, rows| {
        for (r, row) in rows.chunks_mut(nb).enumerate() {
            let xs = &x[(r0 + r) * nb..(r0 + r + 1) * nb];
            for ((v, &xv), &yv) in row.iter_mut().zip(xs).zip(y) {
                *v = op(xv, yv);
            }
        }
    });
}

fn add(a: &Args<'_>) {
    binary(a, |x, y| x + y)
}

fn mul(a: &Args<'_>) {
    binary(a, |x, y| x * y)
}

fn scale(a: &Args<'_>) {
    let p: elementwise::Scale = a.params();
    let x = a.f32(0);
    let out = &mut a.f32_mut(1)[..p.n as usize];
    par_chunks(out, ELEMENTS, |start, o| {
        for (v, &xv) in o.iter_mut().zip(&x[start..]) {
            *v = p.alpha * xv;
        }
    });
}
