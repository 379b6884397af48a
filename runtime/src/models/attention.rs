//! Scaled dot-product attention over heads folded into the batch: q (BH, Tq, dh),
//! k and v (BH, Tk, dh). Self-attention (transformer blocks) and cross-attention
//! (concept queries reading point tokens) share it.
//!
//! Two paths with the same results (to rounding): the unfused ops (two products on the
//! tuned matmul rungs and a softmax, keeping the (BH, Tq, Tk) probabilities for the
//! backward) and the fused kernel (`ops::attention`: (BH, Tq) log-sum-exps kept, the
//! probabilities recomputed in the backward). The fused one runs when the scores would
//! take more than `FUSE_ABOVE_BYTES`, where memory is what limits a step (the paper's
//! MSR batch cannot run otherwise: its scores are larger than one binding); below, the
//! unfused ops are faster, on lavapipe by 3.8× forward and 6.4× forward + backward at
//! (8, 768, 768). Heads wider than `MAX_HEAD_DIM` are always unfused.

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

/// Score tensors larger than this make `attention` take the fused kernel (half of
/// WebGPU's default 128 MiB binding).
pub const FUSE_ABOVE_BYTES: usize = 64 << 20;

/// Whether `attention` fuses for q (BH, Tq, dh) and k (BH, Tk, dh).
pub fn fuses(q: &Tensor, k: &Tensor) -> bool {
    let (q_rows, k_rows) = (
        q.numel() / head_dim(q).max(1),
        *k.shape().get(1).unwrap_or(&1),
    );
    let score_bytes = q_rows.saturating_mul(k_rows).saturating_mul(4);
    head_dim(q) <= MAX_HEAD_DIM && score_bytes > FUSE_ABOVE_BYTES
}

/// softmax(q kᵀ · dh^-½) v → (BH, Tq, dh), fused when the scores would be large.
pub fn attention(
    s: &mut Step<'_>,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, AttentionSaved)> {
    attention_with(s, q, k, v, fuses(q, k))
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
        // Each transient is dropped once consumed, so the step can hand its buffer on.
        let scores = matmul(s, q, k, None, false, true)?;
        let scaled = scale(s, &scores, inv_sqrt(dh))?;
        drop(scores);
        let attn = softmax(s, &scaled)?;
        drop(scaled);
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
            let g_v = gv.b;
            drop(gv.a);
            let g_scores = scale(s, &g_scaled, inv_sqrt(head_dim(q)))?;
            drop(g_scaled);
            let gqk = matmul_backward(s, q, k, &g_scores, false, true, false)?;
            Ok((gqk.a, gqk.b, g_v))
        }
    }
}
