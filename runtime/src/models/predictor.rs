//! C2P's dynamic predictors (reference-spec §5.3): `MLP(dim, dim, hidden)` =
//! `net.0` Linear(dim, hidden) → `net.1` BatchNorm1d(hidden) → ReLU → `net.3`
//! Linear(hidden, dim), applied to one clip at a time in train mode, so BatchNorm's batch
//! statistics are over that clip's rows and its running statistics are updated once
//! per clip, in clip order. The paper's variant swaps BatchNorm for LayerNorm(hidden).

use super::linear::{linear, linear_backward};
use super::params::{accumulate, batchnorm_spec, linear_spec, norm_spec, Grads, ParamStore, Spec};
use super::synthia::{bn_relu, bn_relu_backward, BnRelu};
use crate::ops::activation::{relu, relu_backward};
use crate::ops::layernorm::{layernorm, layernorm_backward, LayerNormSaved};
use crate::ops::layout::{concat, concat_backward, slice};
use crate::{Result, Step, Tensor};

/// The predictor's normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PredictorNorm {
    /// BatchNorm1d with per-clip batch statistics (the official code).
    #[default]
    BatchNorm,
    /// LayerNorm over the hidden units (the paper).
    LayerNorm,
}

/// One predictor under `prefix` (e.g. "forward_predictor").
#[derive(Debug, Clone)]
pub struct Predictor {
    pub prefix: String,
    pub dim: usize,
    pub hidden: usize,
    pub norm: PredictorNorm,
}

enum NormSaved {
    /// Per clip: the BatchNorm + ReLU unit.
    Batch(Vec<BnRelu>),
    Layer {
        ln: LayerNormSaved,
        pre: Tensor,
    },
}

/// What the backward pass needs.
pub struct PredictorSaved {
    x: Tensor,
    h: Tensor,
    norm: NormSaved,
    act: Tensor,
}

const LN_EPS: f32 = 1e-5;

impl Predictor {
    pub fn new(prefix: &str, dim: usize, hidden: usize, norm: PredictorNorm) -> Self {
        Self {
            prefix: prefix.to_string(),
            dim,
            hidden,
            norm,
        }
    }

    fn name(&self, rest: &str) -> String {
        format!("{}.net.{rest}", self.prefix)
    }

    pub fn spec(&self, spec: &mut Spec) {
        linear_spec(spec, &self.name("0"), self.hidden, &[self.dim], true);
        match self.norm {
            PredictorNorm::BatchNorm => batchnorm_spec(spec, &self.name("1"), self.hidden),
            PredictorNorm::LayerNorm => norm_spec(spec, &self.name("1"), self.hidden),
        }
        linear_spec(spec, &self.name("3"), self.dim, &[self.hidden], true);
    }

    /// x (B, T, dim) → (B, T, dim), each clip normalised on its own (train mode).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, PredictorSaved)> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let h = linear(
            s,
            x,
            p.get(&self.name("0.weight"))?,
            Some(p.get(&self.name("0.bias"))?),
        )?;
        let (act, norm) = match self.norm {
            PredictorNorm::BatchNorm => {
                let mut units = Vec::with_capacity(b);
                let mut outs = Vec::with_capacity(b);
                for clip in 0..b {
                    let rows = slice(s, &h, 0, clip, 1)?.reshape(&[t, self.hidden])?;
                    let (y, unit) = bn_relu(s, p, &rows, &self.name("1"), true)?;
                    outs.push(y.reshape(&[1, t, self.hidden])?);
                    units.push(unit);
                }
                let parts: Vec<&Tensor> = outs.iter().collect();
                (concat(s, &parts, 0)?, NormSaved::Batch(units))
            }
            PredictorNorm::LayerNorm => {
                let (pre, ln) = layernorm(
                    s,
                    &h,
                    p.get(&self.name("1.weight"))?,
                    p.get(&self.name("1.bias"))?,
                    LN_EPS,
                )?;
                (relu(s, &pre)?, NormSaved::Layer { ln, pre })
            }
        };
        let y = linear(
            s,
            &act,
            p.get(&self.name("3.weight"))?,
            Some(p.get(&self.name("3.bias"))?),
        )?;
        Ok((
            y,
            PredictorSaved {
                x: x.clone(),
                h,
                norm,
                act,
            },
        ))
    }

    /// d x given d y; parameter gradients accumulate into `grads`.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &PredictorSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let (g_act, gw, gb) =
            linear_backward(s, &saved.act, p.get(&self.name("3.weight"))?, grad, true)?;
        accumulate(s, grads, &self.name("3.weight"), gw)?;
        if let Some(gb) = gb {
            accumulate(s, grads, &self.name("3.bias"), gb)?;
        }
        let g_h = match &saved.norm {
            NormSaved::Batch(units) => {
                let t = saved.h.shape()[1];
                let sizes = vec![1; units.len()];
                let parts = concat_backward(s, &g_act, &sizes, 0)?;
                let mut g_rows = Vec::with_capacity(units.len());
                for (unit, g) in units.iter().zip(&parts) {
                    let g = g.reshape(&[t, self.hidden])?;
                    g_rows.push(bn_relu_backward(s, p, unit, &g, grads)?.reshape(&[
                        1,
                        t,
                        self.hidden,
                    ])?);
                }
                let parts: Vec<&Tensor> = g_rows.iter().collect();
                concat(s, &parts, 0)?
            }
            NormSaved::Layer { ln, pre } => {
                let g_pre = relu_backward(s, pre, &g_act)?;
                let (g_h, gg, gbeta) =
                    layernorm_backward(s, &saved.h, p.get(&self.name("1.weight"))?, ln, &g_pre)?;
                accumulate(s, grads, &self.name("1.weight"), gg)?;
                accumulate(s, grads, &self.name("1.bias"), gbeta)?;
                g_h
            }
        };
        let (g_x, gw, gb) =
            linear_backward(s, &saved.x, p.get(&self.name("0.weight"))?, &g_h, true)?;
        accumulate(s, grads, &self.name("0.weight"), gw)?;
        if let Some(gb) = gb {
            accumulate(s, grads, &self.name("0.bias"), gb)?;
        }
        Ok(g_x)
    }
}
