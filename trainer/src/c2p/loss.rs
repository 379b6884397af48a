//! C2P's frame-level InfoNCE (reference-spec §5.2), forward and backward.
//!
//! With `n(x) = x / max(‖x‖₂, 1e-12)` per row and `CE` the mean cross-entropy with
//! targets 0..T−1, for student `s` and teacher `t` of shape (B, L, C):
//! ```text
//! geo  = mean_b CE( n(s_b) n(t_b)ᵀ / τ )                        positives: the same frame
//! fwd  = mean_b CE( n(P_f(s_b[0:L−1])) n(t_b[1:L])ᵀ / τ )       predict frame i+1
//! back = mean_b CE( n(P_b(s_b[1:L]))   n(t_b[0:L−1])ᵀ / τ )     predict frame i−1
//! loss = w_geo·geo + w_fwd·fwd + w_back·back      (0.5 / 0.25 / 0.25; MSR: 0.5 / 0.5 / —)
//! ```
//! Every clip is its own T-way classification (no cross-clip negatives); the other
//! frames of the clip, i±1 included, are the negatives.

use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::predictor::{Predictor, PredictorNorm, PredictorSaved};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::ops::elementwise::{add, scale};
use edge4d_runtime::ops::layernorm::{l2normalize, l2normalize_backward, L2NormSaved};
use edge4d_runtime::ops::layout::{slice, slice_backward};
use edge4d_runtime::ops::matmul::{matmul, matmul_backward};
use edge4d_runtime::{Device, Error, Result, Step, Tensor};

/// F.normalize's eps.
const NORM_EPS: f32 = 1e-12;

/// Which terms the loss has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossVariant {
    /// HOI4D / Synthia (`pretrain_as.py`): geo, forward and backward predictors.
    Bidirectional,
    /// MSR-Action3D (`pretrain_msr.py`): geo and the forward predictor only.
    ForwardOnly,
}

/// The loss with its predictors.
pub struct C2pLoss {
    pub tau: f32,
    pub variant: LossVariant,
    pub forward_predictor: Predictor,
    pub back_predictor: Option<Predictor>,
    /// Loss weights as device scalars (the CE backward's incoming gradient).
    weights: [Tensor; 3],
    weight_values: [f32; 3],
    /// Targets 0..T−1 per clip, uploaded once per (B, T).
    targets: std::sync::Mutex<std::collections::HashMap<(usize, usize), Tensor>>,
}

/// Loss values on the device, each (1,).
pub struct LossTerms {
    pub total: Tensor,
    pub geo: Tensor,
    pub fwd: Tensor,
    pub back: Option<Tensor>,
}

struct InfoNce {
    na: L2NormSaved,
    nb: L2NormSaved,
    logits: Tensor,
    labels: Tensor,
}

/// What the backward pass needs.
pub struct LossSaved {
    student_shape: Vec<usize>,
    geo: InfoNce,
    fwd: (PredictorSaved, InfoNce),
    back: Option<(PredictorSaved, InfoNce)>,
}

impl C2pLoss {
    /// Predictors of width `dim` with `hidden` units, temperature `tau`.
    pub fn new(
        dev: &Device,
        dim: usize,
        hidden: usize,
        norm: PredictorNorm,
        tau: f32,
        variant: LossVariant,
    ) -> Result<Self> {
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "c2p_loss",
                detail: format!("tau must be positive, got {tau}"),
            });
        }
        let weight_values = match variant {
            LossVariant::Bidirectional => [0.5, 0.25, 0.25],
            LossVariant::ForwardOnly => [0.5, 0.5, 0.0],
        };
        Ok(Self {
            tau,
            variant,
            forward_predictor: Predictor::new("forward_predictor", dim, hidden, norm),
            back_predictor: (variant == LossVariant::Bidirectional)
                .then(|| Predictor::new("back_predictor", dim, hidden, norm)),
            weights: [
                dev.upload(&[weight_values[0]], &[1])?,
                dev.upload(&[weight_values[1]], &[1])?,
                dev.upload(&[weight_values[2]], &[1])?,
            ],
            weight_values,
            targets: Default::default(),
        })
    }

    /// The predictors' parameters under their PyTorch names.
    pub fn spec(&self, spec: &mut Spec) {
        self.forward_predictor.spec(spec);
        if let Some(b) = &self.back_predictor {
            b.spec(spec);
        }
    }

    /// student, teacher (B, L, C) → the loss terms.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        student: &Tensor,
        teacher: &Tensor,
    ) -> Result<(LossTerms, LossSaved)> {
        let sh = student.shape();
        if sh.len() != 3 || teacher.shape() != sh || sh[1] < 2 {
            return Err(Error::Shape {
                op: "c2p_loss",
                detail: format!(
                    "student {:?} and teacher {:?} must both be (B, L, C) with L ≥ 2",
                    sh,
                    teacher.shape()
                ),
            });
        }
        let l = sh[1];
        let (geo_loss, geo) = self.info_nce(s, student, teacher)?;
        let predict = |s: &mut Step<'_>,
                       pred: &Predictor,
                       from: usize,
                       to: usize|
         -> Result<(Tensor, (PredictorSaved, InfoNce))> {
            let src = slice(s, student, 1, from, l - 1)?;
            let (y, saved) = pred.forward(s, p, &src)?;
            let target = slice(s, teacher, 1, to, l - 1)?;
            let (loss, nce) = self.info_nce(s, &y, &target)?;
            Ok((loss, (saved, nce)))
        };
        let (fwd_loss, fwd) = predict(s, &self.forward_predictor, 0, 1)?;
        let back = match &self.back_predictor {
            Some(b) => Some(predict(s, b, 1, 0)?),
            None => None,
        };
        let [wg, wf, wb] = self.weight_values;
        let geo_part = scale(s, &geo_loss, wg)?;
        let fwd_part = scale(s, &fwd_loss, wf)?;
        let mut total = add(s, &geo_part, &fwd_part)?;
        if let Some((bl, _)) = &back {
            let back_part = scale(s, bl, wb)?;
            total = add(s, &total, &back_part)?;
        }
        Ok((
            LossTerms {
                total,
                geo: geo_loss,
                fwd: fwd_loss,
                back: back.as_ref().map(|(l, _)| l.clone()),
            },
            LossSaved {
                student_shape: sh.to_vec(),
                geo,
                fwd,
                back: back.map(|(_, saved)| saved),
            },
        ))
    }

    /// Gradients of the total loss: (d student, d teacher); predictor gradients
    /// accumulate into `grads`.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &LossSaved,
        grads: &mut Grads,
    ) -> Result<(Tensor, Tensor)> {
        let (mut g_s, mut g_t) = self.info_nce_backward(s, &saved.geo, &self.weights[0])?;
        let mut terms = vec![(&self.forward_predictor, &saved.fwd, 0, 1, &self.weights[1])];
        if let (Some(bp), Some(bs)) = (&self.back_predictor, &saved.back) {
            terms.push((bp, bs, 1, 0, &self.weights[2]));
        }
        for (pred, (psaved, nce), from, to, w) in terms {
            let (g_y, g_target) = self.info_nce_backward(s, nce, w)?;
            let g_src = pred.backward(s, p, psaved, &g_y, grads)?;
            let g_src = slice_backward(s, &g_src, &saved.student_shape, 1, from)?;
            let g_target = slice_backward(s, &g_target, &saved.student_shape, 1, to)?;
            g_s = add(s, &g_s, &g_src)?;
            g_t = add(s, &g_t, &g_target)?;
        }
        Ok((g_s, g_t))
    }

    /// mean_b CE( n(a_b) n(b_b)ᵀ / τ, 0..T−1 ) for a, b (B, T, C).
    fn info_nce(&self, s: &mut Step<'_>, a: &Tensor, b: &Tensor) -> Result<(Tensor, InfoNce)> {
        let (bsz, t) = (a.shape()[0], a.shape()[1]);
        let (na, sa) = l2normalize(s, a, NORM_EPS)?;
        let (nb, sb) = l2normalize(s, b, NORM_EPS)?;
        let sim = matmul(s, &na, &nb, None, false, true)?;
        let logits = scale(s, &sim, 1.0 / self.tau)?.reshape(&[bsz * t, t])?;
        let labels = {
            let mut cache = self.targets.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&(bsz, t)) {
                Some(l) => l.clone(),
                None => {
                    let v: Vec<u32> = (0..bsz * t).map(|i| (i % t) as u32).collect();
                    let l = s.device().upload_u32(&v, &[bsz * t])?;
                    cache.insert((bsz, t), l.clone());
                    l
                }
            }
        };
        // Every clip has T rows, so the mean over all rows is the mean over clips of
        // each clip's mean.
        let (loss, _) = cross_entropy(s, &logits, &labels)?;
        Ok((
            loss,
            InfoNce {
                na: sa,
                nb: sb,
                logits,
                labels,
            },
        ))
    }

    /// (d a, d b) of `info_nce` scaled by the device scalar `w`.
    fn info_nce_backward(
        &self,
        s: &mut Step<'_>,
        n: &InfoNce,
        w: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let shape = n.na.y.shape().to_vec();
        let (bsz, t) = (shape[0], shape[1]);
        let g_logits = cross_entropy_backward(s, &n.logits, &n.labels, w)?;
        let g_sim = scale(s, &g_logits, 1.0 / self.tau)?.reshape(&[bsz, t, t])?;
        let g = matmul_backward(s, &n.na.y, &n.nb.y, &g_sim, false, true, false)?;
        Ok((
            l2normalize_backward(s, &n.na, &g.a)?,
            l2normalize_backward(s, &n.nb, &g.b)?,
        ))
    }
}
