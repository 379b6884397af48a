//! Streaming P4Transformer inference over a sliding window of the last L frames.
//!
//! A tube feature (one output frame of the tube embedding: FPS anchors of its anchor
//! frame, ball queries in its kt neighbour frames, conv_d, max over neighbours and
//! offsets) depends only on the frames it reads. Each is keyed by those frames' stream
//! indices (padding resolved: replicate padding names the frame it copies, zero padding
//! names the zero frame), so a key computed for an earlier window is the same tensor a
//! full recomputation would give, bit for bit. When a frame arrives, only the keys not
//! seen before are computed — the new frame's windows, and the windows at either edge
//! whose padding changed — in one tube dispatch over a device ring of the last L frames;
//! the positional embedding, transformer and head then run on the assembled window
//! (attention is global, so they depend on every token).

use std::collections::HashMap;
use std::sync::Arc;

use super::p4dconv::{FrameTables, PaddingMode};
use super::{P4Transformer, ParamStore};
use crate::ops::layout::copy_into;
use crate::{DType, Device, Error, Result, Step, Tensor};

/// The frames one tube feature reads: anchor frame, then its kt neighbour frames
/// (stream indices; None = the all-zero padding frame).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TubeKey(Vec<Option<u64>>);

/// A computed tube feature: row `index` of a batch of anchors (1, m, n, 3) and
/// features (1, m, n, C).
#[derive(Clone)]
struct CachedTube {
    anchors: Tensor,
    features: Tensor,
    index: usize,
}

/// Sliding-window state of one stream. Frames are pushed with [`P4Stream::push`];
/// [`P4Stream::forward`] records the window's logits into a step.
pub struct P4Stream {
    window: usize,
    points: usize,
    /// (1, window + 1, N, 3): frame i lives in slot i mod window; the last slot stays zero.
    ring: Tensor,
    pushed: u64,
    reuse: bool,
    cache: HashMap<TubeKey, CachedTube>,
    tables: HashMap<(Vec<u32>, Vec<u32>), Arc<FrameTables>>,
    computed_last: usize,
    dispatches_last: usize,
}

impl P4Stream {
    /// A stream of windows of `window` frames of `points` points each. With
    /// `reuse = false` every window is recomputed from scratch (for comparison).
    pub fn new(
        dev: &Device,
        model: &P4Transformer,
        window: usize,
        points: usize,
        reuse: bool,
    ) -> Result<Self> {
        model.tube.frames_out(window)?;
        if points < model.cfg.spatial_stride() {
            return Err(Error::InvalidArgument {
                op: "p4stream",
                detail: format!(
                    "frames of {points} points are fewer than spatial_stride {}",
                    model.cfg.spatial_stride()
                ),
            });
        }
        Ok(Self {
            window,
            points,
            ring: dev.zeros(&[1, window + 1, points, 3])?,
            pushed: 0,
            reuse,
            cache: HashMap::new(),
            tables: HashMap::new(),
            computed_last: 0,
            dispatches_last: 0,
        })
    }

    pub fn window(&self) -> usize {
        self.window
    }

    pub fn points(&self) -> usize {
        self.points
    }

    /// Frames pushed so far.
    pub fn frames_pushed(&self) -> u64 {
        self.pushed
    }

    /// True once a whole window has arrived.
    pub fn ready(&self) -> bool {
        self.pushed >= self.window as u64
    }

    /// Tube features computed by the latest `forward` (the rest came from the cache).
    pub fn computed_last(&self) -> usize {
        self.computed_last
    }

    /// GPU dispatches the latest `forward` recorded.
    pub fn dispatches_last(&self) -> usize {
        self.dispatches_last
    }

    /// Forgets every cached tube feature (call after the weights change).
    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// Appends a frame of exactly `points` points (x, y, z interleaved, model units).
    pub fn push(&mut self, dev: &Device, xyz: &[f32]) -> Result<()> {
        if xyz.len() != self.points * 3 {
            return Err(Error::Shape {
                op: "p4stream",
                detail: format!(
                    "a frame must hold {} points (x, y, z), got {} values",
                    self.points,
                    xyz.len()
                ),
            });
        }
        let slot = (self.pushed % self.window as u64) as usize;
        dev.write_at(&self.ring, slot * self.points * 3, xyz)?;
        self.pushed += 1;
        Ok(())
    }

    /// The tube keys of the current window, in output-frame order.
    fn window_keys(&self, model: &P4Transformer) -> Result<Vec<TubeKey>> {
        let c = &model.tube.cfg;
        let l = self.window as isize;
        let start = self.pushed - self.window as u64;
        let source = |p: usize| -> Option<u64> {
            let f = p as isize - c.temporal_padding[0] as isize;
            match c.padding_mode {
                PaddingMode::Replicate => Some(start + f.clamp(0, l - 1) as u64),
                PaddingMode::Zeros if f < 0 || f >= l => None,
                PaddingMode::Zeros => Some(start + f as u64),
            }
        };
        let half = c.temporal_kernel_size / 2;
        Ok((0..model.tube.frames_out(self.window)?)
            .map(|j| {
                let t = half + j * c.temporal_stride;
                let mut frames = vec![source(t)];
                frames.extend((0..c.temporal_kernel_size).map(|o| source(t - half + o)));
                TubeKey(frames)
            })
            .collect())
    }

    fn slot(&self, frame: Option<u64>) -> u32 {
        match frame {
            Some(f) => (f % self.window as u64) as u32,
            None => self.window as u32,
        }
    }

    /// Records the logits of the current window — (1, classes) for per-clip models,
    /// (1, L', classes) for per-frame ones — computing only tube features not cached.
    pub fn forward(
        &mut self,
        s: &mut Step<'_>,
        model: &P4Transformer,
        params: &ParamStore,
    ) -> Result<Tensor> {
        if !self.ready() {
            return Err(Error::InvalidArgument {
                op: "p4stream",
                detail: format!(
                    "the window needs {} frames, {} pushed so far",
                    self.window, self.pushed
                ),
            });
        }
        let recorded_before = s.len();
        let keys = self.window_keys(model)?;
        // Drop keys that read a frame which has left the ring.
        let start = self.pushed - self.window as u64;
        if self.reuse {
            self.cache
                .retain(|k, _| k.0.iter().all(|f| f.is_none_or(|f| f >= start)));
        } else {
            self.cache.clear();
        }
        let mut missing: Vec<&TubeKey> = Vec::new();
        for k in &keys {
            if !self.cache.contains_key(k) && !missing.contains(&k) {
                missing.push(k);
            }
        }
        self.computed_last = missing.len();
        if !missing.is_empty() {
            let anchor: Vec<u32> = missing.iter().map(|k| self.slot(k.0[0])).collect();
            let neighbour: Vec<u32> = missing
                .iter()
                .flat_map(|k| k.0[1..].iter().map(|&f| self.slot(f)))
                .collect();
            let tables = match self.tables.get(&(anchor.clone(), neighbour.clone())) {
                Some(t) => t.clone(),
                None => {
                    let t = Arc::new(FrameTables {
                        anchor: s.device().upload_u32(&anchor, &[anchor.len()])?,
                        neighbour: s.device().upload_u32(&neighbour, &[neighbour.len()])?,
                        anchor_frames: anchor.clone(),
                        frames_out: anchor.len(),
                        // The ring's last slot is the zero frame already.
                        uses_zero_frame: false,
                    });
                    self.tables.insert((anchor, neighbour), t.clone());
                    t
                }
            };
            let (out, _) = model.tube.forward(s, params, &self.ring, &tables)?;
            for (index, k) in missing.into_iter().enumerate() {
                self.cache.insert(
                    k.clone(),
                    CachedTube {
                        anchors: out.anchors.clone(),
                        features: out.features.clone(),
                        index,
                    },
                );
            }
        }
        let n = self.points / model.cfg.spatial_stride();
        let l_out = keys.len();
        let anchors = s.alloc(&[1, l_out, n, 3], DType::F32);
        let features = s.alloc(&[1, l_out, n, model.cfg.dim], DType::F32);
        for (j, k) in keys.iter().enumerate() {
            let c = &self.cache[k];
            copy_into(s, &c.anchors, c.index, &anchors, j, 1, 1)?;
            copy_into(s, &c.features, c.index, &features, j, 1, 1)?;
        }
        let time = model
            .shape_cache(s.device(), 1, self.window, self.points)?
            .time
            .clone();
        let logits = model
            .tokens_forward(s, params, &anchors, &features, &time)?
            .logits;
        self.dispatches_last = s.len() - recorded_before;
        Ok(logits)
    }
}
