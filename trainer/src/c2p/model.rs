//! The C2P pre-training network (reference-spec §5.1): one backbone whose two passes
//! give the teacher and the student, and the loss with its predictors.
//!
//! - `shared` (the official code): teacher = the backbone's per-frame embedding of the
//!   complete clip (tube embedding + positional embedding, max over each frame's
//!   anchors); student = the transformer output on the partial clip. Shared weights,
//!   gradients through both passes.
//! - `stop_gradient`: the same, with the teacher's gradient dropped.

use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::models::{ModelKind, P4Forward, P4Transformer, P4TransformerConfig};
use edge4d_runtime::{Device, Error, Result, Step, Tensor};

use super::loss::{C2pLoss, LossTerms, LossVariant};

/// How the teacher relates to the student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TeacherMode {
    /// Shared weights, gradients through both passes (the official code).
    #[default]
    Shared,
    /// Shared weights, no gradient through the teacher.
    StopGradient,
}

/// Backbone + loss; parameters live in one store (backbone names, then
/// `forward_predictor.*` / `back_predictor.*`).
pub struct C2pModel {
    pub backbone: P4Transformer,
    pub loss: C2pLoss,
    pub teacher: TeacherMode,
}

/// One step's forward results.
pub struct C2pForward {
    pub student: P4Forward,
    pub teacher: P4Forward,
    pub terms: LossTerms,
    loss_saved: super::loss::LossSaved,
}

impl C2pModel {
    /// A C2P model for a per-frame backbone config (`p4transformer-actionseg`, as the
    /// official code pre-trains) whose `pred_hidden` and `tau` set the predictors.
    pub fn new(
        dev: &Device,
        cfg: P4TransformerConfig,
        norm: PredictorNorm,
        variant: LossVariant,
        teacher: TeacherMode,
    ) -> Result<Self> {
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
        Ok(Self {
            backbone: P4Transformer::backbone(cfg)?,
            loss: C2pLoss::new(dev, dim, hidden, norm, tau, variant)?,
            teacher,
        })
    }

    /// Backbone parameters, then the predictors'.
    pub fn spec(&self) -> Spec {
        let mut spec = self.backbone.spec();
        self.loss.spec(&mut spec);
        spec
    }

    /// Student pass on `partial`, teacher pass on `complete` (both (B, L, N, 3)), loss.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
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
        let student = self.backbone.forward(s, p, partial)?;
        let teacher = self.backbone.forward(s, p, complete)?;
        let teacher_features = teacher
            .frame_embedding
            .clone()
            .expect("a per-frame backbone has a frame embedding");
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
    /// (d partial, d complete) — d complete is None with a stop-gradient teacher.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &C2pForward,
    ) -> Result<(Grads, Tensor, Option<Tensor>, Tensor, Tensor)> {
        let mut grads = Grads::new();
        let (g_student, g_teacher) = self.loss.backward(s, p, &fwd.loss_saved, &mut grads)?;
        let g_partial = self.backbone.backward_features(
            s,
            p,
            &fwd.student,
            Some(&g_student),
            None,
            &mut grads,
        )?;
        let g_complete = match self.teacher {
            TeacherMode::Shared => Some(self.backbone.backward_features(
                s,
                p,
                &fwd.teacher,
                None,
                Some(&g_teacher),
                &mut grads,
            )?),
            TeacherMode::StopGradient => None,
        };
        let grads = edge4d_runtime::models::p4transformer::stored_shapes(p, grads)?;
        Ok((grads, g_partial, g_complete, g_student, g_teacher))
    }
}
