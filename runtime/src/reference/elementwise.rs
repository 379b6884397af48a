//! a + b, a * b with b broadcast over a's leading axes (b[i % b.len()]), alpha * x.

pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .enumerate()
        .map(|(i, x)| x + b[i % b.len()])
        .collect()
}

/// (da, db): db sums over the broadcast copies.
pub fn add_backward(grad: &[f64], b_len: usize) -> (Vec<f64>, Vec<f64>) {
    let mut gb = vec![0.0; b_len];
    for (i, g) in grad.iter().enumerate() {
        gb[i % b_len] += g;
    }
    (grad.to_vec(), gb)
}

pub fn mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .enumerate()
        .map(|(i, x)| x * b[i % b.len()])
        .collect()
}

pub fn mul_backward(a: &[f64], b: &[f64], grad: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let ga = grad
        .iter()
        .enumerate()
        .map(|(i, g)| g * b[i % b.len()])
        .collect();
    let mut gb = vec![0.0; b.len()];
    for (i, g) in grad.iter().enumerate() {
        gb[i % b.len()] += g * a[i];
    }
    (ga, gb)
}

pub fn scale(x: &[f64], alpha: f64) -> Vec<f64> {
    x.iter().map(|v| alpha * v).collect()
}
