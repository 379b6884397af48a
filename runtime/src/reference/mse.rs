//! Mean squared error, mean reduction.

pub fn forward(pred: &[f64], target: &[f64]) -> f64 {
    let n = pred.len() as f64;
    pred.iter()
        .zip(target)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / n
}

pub fn backward(pred: &[f64], target: &[f64], grad_loss: f64) -> Vec<f64> {
    let n = pred.len() as f64;
    pred.iter()
        .zip(target)
        .map(|(p, t)| 2.0 * (p - t) / n * grad_loss)
        .collect()
}
