//! Pre-norm transformer blocks in two naming styles:
//! * `BlockStyle::Vit`, the transformer of P4Transformer (lucidrains vit-pytorch, old
//!   version; reference-spec §4.1): `layers.<l>.0.fn.{norm, fn.to_qkv, fn.to_out.0}`,
//!   `layers.<l>.1.fn.{norm, fn.net.0, fn.net.3}`; `to_out` is Linear → GELU and is
//!   absent when heads == 1 and dim_head == dim.
//! * `BlockStyle::Timm`, Point-MAE's blocks (§6): `<l>.{norm1, attn.qkv, attn.proj,
//!   norm2, mlp.fc1, mlp.fc2}`; `proj` is a plain Linear.
//!
//! Both: x += out(attn(LN(x))), x += fc2(GELU(fc1(LN(x)))), qkv without bias, no final
//! norm, dropout and drop-path 0.
//!
//! Memory: attention keeps its probabilities for the backward pass, B·heads·T² floats
//! per layer (T tokens), plus one transient B·heads·T² score tensor; everything else is
//! O(B·T·dim).

use super::attention::{attention, attention_backward, AttentionSaved};
use super::linear::{linear, linear_backward};
use super::params::{accumulate, linear_spec, norm_spec, Grads, ParamStore, Spec};
use crate::ops::activation::{gelu, gelu_backward};
use crate::ops::elementwise::add;
use crate::ops::layernorm::{layernorm, layernorm_backward, LayerNormSaved};
use crate::ops::layout::{concat, permute, permute_backward, slice};
use crate::{Result, Step, Tensor};

pub(crate) const LN_EPS: f32 = 1e-5;

/// Transformer hyper-parameters (the constructor's argument names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerConfig {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub mlp_dim: usize,
}

/// Which codebase's parameter names and attention output the blocks follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStyle {
    Vit,
    Timm,
}

/// The six parameterised parts of a block.
#[derive(Debug, Clone, Copy)]
enum Part {
    Norm1,
    Qkv,
    Out,
    Norm2,
    Fc1,
    Fc2,
}

/// A transformer whose parameters live under `prefix` (e.g. "transformer").
#[derive(Debug, Clone)]
pub struct Transformer {
    pub prefix: String,
    pub cfg: TransformerConfig,
    pub style: BlockStyle,
}

/// What one block's backward pass needs from its forward pass.
pub struct LayerSaved {
    x: Tensor,
    h: Tensor,
    ln1: LayerNormSaved,
    attn: AttentionSaved,
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
    /// P4Transformer's blocks under `prefix.layers.<l>`.
    pub fn new(prefix: &str, cfg: TransformerConfig) -> Self {
        Self::with_style(prefix, cfg, BlockStyle::Vit)
    }

    pub fn with_style(prefix: &str, cfg: TransformerConfig, style: BlockStyle) -> Self {
        Self {
            prefix: prefix.to_string(),
            cfg,
            style,
        }
    }

    fn projects_out(&self) -> bool {
        self.style == BlockStyle::Timm
            || !(self.cfg.heads == 1 && self.cfg.dim_head == self.cfg.dim)
    }

    fn name(&self, l: usize, part: Part, leaf: &str) -> String {
        let p = &self.prefix;
        let rest = match (self.style, part) {
            (BlockStyle::Vit, Part::Norm1) => "0.fn.norm",
            (BlockStyle::Vit, Part::Qkv) => "0.fn.fn.to_qkv",
            (BlockStyle::Vit, Part::Out) => "0.fn.fn.to_out.0",
            (BlockStyle::Vit, Part::Norm2) => "1.fn.norm",
            (BlockStyle::Vit, Part::Fc1) => "1.fn.fn.net.0",
            (BlockStyle::Vit, Part::Fc2) => "1.fn.fn.net.3",
            (BlockStyle::Timm, Part::Norm1) => "norm1",
            (BlockStyle::Timm, Part::Qkv) => "attn.qkv",
            (BlockStyle::Timm, Part::Out) => "attn.proj",
            (BlockStyle::Timm, Part::Norm2) => "norm2",
            (BlockStyle::Timm, Part::Fc1) => "mlp.fc1",
            (BlockStyle::Timm, Part::Fc2) => "mlp.fc2",
        };
        match self.style {
            BlockStyle::Vit => format!("{p}.layers.{l}.{rest}.{leaf}"),
            BlockStyle::Timm => format!("{p}.{l}.{rest}.{leaf}"),
        }
    }

    /// Appends this transformer's parameters to `spec`.
    pub fn spec(&self, spec: &mut Spec) {
        let c = self.cfg;
        let inner = c.heads * c.dim_head;
        let prefix = |l: usize, part: Part| {
            let w = self.name(l, part, "weight");
            w[..w.len() - ".weight".len()].to_string()
        };
        for l in 0..c.depth {
            norm_spec(spec, &prefix(l, Part::Norm1), c.dim);
            linear_spec(spec, &prefix(l, Part::Qkv), 3 * inner, &[c.dim], false);
            if self.projects_out() {
                linear_spec(spec, &prefix(l, Part::Out), c.dim, &[inner], true);
            }
            norm_spec(spec, &prefix(l, Part::Norm2), c.dim);
            linear_spec(spec, &prefix(l, Part::Fc1), c.mlp_dim, &[c.dim], true);
            linear_spec(spec, &prefix(l, Part::Fc2), c.dim, &[c.mlp_dim], true);
        }
    }

    /// x (B, T, dim) → (B, T, dim) through every block.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, TransformerSaved)> {
        let mut layers = Vec::with_capacity(self.cfg.depth);
        let mut x = x.clone();
        for l in 0..self.cfg.depth {
            let (y, saved) = self.layer_forward(s, p, l, &x)?;
            layers.push(saved);
            x = y;
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
        let mut g = grad.clone();
        for (l, sv) in saved.layers.iter().enumerate().rev() {
            g = self.layer_backward(s, p, l, sv, &g, grads)?;
        }
        Ok(g)
    }

    /// Block `l`: x (B, T, dim) → (B, T, dim).
    pub fn layer_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        l: usize,
        x: &Tensor,
    ) -> Result<(Tensor, LayerSaved)> {
        let c = self.cfg;
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (h_n, dh) = (c.heads, c.dim_head);
        let n = |part: Part, leaf: &str| self.name(l, part, leaf);
        let (h, ln1) = layernorm(
            s,
            x,
            p.get(&n(Part::Norm1, "weight"))?,
            p.get(&n(Part::Norm1, "bias"))?,
            LN_EPS,
        )?;
        let qkv = linear(s, &h, p.get(&n(Part::Qkv, "weight"))?, None)?;
        // (B, T, 3, H, dh) → (3, B, H, T, dh): head h reads channels [h·dh, (h+1)·dh).
        let qkv = permute(s, &qkv.reshape(&[b, t, 3, h_n, dh])?, &[2, 0, 3, 1, 4])?;
        let part = |s: &mut Step<'_>, i: usize| -> Result<Tensor> {
            slice(s, &qkv, 0, i, 1)?.reshape(&[b * h_n, t, dh])
        };
        let (q, k, v) = (part(s, 0)?, part(s, 1)?, part(s, 2)?);
        let (o, attn) = attention(s, &q, &k, &v)?;
        let merged = merge_heads(s, &o, b, h_n, t, dh)?;
        let (att_out, proj) = if self.projects_out() {
            let pr = linear(
                s,
                &merged,
                &p.matrix(&n(Part::Out, "weight"))?,
                Some(p.get(&n(Part::Out, "bias"))?),
            )?;
            match self.style {
                BlockStyle::Vit => (gelu(s, &pr)?, Some(pr)),
                BlockStyle::Timm => (pr, None),
            }
        } else {
            (merged.clone(), None)
        };
        let x1 = add(s, x, &att_out)?;
        let (h2, ln2) = layernorm(
            s,
            &x1,
            p.get(&n(Part::Norm2, "weight"))?,
            p.get(&n(Part::Norm2, "bias"))?,
            LN_EPS,
        )?;
        let f1 = linear(
            s,
            &h2,
            p.get(&n(Part::Fc1, "weight"))?,
            Some(p.get(&n(Part::Fc1, "bias"))?),
        )?;
        let f1g = gelu(s, &f1)?;
        let f2 = linear(
            s,
            &f1g,
            p.get(&n(Part::Fc2, "weight"))?,
            Some(p.get(&n(Part::Fc2, "bias"))?),
        )?;
        let x2 = add(s, &x1, &f2)?;
        Ok((
            x2,
            LayerSaved {
                x: x.clone(),
                h,
                ln1,
                attn,
                merged,
                proj,
                x1,
                h2,
                ln2,
                f1,
                f1g,
            },
        ))
    }

    /// Backward of block `l`: the gradient w.r.t. its input.
    pub fn layer_backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        l: usize,
        sv: &LayerSaved,
        g: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let c = self.cfg;
        let (h_n, dh) = (c.heads, c.dim_head);
        let n = |part: Part, leaf: &str| self.name(l, part, leaf);
        let (b, t) = (sv.x.shape()[0], sv.x.shape()[1]);
        // Feed-forward branch; the residual passes g through unchanged.
        let (g_f1g, gw, gb) =
            linear_backward(s, &sv.f1g, p.get(&n(Part::Fc2, "weight"))?, g, true)?;
        accumulate(s, grads, &n(Part::Fc2, "weight"), gw)?;
        accumulate(s, grads, &n(Part::Fc2, "bias"), gb.unwrap())?;
        let g_f1 = gelu_backward(s, &sv.f1, &g_f1g)?;
        let (g_h2, gw, gb) =
            linear_backward(s, &sv.h2, p.get(&n(Part::Fc1, "weight"))?, &g_f1, true)?;
        accumulate(s, grads, &n(Part::Fc1, "weight"), gw)?;
        accumulate(s, grads, &n(Part::Fc1, "bias"), gb.unwrap())?;
        let (g_x1, gg, gbeta) =
            layernorm_backward(s, &sv.x1, p.get(&n(Part::Norm2, "weight"))?, &sv.ln2, &g_h2)?;
        accumulate(s, grads, &n(Part::Norm2, "weight"), gg)?;
        accumulate(s, grads, &n(Part::Norm2, "bias"), gbeta)?;
        let g_x1 = add(s, g, &g_x1)?;
        // Attention branch.
        let g_merged = if self.projects_out() {
            let g_proj = match &sv.proj {
                Some(pre_gelu) => gelu_backward(s, pre_gelu, &g_x1)?,
                None => g_x1.clone(),
            };
            let (gm, gw, gb) = linear_backward(
                s,
                &sv.merged,
                &p.matrix(&n(Part::Out, "weight"))?,
                &g_proj,
                true,
            )?;
            accumulate(s, grads, &n(Part::Out, "weight"), gw)?;
            accumulate(s, grads, &n(Part::Out, "bias"), gb.unwrap())?;
            gm
        } else {
            g_x1.clone()
        };
        let g_o = split_heads_backward(s, &g_merged, b, h_n, t, dh)?;
        let (gq, gk, gv) = attention_backward(s, &sv.attn, &g_o)?;
        let shape5 = [1, b, h_n, t, dh];
        let g_qkv = concat(
            s,
            &[
                &gq.reshape(&shape5)?,
                &gk.reshape(&shape5)?,
                &gv.reshape(&shape5)?,
            ],
            0,
        )?;
        let g_qkv =
            permute_backward(s, &g_qkv, &[2, 0, 3, 1, 4])?.reshape(&[b, t, 3 * h_n * dh])?;
        let (g_h, gw, _) =
            linear_backward(s, &sv.h, p.get(&n(Part::Qkv, "weight"))?, &g_qkv, false)?;
        accumulate(s, grads, &n(Part::Qkv, "weight"), gw)?;
        let (g_x, gg, gbeta) =
            layernorm_backward(s, &sv.x, p.get(&n(Part::Norm1, "weight"))?, &sv.ln1, &g_h)?;
        accumulate(s, grads, &n(Part::Norm1, "weight"), gg)?;
        accumulate(s, grads, &n(Part::Norm1, "bias"), gbeta)?;
        add(s, &g_x1, &g_x)
    }
}

/// Attention output (BH, T, dh) → (B, T, H·dh), head-major channels.
pub(crate) fn merge_heads(
    s: &mut Step<'_>,
    o: &Tensor,
    b: usize,
    heads: usize,
    t: usize,
    dh: usize,
) -> Result<Tensor> {
    permute(s, &o.reshape(&[b, heads, t, dh])?, &[0, 2, 1, 3])?.reshape(&[b, t, heads * dh])
}

/// Gradient of `merge_heads`: (B, T, H·dh) → (BH, T, dh).
pub(crate) fn split_heads_backward(
    s: &mut Step<'_>,
    g: &Tensor,
    b: usize,
    heads: usize,
    t: usize,
    dh: usize,
) -> Result<Tensor> {
    permute_backward(s, &g.reshape(&[b, t, heads, dh])?, &[0, 2, 1, 3])?.reshape(&[
        b * heads,
        t,
        dh,
    ])
}
