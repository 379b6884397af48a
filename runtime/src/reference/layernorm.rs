//! LayerNorm over the last axis of length d (biased variance, eps inside the sqrt).

pub fn forward(x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let d = gamma.len();
    let mut y = vec![0.0; x.len()];
    for (row, out) in x.chunks(d).zip(y.chunks_mut(d)) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        for j in 0..d {
            out[j] = (row[j] - mean) * rstd * gamma[j] + beta[j];
        }
    }
    y
}

/// (dx, dgamma, dbeta).
pub fn backward(
    x: &[f64],
    gamma: &[f64],
    eps: f64,
    grad: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let d = gamma.len();
    let mut gx = vec![0.0; x.len()];
    let mut ggamma = vec![0.0; d];
    let mut gbeta = vec![0.0; d];
    for ((row, g), out) in x.chunks(d).zip(grad.chunks(d)).zip(gx.chunks_mut(d)) {
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
        let gg: Vec<f64> = (0..d).map(|j| g[j] * gamma[j]).collect();
        let mean_g = gg.iter().sum::<f64>() / d as f64;
        let mean_gx = gg.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / d as f64;
        for j in 0..d {
            out[j] = rstd * (gg[j] - mean_g - xhat[j] * mean_gx);
            ggamma[j] += g[j] * xhat[j];
            gbeta[j] += g[j];
        }
    }
    (gx, ggamma, gbeta)
}

/// L2 normalisation of each row of length d: x / max(‖x‖₂, eps).
pub fn l2normalize(x: &[f64], d: usize, eps: f64) -> Vec<f64> {
    x.chunks(d)
        .flat_map(|row| {
            let n = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(eps);
            row.iter().map(move |v| v / n)
        })
        .collect()
}

/// d x of `l2normalize` given d y.
pub fn l2normalize_backward(x: &[f64], d: usize, eps: f64, g: &[f64]) -> Vec<f64> {
    let mut gx = Vec::with_capacity(x.len());
    for (row, grow) in x.chunks(d).zip(g.chunks(d)) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= eps {
            gx.extend(grow.iter().map(|v| v / eps));
            continue;
        }
        let yg: f64 = row.iter().zip(grow).map(|(x, g)| x / norm * g).sum();
        gx.extend(
            row.iter()
                .zip(grow)
                .map(|(x, g)| (g - x / norm * yg) / norm),
        );
    }
    gx
}
