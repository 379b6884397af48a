//! Twins of `shaders/wgsl/loss/`: softmax cross-entropy, per row, mean and backward.

use crate::params::loss;

use super::{par_rows, Args, KernelFn};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("cross_entropy", "rows_loss") => rows_loss,
        ("cross_entropy", "mean") => mean,
        ("cross_entropy", "backward") => backward,
        _ => return None,
    })
}

/// logsumexp of one row, as the kernel: max, then the shifted sum in class order.
fn row_lse(z: &[f32]) -> f32 {
    let mx = z[1..].iter().fold(z[0], |m, &v| m.max(v));
    let s = z.iter().fold(0.0f32, |s, &v| s + (v - mx).exp());
    mx + s.ln()
}

fn rows_loss(a: &Args<'_>) {
    let p: loss::CrossEntropy = a.params();
    let (batch, classes) = (p.batch as usize, p.classes as usize);
    let (logits, labels) = (a.f32(0), a.u32(1));
    let out = &mut a.f32_mut(2)[..batch];
    par_rows(out, classes.max(1), |b0, out| {
        for (r, o) in out.iter_mut().enumerate() {
            let b = b0 + r;
            let label = labels[b] as usize;
            let z = &logits[b * classes..(b + 1) * classes];
            // A label outside [0, classes) makes the row's loss NaN, as on the GPU.
            *o = if label >= classes {
                f32::NAN
            } else {
                row_lse(z) - z[label]
            };
        }
    });
}

fn mean(a: &Args<'_>) {
    let p: loss::CrossEntropy = a.params();
    let rows = a.f32(4);
    let s = rows[..p.batch as usize].iter().fold(0.0f32, |s, &v| s + v);
    a.f32_mut(2)[0] = s / p.batch as f32;
}

fn backward(a: &Args<'_>) {
    let p: loss::CrossEntropy = a.params();
    let (batch, classes) = (p.batch as usize, p.classes as usize);
    let (logits, labels, gl) = (a.f32(0), a.u32(1), a.f32(3));
    let out = &mut a.f32_mut(2)[..batch * classes];
    let scale = gl[0];
    par_rows(out, classes, |b0, out| {
        for (r, o) in out.chunks_mut(classes).enumerate() {
            let b = b0 + r;
            let z = &logits[b * classes..(b + 1) * classes];
            let lse = row_lse(z);
            let label = labels[b] as usize;
            for (c, v) in o.iter_mut().enumerate() {
                let prob = (z[c] - lse).exp();
                let onehot = if c == label { 1.0 } else { 0.0 };
                *v = scale * (prob - onehot) / batch as f32;
            }
        }
    });
}
