//! Twins of `shaders/wgsl/util/`: fill and dropout.

use crate::params::util;

use super::{par_chunks, Args, KernelFn, ELEMENTS};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("fill", "fill") => fill,
        ("dropout", "apply_mask") => apply_mask,
        _ => return None,
    })
}

fn fill(a: &Args<'_>) {
    let p: util::Fill = a.params();
    let out = &mut a.f32_mut(0)[..p.n as usize];
    par_chunks(out, ELEMENTS, |_, o| o.fill(p.value));
}

/// PCG-RXS-M-XS 32-bit hash, as the kernel.
fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

fn apply_mask(a: &Args<'_>) {
    let p: util::Dropout = a.params();
    let x = a.f32(0);
    let out = &mut a.f32_mut(1)[..p.n as usize];
    let key = pcg_hash(p.seed);
    par_chunks(out, ELEMENTS, |start, o| {
        for (j, v) in o.iter_mut().enumerate() {
            let i = start + j;
            let keep = pcg_hash(i as u32 ^ key) < p.keep_threshold;
            *v = if keep { x[i] * p.inv_keep } else { 0.0 };
        }
    });
}
