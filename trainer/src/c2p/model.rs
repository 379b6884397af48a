//! The C2P pre-training network (reference-spec §5.1): one backbone whose two passes
//! give the teacher and the student, and the loss with its predictors.
//!
//! - `shared` (the official code): teacher = the backbone's per-frame embedding of the
//!   complete clip (tube embedding + positional embedding, max over each frame's
//!   anchors); student = the transformer output on the partial clip. Shared weights,
//!   gradients through both passes.
//! - `stop_gradient`: the same, with the teacher's gradient dropped.
//! - `separate` (the paper): a P4DConv-only teacher with its own weights
//!   (`teacher.*`, [`FrameTeacher`]), trained by the same loss.

use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::models::{ModelKind, P4Forward, P4Transformer, P4TransformerConfig};
use edge4d_runtime::{Device, Error, Result, Step, Tensor};

use super::loss::{C2pLoss, LossTerms, LossVariant};
use super::teacher::{FrameTeacher, TeacherSaved};

/// How the teacher relates to the student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeacherMode {
    /// Shared weights, gradients through both passes (the official code).
    #[default]
    Shared,
    /// Shared weights, no gradient through the teacher.
    StopGradient,
    /// A separate P4DConv-only teacher network (the paper's asymmetric design).
    Separate,
}

/// The loss and the teacher mode, applied to a backbone (a head-less per-frame
/// P4Transformer, [`P4Transformer::backbone`]). Parameters live in one store: the
/// backbone's names, then `forward_predictor.*` / `back_predictor.*`.
pub struct C2pObjective {
    pub loss: C2pLoss,
    pub teacher: TeacherMode,
    separate: Option<FrameTeacher>,
}

/// What the positional embedding's time input is during pre-training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInput {
    /// Each frame's index (1, 2, …), as the official code.
    FrameIndex,
    /// 0 for every frame, in the student and the teacher: the same-frame InfoNCE term
    /// can no longer pick the positive by its time coordinate.
    Zero,
}

/// The teacher's pass: the shared backbone's, or the separate teacher's.
pub enum TeacherPass {
    Backbone(P4Forward),
    Separate(Tensor, TeacherSaved),
}

impl TeacherPass {
    /// The teacher features (B, L', C).
    pub fn features(&self) -> Option<&Tensor> {
        match self {
            TeacherPass::Backbone(f) => f.frame_embedding.as_ref(),
            TeacherPass::Separate(t, _) => Some(t),
        }
    }
}

/// One step's forward results.
pub struct C2pForward {
    pub student: P4Forward,
    pub teacher: TeacherPass,
    pub terms: LossTerms,
    loss_saved: super::loss::LossSaved,
}

impl C2pObjective {
    /// The backbone and objective for a per-frame backbone config
    /// (`p4transformer-actionseg`, as the official code pre-trains) whose `pred_hidden`
    /// and `tau` set the predictors.
    pub fn new(
        dev: &Device,
        cfg: P4TransformerConfig,
        norm: PredictorNorm,
        variant: LossVariant,
        teacher: TeacherMode,
        time: TimeInput,
    ) -> Result<(P4Transformer, Self)> {
        if cfg.model != ModelKind::ActionSeg {
            return Err(Error::InvalidArgument {
                op: "c2p",
                detail: format!(
                    "C2P pre-trains a per-frame backbone: set model = \"p4transformer-actionseg\" (got {:?})",
                    cfg.model.name()
                ),
            });
        }
        // The official MLP predictor's hidden width and InfoNCE temperature.
        let (dim, hidden, tau) = (
            cfg.dim,
            cfg.pred_hidden.unwrap_or(4096),
            cfg.tau.unwrap_or(0.07),
        );
        let loss = C2pLoss::new(dev, dim, hidden, norm, tau, variant)?;
        let backbone = match time {
            TimeInput::FrameIndex => P4Transformer::backbone(cfg)?,
            TimeInput::Zero => P4Transformer::backbone(cfg)?.without_time(),
        };
        let separate = (teacher == TeacherMode::Separate).then(|| FrameTeacher::like(&backbone));
        Ok((
            backbone,
            Self {
                loss,
                teacher,
                separate,
            },
        ))
    }

    /// Backbone parameters, then the predictors'.
    pub fn spec(&self, backbone: &P4Transformer) -> Spec {
        let mut spec = backbone.spec();
        if let Some(t) = &self.separate {
            t.spec(&mut spec);
        }
        self.loss.spec(&mut spec);
        spec
    }

    /// Student pass on `partial`, teacher pass on `complete` (both (B, L, N, 3)), loss.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        backbone: &P4Transformer,
        p: &ParamStore,
        partial: &Tensor,
        complete: &Tensor,
    ) -> Result<C2pForward> {
        if partial.shape() != complete.shape() {
            return Err(Error::Shape {
                op: "c2p",
                detail: format!(
                    "partial {:?} and complete {:?} clips must have the same shape",
                    partial.shape(),
                    complete.shape()
                ),
            });
        }
        let student = backbone.forward(s, p, partial)?;
        let teacher = match &self.separate {
            Some(t) => {
                let (features, saved) = t.forward(s, p, complete)?;
                TeacherPass::Separate(features, saved)
            }
            None => TeacherPass::Backbone(backbone.forward(s, p, complete)?),
        };
        let teacher_features = teacher.features().cloned().ok_or(Error::InvalidArgument {
            op: "c2p",
            detail:
                "the backbone has no per-frame embedding: use a p4transformer-actionseg backbone"
                    .into(),
        })?;
        let (terms, loss_saved) =
            self.loss
                .forward(s, p, &student.transformer_out, &teacher_features)?;
        Ok(C2pForward {
            student,
            teacher,
            terms,
            loss_saved,
        })
    }

    /// Gradients of the total loss for every parameter (stored shapes) and
    /// (d partial, d complete) — d complete is None unless the teacher shares the
    /// backbone and takes gradients.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        backbone: &P4Transformer,
        p: &ParamStore,
        fwd: &C2pForward,
    ) -> Result<(Grads, Tensor, Option<Tensor>, Tensor, Tensor)> {
        let mut grads = Grads::new();
        let (g_student, g_teacher) = self.loss.backward(s, p, &fwd.loss_saved, &mut grads)?;
        let g_partial =
            backbone.backward_features(s, p, &fwd.student, Some(&g_student), None, &mut grads)?;
        let g_complete = match (&fwd.teacher, self.teacher) {
            (TeacherPass::Backbone(teacher), TeacherMode::Shared) => Some(
                backbone.backward_features(s, p, teacher, None, Some(&g_teacher), &mut grads)?,
            ),
            (TeacherPass::Separate(_, saved), _) => {
                if let Some(t) = &self.separate {
                    t.backward(s, p, saved, &g_teacher, &mut grads)?;
                }
                None
            }
            _ => None,
        };
        let grads = edge4d_runtime::models::p4transformer::stored_shapes(p, grads)?;
        Ok((grads, g_partial, g_complete, g_student, g_teacher))
    }
}
