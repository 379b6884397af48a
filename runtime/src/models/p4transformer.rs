//! The P4Transformer family (reference-spec §4.1, §4.3): tube embedding, positional
//! embedding of (x, y, z, t'+1), transformer, and a classification head: per clip
//! (max over all tokens; `p4transformer-msr`) or per frame (max over each frame's
//! anchors before the transformer; `p4transformer-actionseg`).

use std::collections::HashMap;
use std::sync::Mutex;

use super::config::{ModelKind, P4TransformerConfig};
use super::layers::{Layer, LayerNorm, LayerNormLayerSaved, Linear, LinearSaved};
use super::p4dconv::{FrameTables, TubeConfig, TubeEmbedding, TubeOutput, TubeSaved};
use super::params::{Grads, ParamStore, Spec};
use super::transformer::{Transformer, TransformerSaved};
use crate::ops::activation::{gelu, gelu_backward, relu, relu_backward};
use crate::ops::elementwise::add;
use crate::ops::layout::{concat, concat_backward};
use crate::ops::reduce::{max, max_backward};
use crate::{Device, Error, Result, Step, Tensor};

/// A P4Transformer built from its config.
pub struct P4Transformer {
    pub cfg: P4TransformerConfig,
    pub tube: TubeEmbedding,
    /// `pos_embedding`: Conv1d(4, dim, 1) over (x, y, z, t).
    pos_embedding: Linear,
    pub transformer: Transformer,
    /// False for a pre-training backbone: no `mlp_head`, the features are the output.
    pub head: bool,
    mlp_head: Option<ClassHead>,
    /// False: the positional embedding's time input is 0 for every frame (C2P
    /// pre-training without the time shortcut: frames cannot be told apart by index).
    time_in_position: bool,
    /// Frame tables and time columns per input shape, made once and reused.
    /// Per (device, B, L, N): a model used on two devices gets each its own tensors.
    cache: Mutex<HashMap<(u64, usize, usize, usize), std::sync::Arc<ShapeCache>>>,
}

pub(crate) struct ShapeCache {
    pub(crate) tables: std::sync::Arc<FrameTables>,
    /// (B, L', n, 1) holding t' + 1.
    pub(crate) time: Tensor,
}

/// Forward activations (for inspection) and what backward needs.
pub struct P4Forward {
    pub tube: TubeOutput,
    /// Transformer input: (B, L'·n, C) for msr, (B, L', C) for actionseg.
    pub embedding: Tensor,
    /// actionseg only: the per-frame max of (pos + features) before the ReLU, (B, L', C)
    /// (C2P's teacher feature).
    pub frame_embedding: Option<Tensor>,
    pub transformer_out: Tensor,
    /// (B, C) for msr (max over tokens); absent for actionseg.
    pub pooled: Option<Tensor>,
    /// (B, classes) for msr, (B, L', classes) for actionseg.
    pub logits: Tensor,
    saved: Saved,
}

struct Saved {
    tube: TubeSaved,
    tokens: TokensSaved,
}

/// What `tokens_forward` gives: the P4Forward fields after the tube.
pub(crate) struct TokensForward {
    pub(crate) embedding: Tensor,
    pub(crate) frame_embedding: Option<Tensor>,
    pub(crate) transformer_out: Tensor,
    pub(crate) pooled: Option<Tensor>,
    pub(crate) logits: Tensor,
    saved: TokensSaved,
}

struct TokensSaved {
    pos: LinearSaved,
    pre_relu: Tensor,
    frame_arg: Option<Tensor>,
    frame_in_shape: Vec<usize>,
    transformer: TransformerSaved,
    pool_arg: Option<Tensor>,
    head: Option<HeadSaved>,
}

/// `mlp_head`: LayerNorm → Linear → GELU → Linear (dropout 0).
struct ClassHead {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

struct HeadSaved {
    norm: LayerNormLayerSaved,
    fc1: LinearSaved,
    hidden: Tensor,
    fc2: LinearSaved,
}

impl ClassHead {
    fn new(cfg: &P4TransformerConfig) -> Self {
        Self {
            norm: LayerNorm::new("mlp_head.0", cfg.dim),
            fc1: Linear::new("mlp_head.1", cfg.mlp_dim, &[cfg.dim], true),
            fc2: Linear::new("mlp_head.3", cfg.num_classes, &[cfg.mlp_dim], true),
        }
    }

    fn forward(&self, s: &mut Step<'_>, p: &ParamStore, x: &Tensor) -> Result<(Tensor, HeadSaved)> {
        let (ln_out, norm) = self.norm.forward(s, p, x)?;
        let (hidden, fc1) = self.fc1.forward(s, p, &ln_out)?;
        let hidden_act = gelu(s, &hidden)?;
        let (logits, fc2) = self.fc2.forward(s, p, &hidden_act)?;
        Ok((
            logits,
            HeadSaved {
                norm,
                fc1,
                hidden,
                fc2,
            },
        ))
    }
}

impl Layer for ClassHead {
    type Saved = HeadSaved;

    fn spec(&self, spec: &mut Spec) {
        self.norm.spec(spec);
        self.fc1.spec(spec);
        self.fc2.spec(spec);
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        sv: &HeadSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let g_act = self.fc2.backward(s, p, &sv.fc2, grad, grads)?;
        let g_hidden = gelu_backward(s, &sv.hidden, &g_act)?;
        let g_ln = self.fc1.backward(s, p, &sv.fc1, &g_hidden, grads)?;
        self.norm.backward(s, p, &sv.norm, &g_ln, grads)
    }
}

impl P4Transformer {
    /// The network with its classification head (`num_classes` outputs).
    pub fn new(cfg: P4TransformerConfig) -> Result<Self> {
        cfg.require_head("p4transformer")?;
        Self::build(cfg, true)
    }

    /// The same network without its classification head, as C2P pre-trains it
    /// (`AS_p4_pretrain.py`): forward stops at the transformer output, which
    /// `P4Forward::logits` then holds too. Its config needs no `num_classes`.
    pub fn backbone(cfg: P4TransformerConfig) -> Result<Self> {
        Self::build(cfg, false)
    }

    fn build(cfg: P4TransformerConfig, head: bool) -> Result<Self> {
        if cfg.model == ModelKind::Synthia {
            return Err(Error::InvalidArgument {
                op: "p4transformer",
                detail: "model \"p4transformer-synthia\" is the segmentation net: build it with models::synthia::SegmentationNet".into(),
            });
        }
        let tube = TubeEmbedding::new(
            "tube_embedding",
            TubeConfig {
                radius: cfg.radius,
                nsamples: cfg.nsamples,
                spatial_stride: cfg.spatial_stride(),
                temporal_kernel_size: cfg.temporal_kernel_size(),
                temporal_stride: cfg.temporal_stride(),
                temporal_padding: cfg.padding(),
                padding_mode: cfg.temporal_padding_mode,
                dim: cfg.dim,
            },
        );
        let prefix = if cfg.model == ModelKind::ActionSeg {
            "transformer1"
        } else {
            "transformer"
        };
        let transformer = Transformer::new(prefix, cfg.transformer());
        Ok(Self {
            pos_embedding: Linear::new("pos_embedding", cfg.dim, &[4, 1], true),
            mlp_head: head.then(|| ClassHead::new(&cfg)),
            cfg,
            tube,
            transformer,
            head,
            time_in_position: true,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The same model with the positional embedding's time input held at 0 (see
    /// `time_in_position`); its weights are unchanged, so a model pre-trained this way
    /// fine-tunes with time as usual.
    pub fn without_time(mut self) -> Self {
        self.time_in_position = false;
        self.cache = Mutex::new(HashMap::new());
        self
    }

    /// Whether the positional embedding sees each frame's index.
    pub fn time_in_position(&self) -> bool {
        self.time_in_position
    }

    /// Every parameter with its PyTorch name and shape, in state_dict order.
    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new();
        self.tube.spec(&mut spec);
        self.pos_embedding.spec(&mut spec);
        self.transformer.spec(&mut spec);
        if let Some(head) = &self.mlp_head {
            head.spec(&mut spec);
        }
        spec
    }

    /// Checks a clip's shape: (B, L, N, 3) with enough points and frames.
    pub fn check_clip(&self, clip: &Tensor) -> Result<()> {
        let s = clip.shape();
        if s.len() != 4 || s[3] != 3 || s.iter().any(|&d| d == 0) {
            return Err(Error::Shape {
                op: "p4transformer",
                detail: format!("clip must be (B, L, N, 3) with no empty axis, got {s:?}"),
            });
        }
        if clip.dtype() != crate::DType::F32 {
            return Err(Error::DType {
                op: "p4transformer",
                what: "clip",
                expected: crate::DType::F32,
                got: clip.dtype(),
            });
        }
        if s[2] < self.cfg.spatial_stride() {
            return Err(Error::InvalidArgument {
                op: "p4transformer",
                detail: format!(
                    "frames of {} points are fewer than spatial_stride {}: no anchors to sample",
                    s[2],
                    self.cfg.spatial_stride()
                ),
            });
        }
        self.tube.frames_out(s[1])?;
        Ok(())
    }

    pub(crate) fn shape_cache(
        &self,
        dev: &Device,
        b: usize,
        l: usize,
        npts: usize,
    ) -> Result<std::sync::Arc<ShapeCache>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&(dev.id(), b, l, npts)) {
            return Ok(c.clone());
        }
        let tables = self.tube.tables(dev, l)?;
        let n = npts / self.cfg.spatial_stride();
        let l_out = tables.frames_out;
        let time: Vec<f32> = (0..b * l_out * n)
            .map(|i| {
                if self.time_in_position {
                    ((i / n) % l_out + 1) as f32 * self.cfg.time_scale()
                } else {
                    0.0
                }
            })
            .collect();
        let time = dev.upload(&time, &[b, l_out, n.max(1), 1])?;
        let entry = std::sync::Arc::new(ShapeCache { tables, time });
        cache.insert((dev.id(), b, l, npts), entry.clone());
        Ok(entry)
    }

    /// Forward pass on clip (B, L, N, 3).
    pub fn forward(&self, s: &mut Step<'_>, p: &ParamStore, clip: &Tensor) -> Result<P4Forward> {
        self.check_clip(clip)?;
        let (b, l, npts) = (clip.shape()[0], clip.shape()[1], clip.shape()[2]);
        let cache = self.shape_cache(s.device(), b, l, npts)?;
        let (tube, tube_saved) = self.tube.forward(s, p, clip, &cache.tables)?;
        let tokens = self.tokens_forward(s, p, &tube.anchors, &tube.features, &cache.time)?;
        Ok(P4Forward {
            tube,
            embedding: tokens.embedding,
            frame_embedding: tokens.frame_embedding,
            transformer_out: tokens.transformer_out,
            pooled: tokens.pooled,
            logits: tokens.logits,
            saved: Saved {
                tube: tube_saved,
                tokens: tokens.saved,
            },
        })
    }

    /// Everything after the tube embedding: positional embedding of (anchors, t'),
    /// tokens, transformer and head. anchors (B, L', n, 3), features (B, L', n, C),
    /// time (B, L', n, 1). Streams call this on cached tube features.
    pub(crate) fn tokens_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        anchors: &Tensor,
        features: &Tensor,
        time: &Tensor,
    ) -> Result<TokensForward> {
        let (b, l_out, n, dim) = (
            anchors.shape()[0],
            anchors.shape()[1],
            anchors.shape()[2],
            self.cfg.dim,
        );
        let xyzt = concat(s, &[anchors, time], 3)?;
        let (pos, pos_saved) = self.pos_embedding.forward(s, p, &xyzt)?;
        let pre = add(s, &pos, features)?;
        let (pre_relu, relu_on, frame_arg, tokens) = match self.cfg.model {
            ModelKind::ActionSeg => {
                // Frame tokens: max over each frame's anchors, then ReLU (always).
                let (frames, arg) = max(s, &pre, 2)?;
                (frames.clone(), true, Some(arg), frames)
            }
            _ => {
                let tokens = pre.reshape(&[b, l_out * n, dim])?;
                (tokens.clone(), self.cfg.emb_relu, None, tokens)
            }
        };
        let embedding = if relu_on { relu(s, &tokens)? } else { tokens };
        let (out, tsaved) = self.transformer.forward(s, p, &embedding)?;
        let pooled = match self.cfg.model {
            ModelKind::ActionSeg => None,
            _ => Some(max(s, &out, 1)?),
        };
        let (logits, head) = match &self.mlp_head {
            Some(mlp_head) => {
                let head_in = pooled.as_ref().map_or(&out, |(m, _)| m);
                let (logits, saved) = mlp_head.forward(s, p, head_in)?;
                (logits, Some(saved))
            }
            None => (out.clone(), None),
        };
        Ok(TokensForward {
            embedding: embedding.clone(),
            frame_embedding: frame_arg.as_ref().map(|_| pre_relu.clone()),
            transformer_out: out,
            pooled: pooled.as_ref().map(|(m, _)| m.clone()),
            logits,
            saved: TokensSaved {
                pos: pos_saved,
                pre_relu: if relu_on { pre_relu } else { embedding },
                frame_arg,
                frame_in_shape: vec![b, l_out, n, dim],
                transformer: tsaved,
                pool_arg: pooled.map(|(_, arg)| arg),
                head,
            },
        })
    }

    /// Backward from d logits: parameter gradients accumulate into `grads` (by PyTorch
    /// name, in their stored shapes); returns d clip.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &P4Forward,
        grad_logits: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let g_out = match (&self.mlp_head, &fwd.saved.tokens.head) {
            (Some(mlp_head), Some(head)) => {
                let g_head_in = mlp_head.backward(s, p, head, grad_logits, grads)?;
                match &fwd.saved.tokens.pool_arg {
                    Some(arg) => max_backward(s, &g_head_in, arg, fwd.transformer_out.shape(), 1)?,
                    None => g_head_in,
                }
            }
            // A backbone's logits are its transformer output.
            _ => grad_logits.clone(),
        };
        let g_clip = self.backward_features(s, p, fwd, Some(&g_out), None, grads)?;
        *grads = stored_shapes(p, std::mem::take(grads))?;
        Ok(g_clip)
    }

    /// Backward from the features C2P distils: d transformer output (B, L', C) and,
    /// for per-frame models, d frame embedding (B, L', C) (either may be absent).
    /// Parameter gradients accumulate into `grads` (flattened shapes; pass them through
    /// [`stored_shapes`] once every backward of the step is recorded); returns d clip.
    pub fn backward_features(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &P4Forward,
        grad_out: Option<&Tensor>,
        grad_frame_embedding: Option<&Tensor>,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let sv = &fwd.saved.tokens;
        if grad_frame_embedding.is_some() && sv.frame_arg.is_none() {
            return Err(Error::InvalidArgument {
                op: "p4transformer",
                detail: "only per-frame models (p4transformer-actionseg) have a frame embedding"
                    .into(),
            });
        }
        let relu_on = self.cfg.model == ModelKind::ActionSeg || self.cfg.emb_relu;
        let g_tokens = match grad_out {
            Some(g_out) => {
                let g_emb = self
                    .transformer
                    .backward(s, p, &sv.transformer, g_out, grads)?;
                Some(if relu_on {
                    relu_backward(s, &sv.pre_relu, &g_emb)?
                } else {
                    g_emb
                })
            }
            None => None,
        };
        let g_tokens =
            match (g_tokens, grad_frame_embedding) {
                (Some(a), Some(b)) => add(s, &a, b)?,
                (Some(a), None) => a,
                (None, Some(b)) => b.clone(),
                (None, None) => return Err(Error::InvalidArgument {
                    op: "p4transformer",
                    detail:
                        "backward_features needs a gradient of the output or of the frame embedding"
                            .into(),
                }),
            };
        let g_pre = match &sv.frame_arg {
            Some(arg) => max_backward(s, &g_tokens, arg, &sv.frame_in_shape, 2)?,
            None => g_tokens.reshape(&sv.frame_in_shape)?,
        };
        // pre = pos_embedding(xyzt) + features: both receive g_pre.
        let g_xyzt = self.pos_embedding.backward(s, p, &sv.pos, &g_pre, grads)?;
        let g_anchor = concat_backward(s, &g_xyzt, &[3, 1], 3)?.swap_remove(0);
        self.tube
            .backward(s, p, &fwd.saved.tube, &g_pre, Some(&g_anchor), grads)
    }
}

/// Weight gradients reshaped to their parameters' stored shapes.
pub fn stored_shapes(p: &ParamStore, mut grads: Grads) -> Result<Grads> {
    for spec in p.spec() {
        if let Some(g) = grads.remove(&spec.name) {
            grads.insert(spec.name.clone(), g.reshape(&spec.shape)?);
        }
    }
    Ok(grads)
}
