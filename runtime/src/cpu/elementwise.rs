//! Twins of `shaders/wgsl/elementwise/`: add and mul with a trailing broadcast, scale.

use crate::params::elementwise;

use super::{par_chunks, Args, KernelFn, ELEMENTS};

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
    let (x, y) = (a.f32(0), a.f32(1));
    let nb = p.nb as usize;
    let out = &mut a.f32_mut(2)[..p.n as usize];
    par_chunks(out, ELEMENTS, |start, o| {
        for (j, v) in o.iter_mut().enumerate() {
            let i = start + j;
            *v = op(x[i], y[i % nb]);
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
