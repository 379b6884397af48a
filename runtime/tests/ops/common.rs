use std::sync::OnceLock;

use edge4d_runtime::{Device, Tensor};

/// One device per test process, chosen by EDGE4D_BACKEND.
pub fn dev() -> &'static Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| {
        let d = Device::from_env().unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}"));
        eprintln!("edge4d tests on {}", d.adapter());
        d
    })
}

/// Deterministic SplitMix64 stream for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-1.0, 1.0)).collect()
    }

    /// Values bounded away from zero (for kinks such as ReLU's).
    pub fn vec_away_from_zero(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v = self.uniform(0.05, 1.0);
                if self.next_u64() & 1 == 0 {
                    v
                } else {
                    -v
                }
            })
            .collect()
    }
}

pub fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub fn up(x: &[f32], shape: &[usize]) -> Tensor {
    dev().upload(x, shape).unwrap()
}

pub fn down(t: &Tensor) -> Vec<f32> {
    dev().read(t).unwrap()
}

pub fn bits(t: &Tensor) -> Vec<u32> {
    down(t).iter().map(|v| v.to_bits()).collect()
}

/// |gpu - reference| <= atol + rtol * |reference| everywhere; names the worst element.
#[track_caller]
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f64], atol: f64, rtol: f64) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    let mut worst = (0usize, 0.0f64);
    for (i, (g, r)) in gpu.iter().zip(reference).enumerate() {
        let excess = (*g as f64 - r).abs() - (atol + rtol * r.abs());
        if excess > worst.1 || !g.is_finite() {
            worst = (i, if g.is_finite() { excess } else { f64::INFINITY });
        }
    }
    assert!(
        worst.1 <= 0.0,
        "{what}: element {} is {} on the GPU, {} in the reference (atol {atol}, rtol {rtol})",
        worst.0,
        gpu[worst.0],
        reference[worst.0]
    );
}

/// Checks `analytic` = d loss / d x by central differences of `loss` in f64.
#[track_caller]
pub fn grad_check(what: &str, x: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    let h = 1e-6;
    let mut xp = x.to_vec();
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let lp = loss(&xp);
        xp[i] = x[i] - h;
        let lm = loss(&xp);
        xp[i] = x[i];
        let numeric = (lp - lm) / (2.0 * h);
        let tol = 1e-6 * (1.0 + numeric.abs().max(analytic[i].abs()));
        assert!(
            (numeric - analytic[i]).abs() <= tol,
            "{what}: d/dx[{i}] analytic {} vs numeric {numeric}",
            analytic[i]
        );
    }
}

/// sum(y * r): the scalar whose gradient w.r.t. y is r.
pub fn dot(y: &[f64], r: &[f64]) -> f64 {
    y.iter().zip(r).map(|(a, b)| a * b).sum()
}

/// A golden fixture file from `tests/fixtures/`.
pub fn fixture(rel: &str) -> edge4d_runtime::TensorFile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel);
    edge4d_runtime::TensorFile::open(&path).unwrap_or_else(|e| panic!("fixture: {e}"))
}

/// Case names `<prefix>.<case>.<field>` present in a fixture file.
pub fn cases(file: &edge4d_runtime::TensorFile, prefix: &str) -> Vec<String> {
    let mut c: Vec<String> = file
        .names()
        .iter()
        .filter_map(|n| n.strip_prefix(&format!("{prefix}.")))
        .filter_map(|rest| rest.split('.').next().map(str::to_string))
        .collect();
    c.dedup();
    // A loop over no cases would pass without checking anything.
    assert!(!c.is_empty(), "the fixture holds no `{prefix}.*` cases");
    c
}
