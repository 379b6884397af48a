//! Twins of `shaders/wgsl/p4dconv/conv_max.wgsl`: the tube embedding's conv_d fused with
//! the max over neighbours, and its two gradients. Each gradient element sums in the
//! kernel's order (rows ascending for the weight, channels ascending for the
//! displacements), walked here row by row so memory is read in order.

use rayon::prelude::*;

use crate::params::p4dconv;

use super::{par_rows, par_rows2, Args, KernelFn};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("conv_max", "forward") => forward,
        ("conv_max", "grad_weight") => grad_weight,
        ("conv_max", "grad_disp") => grad_disp,
        _ => return None,
    })
}

fn forward(a: &Args<'_>) {
    let p: p4dconv::ConvMax = a.params();
    let (rows, k, c) = (p.rows as usize, p.k as usize, p.c as usize);
    let (disp, w) = (a.f32(0), a.f32(1));
    let y = &mut a.f32_mut(2)[..rows * c];
    let arg = &mut a.u32_mut(3)[..rows * c];
    par_rows2(y, c, arg, c, |r0, ys, args| {
        for (r, (yr, ar)) in ys.chunks_mut(c).zip(args.chunks_mut(c)).enumerate() {
            let d = &disp[(r0 + r) * k * 4..(r0 + r + 1) * k * 4];
            for ch in 0..c {
                let wc = &w[ch * 4..ch * 4 + 4];
                let mut best = 0.0f32;
                let mut best_s = 0u32;
                for (s, e) in d.chunks_exact(4).enumerate() {
                    let h = ((wc[0] * e[0] + wc[1] * e[1]) + wc[2] * e[2]) + wc[3] * e[3];
                    if s == 0 || h > best {
                        best = h;
                        best_s = s as u32;
                    }
                }
                yr[ch] = best;
                ar[ch] = best_s;
            }
        }
    });
}

/// grad_w[c, j] = sum over rows r (ascending) of g[r, c] * disp[r*k + arg[r, c], j].
fn grad_weight(a: &Args<'_>) {
    let p: p4dconv::ConvMax = a.params();
    let (rows, k, c) = (p.rows as usize, p.k as usize, p.c as usize);
    let (disp, g, arg) = (a.f32(0), a.f32(4), a.u32(5));
    let out = &mut a.f32_mut(2)[..c * 4];
    // Blocks of channels in parallel; each block walks every row in order.
    const BLOCK: usize = 16;
    out.par_chunks_mut(BLOCK * 4)
        .enumerate()
        .for_each(|(blk, acc)| {
            let c0 = blk * BLOCK;
            acc.fill(0.0);
            for r in 0..rows {
                for (i, a4) in acc.chunks_mut(4).enumerate() {
                    let o = r * c + c0 + i;
                    let e = (r * k + arg[o] as usize) * 4;
                    for j in 0..4 {
                        a4[j] += g[o] * disp[e + j];
                    }
                }
            }
        });
}

/// grad_disp[r*k + s, j] = sum over channels c (ascending) with arg[r, c] == s of
/// g[r, c] * W[c, j].
fn grad_disp(a: &Args<'_>) {
    let p: p4dconv::ConvMax = a.params();
    let (rows, k, c) = (p.rows as usize, p.k as usize, p.c as usize);
    let (w, g, arg) = (a.f32(1), a.f32(4), a.u32(5));
    let out = &mut a.f32_mut(2)[..rows * k * 4];
    par_rows(out, k * 4, |r0, out| {
        for (r, acc) in out.chunks_mut(k * 4).enumerate() {
            let row = r0 + r;
            acc.fill(0.0);
            for ch in 0..c {
                let o = row * c + ch;
                let s = arg[o] as usize;
                let gv = g[o];
                for j in 0..4 {
                    acc[s * 4 + j] += gv * w[ch * 4 + j];
                }
            }
        }
    });
}
