//! ReLU and GELU (erf form): forward and backward.

use edge4d_shaders::{activation::GELU, activation::RELU, Shader};

use super::{f32_input, same_shape, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Result, Step, Tensor};

fn unary(s: &mut Step<'_>, shader: &Shader, op: &'static str, x: &Tensor) -> Result<Tensor> {
    f32_input(op, "x", x)?;
    let out = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        shader,
        "forward",
        &[read(0, x), write(2, &out)],
        3,
        &crate::params::activation::Elementwise {
            n: u(x.numel()),
            ..Default::default()
        },
        groups_1d(x.numel()),
    );
    Ok(out)
}

fn unary_backward(
    s: &mut Step<'_>,
    shader: &Shader,
    op: &'static str,
    x: &Tensor,
    grad: &Tensor,
) -> Result<Tensor> {
    f32_input(op, "x", x)?;
    f32_input(op, "grad", grad)?;
    same_shape(op, "grad vs x", grad, x)?;
    let out = s.alloc(x.shape(), DType::F32);
    s.dispatch(
        shader,
        "backward",
        &[read(0, x), read(1, grad), write(2, &out)],
        3,
        &crate::params::activation::Elementwise {
            n: u(x.numel()),
            ..Default::default()
        },
        groups_1d(x.numel()),
    );
    Ok(out)
}

/// max(x, 0).
pub fn relu(s: &mut Step<'_>, x: &Tensor) -> Result<Tensor> {
    unary(s, &RELU, "relu", x)
}

/// Gradient of ReLU given its input x (0 at x <= 0, as PyTorch).
pub fn relu_backward(s: &mut Step<'_>, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    unary_backward(s, &RELU, "relu_backward", x, grad)
}

/// 0.5 x (1 + erf(x / sqrt 2)), PyTorch's default GELU.
pub fn gelu(s: &mut Step<'_>, x: &Tensor) -> Result<Tensor> {
    unary(s, &GELU, "gelu", x)
}

/// Gradient of GELU given its input x.
pub fn gelu_backward(s: &mut Step<'_>, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    unary_backward(s, &GELU, "gelu_backward", x, grad)
}
