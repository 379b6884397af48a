//! The transformer of P4Transformer (lucidrains vit-pytorch, old version; reference-spec
//! §4.1): `depth` layers of Residual(PreNorm(Attention)) and Residual(PreNorm(FeedForward)),
//! no final norm. Attention's `to_out` is Linear → GELU (GELU after the projection) and
//! is absent when heads == 1 and dim_head == dim. Dropout is 0.
//!
//! Memory: attention keeps its probabilities for the backward pass, B·heads·T² floats
//! per layer (T tokens), plus one transient B·heads·T² score tensor; everything else is
//! O(B·T·dim).

use super::linear::{linear, linear_backward};
use super::params::{accumulate, linear_spec, norm_spec, Grads, ParamStore, Spec};
use crate::ops::activation::{gelu, gelu_backward};
use crate::ops::elementwise::{add, scale};
use crate::ops::layernorm::{layernorm, layernorm_backward, LayerNormSaved};
use crate::ops::layout::{concat, permute, permute_backward, slice};
use crate::ops::matmul::{matmul, matmul_backward};
use crate::ops::softmax::{softmax, softmax_backward};
use crate::{Result, Step, Tensor};

const LN_EPS: f32 = 1e-5;

/// Transformer hyper-parameters (the constructor's argument names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerConfig {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub mlp_dim: usize,
}

/// A transformer whose parameters live under `prefix` (e.g. "transformer").
#[derive(Debug, Clone)]
pub struct Transformer {
    pub prefix: String,
    pub cfg: TransformerConfig,
}

struct LayerSaved {
    x: Tensor,
    h: Tensor,
    ln1: LayerNormSaved,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn: Tensor,
    merged: Tensor,
    proj: Option<Tensor>,
    x1: Tensor,
    h2: Tensor,
    ln2: LayerNormSaved,
    f1: Tensor,
    f1g: Tensor,
}

/// What the backward pass needs from the forward pass.
pub struct TransformerSaved {
    layers: Vec<LayerSaved>,
}

impl Transformer {
    pub fn new(prefix: &str, cfg: TransformerConfig) -> Self {
        Self {
            prefix: prefix.to_string(),
            cfg,
        }
    }

    fn projects_out(&self) -> bool {
        !(self.cfg.heads == 1 && self.cfg.dim_head == self.cfg.dim)
    }

    fn name(&self, l: usize, rest: &str) -> String {
        format!("{}.layers.{l}.{rest}", self.prefix)
    }

    /// Appends this transformer's parameters to `spec`.
    pub fn spec(&self, spec: &mut Spec) {
        let c = self.cfg;
        let inner = c.heads * c.dim_head;
        for l in 0..c.depth {
            norm_spec(spec, &self.name(l, "0.fn.norm"), c.dim);
            linear_spec(
                spec,
                &self.name(l, "0.fn.fn.to_qkv"),
                3 * inner,
                &[c.dim],
                false,
            );
            if self.projects_out() {
                linear_spec(
                    spec,
                    &self.name(l, "0.fn.fn.to_out.0"),
                    c.dim,
                    &[inner],
                    true,
                );
            }
            norm_spec(spec, &self.name(l, "1.fn.norm"), c.dim);
            linear_spec(
                spec,
                &self.name(l, "1.fn.fn.net.0"),
                c.mlp_dim,
                &[c.dim],
                true,
            );
            linear_spec(
                spec,
                &self.name(l, "1.fn.fn.net.3"),
                c.dim,
                &[c.mlp_dim],
                true,
            );
        }
    }

    /// x (B, T, dim) → (B, T, dim).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, TransformerSaved)> {
        let c = self.cfg;
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (h_n, dh) = (c.heads, c.dim_head);
        let mut layers = Vec::with_capacity(c.depth);
        let mut x = x.clone();
        for l in 0..c.depth {
            let n = |r: &str| self.name(l, r);
            let (h, ln1) = layernorm(
                s,
                &x,
                p.get(&n("0.fn.norm.weight"))?,
                p.get(&n("0.fn.norm.bias"))?,
                LN_EPS,
            )?;
            let qkv = linear(s, &h, p.get(&n("0.fn.fn.to_qkv.weight"))?, None)?;
            // (B, T, 3, H, dh) → (3, B, H, T, dh): head h reads channels [h·dh, (h+1)·dh).
            let qkv = permute(s, &qkv.reshape(&[b, t, 3, h_n, dh])?, &[2, 0, 3, 1, 4])?;
            let part = |s: &mut Step<'_>, i: usize| -> Result<Tensor> {
                slice(s, &qkv, 0, i, 1)?.reshape(&[b * h_n, t, dh])
            };
            let (q, k, v) = (part(s, 0)?, part(s, 1)?, part(s, 2)?);
            let scores = matmul(s, &q, &k, None, false, true)?;
            let scaled = scale(s, &scores, (dh as f32).powf(-0.5))?;
            let attn = softmax(s, &scaled)?;
            let o = matmul(s, &attn, &v, None, false, false)?;
            let merged = permute(s, &o.reshape(&[b, h_n, t, dh])?, &[0, 2, 1, 3])?.reshape(&[
                b,
                t,
                h_n * dh,
            ])?;
            let (att_out, proj) = if self.projects_out() {
                let pr = linear(
                    s,
                    &merged,
                    &p.matrix(&n("0.fn.fn.to_out.0.weight"))?,
                    Some(p.get(&n("0.fn.fn.to_out.0.bias"))?),
                )?;
                (gelu(s, &pr)?, Some(pr))
            } else {
                (merged.clone(), None)
            };
            let x1 = add(s, &x, &att_out)?;
            let (h2, ln2) = layernorm(
                s,
                &x1,
                p.get(&n("1.fn.norm.weight"))?,
                p.get(&n("1.fn.norm.bias"))?,
                LN_EPS,
            )?;
            let f1 = linear(
                s,
                &h2,
                p.get(&n("1.fn.fn.net.0.weight"))?,
                Some(p.get(&n("1.fn.fn.net.0.bias"))?),
            )?;
            let f1g = gelu(s, &f1)?;
            let f2 = linear(
                s,
                &f1g,
                p.get(&n("1.fn.fn.net.3.weight"))?,
                Some(p.get(&n("1.fn.fn.net.3.bias"))?),
            )?;
            let x2 = add(s, &x1, &f2)?;
            layers.push(LayerSaved {
                x,
                h,
                ln1,
                q,
                k,
                v,
                attn,
                merged,
                proj,
                x1,
                h2,
                ln2,
                f1,
                f1g,
            });
            x = x2;
        }
        Ok((x, TransformerSaved { layers }))
    }

    /// Gradient w.r.t. the input; parameter gradients are accumulated into `grads`.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &TransformerSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let c = self.cfg;
        let (h_n, dh) = (c.heads, c.dim_head);
        let mut g = grad.clone();
        for (l, sv) in saved.layers.iter().enumerate().rev() {
            let n = |r: &str| self.name(l, r);
            let (b, t) = (sv.x.shape()[0], sv.x.shape()[1]);
            // Feed-forward branch; the residual passes g through unchanged.
            let (g_f1g, gw, gb) =
                linear_backward(s, &sv.f1g, p.get(&n("1.fn.fn.net.3.weight"))?, &g, true)?;
            accumulate(s, grads, &n("1.fn.fn.net.3.weight"), gw)?;
            accumulate(s, grads, &n("1.fn.fn.net.3.bias"), gb.unwrap())?;
            let g_f1 = gelu_backward(s, &sv.f1, &g_f1g)?;
            let (g_h2, gw, gb) =
                linear_backward(s, &sv.h2, p.get(&n("1.fn.fn.net.0.weight"))?, &g_f1, true)?;
            accumulate(s, grads, &n("1.fn.fn.net.0.weight"), gw)?;
            accumulate(s, grads, &n("1.fn.fn.net.0.bias"), gb.unwrap())?;
            let (g_x1, gg, gbeta) =
                layernorm_backward(s, &sv.x1, p.get(&n("1.fn.norm.weight"))?, &sv.ln2, &g_h2)?;
            accumulate(s, grads, &n("1.fn.norm.weight"), gg)?;
            accumulate(s, grads, &n("1.fn.norm.bias"), gbeta)?;
            let g_x1 = add(s, &g, &g_x1)?;
            // Attention branch.
            let g_merged = if let Some(proj) = &sv.proj {
                let g_proj = gelu_backward(s, proj, &g_x1)?;
                let (gm, gw, gb) = linear_backward(
                    s,
                    &sv.merged,
                    &p.matrix(&n("0.fn.fn.to_out.0.weight"))?,
                    &g_proj,
                    true,
                )?;
                accumulate(s, grads, &n("0.fn.fn.to_out.0.weight"), gw)?;
                accumulate(s, grads, &n("0.fn.fn.to_out.0.bias"), gb.unwrap())?;
                gm
            } else {
                g_x1.clone()
            };
            let g_o = permute_backward(s, &g_merged.reshape(&[b, t, h_n, dh])?, &[0, 2, 1, 3])?
                .reshape(&[b * h_n, t, dh])?;
            let gv = matmul_backward(s, &sv.attn, &sv.v, &g_o, false, false, false)?;
            let g_scaled = softmax_backward(s, &sv.attn, &gv.a)?;
            let g_scores = scale(s, &g_scaled, (dh as f32).powf(-0.5))?;
            let gqk = matmul_backward(s, &sv.q, &sv.k, &g_scores, false, true, false)?;
            let shape5 = [1, b, h_n, t, dh];
            let g_qkv = concat(
                s,
                &[
                    &gqk.a.reshape(&shape5)?,
                    &gqk.b.reshape(&shape5)?,
                    &gv.b.reshape(&shape5)?,
                ],
                0,
            )?;
            let g_qkv =
                permute_backward(s, &g_qkv, &[2, 0, 3, 1, 4])?.reshape(&[b, t, 3 * h_n * dh])?;
            let (g_h, gw, _) =
                linear_backward(s, &sv.h, p.get(&n("0.fn.fn.to_qkv.weight"))?, &g_qkv, false)?;
            accumulate(s, grads, &n("0.fn.fn.to_qkv.weight"), gw)?;
            let (g_x, gg, gbeta) =
                layernorm_backward(s, &sv.x, p.get(&n("0.fn.norm.weight"))?, &sv.ln1, &g_h)?;
            accumulate(s, grads, &n("0.fn.norm.weight"), gg)?;
            accumulate(s, grads, &n("0.fn.norm.bias"), gbeta)?;
            g = add(s, &g_x1, &g_x)?;
        }
        Ok(g)
    }
}
