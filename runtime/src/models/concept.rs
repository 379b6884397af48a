//! The 2D→3D concept head (reference-spec §7; no public code, the spec's decisions):
//! learnable concept queries read every encoder layer's input tokens through one
//! cross-attention block whose weights all layers share, then a LayerNorm and a
//! two-layer MLP map the concepts to the teacher's prefix shape.
//!
//! C₀ = queries;  C_l = Cross(C_{l−1}, F_l);  pred = fc2(GELU(fc1(flatten(LN(C_N)))))
//! Cross(c, f): c += proj(attn(q(LN_q(c)), kv(LN_kv(f))));  c += fc2(GELU(fc1(LN_2(c))))
//!
//! Parameters: `queries (k_con, d)`, `cross.{norm_q, norm_kv, q, kv, proj, norm2, fc1,
//! fc2}`, `norm`, `fc1 (hidden, k_con·d)`, `fc2 (k_cap·d_cap, hidden)`, under a prefix
//! (`head.` in a distillation checkpoint).

use super::attention::{attention, attention_backward, AttentionSaved};
use super::linear::{linear, linear_param_backward};
use super::params::{accumulate, linear_spec, norm_spec, Grads, Init, ParamSpec, ParamStore, Spec};
use super::transformer::{merge_heads, split_heads_backward, LN_EPS};
use crate::ops::activation::{gelu, gelu_backward};
use crate::ops::elementwise::{add, add_backward};
use crate::ops::layernorm::{layernorm, layernorm_backward, LayerNormSaved};
use crate::ops::layout::{concat, permute, permute_backward, slice};
use crate::ops::util::zeros;
use crate::{Error, Result, Step, Tensor};

/// Concept head sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConceptConfig {
    /// Token width d (the encoder's).
    pub dim: usize,
    pub heads: usize,
    /// k_con learnable queries.
    pub concepts: usize,
    /// k_cap × d_cap: the teacher prefix's shape.
    pub prefix_length: usize,
    pub prefix_dim: usize,
    /// Width of the MLP's hidden layer.
    pub hidden: usize,
}

#[derive(Debug, Clone)]
pub struct ConceptHead {
    pub cfg: ConceptConfig,
    prefix: String,
}

struct CrossSaved {
    c: Tensor,
    lq: Tensor,
    lnq: LayerNormSaved,
    f: Tensor,
    lkv: Tensor,
    lnkv: LayerNormSaved,
    attn: AttentionSaved,
    merged: Tensor,
    c1: Tensor,
    l2: Tensor,
    ln2: LayerNormSaved,
    f1: Tensor,
    f1g: Tensor,
}

/// The head's outputs and what its backward pass needs.
pub struct ConceptForward {
    /// C_1..C_N, each (B, k_con, d), before the final LayerNorm.
    pub concepts_per_layer: Vec<Tensor>,
    /// (B, k_cap, d_cap).
    pub pred: Tensor,
    layers: Vec<CrossSaved>,
    norm: LayerNormSaved,
    flat: Tensor,
    hidden: Tensor,
    hidden_gelu: Tensor,
}

impl ConceptHead {
    /// `prefix` is prepended to every parameter name ("head." or "").
    pub fn new(cfg: ConceptConfig, prefix: &str) -> Result<Self> {
        if cfg.heads == 0 || cfg.dim % cfg.heads != 0 {
            return Err(Error::InvalidArgument {
                op: "concept_head",
                detail: format!("dim {} is not a multiple of heads {}", cfg.dim, cfg.heads),
            });
        }
        Ok(Self {
            cfg,
            prefix: prefix.to_string(),
        })
    }

    fn n(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Appends the head's parameters; weights start trunc_normal(std .02), biases 0.
    pub fn spec(&self, spec: &mut Spec) {
        let c = self.cfg;
        let d = c.dim;
        let mut own = Spec::new();
        own.push(ParamSpec {
            name: self.n("queries"),
            shape: vec![c.concepts, d],
            init: Init::TruncNormal { std: 0.02 },
            trainable: true,
        });
        norm_spec(&mut own, &self.n("cross.norm_q"), d);
        norm_spec(&mut own, &self.n("cross.norm_kv"), d);
        linear_spec(&mut own, &self.n("cross.q"), d, &[d], false);
        linear_spec(&mut own, &self.n("cross.kv"), 2 * d, &[d], false);
        linear_spec(&mut own, &self.n("cross.proj"), d, &[d], true);
        norm_spec(&mut own, &self.n("cross.norm2"), d);
        linear_spec(&mut own, &self.n("cross.fc1"), 4 * d, &[d], true);
        linear_spec(&mut own, &self.n("cross.fc2"), d, &[4 * d], true);
        norm_spec(&mut own, &self.n("norm"), d);
        linear_spec(&mut own, &self.n("fc1"), c.hidden, &[c.concepts * d], true);
        linear_spec(
            &mut own,
            &self.n("fc2"),
            c.prefix_length * c.prefix_dim,
            &[c.hidden],
            true,
        );
        super::pointmae::point_mae_init(&mut own);
        spec.extend(own);
    }

    /// layer_inputs: F_1..F_N, each (B, G, d) → concepts and the predicted prefix.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        layer_inputs: &[Tensor],
    ) -> Result<ConceptForward> {
        let c = self.cfg;
        let first = layer_inputs.first().ok_or_else(|| Error::InvalidArgument {
            op: "concept_head",
            detail: "no layer inputs".into(),
        })?;
        let b = first.shape()[0];
        for (l, f) in layer_inputs.iter().enumerate() {
            let sh = f.shape();
            if sh.len() != 3 || sh[0] != b || sh[2] != c.dim {
                return Err(Error::Shape {
                    op: "concept_head",
                    detail: format!("layer input {l} is {sh:?}, expected ({b}, G, {})", c.dim),
                });
            }
        }
        let zero = zeros(s, &[b, c.concepts, c.dim])?;
        let mut cur = add(s, &zero, p.get(&self.n("queries"))?)?;
        let mut per_layer = Vec::with_capacity(layer_inputs.len());
        let mut layers = Vec::with_capacity(layer_inputs.len());
        for f in layer_inputs {
            let (next, saved) = self.cross_forward(s, p, &cur, f)?;
            layers.push(saved);
            per_layer.push(next.clone());
            cur = next;
        }
        let (normed, norm) = layernorm(
            s,
            &cur,
            p.get(&self.n("norm.weight"))?,
            p.get(&self.n("norm.bias"))?,
            LN_EPS,
        )?;
        let flat = normed.reshape(&[b, c.concepts * c.dim])?;
        let hidden = linear(
            s,
            &flat,
            p.get(&self.n("fc1.weight"))?,
            Some(p.get(&self.n("fc1.bias"))?),
        )?;
        let hidden_gelu = gelu(s, &hidden)?;
        let pred = linear(
            s,
            &hidden_gelu,
            p.get(&self.n("fc2.weight"))?,
            Some(p.get(&self.n("fc2.bias"))?),
        )?
        .reshape(&[b, c.prefix_length, c.prefix_dim])?;
        Ok(ConceptForward {
            concepts_per_layer: per_layer,
            pred,
            layers,
            norm,
            flat,
            hidden,
            hidden_gelu,
        })
    }

    fn ln(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
        name: &str,
    ) -> Result<(Tensor, LayerNormSaved)> {
        layernorm(
            s,
            x,
            p.get(&self.n(&format!("{name}.weight")))?,
            p.get(&self.n(&format!("{name}.bias")))?,
            LN_EPS,
        )
    }

    fn cross_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        c: &Tensor,
        f: &Tensor,
    ) -> Result<(Tensor, CrossSaved)> {
        let (d, h) = (self.cfg.dim, self.cfg.heads);
        let dh = d / h;
        let (b, k, g) = (c.shape()[0], c.shape()[1], f.shape()[1]);
        let (lq, lnq) = self.ln(s, p, c, "cross.norm_q")?;
        let q = linear(s, &lq, p.get(&self.n("cross.q.weight"))?, None)?;
        let q = permute(s, &q.reshape(&[b, k, h, dh])?, &[0, 2, 1, 3])?.reshape(&[b * h, k, dh])?;
        let (lkv, lnkv) = self.ln(s, p, f, "cross.norm_kv")?;
        let kv = linear(s, &lkv, p.get(&self.n("cross.kv.weight"))?, None)?;
        // (B, G, 2, H, dh) → (2, B, H, G, dh): keys are the first d channels.
        let kv = permute(s, &kv.reshape(&[b, g, 2, h, dh])?, &[2, 0, 3, 1, 4])?;
        let key = slice(s, &kv, 0, 0, 1)?.reshape(&[b * h, g, dh])?;
        let value = slice(s, &kv, 0, 1, 1)?.reshape(&[b * h, g, dh])?;
        let (o, attn) = attention(s, &q, &key, &value)?;
        let merged = merge_heads(s, &o, b, h, k, dh)?;
        let proj = linear(
            s,
            &merged,
            p.get(&self.n("cross.proj.weight"))?,
            Some(p.get(&self.n("cross.proj.bias"))?),
        )?;
        let c1 = add(s, c, &proj)?;
        let (l2, ln2) = self.ln(s, p, &c1, "cross.norm2")?;
        let f1 = linear(
            s,
            &l2,
            p.get(&self.n("cross.fc1.weight"))?,
            Some(p.get(&self.n("cross.fc1.bias"))?),
        )?;
        let f1g = gelu(s, &f1)?;
        let f2 = linear(
            s,
            &f1g,
            p.get(&self.n("cross.fc2.weight"))?,
            Some(p.get(&self.n("cross.fc2.bias"))?),
        )?;
        let c2 = add(s, &c1, &f2)?;
        Ok((
            c2,
            CrossSaved {
                c: c.clone(),
                lq,
                lnq,
                f: f.clone(),
                lkv,
                lnkv,
                attn,
                merged,
                c1,
                l2,
                ln2,
                f1,
                f1g,
            },
        ))
    }

    fn ln_backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        grads: &mut Grads,
        x: &Tensor,
        saved: &LayerNormSaved,
        name: &str,
        g: &Tensor,
    ) -> Result<Tensor> {
        let w = self.n(&format!("{name}.weight"));
        let (gx, gw, gb) = layernorm_backward(s, x, p.get(&w)?, saved, g)?;
        accumulate(s, grads, &w, gw)?;
        accumulate(s, grads, &self.n(&format!("{name}.bias")), gb)?;
        Ok(gx)
    }

    /// Given d pred, accumulates parameter gradients and returns d F_l for every layer.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &ConceptForward,
        grad_pred: &Tensor,
        grads: &mut Grads,
    ) -> Result<Vec<Tensor>> {
        let c = self.cfg;
        let b = fwd.pred.shape()[0];
        let g = grad_pred.reshape(&[b, c.prefix_length * c.prefix_dim])?;
        let g_hg = linear_param_backward(s, p, grads, &fwd.hidden_gelu, &self.n("fc2"), &g, true)?;
        let g_h = gelu_backward(s, &fwd.hidden, &g_hg)?;
        let g_flat = linear_param_backward(s, p, grads, &fwd.flat, &self.n("fc1"), &g_h, true)?;
        let last = fwd.concepts_per_layer.last().unwrap();
        let g_normed = g_flat.reshape(last.shape())?;
        let mut g = self.ln_backward(s, p, grads, last, &fwd.norm, "norm", &g_normed)?;
        let mut g_inputs = Vec::with_capacity(fwd.layers.len());
        for sv in fwd.layers.iter().rev() {
            let (gc, gf) = self.cross_backward(s, p, grads, sv, &g)?;
            g_inputs.push(gf);
            g = gc;
        }
        g_inputs.reverse();
        let (_, g_queries) = add_backward(s, &g, &[c.concepts, c.dim])?;
        accumulate(s, grads, &self.n("queries"), g_queries)?;
        Ok(g_inputs)
    }

    /// (d c, d f) of one cross block.
    fn cross_backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        grads: &mut Grads,
        sv: &CrossSaved,
        g: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (d, h) = (self.cfg.dim, self.cfg.heads);
        let dh = d / h;
        let (b, k, gn) = (sv.c.shape()[0], sv.c.shape()[1], sv.f.shape()[1]);
        let g_f1g = linear_param_backward(s, p, grads, &sv.f1g, &self.n("cross.fc2"), g, true)?;
        let g_f1 = gelu_backward(s, &sv.f1, &g_f1g)?;
        let g_l2 = linear_param_backward(s, p, grads, &sv.l2, &self.n("cross.fc1"), &g_f1, true)?;
        let g_c1_ln = self.ln_backward(s, p, grads, &sv.c1, &sv.ln2, "cross.norm2", &g_l2)?;
        let g_c1 = add(s, g, &g_c1_ln)?;
        let g_merged =
            linear_param_backward(s, p, grads, &sv.merged, &self.n("cross.proj"), &g_c1, true)?;
        let g_o = split_heads_backward(s, &g_merged, b, h, k, dh)?;
        let (gq, gk, gv) = attention_backward(s, &sv.attn, &g_o)?;
        let g_q = permute_backward(s, &gq.reshape(&[b, h, k, dh])?, &[0, 2, 1, 3])?
            .reshape(&[b, k, d])?;
        let g_lq = linear_param_backward(s, p, grads, &sv.lq, &self.n("cross.q"), &g_q, false)?;
        let g_c_ln = self.ln_backward(s, p, grads, &sv.c, &sv.lnq, "cross.norm_q", &g_lq)?;
        let g_c = add(s, &g_c1, &g_c_ln)?;
        let shape5 = [1, b, h, gn, dh];
        let g_kv = concat(s, &[&gk.reshape(&shape5)?, &gv.reshape(&shape5)?], 0)?;
        let g_kv = permute_backward(s, &g_kv, &[2, 0, 3, 1, 4])?.reshape(&[b, gn, 2 * d])?;
        let g_lkv = linear_param_backward(s, p, grads, &sv.lkv, &self.n("cross.kv"), &g_kv, false)?;
        let g_f = self.ln_backward(s, p, grads, &sv.f, &sv.lnkv, "cross.norm_kv", &g_lkv)?;
        Ok((g_c, g_f))
    }
}
