// Prepended to the kernels that apply GELU (see shaders/src/lib.rs: preludes): the
// exact erf form (PyTorch's default, approximate='none'):
//   gelu(x) = 0.5 x (1 + erf(x / sqrt(2)))
//   gelu'(x) = 0.5 (1 + erf(x / sqrt(2))) + x exp(-x^2 / 2) / sqrt(2 pi)
// WGSL has no erf; erf_f32 is the rational approximation used by Eigen/XLA for
// float32 (max abs error ~1e-7 on [-4, 4], saturating beyond).

fn erf_f32(v: f32) -> f32 {
    let x = clamp(v, -4.0, 4.0);
    let x2 = x * x;
    var num = -2.72614225801306e-10;
    num = num * x2 + 2.77068142495902e-08;
    num = num * x2 - 2.10102402082508e-06;
    num = num * x2 - 5.69250639462346e-05;
    num = num * x2 - 7.34990630326855e-04;
    num = num * x2 - 2.95459980854025e-03;
    num = num * x2 - 1.60960333262415e-02;
    var den = -1.45660718464996e-05;
    den = den * x2 - 2.13374055278905e-04;
    den = den * x2 - 1.68282697438203e-03;
    den = den * x2 - 7.37332916720468e-03;
    den = den * x2 - 1.42647390514189e-02;
    return x * num / den;
}

const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

fn gelu(v: f32) -> f32 {
    return 0.5 * v * (1.0 + erf_f32(v * INV_SQRT2));
}

// d gelu / dx at v.
fn gelu_grad(v: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf_f32(v * INV_SQRT2));
    let pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
    return cdf + v * pdf;
}
