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
//! Memory: a block keeps O(B·T·dim) for its backward, plus B·heads·T² attention
//! probabilities while those take at most 64 MiB; above, attention is fused
//! (`models::attention`) and keeps (B·heads, T) log-sum-exps instead.

use super::attention::{attention, attention_backward, AttentionSaved};
use super::layers::{Layer, LayerNorm, LayerNormLayerSaved, Linear, LinearSaved};
use super::params::{Grads, ParamStore, Spec};
use crate::ops::activation::gelu_backward;
use crate::ops::elementwise::add;
use crate::ops::layout::{concat, permute, permute_backward, slice};
use crate::ops::matmul::Epilogue;
use crate::{Result, Step, Tensor};

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

/// One pre-norm block: x += out(attn(LN(x))), x += fc2(GELU(fc1(LN(x)))).
#[derive(Debug, Clone)]
pub struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    /// The attention output projection; absent in a ViT block with one head of width dim.
    out: Option<Linear>,
    /// ViT's `to_out` is Linear → GELU; timm's `proj` is a plain Linear.
    out_gelu: bool,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    dim_head: usize,
}

/// A transformer whose parameters live under `prefix` (e.g. "transformer").
#[derive(Debug, Clone)]
pub struct Transformer {
    pub prefix: String,
    pub cfg: TransformerConfig,
    pub style: BlockStyle,
    blocks: Vec<Block>,
}

/// What one block's backward pass needs from its forward pass.
pub struct LayerSaved {
    shape: [usize; 2],
    ln1: LayerNormLayerSaved,
    qkv: LinearSaved,
    attn: AttentionSaved,
    out: Option<LinearSaved>,
    out_pre_gelu: Option<Tensor>,
    ln2: LayerNormLayerSaved,
    fc1: LinearSaved,
    f1: Tensor,
    fc2: LinearSaved,
}

/// What the backward pass needs from the forward pass.
pub struct TransformerSaved {
    layers: Vec<LayerSaved>,
}

impl Block {
    /// Block `l` of a transformer under `prefix`, named in `style`.
    fn new(prefix: &str, l: usize, cfg: TransformerConfig, style: BlockStyle) -> Self {
        let (dim, inner) = (cfg.dim, cfg.heads * cfg.dim_head);
        let n = |vit: &str, timm: &str| match style {
            BlockStyle::Vit => format!("{prefix}.layers.{l}.{vit}"),
            BlockStyle::Timm => format!("{prefix}.{l}.{timm}"),
        };
        let projects_out = style == BlockStyle::Timm || !(cfg.heads == 1 && cfg.dim_head == dim);
        Self {
            norm1: LayerNorm::new(&n("0.fn.norm", "norm1"), dim),
            qkv: Linear::new(&n("0.fn.fn.to_qkv", "attn.qkv"), 3 * inner, &[dim], false),
            out: projects_out
                .then(|| Linear::new(&n("0.fn.fn.to_out.0", "attn.proj"), dim, &[inner], true)),
            out_gelu: style == BlockStyle::Vit,
            norm2: LayerNorm::new(&n("1.fn.norm", "norm2"), dim),
            fc1: Linear::new(&n("1.fn.fn.net.0", "mlp.fc1"), cfg.mlp_dim, &[dim], true),
            fc2: Linear::new(&n("1.fn.fn.net.3", "mlp.fc2"), dim, &[cfg.mlp_dim], true),
            heads: cfg.heads,
            dim_head: cfg.dim_head,
        }
    }

    /// x (B, T, dim) → (B, T, dim).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, LayerSaved)> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (h_n, dh) = (self.heads, self.dim_head);
        let (h, ln1) = self.norm1.forward(s, p, x)?;
        let (qkv_rows, qkv_saved) = self.qkv.forward(s, p, &h)?;
        // (B, T, 3, H, dh) → (3, B, H, T, dh): head h reads channels [h·dh, (h+1)·dh).
        // Transients are dropped once consumed, so the step can hand their buffers on.
        let qkv = permute(s, &qkv_rows.reshape(&[b, t, 3, h_n, dh])?, &[2, 0, 3, 1, 4])?;
        drop(qkv_rows);
        let part = |s: &mut Step<'_>, i: usize| -> Result<Tensor> {
            slice(s, &qkv, 0, i, 1)?.reshape(&[b * h_n, t, dh])
        };
        let (q, k, v) = (part(s, 0)?, part(s, 1)?, part(s, 2)?);
        drop(qkv);
        let (o, attn) = attention(s, &q, &k, &v)?;
        let merged = merge_heads(s, &o, b, h_n, t, dh)?;
        drop(o);
        // The GELUs and residual adds run in the products' epilogues.
        let (x1, out, out_pre_gelu) = match &self.out {
            Some(layer) if self.out_gelu => {
                let (pr, x1, saved) = layer.forward_gelu(s, p, &merged, Some(x))?;
                (x1, Some(saved), Some(pr))
            }
            Some(layer) => {
                let (x1, _, saved) =
                    layer.forward_epilogue(s, p, &merged, Epilogue::Residual(x))?;
                (x1, Some(saved), None)
            }
            None => (add(s, x, &merged)?, None, None),
        };
        let (h2, ln2) = self.norm2.forward(s, p, &x1)?;
        let (f1, f1g, fc1) = self.fc1.forward_gelu(s, p, &h2, None)?;
        let (x2, _, fc2) = self
            .fc2
            .forward_epilogue(s, p, &f1g, Epilogue::Residual(&x1))?;
        Ok((
            x2,
            LayerSaved {
                shape: [b, t],
                ln1,
                qkv: qkv_saved,
                attn,
                out,
                out_pre_gelu,
                ln2,
                fc1,
                f1,
                fc2,
            },
        ))
    }
}

impl Layer for Block {
    type Saved = LayerSaved;

    fn spec(&self, spec: &mut Spec) {
        self.norm1.spec(spec);
        self.qkv.spec(spec);
        if let Some(out) = &self.out {
            out.spec(spec);
        }
        self.norm2.spec(spec);
        self.fc1.spec(spec);
        self.fc2.spec(spec);
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        sv: &LayerSaved,
        g: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let (h_n, dh) = (self.heads, self.dim_head);
        let [b, t] = sv.shape;
        // Feed-forward branch; the residual passes g through unchanged. Each transient
        // is dropped once consumed (blocks end their scope), so the step can hand its
        // buffer to the next one.
        let g_x1 = {
            let through_gelu = Epilogue::GeluGrad(&sv.f1);
            let g_f1 = self
                .fc2
                .backward_epilogue(s, p, &sv.fc2, g, grads, through_gelu)?;
            let g_h2 = self.fc1.backward(s, p, &sv.fc1, &g_f1, grads)?;
            drop(g_f1);
            let g_ln2 = self.norm2.backward(s, p, &sv.ln2, &g_h2, grads)?;
            drop(g_h2);
            add(s, g, &g_ln2)?
        };
        // Attention branch.
        let g_o = {
            let g_merged = match (&self.out, &sv.out) {
                (Some(layer), Some(saved)) => {
                    let g_proj = match &sv.out_pre_gelu {
                        Some(pre_gelu) => gelu_backward(s, pre_gelu, &g_x1)?,
                        None => g_x1.clone(),
                    };
                    layer.backward(s, p, saved, &g_proj, grads)?
                }
                _ => g_x1.clone(),
            };
            split_heads_backward(s, &g_merged, b, h_n, t, dh)?
        };
        let g_qkv = {
            let (gq, gk, gv) = attention_backward(s, &sv.attn, &g_o)?;
            drop(g_o);
            let shape5 = [1, b, h_n, t, dh];
            let stacked = concat(
                s,
                &[
                    &gq.reshape(&shape5)?,
                    &gk.reshape(&shape5)?,
                    &gv.reshape(&shape5)?,
                ],
                0,
            )?;
            drop((gq, gk, gv));
            permute_backward(s, &stacked, &[2, 0, 3, 1, 4])?.reshape(&[b, t, 3 * h_n * dh])?
        };
        let g_h = self.qkv.backward(s, p, &sv.qkv, &g_qkv, grads)?;
        drop(g_qkv);
        let g_x = self.norm1.backward(s, p, &sv.ln1, &g_h, grads)?;
        drop(g_h);
        add(s, &g_x1, &g_x)
    }
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
            blocks: (0..cfg.depth)
                .map(|l| Block::new(prefix, l, cfg, style))
                .collect(),
        }
    }

    /// x (B, T, dim) → (B, T, dim) through every block.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, TransformerSaved)> {
        let mut layers = Vec::with_capacity(self.blocks.len());
        let mut x = x.clone();
        for block in &self.blocks {
            let (y, saved) = block.forward(s, p, &x)?;
            layers.push(saved);
            x = y;
        }
        Ok((x, TransformerSaved { layers }))
    }

    /// Block `l`: x (B, T, dim) → (B, T, dim).
    pub fn layer_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        l: usize,
        x: &Tensor,
    ) -> Result<(Tensor, LayerSaved)> {
        self.blocks[l].forward(s, p, x)
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
        self.blocks[l].backward(s, p, sv, g, grads)
    }
}

impl Layer for Transformer {
    type Saved = TransformerSaved;

    fn spec(&self, spec: &mut Spec) {
        for block in &self.blocks {
            block.spec(spec);
        }
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &TransformerSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let mut g = grad.clone();
        for (block, sv) in self.blocks.iter().zip(&saved.layers).rev() {
            g = block.backward(s, p, sv, &g, grads)?;
        }
        Ok(g)
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
