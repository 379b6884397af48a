//! Twins of `shaders/wgsl/norm/`: LayerNorm, BatchNorm, softmax and L2 normalisation.
//! Row sums use the kernels' order (64 strided lanes, then a halving tree), which also
//! keeps long rows accurate.

use crate::params::norm;

use super::{lane_sum, par_rows, par_rows2, tree, tree_sum, tree_sum2, Args, KernelFn, SendPtr};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("layernorm", "forward") => layernorm_forward,
        ("layernorm", "backward") => layernorm_backward,
        ("layernorm", "xhat_grad") => layernorm_xhat_grad,
        ("softmax", "forward") => softmax_forward,
        ("softmax", "backward") => softmax_backward,
        ("l2normalize", "forward") => l2_forward,
        ("l2normalize", "backward") => l2_backward,
        ("batchnorm", "forward") => batchnorm_forward,
        ("batchnorm", "backward") => batchnorm_backward,
        _ => return None,
    })
}

fn layernorm_forward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let (x, gamma, beta) = (a.f32(0), a.f32(1), a.f32(2));
    let y = &mut a.f32_mut(3)[..rows * d];
    let stats = &mut a.f32_mut(4)[..rows * 2];
    par_rows2(y, d, stats, 2, |r0, ys, st| {
        for (r, (yr, s)) in ys.chunks_mut(d).zip(st.chunks_mut(2)).enumerate() {
            let xr = &x[(r0 + r) * d..(r0 + r + 1) * d];
            let mean = tree_sum(xr, |v| v) / d as f32;
            let var = tree_sum(xr, |v| (v - mean) * (v - mean)) / d as f32;
            let rstd = 1.0 / (var + p.eps).sqrt();
            for j in 0..d {
                yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
            }
            s[0] = mean;
            s[1] = rstd;
        }
    });
}

fn layernorm_backward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let (x, gamma, stats, gy) = (a.f32(0), a.f32(1), a.f32(4), a.f32(5));
    let gx = &mut a.f32_mut(3)[..rows * d];
    par_rows(gx, d, |r0, out| {
        for (r, gr) in out.chunks_mut(d).enumerate() {
            let row = r0 + r;
            let (xr, g) = (&x[row * d..(row + 1) * d], &gy[row * d..(row + 1) * d]);
            let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
            let mut la = [0.0f32; 64];
            let mut lb = [0.0f32; 64];
            for j in 0..d {
                let gg = g[j] * gamma[j];
                let xhat = (xr[j] - mean) * rstd;
                la[j % 64] += gg;
                lb[j % 64] += gg * xhat;
            }
            let mean_g = tree(&mut la) / d as f32;
            let mean_gx = tree(&mut lb) / d as f32;
            for j in 0..d {
                let gg = g[j] * gamma[j];
                let xhat = (xr[j] - mean) * rstd;
                gr[j] = rstd * (gg - mean_g - xhat * mean_gx);
            }
        }
    });
}

fn layernorm_xhat_grad(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let (x, stats, gy) = (a.f32(0), a.f32(4), a.f32(5));
    let out = &mut a.f32_mut(3)[..rows * d];
    par_rows(out, d, |r0, out| {
        for (r, o) in out.chunks_mut(d).enumerate() {
            let row = r0 + r;
            let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
            for j in 0..d {
                o[j] = gy[row * d + j] * (x[row * d + j] - mean) * rstd;
            }
        }
    });
}

fn softmax_forward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let x = a.f32(0);
    let out = &mut a.f32_mut(2)[..rows * d];
    par_rows(out, d, |r0, out| {
        for (r, o) in out.chunks_mut(d).enumerate() {
            let xr = &x[(r0 + r) * d..(r0 + r + 1) * d];
            let mx = xr.iter().fold(-3.402823e38f32, |m, &v| m.max(v));
            for (ov, &xv) in o.iter_mut().zip(xr) {
                *ov = (xv - mx).exp();
            }
            let inv = 1.0 / tree_sum(o, |v| v);
            for ov in o.iter_mut() {
                *ov *= inv;
            }
        }
    });
}

fn softmax_backward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let (y, g) = (a.f32(0), a.f32(1));
    let out = &mut a.f32_mut(2)[..rows * d];
    par_rows(out, d, |r0, out| {
        for (r, o) in out.chunks_mut(d).enumerate() {
            let row = r0 + r;
            let (yr, gr) = (&y[row * d..(row + 1) * d], &g[row * d..(row + 1) * d]);
            let dot = tree_sum2(gr, yr, |g, y| g * y);
            for j in 0..d {
                o[j] = yr[j] * (gr[j] - dot);
            }
        }
    });
}

fn l2_forward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let x = a.f32(0);
    let y = &mut a.f32_mut(1)[..rows * d];
    let norms = &mut a.f32_mut(2)[..rows];
    par_rows2(y, d, norms, 1, |r0, ys, ns| {
        for (r, (yr, nr)) in ys.chunks_mut(d).zip(ns.iter_mut()).enumerate() {
            let xr = &x[(r0 + r) * d..(r0 + r + 1) * d];
            let n = tree_sum(xr, |v| v * v).sqrt().max(p.eps);
            for (yv, &xv) in yr.iter_mut().zip(xr) {
                *yv = xv / n;
            }
            *nr = n;
        }
    });
}

fn l2_backward(a: &Args<'_>) {
    let p: norm::Rows = a.params();
    let (rows, d) = (p.rows as usize, p.d as usize);
    let (y, norms, g) = (a.f32(1), a.f32(2), a.f32(3));
    let gx = &mut a.f32_mut(4)[..rows * d];
    par_rows(gx, d, |r0, out| {
        for (r, o) in out.chunks_mut(d).enumerate() {
            let row = r0 + r;
            let (yr, gr) = (&y[row * d..(row + 1) * d], &g[row * d..(row + 1) * d]);
            let n = norms[row];
            let dot = tree_sum2(yr, gr, |y, g| y * g);
            let yg = if n <= p.eps { 0.0 } else { dot };
            for j in 0..d {
                o[j] = (gr[j] - yr[j] * yg) / n;
            }
        }
    });
}

impl norm::BatchNorm {
    /// Flat index of the j-th value of channel ch.
    fn at(&self, ch: usize, j: usize) -> usize {
        let l = self.l as usize;
        ((j / l) * self.c as usize + ch) * l + j % l
    }
}

/// Runs `f(ch)` for every channel in parallel (channels write disjoint elements).
fn per_channel(c: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..c).into_par_iter().with_min_len(1).for_each(f);
}

fn batchnorm_forward(a: &Args<'_>) {
    let p: norm::BatchNorm = a.params();
    let (c, m) = (p.c as usize, (p.n * p.l) as usize);
    let (x, gamma, beta) = (a.f32(0), a.f32(1), a.f32(2));
    // Channels write disjoint, strided elements: each output is taken once, checked
    // for length, and shared as a raw pointer.
    let (y, stats, rm, rv) = (a.f32_mut(3), a.f32_mut(4), a.f32_mut(5), a.f32_mut(6));
    assert!(
        y.len() >= c * m && stats.len() >= 2 * c && rm.len() >= c && rv.len() >= c,
        "batchnorm bindings shorter than {c} channels of {m} values"
    );
    let (y, stats) = (SendPtr(y.as_mut_ptr()), SendPtr(stats.as_mut_ptr()));
    let (rm, rv) = (SendPtr(rm.as_mut_ptr()), SendPtr(rv.as_mut_ptr()));
    per_channel(c, |ch| {
        let (mean, rstd) = if p.train != 0 {
            let mean = lane_sum(m, |j| x[p.at(ch, j)]) / m as f32;
            let sq = lane_sum(m, |j| {
                let d = x[p.at(ch, j)] - mean;
                d * d
            });
            let rstd = 1.0 / (sq / m as f32 + p.eps).sqrt();
            let unbiased = sq / (m.max(2) - 1) as f32;
            unsafe {
                let (old_m, old_v) = (*rm.0.add(ch), *rv.0.add(ch));
                rm.write(ch, (1.0 - p.momentum) * old_m + p.momentum * mean);
                rv.write(ch, (1.0 - p.momentum) * old_v + p.momentum * unbiased);
            }
            (mean, rstd)
        } else {
            let (mean, var) = unsafe { (*rm.0.add(ch), *rv.0.add(ch)) };
            (mean, 1.0 / (var + p.eps).sqrt())
        };
        for j in 0..m {
            let i = p.at(ch, j);
            unsafe { y.write(i, (x[i] - mean) * rstd * gamma[ch] + beta[ch]) };
        }
        unsafe {
            stats.write(2 * ch, mean);
            stats.write(2 * ch + 1, rstd);
        }
    });
}

fn batchnorm_backward(a: &Args<'_>) {
    let p: norm::BatchNorm = a.params();
    let (c, m) = (p.c as usize, (p.n * p.l) as usize);
    let (x, gamma, stats, gy) = (a.f32(0), a.f32(1), a.f32(4), a.f32(7));
    let (gx, dgamma, dbeta) = (a.f32_mut(3), a.f32_mut(8), a.f32_mut(9));
    assert!(
        gx.len() >= c * m && dgamma.len() >= c && dbeta.len() >= c && stats.len() >= 2 * c,
        "batchnorm gradient bindings shorter than {c} channels of {m} values"
    );
    let (gx, dgamma, dbeta) = (
        SendPtr(gx.as_mut_ptr()),
        SendPtr(dgamma.as_mut_ptr()),
        SendPtr(dbeta.as_mut_ptr()),
    );
    per_channel(c, |ch| {
        let (mean, rstd) = (stats[2 * ch], stats[2 * ch + 1]);
        let mut la = [0.0f32; 64];
        let mut lb = [0.0f32; 64];
        for j in 0..m {
            let i = p.at(ch, j);
            la[j % 64] += gy[i];
            lb[j % 64] += gy[i] * (x[i] - mean) * rstd;
        }
        let sum_g = tree(&mut la);
        let sum_gx = tree(&mut lb);
        let k = gamma[ch] * rstd;
        for j in 0..m {
            let i = p.at(ch, j);
            let v = if p.train != 0 {
                let xhat = (x[i] - mean) * rstd;
                k / m as f32 * (m as f32 * gy[i] - sum_g - xhat * sum_gx)
            } else {
                k * gy[i]
            };
            unsafe { gx.write(i, v) };
        }
        unsafe {
            dgamma.write(ch, sum_gx);
            dbeta.write(ch, sum_g);
        }
    });
}
