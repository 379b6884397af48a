//! Fused scaled dot-product attention, flash-style: softmax(q kᵀ · dh^-½) v and its
//! backward without the (BH, Tq, Tk) score matrix. The forward keeps only the output
//! and each query row's log-sum-exp; the backward recomputes the probabilities from
//! them. See `shaders/wgsl/attention/flash.wgsl`; `crate::reference::attention` is the
//! specification.

use edge4d_shaders::attention::FLASH;

use super::{f32_input, u};
use crate::params::attention::Flash;
use crate::step::{fold_groups, groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

/// The widest head the kernels take (four output lanes per thread of 64).
pub const MAX_HEAD_DIM: usize = 256;

/// Query rows per workgroup of `forward` and `grad_q`, key rows per one of `grad_kv`
/// (`RQ`, `RK` in flash.wgsl).
const QUERY_ROWS: usize = 8;
const KEY_ROWS: usize = 4;

/// (BH, T, dh) of a rank-3 tensor.
fn dims(op: &'static str, what: &'static str, t: &Tensor) -> Result<[usize; 3]> {
    f32_input(op, what, t)?;
    match *t.shape() {
        [bh, n, dh] => Ok([bh, n, dh]),
        _ => Err(Error::Shape {
            op,
            detail: format!(
                "{what} {:?} is not (batch·heads, tokens, head dim)",
                t.shape()
            ),
        }),
    }
}

/// Checks q (BH, Tq, dh), k and v (BH, Tk, dh); returns the uniform.
fn geometry(op: &'static str, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Flash> {
    let [bh, tq, dh] = dims(op, "q", q)?;
    let kd = dims(op, "k", k)?;
    let vd = dims(op, "v", v)?;
    if kd != vd || kd[0] != bh || kd[2] != dh {
        return Err(Error::Shape {
            op,
            detail: format!(
                "q {:?}, k {:?} and v {:?} must be (BH, Tq, dh), (BH, Tk, dh), (BH, Tk, dh)",
                q.shape(),
                k.shape(),
                v.shape()
            ),
        });
    }
    if dh > MAX_HEAD_DIM {
        return Err(Error::InvalidArgument {
            op,
            detail: format!("head dim {dh} is above the fused kernel's {MAX_HEAD_DIM}"),
        });
    }
    Ok(Flash {
        bh: u(bh),
        tq: u(tq),
        tk: u(kd[1]),
        dh: u(dh),
        scale: (dh as f32).powf(-0.5),
        ..Default::default()
    })
}

/// softmax(q kᵀ · dh^-½) v → (o (BH, Tq, dh), log-sum-exp of each query row's scaled
/// scores (BH, Tq)); the backward takes both.
pub fn flash_attention(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let p = geometry("flash_attention", q, k, v)?;
    let (bh, tq) = (p.bh as usize, p.tq as usize);
    let o = s.alloc(q.shape(), DType::F32);
    let lse = s.alloc(&[bh, tq], DType::F32);
    s.dispatch(
        &FLASH,
        "forward",
        &[
            read(0, q),
            read(1, k),
            read(2, v),
            write(7, &o),
            write(8, &lse),
        ],
        9,
        &p,
        fold_groups(bh * tq.div_ceil(QUERY_ROWS)),
    );
    Ok((o, lse))
}

/// (dq, dk, dv) of `flash_attention` from its inputs, its output `o`, its `lse` and the
/// output gradient.
pub fn flash_attention_backward(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    o: &Tensor,
    lse: &Tensor,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "flash_attention_backward";
    let p = geometry(op, q, k, v)?;
    let (bh, tq, tk) = (p.bh as usize, p.tq as usize, p.tk as usize);
    for (what, t, want) in [
        ("o", o, q.shape().to_vec()),
        ("grad", grad, q.shape().to_vec()),
        ("lse", lse, vec![bh, tq]),
    ] {
        f32_input(op, what, t)?;
        if t.shape() != want.as_slice() {
            return Err(Error::Shape {
                op,
                detail: format!("{what} {:?} should be {want:?}", t.shape()),
            });
        }
    }
    let delta = s.alloc(&[bh, tq], DType::F32);
    s.dispatch(
        &FLASH,
        "delta_rows",
        &[read(3, o), read(4, grad), write(7, &delta)],
        9,
        &p,
        groups_1d(bh * tq),
    );
    let dq = s.alloc(q.shape(), DType::F32);
    let dk = s.alloc(k.shape(), DType::F32);
    let dv = s.alloc(v.shape(), DType::F32);
    let inputs = || {
        [
            read(0, q),
            read(1, k),
            read(2, v),
            read(4, grad),
            read(5, lse),
            read(6, &delta),
        ]
    };
    let [a, b, c, d, e, f] = inputs();
    s.dispatch(
        &FLASH,
        "grad_q",
        &[a, b, c, d, e, f, write(7, &dq)],
        9,
        &p,
        fold_groups(bh * tq.div_ceil(QUERY_ROWS)),
    );
    let [a, b, c, d, e, f] = inputs();
    s.dispatch(
        &FLASH,
        "grad_kv",
        &[a, b, c, d, e, f, write(7, &dk), write(8, &dv)],
        9,
        &p,
        fold_groups(bh * tk.div_ceil(KEY_ROWS)),
    );
    Ok((dq, dk, dv))
}
