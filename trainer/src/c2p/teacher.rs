//! The paper's asymmetric teacher (C2P §3.2): a separate P4DConv-only network with its
//! own weights under `teacher.*` — tube embedding, positional embedding of
//! (x, y, z, t'+1), max over each frame's anchors — whose per-frame features the
//! student's transformer output is distilled into. (The official code instead reuses
//! the student's own tube and positional embedding: [`super::model::TeacherMode::Shared`].)

use std::collections::HashMap;
use std::sync::Mutex;

use edge4d_runtime::models::layers::{Layer, Linear, LinearSaved};
use edge4d_runtime::models::p4dconv::{TubeEmbedding, TubeSaved};
use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::P4Transformer;
use edge4d_runtime::ops::elementwise::add;
use edge4d_runtime::ops::layout::{concat, concat_backward};
use edge4d_runtime::ops::reduce::{max, max_backward};
use edge4d_runtime::{Result, Step, Tensor};

/// Tube + positional embedding + per-frame max, with weights under `teacher.`.
pub struct FrameTeacher {
    tube: TubeEmbedding,
    /// `teacher.pos_embedding`: Conv1d(4, dim, 1) over (x, y, z, t).
    pos: Linear,
    /// The student backbone's choice: frame index or 0 as the time input.
    time_in_position: bool,
    /// The student backbone's factor on the frame index.
    time_scale: f32,
    /// (B, L', n, 1) time columns per (B, L', n).
    times: Mutex<HashMap<(usize, usize, usize), Tensor>>,
}

/// What the teacher's backward needs.
pub struct TeacherSaved {
    tube: TubeSaved,
    pos: LinearSaved,
    arg: Tensor,
    pre_shape: Vec<usize>,
}

impl FrameTeacher {
    /// A teacher with the student backbone's tube settings.
    pub fn like(backbone: &P4Transformer) -> Self {
        Self {
            tube: TubeEmbedding::new("teacher.tube_embedding", backbone.tube.cfg.clone()),
            pos: Linear::new("teacher.pos_embedding", backbone.cfg.dim, &[4, 1], true),
            time_in_position: backbone.time_in_position(),
            time_scale: backbone.cfg.time_scale(),
            times: Mutex::new(HashMap::new()),
        }
    }

    pub fn spec(&self, spec: &mut Spec) {
        self.tube.spec(spec);
        self.pos.spec(spec);
    }

    /// clip (B, L, N, 3) → per-frame features (B, L', C).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        clip: &Tensor,
    ) -> Result<(Tensor, TeacherSaved)> {
        let tables = self.tube.tables(s.device(), clip.shape()[1])?;
        let (out, tube) = self.tube.forward(s, p, clip, &tables)?;
        let (b, l_out, n) = (
            out.anchors.shape()[0],
            out.anchors.shape()[1],
            out.anchors.shape()[2],
        );
        let time = {
            let mut cache = self.times.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&(b, l_out, n)) {
                Some(t) => t.clone(),
                None => {
                    let v: Vec<f32> = (0..b * l_out * n)
                        .map(|i| {
                            if self.time_in_position {
                                ((i / n) % l_out + 1) as f32 * self.time_scale
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let t = s.device().upload(&v, &[b, l_out, n, 1])?;
                    cache.insert((b, l_out, n), t.clone());
                    t
                }
            }
        };
        let xyzt = concat(s, &[&out.anchors, &time], 3)?;
        let (pos, pos_saved) = self.pos.forward(s, p, &xyzt)?;
        let pre = add(s, &pos, &out.features)?;
        let (frames, arg) = max(s, &pre, 2)?;
        Ok((
            frames,
            TeacherSaved {
                tube,
                pos: pos_saved,
                arg,
                pre_shape: pre.shape().to_vec(),
            },
        ))
    }

    /// Accumulates the teacher's weight gradients from d features (B, L', C).
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &TeacherSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<()> {
        let g_pre = max_backward(s, grad, &saved.arg, &saved.pre_shape, 2)?;
        let g_xyzt = self.pos.backward(s, p, &saved.pos, &g_pre, grads)?;
        let g_anchor = concat_backward(s, &g_xyzt, &[3, 1], 3)?.swap_remove(0);
        self.tube
            .backward(s, p, &saved.tube, &g_pre, Some(&g_anchor), grads)?;
        Ok(())
    }
}
