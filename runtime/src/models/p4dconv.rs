//! P4DConv as the P4Transformer tube embedding uses it (reference-spec §3, §4.1):
//! `conv_d` (a 1×1 conv over (dx, dy, dz, dt)) on every ball-query neighbour of every
//! anchor, max over neighbours (fused, `ops::p4dconv`), then max over the temporal kernel. Replicate padding:
//! padded frame p reads frame clamp(p − p0, 0, L − 1), so gradients of padded frames
//! flow into the frame they copy.
//!
//! Layout is channels-last: features are (B, L', n, C); PyTorch's (B, L', C, n) is its
//! transpose. All frames and temporal offsets go through each kernel in one dispatch.

use super::layers::{Layer, Linear};
use super::params::{Grads, ParamStore, Spec};
use crate::ops::p4dconv::{conv_max, conv_max_backward};
use crate::ops::point::{
    ball_query_frames, displacement, displacement_anchor_grad, fps_frames, gather_rows,
    gather_rows_backward, inverse_index, Balls, Selection,
};
use crate::ops::reduce::{max, max_backward};
use crate::{Device, Error, Result, Step, Tensor};

/// Tube-embedding hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct TubeConfig {
    pub radius: f32,
    pub nsamples: usize,
    pub spatial_stride: usize,
    pub temporal_kernel_size: usize,
    pub temporal_stride: usize,
    pub temporal_padding: [usize; 2],
    pub padding_mode: PaddingMode,
    pub dim: usize,
}

/// How frames beyond the clip are made (P4DConv's `temporal_padding_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingMode {
    /// Repeat the first / last frame (gradients flow into the frame repeated).
    #[default]
    Replicate,
    /// All-zero frames: every point at the origin (FPS then picks index 0 throughout).
    Zeros,
}

/// Source frames of one clip length: anchor frame per output frame and neighbour frame
/// per (output frame, offset), as small device tables.
#[derive(Debug)]
pub struct FrameTables {
    pub anchor: Tensor,
    pub neighbour: Tensor,
    pub anchor_frames: Vec<u32>,
    pub frames_out: usize,
    /// True when a table points at the appended zero frame (index L).
    pub uses_zero_frame: bool,
}

/// The tube embedding (parameters under `prefix`, e.g. "tube_embedding").
#[derive(Debug, Clone)]
pub struct TubeEmbedding {
    pub prefix: String,
    pub cfg: TubeConfig,
    /// `conv_d.0`: Conv2d(4, dim, 1) without bias over (dx, dy, dz, dt).
    conv_d: Linear,
    /// Frame tables made once per (device, clip length) and reused by every forward.
    tables_cache: TablesCache,
}

type TablesCache = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<(u64, usize), std::sync::Arc<FrameTables>>>,
>;

/// Forward results the model and the tests read.
pub struct TubeOutput {
    /// (B, L', n, 3) anchor coordinates.
    pub anchors: Tensor,
    /// (B, L', n, C) features.
    pub features: Tensor,
    /// FPS indices (B, L', n) into each anchor frame.
    pub anchor_sel: Selection,
    /// Ball-query indices (B, L', kt, n, k) into each neighbour frame.
    pub balls: Balls,
}

/// What the backward pass needs.
pub struct TubeSaved {
    clip_shape: Vec<usize>,
    zero_frame: bool,
    disp: Tensor,
    arg_k: Tensor,
    arg_t: Tensor,
    anchor_rows: Tensor,
    ball_rows: Tensor,
}

impl TubeEmbedding {
    pub fn new(prefix: &str, cfg: TubeConfig) -> Self {
        Self {
            prefix: prefix.to_string(),
            conv_d: Linear::new(&format!("{prefix}.conv_d.0"), cfg.dim, &[4, 1, 1], false),
            cfg,
            tables_cache: Default::default(),
        }
    }

    fn weight_name(&self) -> &str {
        self.conv_d.weight_name()
    }

    pub fn spec(&self, spec: &mut Spec) {
        self.conv_d.spec(spec);
    }

    /// Output frames for a clip of `l` frames, or an error naming the mismatch.
    pub fn frames_out(&self, l: usize) -> Result<usize> {
        let c = &self.cfg;
        let padded = l + c.temporal_padding[0] + c.temporal_padding[1];
        if padded < c.temporal_kernel_size
            || (padded - c.temporal_kernel_size) % c.temporal_stride != 0
        {
            return Err(Error::InvalidArgument {
                op: "p4dconv",
                detail: format!(
                    "a clip of {l} frames with padding {:?} does not fit temporal_kernel_size {} and temporal_stride {}: (L + p0 + p1 - kt) must be a non-negative multiple of the stride",
                    c.temporal_padding, c.temporal_kernel_size, c.temporal_stride
                ),
            });
        }
        Ok((padded - c.temporal_kernel_size) / c.temporal_stride + 1)
    }

    /// The frame tables for clips of `l` frames (uploaded once per device and length).
    pub fn tables(&self, dev: &Device, l: usize) -> Result<std::sync::Arc<FrameTables>> {
        let key = (dev.id(), l);
        let mut cache = self.tables_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = cache.get(&key) {
            return Ok(t.clone());
        }
        let t = std::sync::Arc::new(self.make_tables(dev, l)?);
        cache.insert(key, t.clone());
        Ok(t)
    }

    fn make_tables(&self, dev: &Device, l: usize) -> Result<FrameTables> {
        let c = &self.cfg;
        let frames_out = self.frames_out(l)?;
        let half = c.temporal_kernel_size / 2;
        // Zero padding reads frame L: an all-zero frame appended to the clip.
        let source = |p: usize| {
            let f = p as isize - c.temporal_padding[0] as isize;
            match c.padding_mode {
                PaddingMode::Replicate => f.clamp(0, l as isize - 1) as u32,
                PaddingMode::Zeros if f < 0 || f >= l as isize => l as u32,
                PaddingMode::Zeros => f as u32,
            }
        };
        let mut anchor = Vec::new();
        let mut neighbour = Vec::new();
        for t_out in 0..frames_out {
            let t = half + t_out * c.temporal_stride;
            anchor.push(source(t));
            for o in 0..c.temporal_kernel_size {
                neighbour.push(source(t - half + o));
            }
        }
        let uses_zero_frame = anchor.iter().chain(&neighbour).any(|&f| f as usize == l);
        Ok(FrameTables {
            uses_zero_frame,
            anchor: dev.upload_u32(&anchor, &[frames_out])?,
            neighbour: dev.upload_u32(&neighbour, &[neighbour.len()])?,
            anchor_frames: anchor,
            frames_out,
        })
    }

    /// clip (B, L, N, 3) → anchors (B, L', n, 3) and features (B, L', n, C).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        clip: &Tensor,
        tables: &FrameTables,
    ) -> Result<(TubeOutput, TubeSaved)> {
        let c = &self.cfg;
        let (b, l, npts) = (clip.shape()[0], clip.shape()[1], clip.shape()[2]);
        let n = npts / c.spatial_stride;
        if n == 0 {
            return Err(Error::InvalidArgument {
                op: "p4dconv",
                detail: format!(
                    "frames of {npts} points are fewer than spatial_stride {}: no anchors to sample",
                    c.spatial_stride
                ),
            });
        }
        let (l_out, kt, k) = (tables.frames_out, c.temporal_kernel_size, c.nsamples);
        // Zero padding: append one all-zero frame that the tables point at.
        let padded;
        let (clip, l) = if tables.uses_zero_frame {
            let zero = crate::ops::util::zeros(s, &[b, 1, npts, 3])?;
            padded = crate::ops::layout::concat(s, &[clip, &zero], 1)?;
            (&padded, l + 1)
        } else {
            (clip, l)
        };
        let anchor_sel = fps_frames(s, clip, &tables.anchor, n)?;
        let flat = clip.reshape(&[b * l * npts, 3])?;
        let anchors =
            gather_rows(s, &flat, &anchor_sel.rows, 1, None)?.reshape(&[b, l_out, n, 3])?;
        let balls = ball_query_frames(s, clip, &anchors, &tables.neighbour, kt, c.radius, k)?;
        let disp = displacement(s, &flat, &anchors, &balls.rows, 0.0)?;
        let rows = b * l_out * kt * n * k;
        let (pooled_k, arg_k) = conv_max(
            s,
            &disp.reshape(&[rows, 4])?,
            &p.matrix(self.weight_name())?,
            k,
        )?;
        let (features, arg_t) = max(s, &pooled_k.reshape(&[b * l_out, kt, n * c.dim])?, 1)?;
        let saved = TubeSaved {
            clip_shape: clip.shape().to_vec(),
            zero_frame: tables.uses_zero_frame,
            disp,
            arg_k,
            arg_t,
            anchor_rows: anchor_sel.rows.clone(),
            ball_rows: balls.rows.clone(),
        };
        Ok((
            TubeOutput {
                anchors,
                features: features.reshape(&[b, l_out, n, c.dim])?,
                anchor_sel,
                balls,
            },
            saved,
        ))
    }

    /// Backward from d features and d anchors (either may be absent): accumulates the
    /// weight gradient and returns d clip (B, L, N, 3).
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &TubeSaved,
        grad_features: &Tensor,
        grad_anchors: Option<&Tensor>,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let ds = saved.disp.shape().to_vec(); // (B, L', kt, n, k, 4)
        let (b, l_out, kt, n, k) = (ds[0], ds[1], ds[2], ds[3], ds[4]);
        let rows = b * l_out * kt * n * k;
        let g_pooled = max_backward(
            s,
            &grad_features.reshape(&[b * l_out, n * c.dim])?,
            &saved.arg_t,
            &[b * l_out, kt, n * c.dim],
            1,
        )?;
        let w = p.matrix(self.weight_name())?;
        let (g_disp, g_w) = conv_max_backward(
            s,
            &saved.disp.reshape(&[rows, 4])?,
            &w,
            &saved.arg_k,
            &g_pooled.reshape(&[rows / k, c.dim])?,
            k,
        )?;
        super::params::accumulate(s, grads, self.weight_name(), g_w)?;
        let g_disp = g_disp.reshape(&ds)?;
        let g_clip = displacement_backward(
            s,
            &g_disp,
            &saved.ball_rows,
            &saved.anchor_rows,
            grad_anchors,
            &saved.clip_shape,
        )?;
        if saved.zero_frame {
            // The appended zero frame is a constant: drop its gradient.
            crate::ops::layout::slice(s, &g_clip, 1, 0, saved.clip_shape[1] - 1)
        } else {
            Ok(g_clip)
        }
    }
}

/// d xyz (B, L, N, 3) from d displacements (B, L', kt, n, k, 4): the neighbour side
/// scatters through the ball-query rows, the anchor side (−Σ plus any gradient the
/// anchors received elsewhere) through the FPS rows. No float atomics.
pub fn displacement_backward(
    s: &mut Step<'_>,
    g_disp: &Tensor,
    ball_rows: &Tensor,
    anchor_rows: &Tensor,
    grad_anchors: Option<&Tensor>,
    xyz_shape: &[usize],
) -> Result<Tensor> {
    let points: usize = xyz_shape[..3].iter().product();
    let ball_inv = inverse_index(s, ball_rows, points)?;
    let g_xyz = gather_rows_backward(s, g_disp, &ball_inv, 3, 4, 1, None)?;
    let mut g_anchor = displacement_anchor_grad(s, g_disp)?;
    if let Some(ga) = grad_anchors {
        g_anchor = crate::ops::elementwise::add(s, &g_anchor, &ga.reshape(g_anchor.shape())?)?;
    }
    let anchor_inv = inverse_index(s, anchor_rows, points)?;
    let g_from_anchor = gather_rows_backward(s, &g_anchor, &anchor_inv, 3, 3, 1, None)?;
    crate::ops::elementwise::add(s, &g_xyz, &g_from_anchor)?.reshape(xyz_shape)
}
