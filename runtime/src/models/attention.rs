//! Scaled dot-product attention over heads folded into the batch: q (BH, Tq, dh),
//! k and v (BH, Tk, dh). Self-attention (transformer blocks) and cross-attention
//! (concept queries reading point tokens) share it.

use crate::ops::elementwise::scale;
use crate::ops::matmul::{matmul, matmul_backward};
use crate::ops::softmax::{softmax, softmax_backward};
use crate::{Result, Step, Tensor};

/// What the backward pass needs: the inputs and the attention probabilities.
pub struct AttentionSaved {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn: Tensor,
}

fn inv_sqrt(dh: usize) -> f32 {
    (dh as f32).powf(-0.5)
}

/// softmax(q kᵀ · dh^-½) v → (BH, Tq, dh).
pub fn attention(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, AttentionSaved)> {
    let dh = *q.shape().last().unwrap_or(&1);
    let scores = matmul(s, q, k, None, false, true)?;
    let scaled = scale(s, &scores, inv_sqrt(dh))?;
    let attn = softmax(s, &scaled)?;
    let o = matmul(s, &attn, v, None, false, false)?;
    Ok((
        o,
        AttentionSaved {
            q: q.clone(),
            k: k.clone(),
            v: v.clone(),
            attn,
        },
    ))
}

/// (dq, dk, dv) of `attention` given the output gradient.
pub fn attention_backward(
    s: &mut Step<'_>,
    saved: &AttentionSaved,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let dh = *saved.q.shape().last().unwrap_or(&1);
    let gv = matmul_backward(s, &saved.attn, &saved.v, grad, false, false, false)?;
    let g_scaled = softmax_backward(s, &saved.attn, &gv.a)?;
    let g_scores = scale(s, &g_scaled, inv_sqrt(dh))?;
    let gqk = matmul_backward(s, &saved.q, &saved.k, &g_scores, false, true, false)?;
    Ok((gqk.a, gqk.b, gv.b))
}
