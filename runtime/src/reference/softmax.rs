//! Softmax over the last axis of length d.

pub fn forward(x: &[f64], d: usize) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (row, out) in x.chunks(d).zip(y.chunks_mut(d)) {
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - mx).exp()).sum();
        for (o, v) in out.iter_mut().zip(row) {
            *o = (v - mx).exp() / sum;
        }
    }
    y
}

/// From the output y: y * (g - sum(g * y)).
pub fn backward(y: &[f64], grad: &[f64], d: usize) -> Vec<f64> {
    let mut gx = vec![0.0; y.len()];
    for ((yr, gr), out) in y.chunks(d).zip(grad.chunks(d)).zip(gx.chunks_mut(d)) {
        let dot: f64 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for j in 0..d {
            out[j] = yr[j] * (gr[j] - dot);
        }
    }
    gx
}
