//! Twins of `shaders/wgsl/optim/`: SGD, AdamW and clipping by the global norm.

use crate::params::optim;

use super::{par_chunks, tree_sum, Args, KernelFn, SendPtr, ELEMENTS};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("sgd", "step") => sgd,
        ("adamw", "step") => adamw,
        ("clip", "sumsq") => clip_sumsq,
        ("clip", "coefficient") => clip_coefficient,
        ("clip", "scale") => clip_scale,
        _ => return None,
    })
}

fn sgd(a: &Args<'_>) {
    let p: optim::Sgd = a.params();
    let n = p.n as usize;
    let w = &mut a.f32_mut(0)[..n];
    let grad = a.f32(1);
    let buf = a.f32_mut(2);
    assert!(buf.len() >= n, "momentum buffer shorter than the weights");
    let buf_ptr = SendPtr(buf.as_mut_ptr());
    par_chunks(w, ELEMENTS, |start, w| {
        // The momentum buffer is split exactly as w, so each chunk owns its range.
        let buf = unsafe { buf_ptr.slice(start, w.len()) };
        for (j, wv) in w.iter_mut().enumerate() {
            let mut g = grad[start + j];
            if p.weight_decay != 0.0 {
                g += p.weight_decay * *wv;
            }
            if p.momentum != 0.0 {
                let b = p.momentum * buf[j] + g;
                buf[j] = b;
                g = if p.nesterov != 0 {
                    g + p.momentum * b
                } else {
                    b
                };
            }
            *wv -= p.lr * g;
        }
    });
}

fn adamw(a: &Args<'_>) {
    let p: optim::Adamw = a.params();
    let n = p.n as usize;
    let w = &mut a.f32_mut(0)[..n];
    let grad = a.f32(1);
    let (m, v) = (a.f32_mut(2), a.f32_mut(3));
    assert!(
        m.len() >= n && v.len() >= n,
        "adamw state shorter than the weights"
    );
    let (m_ptr, v_ptr) = (SendPtr(m.as_mut_ptr()), SendPtr(v.as_mut_ptr()));
    par_chunks(w, ELEMENTS, |start, w| {
        // m and v are split exactly as w, so each chunk owns its range of both.
        let m = unsafe { m_ptr.slice(start, w.len()) };
        let v = unsafe { v_ptr.slice(start, w.len()) };
        for (j, wv) in w.iter_mut().enumerate() {
            let g = grad[start + j];
            let wd = *wv * (1.0 - p.lr * p.weight_decay);
            let m1 = m[j] + (1.0 - p.beta1) * (g - m[j]);
            let v1 = v[j] * p.beta2 + (1.0 - p.beta2) * (g * g);
            m[j] = m1;
            v[j] = v1;
            *wv = wd - p.step_size * m1 / (v1.sqrt() / p.bias2_sqrt + p.eps);
        }
    });
}

/// The kernel's order: 64 strided partial sums, then a fixed tree.
fn clip_sumsq(a: &Args<'_>) {
    let p: optim::Clip = a.params();
    let g = &a.f32_mut(0)[..p.n as usize];
    let partials = a.f32_mut(1);
    partials[p.slot as usize] = tree_sum(g, |v| v * v);
}

fn clip_coefficient(a: &Args<'_>) {
    let p: optim::Clip = a.params();
    let partials = a.f32_mut(1);
    let total: f32 = partials[..p.n as usize].iter().fold(0.0, |s, &v| s + v);
    let coef = a.f32_mut(2);
    let norm = total.sqrt();
    coef[0] = (p.max_norm / (norm + 1e-6)).min(1.0);
    coef[1] = norm;
}

fn clip_scale(a: &Args<'_>) {
    let p: optim::Clip = a.params();
    let g = &mut a.f32_mut(0)[..p.n as usize];
    let c = a.f32_mut(2)[0];
    par_chunks(g, ELEMENTS, |_, g| g.iter_mut().for_each(|v| *v *= c));
}
