//! Small synthetic datasets for demos and tests.

use crate::rng::SplitMix64;

/// The classic interleaved spirals: `classes` arms of `per_class` 2-D points each.
/// Returns (points (n, 2) row-major, labels (n)).
pub fn spirals(classes: usize, per_class: usize, noise: f32, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = SplitMix64::new(seed);
    let mut xy = Vec::with_capacity(classes * per_class * 2);
    let mut labels = Vec::with_capacity(classes * per_class);
    for c in 0..classes {
        for i in 0..per_class {
            let r = i as f32 / per_class as f32;
            let t = c as f32 * 2.0 * std::f32::consts::PI / classes as f32
                + r * 4.0
                + noise * rng.normal();
            xy.push(r * t.cos());
            xy.push(r * t.sin());
            labels.push(c as u32);
        }
    }
    (xy, labels)
}
