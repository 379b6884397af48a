//! Dropout's seeded mask, bit for bit as the kernel computes it.

/// PCG-RXS-M-XS 32-bit hash.
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// Whether element i is kept for `seed` and drop probability p.
pub fn keep(i: u32, seed: u32, p: f32) -> bool {
    pcg_hash(i ^ pcg_hash(seed)) < crate::ops::dropout::keep_threshold(p)
}

/// Forward (x = input) and backward (x = gradient) are the same masking.
pub fn apply(x: &[f64], p: f32, seed: u32) -> Vec<f64> {
    let inv_keep = 1.0 / (1.0 - p as f64);
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            if keep(i as u32, seed, p) {
                v * inv_keep
            } else {
                0.0
            }
        })
        .collect()
}
