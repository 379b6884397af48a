//! Scaled dot-product attention over heads folded into the batch: q (BH, Tq, dh),
//! k and v (BH, Tk, dh). Self-attention (transformer blocks) and cross-attention
//! (concept queries reading point tokens) share it.
//!
//! Heads up to `ops::attention::MAX_HEAD_DIM` wide take the fused kernel, which keeps
//! (BH, Tq) log-sum-exps for the backward instead of the (BH, Tq, Tk) probabilities.
//! Wider heads take the unfused path: two products and a softmax, with the
//! probabilities kept.

use crate::ops::attention::{flash_attention, flash_attention_backward, MAX_HEAD_DIM};
use crate::ops::elementwise::scale;
use crate::ops::matmul::{matmul, matmul_backward};
use crate::ops::softmax::{softmax, softmax_backward};
use crate::{Result, Step, Tensor};

/// What the backward pass needs: the inputs, and the output with its row log-sum-exps
/// (fused) or the attention probabilities (unfused).
pub struct AttentionSaved {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kept: Kept,
}

enum Kept {
    Fused { o: Tensor, lse: Tensor },
    Probabilities(Tensor),
}

fn inv_sqrt(dh: usize) -> f32 {
    (dh as f32).powf(-0.5)
}

fn head_dim(q: &Tensor) -> usize {
    *q.shape().last().unwrap_or(&1)
}

/// softmax(q kᵀ · dh^-½) v → (BH, Tq, dh), fused when the head fits the kernel.
pub fn attention(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, AttentionSaved)> {
    attention_with(s, q, k, v, head_dim(q) <= MAX_HEAD_DIM)
}

/// `attention` through the fused kernel or the unfused ops (benchmarks and tests
/// compare the two).
pub fn attention_with(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    fused: bool,
) -> Result<(Tensor, AttentionSaved)> {
    let dh = head_dim(q);
    let (o, kept) = if fused {
        let (o, lse) = flash_attention(s, q, k, v)?;
        (o.clone(), Kept::Fused { o, lse })
    } else {
        let scores = matmul(s, q, k, None, false, true)?;
        let scaled = scale(s, &scores, inv_sqrt(dh))?;
        let attn = softmax(s, &scaled)?;
        (
            matmul(s, &attn, v, None, false, false)?,
            Kept::Probabilities(attn),
        )
    };
    let saved = AttentionSaved {
        q: q.clone(),
        k: k.clone(),
        v: v.clone(),
        kept,
    };
    Ok((o, saved))
}

/// (dq, dk, dv) of `attention` given the output gradient.
pub fn attention_backward(
    s: &mut Step<'_>,
    saved: &AttentionSaved,
    grad: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let AttentionSaved { q, k, v, kept } = saved;
    match kept {
        Kept::Fused { o, lse } => flash_attention_backward(s, q, k, v, o, lse, grad),
        Kept::Probabilities(attn) => {
            let gv = matmul_backward(s, attn, v, grad, false, false, false)?;
            let g_scaled = softmax_backward(s, attn, &gv.a)?;
            let g_scores = scale(s, &g_scaled, inv_sqrt(head_dim(q)))?;
            let gqk = matmul_backward(s, q, k, &g_scores, false, true, false)?;
            Ok((gqk.a, gqk.b, gv.b))
        }
    }
}
