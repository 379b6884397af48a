//! Softmax cross-entropy with mean reduction over the batch.

pub fn forward(logits: &[f64], labels: &[u32], classes: usize) -> f64 {
    let batch = labels.len();
    let mut total = 0.0;
    for (row, &label) in logits.chunks(classes).zip(labels) {
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        total += lse - row[label as usize];
    }
    total / batch as f64
}

pub fn backward(logits: &[f64], labels: &[u32], classes: usize, grad_loss: f64) -> Vec<f64> {
    let batch = labels.len() as f64;
    let mut g = super::softmax::forward(logits, classes);
    for (b, &label) in labels.iter().enumerate() {
        g[b * classes + label as usize] -= 1.0;
    }
    g.iter().map(|v| grad_loss * v / batch).collect()
}
