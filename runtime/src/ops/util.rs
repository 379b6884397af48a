//! Fill and column sums: small kernels other ops' backward passes are built from.

use edge4d_shaders::{reduce::COLSUM, util::FILL};

use super::{f32_input, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Result, Step, Tensor};

/// Sets every element of `t` to `value` (in place, when the step runs).
pub fn fill(s: &mut Step<'_>, t: &Tensor, value: f32) -> Result<()> {
    super::nonempty("fill", "tensor", t)?;
    super::finite("fill", "value", value)?;
    s.dispatch(
        &FILL,
        "fill",
        &[write(0, t)],
        1,
        &crate::params::util::Fill {
            n: u(t.numel()),
            value,
            ..Default::default()
        },
        groups_1d(t.numel()),
    );
    Ok(())
}

/// A new tensor of zeros, written by the step.
pub fn zeros(s: &mut Step<'_>, shape: &[usize]) -> Result<Tensor> {
    let t = s.alloc(shape, DType::F32);
    fill(s, &t, 0.0)?;
    Ok(t)
}

/// Rows summed per column of `x` viewed as (rows, cols): returns (cols,).
/// Deterministic: fixed chunks of rows, then the chunks in order.
pub fn colsum(s: &mut Step<'_>, x: &Tensor, rows: usize, cols: usize) -> Result<Tensor> {
    f32_input("colsum", "x", x)?;
    if rows * cols != x.numel() {
        return Err(crate::Error::Shape {
            op: "colsum",
            detail: format!("{:?} is not {rows} x {cols}", x.shape()),
        });
    }
    const CHUNK_ROWS: usize = 64;
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let partials = s.alloc(&[chunks, cols], DType::F32);
    let out = s.alloc(&[cols], DType::F32);
    let params = crate::params::reduce::Colsum {
        rows: u(rows),
        cols: u(cols),
        chunk_rows: u(CHUNK_ROWS),
        chunks: u(chunks),
    };
    s.dispatch(
        &COLSUM,
        "partial",
        &[read(0, x), write(1, &partials)],
        3,
        &params,
        groups_1d(cols * chunks),
    );
    s.dispatch(
        &COLSUM,
        "finish",
        &[write(1, &partials), write(2, &out)],
        3,
        &params,
        groups_1d(cols),
    );
    Ok(out)
}
