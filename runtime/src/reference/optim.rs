//! torch.optim.SGD (dampening 0) and torch.optim.AdamW update rules.

use crate::ops::optim::{AdamWConfig, SgdConfig};

pub fn sgd_step(w: &mut [f64], grad: &[f64], buf: &mut [f64], cfg: &SgdConfig) {
    let (lr, mom, wd) = (cfg.lr as f64, cfg.momentum as f64, cfg.weight_decay as f64);
    for i in 0..w.len() {
        let mut g = grad[i] + wd * w[i];
        if mom != 0.0 {
            buf[i] = mom * buf[i] + g;
            g = if cfg.nesterov {
                g + mom * buf[i]
            } else {
                buf[i]
            };
        }
        w[i] -= lr * g;
    }
}

/// Step t is 1-based.
pub fn adamw_step(
    w: &mut [f64],
    grad: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    cfg: &AdamWConfig,
    t: u64,
) {
    let (lr, b1, b2, eps, wd) = (
        cfg.lr as f64,
        cfg.beta1 as f64,
        cfg.beta2 as f64,
        cfg.eps as f64,
        cfg.weight_decay as f64,
    );
    let bias1 = 1.0 - b1.powf(t as f64);
    let bias2 = 1.0 - b2.powf(t as f64);
    for i in 0..w.len() {
        w[i] *= 1.0 - lr * wd;
        m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
        v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
        let mhat = m[i] / bias1;
        let vhat = v[i] / bias2;
        w[i] -= lr * mhat / (vhat.sqrt() + eps);
    }
}

/// torch.nn.utils.clip_grad_norm_: (clipped gradients, norm before clipping).
pub fn clip_grad_norm(grads: &[Vec<f64>], max_norm: f64) -> (Vec<Vec<f64>>, f64) {
    let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    (
        grads
            .iter()
            .map(|g| g.iter().map(|v| v * coef).collect())
            .collect(),
        norm,
    )
}
