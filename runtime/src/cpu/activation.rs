//! Twins of `shaders/wgsl/activation/`: ReLU and exact-erf GELU, forward and backward.

use crate::params::activation;

use super::{par_chunks, Args, KernelFn, ELEMENTS};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("relu", "forward") => relu_forward,
        ("relu", "backward") => relu_backward,
        ("gelu", "forward") => gelu_forward,
        ("gelu", "backward") => gelu_backward,
        _ => return None,
    })
}

/// out[i] = f(x[i], grad_y[i]) over slots 0, 1 into 2.
fn map(a: &Args<'_>, f: impl Fn(f32, f32) -> f32 + Sync + Send) {
    let p: activation::Elementwise = a.params();
    let x = a.f32(0);
    let g = a.f32(1);
    let out = &mut a.f32_mut(2)[..p.n as usize];
    par_chunks(out, ELEMENTS, |start, o| {
        for (j, v) in o.iter_mut().enumerate() {
            let i = start + j;
            *v = f(x[i], g.get(i).copied().unwrap_or(0.0));
        }
    });
}

fn relu_forward(a: &Args<'_>) {
    map(a, |x, _| x.max(0.0))
}

fn relu_backward(a: &Args<'_>) {
    map(a, |x, g| if x > 0.0 { g } else { 0.0 })
}

/// The kernel's erf: Eigen/XLA's float32 rational approximation (the WGSL constants,
/// rounded to f32 as the shader compiler rounds them).
#[allow(clippy::excessive_precision)]
fn erf_f32(v: f32) -> f32 {
    let x = v.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut num: f32 = -2.72614225801306e-10;
    num = num * x2 + 2.77068142495902e-08;
    num = num * x2 - 2.10102402082508e-06;
    num = num * x2 - 5.69250639462346e-05;
    num = num * x2 - 7.34990630326855e-04;
    num = num * x2 - 2.95459980854025e-03;
    num = num * x2 - 1.60960333262415e-02;
    let mut den: f32 = -1.45660718464996e-05;
    den = den * x2 - 2.13374055278905e-04;
    den = den * x2 - 1.68282697438203e-03;
    den = den * x2 - 7.37332916720468e-03;
    den = den * x2 - 1.42647390514189e-02;
    x * num / den
}

const INV_SQRT2: f32 = std::f32::consts::FRAC_1_SQRT_2;
#[allow(clippy::excessive_precision)]
const INV_SQRT_2PI: f32 = 0.3989422804014327;

/// `gelu_math.wgsl`'s gelu.
pub(super) fn gelu(v: f32) -> f32 {
    0.5 * v * (1.0 + erf_f32(v * INV_SQRT2))
}

/// `gelu_math.wgsl`'s gelu_grad: d gelu / dx at v.
pub(super) fn gelu_grad(v: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf_f32(v * INV_SQRT2));
    let pdf = INV_SQRT_2PI * (-0.5 * v * v).exp();
    cdf + v * pdf
}

fn gelu_forward(a: &Args<'_>) {
    map(a, |v, _| gelu(v))
}

fn gelu_backward(a: &Args<'_>) {
    map(a, |v, g| g * gelu_grad(v))
}
