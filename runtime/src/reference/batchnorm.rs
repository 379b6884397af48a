//! BatchNorm over channels of x (n, c, l), as torch.nn.BatchNorm1d/2d.

/// Index of element (b, ch, s).
fn at(c: usize, l: usize, b: usize, ch: usize, s: usize) -> usize {
    (b * c + ch) * l + s
}

fn channel_stats(x: &[f64], n: usize, c: usize, l: usize, ch: usize) -> (f64, f64) {
    let m = (n * l) as f64;
    let vals = (0..n)
        .flat_map(|b| (0..l).map(move |s| (b, s)))
        .map(|(b, s)| x[at(c, l, b, ch, s)]);
    let mean = vals.clone().sum::<f64>() / m;
    let var = vals.map(|v| (v - mean).powi(2)).sum::<f64>() / m;
    (mean, var)
}

/// Forward. In train mode updates `running_mean`/`running_var` like PyTorch
/// (momentum-weighted, unbiased variance); in eval mode normalises with them.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f64],
    (n, c, l): (usize, usize, usize),
    gamma: &[f64],
    beta: &[f64],
    running_mean: &mut [f64],
    running_var: &mut [f64],
    eps: f64,
    momentum: f64,
    train: bool,
) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for ch in 0..c {
        let (mean, var) = if train {
            let (mean, var) = channel_stats(x, n, c, l, ch);
            let m = (n * l) as f64;
            running_mean[ch] = (1.0 - momentum) * running_mean[ch] + momentum * mean;
            running_var[ch] = (1.0 - momentum) * running_var[ch] + momentum * var * m / (m - 1.0);
            (mean, var)
        } else {
            (running_mean[ch], running_var[ch])
        };
        let rstd = 1.0 / (var + eps).sqrt();
        for b in 0..n {
            for s in 0..l {
                let i = at(c, l, b, ch, s);
                y[i] = (x[i] - mean) * rstd * gamma[ch] + beta[ch];
            }
        }
    }
    y
}

/// (dx, dgamma, dbeta). In eval mode the running statistics are constants.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f64],
    (n, c, l): (usize, usize, usize),
    gamma: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
    eps: f64,
    train: bool,
    grad: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut gx = vec![0.0; x.len()];
    let mut ggamma = vec![0.0; c];
    let mut gbeta = vec![0.0; c];
    let m = (n * l) as f64;
    for ch in 0..c {
        let (mean, var) = if train {
            channel_stats(x, n, c, l, ch)
        } else {
            (running_mean[ch], running_var[ch])
        };
        let rstd = 1.0 / (var + eps).sqrt();
        let idx: Vec<usize> = (0..n)
            .flat_map(|b| (0..l).map(move |s| at(c, l, b, ch, s)))
            .collect();
        let sum_g: f64 = idx.iter().map(|&i| grad[i]).sum();
        let sum_gx: f64 = idx.iter().map(|&i| grad[i] * (x[i] - mean) * rstd).sum();
        ggamma[ch] = sum_gx;
        gbeta[ch] = sum_g;
        for &i in &idx {
            gx[i] = if train {
                let xhat = (x[i] - mean) * rstd;
                gamma[ch] * rstd / m * (m * grad[i] - sum_g - xhat * sum_gx)
            } else {
                grad[i] * gamma[ch] * rstd
            };
        }
    }
    (gx, ggamma, gbeta)
}
