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
//! frames of the clip, i±1 included, are the negatives. The paper's time-window
//! ablation (supplementary Table 7) adds two variants: window 1 (geo alone, 3D
//! distillation) and window 5 (predictors for i±1 and i±2, geo 0.5 and 0.125 each).

use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::predictor::{Predictor, PredictorNorm, PredictorSaved};
use edge4d_runtime::models::Layer;
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
    /// HOI4D / Synthia (`pretrain_as.py`): geo, forward and backward predictors (time
    /// window 3).
    Bidirectional,
    /// MSR-Action3D (`pretrain_msr.py`): geo and the forward predictor only.
    ForwardOnly,
    /// Time window 1: geo alone (the paper's 3D-distillation ablation).
    SameFrame,
    /// Time window 5: predictors for frames i+1, i−1, i+2 and i−2.
    Window5,
}

impl LossVariant {
    /// (geo weight, [(predictor name, frame offset, weight)]).
    fn terms(self) -> (f32, Vec<(&'static str, isize, f32)>) {
        match self {
            Self::Bidirectional => (
                0.5,
                vec![("forward_predictor", 1, 0.25), ("back_predictor", -1, 0.25)],
            ),
            Self::ForwardOnly => (0.5, vec![("forward_predictor", 1, 0.5)]),
            Self::SameFrame => (1.0, vec![]),
            Self::Window5 => (
                0.5,
                vec![
                    ("forward_predictor", 1, 0.125),
                    ("back_predictor", -1, 0.125),
                    ("forward_predictor_2", 2, 0.125),
                    ("back_predictor_2", -2, 0.125),
                ],
            ),
        }
    }
}

/// One "predict frame i + offset" term.
pub struct PredictTerm {
    pub predictor: Predictor,
    pub offset: isize,
    weight: Tensor,
    weight_value: f32,
}

/// The loss with its predictors.
pub struct C2pLoss {
    pub tau: f32,
    pub variant: LossVariant,
    pub predict: Vec<PredictTerm>,
    /// The geo term's weight as a device scalar (the CE backward's incoming gradient).
    geo_weight: Tensor,
    geo_weight_value: f32,
    /// Targets 0..T−1 per clip, uploaded once per (B, T).
    targets: std::sync::Mutex<std::collections::HashMap<(usize, usize), Tensor>>,
}

/// Loss values on the device, each (1,).
pub struct LossTerms {
    pub total: Tensor,
    pub geo: Tensor,
    /// Predict frame i+1 (absent in window 1).
    pub fwd: Option<Tensor>,
    /// Predict frame i−1 (bidirectional and window 5).
    pub back: Option<Tensor>,
    /// Every prediction term's loss with its frame offset.
    pub predicted: Vec<(isize, Tensor)>,
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
    predicted: Vec<(PredictorSaved, InfoNce)>,
}

/// The student and teacher frame ranges of "predict frame i + offset" over L frames:
/// (student start, teacher start, length).
fn ranges(offset: isize, l: usize) -> (usize, usize, usize) {
    let k = offset.unsigned_abs();
    if offset >= 0 {
        (0, k, l - k)
    } else {
        (k, 0, l - k)
    }
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
        let (geo_weight_value, terms) = variant.terms();
        let predict = terms
            .into_iter()
            .map(|(name, offset, w)| {
                Ok(PredictTerm {
                    predictor: Predictor::new(name, dim, hidden, norm),
                    offset,
                    weight: dev.upload(&[w], &[1])?,
                    weight_value: w,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            tau,
            variant,
            predict,
            geo_weight: dev.upload(&[geo_weight_value], &[1])?,
            geo_weight_value,
            targets: Default::default(),
        })
    }

    /// The predictors' parameters under their PyTorch names.
    pub fn spec(&self, spec: &mut Spec) {
        for t in &self.predict {
            t.predictor.spec(spec);
        }
    }

    /// The fewest frames a clip needs: one more than the farthest predicted offset.
    pub fn min_frames(&self) -> usize {
        1 + self
            .predict
            .iter()
            .map(|t| t.offset.unsigned_abs())
            .max()
            .unwrap_or(1)
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
        let min = self.min_frames();
        if sh.len() != 3 || teacher.shape() != sh || sh[1] < min {
            return Err(Error::Shape {
                op: "c2p_loss",
                detail: format!(
                    "student {:?} and teacher {:?} must both be (B, L, C) with L ≥ {min}",
                    sh,
                    teacher.shape()
                ),
            });
        }
        let l = sh[1];
        let (geo_loss, geo) = self.info_nce(s, student, teacher)?;
        let mut total = scale(s, &geo_loss, self.geo_weight_value)?;
        let mut predicted = Vec::new();
        let mut saved = Vec::new();
        for t in &self.predict {
            let (from, to, len) = ranges(t.offset, l);
            let src = slice(s, student, 1, from, len)?;
            let (y, psaved) = t.predictor.forward(s, p, &src)?;
            let target = slice(s, teacher, 1, to, len)?;
            let (loss, nce) = self.info_nce(s, &y, &target)?;
            let part = scale(s, &loss, t.weight_value)?;
            total = add(s, &total, &part)?;
            predicted.push((t.offset, loss));
            saved.push((psaved, nce));
        }
        let find = |offset: isize| {
            predicted
                .iter()
                .find(|(o, _)| *o == offset)
                .map(|(_, l)| l.clone())
        };
        Ok((
            LossTerms {
                total,
                geo: geo_loss,
                fwd: find(1),
                back: find(-1),
                predicted: predicted.clone(),
            },
            LossSaved {
                student_shape: sh.to_vec(),
                geo,
                predicted: saved,
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
        let (mut g_s, mut g_t) = self.info_nce_backward(s, &saved.geo, &self.geo_weight)?;
        let l = saved.student_shape[1];
        for (t, (psaved, nce)) in self.predict.iter().zip(&saved.predicted) {
            let (from, to, _) = ranges(t.offset, l);
            let (g_y, g_target) = self.info_nce_backward(s, nce, &t.weight)?;
            let g_src = t.predictor.backward(s, p, psaved, &g_y, grads)?;
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
