//! ReLU and exact-erf GELU.

pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v.max(0.0)).collect()
}

pub fn relu_backward(x: &[f64], grad: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(grad)
        .map(|(v, g)| if *v > 0.0 { *g } else { 0.0 })
        .collect()
}

/// erf by its Maclaurin series (|x| <= 3) or continued fraction for erfc (|x| > 3);
/// both accurate to ~1e-13, far beyond what f32 kernels are compared at.
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax <= 3.0 {
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -ax * ax / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free, fixed depth)
        let mut f = ax;
        for k in (1..60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / std::f64::consts::PI.sqrt() / f
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

pub fn gelu(x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|v| 0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2)))
        .collect()
}

pub fn gelu_backward(x: &[f64], grad: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(grad)
        .map(|(v, g)| {
            let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            g * (cdf + v * pdf)
        })
        .collect()
}
