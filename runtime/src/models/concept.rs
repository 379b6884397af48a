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
use super::layers::{Layer, LayerNorm, LayerNormLayerSaved, Linear, LinearSaved};
use super::params::{accumulate, Grads, Init, ParamSpec, ParamStore, Spec};
use super::transformer::{merge_heads, split_heads_backward};
use crate::ops::activation::{gelu, gelu_backward};
use crate::ops::elementwise::{add, add_backward};
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

/// The cross-attention block every layer shares (`cross.*`).
#[derive(Debug, Clone)]
struct Cross {
    norm_q: LayerNorm,
    norm_kv: LayerNorm,
    q: Linear,
    kv: Linear,
    proj: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

#[derive(Debug, Clone)]
pub struct ConceptHead {
    pub cfg: ConceptConfig,
    queries: String,
    cross: Cross,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

struct CrossSaved {
    shape: [usize; 3],
    lnq: LayerNormLayerSaved,
    q: LinearSaved,
    lnkv: LayerNormLayerSaved,
    kv: LinearSaved,
    attn: AttentionSaved,
    proj: LinearSaved,
    ln2: LayerNormLayerSaved,
    fc1: LinearSaved,
    f1: Tensor,
    fc2: LinearSaved,
}

/// The head's outputs and what its backward pass needs.
pub struct ConceptForward {
    /// C_1..C_N, each (B, k_con, d), before the final LayerNorm.
    pub concepts_per_layer: Vec<Tensor>,
    /// (B, k_cap, d_cap).
    pub pred: Tensor,
    layers: Vec<CrossSaved>,
    norm: LayerNormLayerSaved,
    fc1: LinearSaved,
    hidden: Tensor,
    fc2: LinearSaved,
}

impl ConceptHead {
    /// `prefix` is prepended to every parameter name ("head." or "").
    pub fn new(cfg: ConceptConfig, prefix: &str) -> Result<Self> {
        if cfg.heads == 0 || !cfg.dim.is_multiple_of(cfg.heads) {
            return Err(Error::InvalidArgument {
                op: "concept_head",
                detail: format!("dim {} is not a multiple of heads {}", cfg.dim, cfg.heads),
            });
        }
        let n = |rest: &str| format!("{prefix}{rest}");
        let d = cfg.dim;
        Ok(Self {
            cfg,
            queries: n("queries"),
            cross: Cross {
                norm_q: LayerNorm::new(&n("cross.norm_q"), d),
                norm_kv: LayerNorm::new(&n("cross.norm_kv"), d),
                q: Linear::new(&n("cross.q"), d, &[d], false),
                kv: Linear::new(&n("cross.kv"), 2 * d, &[d], false),
                proj: Linear::new(&n("cross.proj"), d, &[d], true),
                norm2: LayerNorm::new(&n("cross.norm2"), d),
                fc1: Linear::new(&n("cross.fc1"), 4 * d, &[d], true),
                fc2: Linear::new(&n("cross.fc2"), d, &[4 * d], true),
            },
            norm: LayerNorm::new(&n("norm"), d),
            fc1: Linear::new(&n("fc1"), cfg.hidden, &[cfg.concepts * d], true),
            fc2: Linear::new(
                &n("fc2"),
                cfg.prefix_length * cfg.prefix_dim,
                &[cfg.hidden],
                true,
            ),
        })
    }

    /// Appends the head's parameters; weights start trunc_normal(std .02), biases 0.
    pub fn spec(&self, spec: &mut Spec) {
        let c = self.cfg;
        let mut own = Spec::new();
        own.push(ParamSpec {
            name: self.queries.clone(),
            shape: vec![c.concepts, c.dim],
            init: Init::TruncNormal { std: 0.02 },
            trainable: true,
            block: None,
        });
        let x = &self.cross;
        x.norm_q.spec(&mut own);
        x.norm_kv.spec(&mut own);
        x.q.spec(&mut own);
        x.kv.spec(&mut own);
        x.proj.spec(&mut own);
        x.norm2.spec(&mut own);
        x.fc1.spec(&mut own);
        x.fc2.spec(&mut own);
        self.norm.spec(&mut own);
        self.fc1.spec(&mut own);
        self.fc2.spec(&mut own);
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
        let mut cur = add(s, &zero, p.get(&self.queries)?)?;
        let mut per_layer = Vec::with_capacity(layer_inputs.len());
        let mut layers = Vec::with_capacity(layer_inputs.len());
        for f in layer_inputs {
            let (next, saved) = self.cross_forward(s, p, &cur, f)?;
            layers.push(saved);
            per_layer.push(next.clone());
            cur = next;
        }
        let (normed, norm) = self.norm.forward(s, p, &cur)?;
        let flat = normed.reshape(&[b, c.concepts * c.dim])?;
        let (hidden, fc1) = self.fc1.forward(s, p, &flat)?;
        let hidden_gelu = gelu(s, &hidden)?;
        let (pred, fc2) = self.fc2.forward(s, p, &hidden_gelu)?;
        let pred = pred.reshape(&[b, c.prefix_length, c.prefix_dim])?;
        Ok(ConceptForward {
            concepts_per_layer: per_layer,
            pred,
            layers,
            norm,
            fc1,
            hidden,
            fc2,
        })
    }

    fn cross_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        c: &Tensor,
        f: &Tensor,
    ) -> Result<(Tensor, CrossSaved)> {
        let x = &self.cross;
        let (d, h) = (self.cfg.dim, self.cfg.heads);
        let dh = d / h;
        let (b, k, g) = (c.shape()[0], c.shape()[1], f.shape()[1]);
        let (lq, lnq) = x.norm_q.forward(s, p, c)?;
        let (q, q_saved) = x.q.forward(s, p, &lq)?;
        let q = permute(s, &q.reshape(&[b, k, h, dh])?, &[0, 2, 1, 3])?.reshape(&[b * h, k, dh])?;
        let (lkv, lnkv) = x.norm_kv.forward(s, p, f)?;
        let (kv, kv_saved) = x.kv.forward(s, p, &lkv)?;
        // (B, G, 2, H, dh) → (2, B, H, G, dh): keys are the first d channels.
        let kv = permute(s, &kv.reshape(&[b, g, 2, h, dh])?, &[2, 0, 3, 1, 4])?;
        let key = slice(s, &kv, 0, 0, 1)?.reshape(&[b * h, g, dh])?;
        let value = slice(s, &kv, 0, 1, 1)?.reshape(&[b * h, g, dh])?;
        let (o, attn) = attention(s, &q, &key, &value)?;
        let merged = merge_heads(s, &o, b, h, k, dh)?;
        let (proj, proj_saved) = x.proj.forward(s, p, &merged)?;
        let c1 = add(s, c, &proj)?;
        let (l2, ln2) = x.norm2.forward(s, p, &c1)?;
        let (f1, fc1) = x.fc1.forward(s, p, &l2)?;
        let f1g = gelu(s, &f1)?;
        let (f2, fc2) = x.fc2.forward(s, p, &f1g)?;
        let c2 = add(s, &c1, &f2)?;
        Ok((
            c2,
            CrossSaved {
                shape: [b, k, g],
                lnq,
                q: q_saved,
                lnkv,
                kv: kv_saved,
                attn,
                proj: proj_saved,
                ln2,
                fc1,
                f1,
                fc2,
            },
        ))
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
        let g_hg = self.fc2.backward(s, p, &fwd.fc2, &g, grads)?;
        let g_h = gelu_backward(s, &fwd.hidden, &g_hg)?;
        let g_flat = self.fc1.backward(s, p, &fwd.fc1, &g_h, grads)?;
        let last = fwd.concepts_per_layer.last().unwrap();
        let g_normed = g_flat.reshape(last.shape())?;
        let mut g = self.norm.backward(s, p, &fwd.norm, &g_normed, grads)?;
        let mut g_inputs = Vec::with_capacity(fwd.layers.len());
        for sv in fwd.layers.iter().rev() {
            let (gc, gf) = self.cross_backward(s, p, grads, sv, &g)?;
            g_inputs.push(gf);
            g = gc;
        }
        g_inputs.reverse();
        let (_, g_queries) = add_backward(s, &g, &[c.concepts, c.dim])?;
        accumulate(s, grads, &self.queries, g_queries)?;
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
        let x = &self.cross;
        let (d, h) = (self.cfg.dim, self.cfg.heads);
        let dh = d / h;
        let [b, k, gn] = sv.shape;
        let g_f1g = x.fc2.backward(s, p, &sv.fc2, g, grads)?;
        let g_f1 = gelu_backward(s, &sv.f1, &g_f1g)?;
        let g_l2 = x.fc1.backward(s, p, &sv.fc1, &g_f1, grads)?;
        let g_c1_ln = x.norm2.backward(s, p, &sv.ln2, &g_l2, grads)?;
        let g_c1 = add(s, g, &g_c1_ln)?;
        let g_merged = x.proj.backward(s, p, &sv.proj, &g_c1, grads)?;
        let g_o = split_heads_backward(s, &g_merged, b, h, k, dh)?;
        let (gq, gk, gv) = attention_backward(s, &sv.attn, &g_o)?;
        let g_q = permute_backward(s, &gq.reshape(&[b, h, k, dh])?, &[0, 2, 1, 3])?
            .reshape(&[b, k, d])?;
        let g_lq = x.q.backward(s, p, &sv.q, &g_q, grads)?;
        let g_c_ln = x.norm_q.backward(s, p, &sv.lnq, &g_lq, grads)?;
        let g_c = add(s, &g_c1, &g_c_ln)?;
        let shape5 = [1, b, h, gn, dh];
        let g_kv = concat(s, &[&gk.reshape(&shape5)?, &gv.reshape(&shape5)?], 0)?;
        let g_kv = permute_backward(s, &g_kv, &[2, 0, 3, 1, 4])?.reshape(&[b, gn, 2 * d])?;
        let g_lkv = x.kv.backward(s, p, &sv.kv, &g_kv, grads)?;
        let g_f = x.norm_kv.backward(s, p, &sv.lnkv, &g_lkv, grads)?;
        Ok((g_c, g_f))
    }
}
