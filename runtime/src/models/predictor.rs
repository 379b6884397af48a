//! C2P's dynamic predictors (reference-spec §5.3): `MLP(dim, dim, hidden)` =
//! `net.0` Linear(dim, hidden) → `net.1` BatchNorm1d(hidden) → ReLU → `net.3`
//! Linear(hidden, dim), applied to one clip at a time in train mode, so BatchNorm's batch
//! statistics are over that clip's rows and its running statistics are updated once
//! per clip, in clip order. The paper's variant swaps BatchNorm for LayerNorm(hidden).

use super::layers::{
    BatchNormRelu, BatchNormReluSaved, Layer, LayerNorm, LayerNormLayerSaved, Linear, LinearSaved,
};
use super::params::{Grads, ParamStore, Spec};
use crate::ops::activation::{relu, relu_backward};
use crate::ops::layout::{concat, concat_backward, slice};
use crate::{Error, Result, Step, Tensor};

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

/// `net.1`: BatchNorm + ReLU, or LayerNorm then ReLU.
#[derive(Debug, Clone)]
enum NormLayer {
    Batch(BatchNormRelu),
    Layer(LayerNorm),
}

/// One predictor under `prefix` (e.g. "forward_predictor").
#[derive(Debug, Clone)]
pub struct Predictor {
    pub prefix: String,
    pub dim: usize,
    pub hidden: usize,
    pub norm: PredictorNorm,
    fc1: Linear,
    norm_layer: NormLayer,
    fc2: Linear,
}

enum NormSaved {
    /// Per clip: the BatchNorm + ReLU unit.
    Batch(Vec<BatchNormReluSaved>),
    Layer {
        ln: LayerNormLayerSaved,
        pre: Tensor,
    },
}

/// What the backward pass needs.
pub struct PredictorSaved {
    fc1: LinearSaved,
    /// (B, T) of the input.
    shape: [usize; 2],
    norm: NormSaved,
    fc2: LinearSaved,
}

impl Predictor {
    pub fn new(prefix: &str, dim: usize, hidden: usize, norm: PredictorNorm) -> Self {
        let n = |rest: &str| format!("{prefix}.net.{rest}");
        Self {
            prefix: prefix.to_string(),
            dim,
            hidden,
            norm,
            fc1: Linear::new(&n("0"), hidden, &[dim], true),
            norm_layer: match norm {
                PredictorNorm::BatchNorm => NormLayer::Batch(BatchNormRelu::new(&n("1"), hidden)),
                PredictorNorm::LayerNorm => NormLayer::Layer(LayerNorm::new(&n("1"), hidden)),
            },
            fc2: Linear::new(&n("3"), dim, &[hidden], true),
        }
    }

    /// x (B, T, dim) → (B, T, dim), each clip normalised on its own (train mode).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, PredictorSaved)> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let (h, fc1) = self.fc1.forward(s, p, x)?;
        let (act, norm) = match &self.norm_layer {
            NormLayer::Batch(bn) => {
                let mut units = Vec::with_capacity(b);
                let mut outs = Vec::with_capacity(b);
                for clip in 0..b {
                    let rows = slice(s, &h, 0, clip, 1)?.reshape(&[t, self.hidden])?;
                    let (y, unit) = bn.forward(s, p, &rows, true)?;
                    outs.push(y.reshape(&[1, t, self.hidden])?);
                    units.push(unit);
                }
                let parts: Vec<&Tensor> = outs.iter().collect();
                (concat(s, &parts, 0)?, NormSaved::Batch(units))
            }
            NormLayer::Layer(layer) => {
                let (pre, ln) = layer.forward(s, p, &h)?;
                (relu(s, &pre)?, NormSaved::Layer { ln, pre })
            }
        };
        let (y, fc2) = self.fc2.forward(s, p, &act)?;
        Ok((
            y,
            PredictorSaved {
                fc1,
                shape: [b, t],
                norm,
                fc2,
            },
        ))
    }
}

impl Layer for Predictor {
    type Saved = PredictorSaved;

    fn spec(&self, spec: &mut Spec) {
        self.fc1.spec(spec);
        match &self.norm_layer {
            NormLayer::Batch(bn) => bn.spec(spec),
            NormLayer::Layer(ln) => ln.spec(spec),
        }
        self.fc2.spec(spec);
    }

    /// d x given d y; parameter gradients accumulate into `grads`.
    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &PredictorSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let g_act = self.fc2.backward(s, p, &saved.fc2, grad, grads)?;
        let g_h = match (&self.norm_layer, &saved.norm) {
            (NormLayer::Batch(bn), NormSaved::Batch(units)) => {
                let t = saved.shape[1];
                let sizes = vec![1; units.len()];
                let parts = concat_backward(s, &g_act, &sizes, 0)?;
                let mut g_rows = Vec::with_capacity(units.len());
                for (unit, g) in units.iter().zip(&parts) {
                    let g = g.reshape(&[t, self.hidden])?;
                    g_rows.push(bn.backward(s, p, unit, &g, grads)?.reshape(&[
                        1,
                        t,
                        self.hidden,
                    ])?);
                }
                let parts: Vec<&Tensor> = g_rows.iter().collect();
                concat(s, &parts, 0)?
            }
            (NormLayer::Layer(ln), NormSaved::Layer { ln: sv, pre }) => {
                let g_pre = relu_backward(s, pre, &g_act)?;
                ln.backward(s, p, sv, &g_pre, grads)?
            }
            _ => {
                return Err(Error::InvalidArgument {
                    op: "predictor backward",
                    detail: "the saved activations come from a predictor with another norm".into(),
                })
            }
        };
        self.fc1.backward(s, p, &saved.fc1, &g_h, grads)
    }
}
