//! conv_d fused with the max over neighbours (the MSR tube embedding's inner step), so
//! the per-neighbour activations are never stored. See `shaders/wgsl/p4dconv/conv_max.wgsl`.

use edge4d_shaders::p4dconv::CONV_MAX;

use super::{f32_input, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

/// disp (rows·k, 4), w (C, 4) → (pooled (rows, C), argmax over k (rows, C)).
pub fn conv_max(s: &mut Step<'_>, disp: &Tensor, w: &Tensor, k: usize) -> Result<(Tensor, Tensor)> {
    f32_input("conv_max", "disp", disp)?;
    f32_input("conv_max", "w", w)?;
    if k == 0 || disp.numel() % (4 * k) != 0 || w.numel() % 4 != 0 {
        return Err(Error::Shape {
            op: "conv_max",
            detail: format!(
                "disp {:?} is not (rows·{k}, 4) or w {:?} is not (C, 4)",
                disp.shape(),
                w.shape()
            ),
        });
    }
    let (rows, c) = (disp.numel() / (4 * k), w.numel() / 4);
    let y = s.alloc(&[rows, c], DType::F32);
    let arg = s.alloc(&[rows, c], DType::U32);
    s.dispatch(
        &CONV_MAX,
        "forward",
        &[read(0, disp), read(1, w), write(2, &y), write(3, &arg)],
        6,
        &crate::params::p4dconv::ConvMax {
            rows: u(rows),
            k: u(k),
            c: u(c),
            ..Default::default()
        },
        groups_1d(rows * c),
    );
    Ok((y, arg))
}

/// (d disp (rows·k, 4), d w (C, 4)) of `conv_max` given g (rows, C).
pub fn conv_max_backward(
    s: &mut Step<'_>,
    disp: &Tensor,
    w: &Tensor,
    arg: &Tensor,
    grad: &Tensor,
    k: usize,
) -> Result<(Tensor, Tensor)> {
    f32_input("conv_max_backward", "grad", grad)?;
    let (rows, c) = (disp.numel() / (4 * k.max(1)), w.numel() / 4);
    if grad.numel() != rows * c || arg.numel() != rows * c {
        return Err(Error::Shape {
            op: "conv_max_backward",
            detail: format!(
                "grad {:?} / argmax {:?} should hold {rows} x {c}",
                grad.shape(),
                arg.shape()
            ),
        });
    }
    let gw = s.alloc(&[c, 4], DType::F32);
    let gd = s.alloc(disp.shape(), DType::F32);
    let params = crate::params::p4dconv::ConvMax {
        rows: u(rows),
        k: u(k),
        c: u(c),
        ..Default::default()
    };
    s.dispatch(
        &CONV_MAX,
        "grad_weight",
        &[read(0, disp), write(2, &gw), read(4, grad), read(5, arg)],
        6,
        &params,
        groups_1d(c * 4),
    );
    s.dispatch(
        &CONV_MAX,
        "grad_disp",
        &[read(1, w), write(2, &gd), read(4, grad), read(5, arg)],
        6,
        &params,
        groups_1d(rows * k),
    );
    Ok((gd, gw))
}
