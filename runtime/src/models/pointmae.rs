//! Point-MAE's tokenizer and encoder (models/Point_MAE.py `Group` + `MaskTransformer`
//! with no masking; reference-spec §6), under Point-MAE's state_dict names:
//!
//! points (B, N, 3) ─FPS→ centres (B, G, 3) ─kNN(M)→ neighbourhoods − centre
//!   ─mini-PointNet (first_conv, max, [global, local], second_conv, max)→ tokens (B, G, C)
//! centres ─pos_embed (Linear, GELU, Linear)→ pos (B, G, C)
//! x₀ = tokens;  F_l = x_{l−1} + pos;  x_l = block_l(F_l);  features = norm(x_depth)
//!
//! The per-layer inputs F_l are kept: the concept head reads them (§7). The
//! mini-PointNet runs neighbour-major, (M, B·G, ·), so the per-group values it
//! broadcasts over neighbours (centre, global feature) are trailing operands.

use serde::Deserialize;

use super::layers::{
    BatchNormRelu, BatchNormReluSaved, Layer, LayerNorm, LayerNormLayerSaved, Linear, LinearSaved,
};
use super::linear::{linear, linear_backward};
use super::params::{accumulate, Grads, Init, ParamSpec, ParamStore, Spec};
use super::transformer::{BlockStyle, LayerSaved, Transformer, TransformerConfig};
use crate::ops::elementwise::{add, add_backward, scale};
use crate::ops::layout::{concat, permute, permute_backward, slice};
use crate::ops::matmul::Epilogue;
use crate::ops::point::{fps, gather_rows, gather_rows_backward, inverse_index, knn, KNN_MAX_K};
use crate::ops::reduce::{max, max_backward};
use crate::{Error, Result, Step, Tensor};

/// Widths of the mini-PointNet's hidden layers (fixed in Point-MAE).
const FIRST_HIDDEN: usize = 128;
const LOCAL: usize = 256;
const SECOND_HIDDEN: usize = 512;

/// A Point-MAE encoder configuration (the reference config's key names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointMaeConfig {
    /// Always "point-mae".
    pub model: String,
    /// G: groups (tokens) per cloud.
    pub num_group: usize,
    /// M: points per group.
    pub group_size: usize,
    pub trans_dim: usize,
    /// Token width out of the mini-PointNet; must equal `trans_dim`.
    pub encoder_dims: usize,
    pub depth: usize,
    pub num_heads: usize,
    /// Concept distillation (§7): learnable concept queries.
    #[serde(default)]
    pub concepts: Option<usize>,
    /// Teacher prefix tokens (ClipCap: 10) and their width (GPT-2: 768).
    #[serde(default)]
    pub prefix_length: Option<usize>,
    #[serde(default)]
    pub prefix_dim: Option<usize>,
    /// Hidden width of the concept MLP (spec: 3840).
    #[serde(default)]
    pub concept_hidden: Option<usize>,
    /// Points per cloud the data loader resamples to (Point-MAE: 1024).
    #[serde(default = "default_npoints")]
    pub npoints: usize,
    /// Object classes of the fine-tuning head (`cls_head_finetune`); 0 or absent: none.
    #[serde(default)]
    pub num_classes: usize,
}

fn default_npoints() -> usize {
    1024
}

impl PointMaeConfig {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = super::config::from_toml(text, origin)?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let (text, origin) = super::config::read_config(path.as_ref())?;
        Self::parse(&text, &origin)
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Config {
                path: origin.to_string(),
                detail,
            })
        };
        if self.model != "point-mae" {
            return bad(format!("model = {:?}, expected \"point-mae\"", self.model));
        }
        for (key, v) in [
            ("num_group", self.num_group),
            ("group_size", self.group_size),
            ("trans_dim", self.trans_dim),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
            ("npoints", self.npoints),
        ] {
            if v == 0 {
                return bad(format!("{key} must be positive"));
            }
        }
        if self.group_size > KNN_MAX_K {
            return bad(format!(
                "group_size = {} exceeds the kNN kernel's {KNN_MAX_K}",
                self.group_size
            ));
        }
        if self.npoints < self.num_group.max(self.group_size) {
            return bad(format!(
                "npoints = {} cannot make {} groups of {}",
                self.npoints, self.num_group, self.group_size
            ));
        }
        if self.encoder_dims != self.trans_dim {
            return bad(format!(
                "encoder_dims = {} must equal trans_dim = {} (Point-MAE feeds tokens to the blocks directly)",
                self.encoder_dims, self.trans_dim
            ));
        }
        if self.trans_dim % self.num_heads != 0 {
            return bad(format!(
                "trans_dim = {} is not a multiple of num_heads = {}",
                self.trans_dim, self.num_heads
            ));
        }
        let concept_keys = [
            self.concepts,
            self.prefix_length,
            self.prefix_dim,
            self.concept_hidden,
        ];
        if concept_keys.iter().any(Option::is_some) && concept_keys.iter().any(Option::is_none) {
            return bad(
                "concepts, prefix_length, prefix_dim and concept_hidden go together: set all four or none"
                    .into(),
            );
        }
        if concept_keys.contains(&Some(0)) {
            return bad("concept sizes must be positive".into());
        }
        self.check_sizes().or_else(bad)
    }

    /// Refuses weights and clouds no device can hold, by key, before allocating.
    fn check_sizes(&self) -> std::result::Result<(), String> {
        let v = |x: usize| x as u128;
        let d = v(self.trans_dim);
        let concepts = v(self.concepts.unwrap_or(0));
        let hidden = v(self.concept_hidden.unwrap_or(0));
        let prefix = v(self.prefix_length.unwrap_or(0)) * v(self.prefix_dim.unwrap_or(0));
        let clouds = [
            ("npoints (one cloud's points)", v(self.npoints) * 3),
            (
                "num_group and group_size (one cloud's groups)",
                v(self.num_group) * v(self.group_size) * 3,
            ),
        ];
        // A cloud's points and groups are bindings too, at one cloud per batch.
        for (keys, floats) in clouds {
            if floats > (128 << 20) / 4 {
                return Err(format!(
                    "{keys} make {floats} floats per cloud, above the 128 MiB one tensor may take: make them smaller"
                ));
            }
        }
        super::config::check_weight_sizes(
            &[
                ("trans_dim (to_qkv)", 3 * d * d),
                ("trans_dim (the feed-forward)", 4 * d * d),
                // The concept head's fc1 and fc2 are held as row blocks when larger
                // than one binding (models::layers::Linear); their rows must fit.
                (
                    "concepts and trans_dim (one row of the concept head's fc1)",
                    concepts * d,
                ),
                (
                    "concept_hidden (one row of the concept head's fc2)",
                    hidden,
                ),
                ("num_classes (the class head)", 256 * v(self.num_classes)),
            ],
            &format!(
                "depth = {} blocks of trans_dim = {} and the concept head (concepts, concept_hidden, prefix_length × prefix_dim)",
                self.depth, self.trans_dim
            ),
            v(self.depth) * 12 * d * d + concepts * d * hidden + prefix * hidden,
        )
    }

    pub fn transformer(&self) -> TransformerConfig {
        TransformerConfig {
            dim: self.trans_dim,
            depth: self.depth,
            heads: self.num_heads,
            dim_head: self.trans_dim / self.num_heads,
            mlp_dim: 4 * self.trans_dim,
        }
    }
}

/// The Point-MAE encoder.
#[derive(Debug, Clone)]
pub struct PointMae {
    pub cfg: PointMaeConfig,
    tokenizer: Tokenizer,
    blocks: Transformer,
    norm: LayerNorm,
}

/// The mini-PointNet (`encoder.*`) and the position embedding (`pos_embed.*`).
#[derive(Debug, Clone)]
struct Tokenizer {
    first_conv0: Linear,
    first_conv1: BatchNormRelu,
    first_conv3: Linear,
    /// Applied as two column blocks (global, local): see `split_second_conv`.
    second_conv0: Linear,
    second_conv1: BatchNormRelu,
    second_conv3: Linear,
    pos_embed0: Linear,
    pos_embed2: Linear,
}

impl Tokenizer {
    fn new(c: usize) -> Self {
        Self {
            first_conv0: Linear::new("encoder.first_conv.0", FIRST_HIDDEN, &[3, 1], true),
            first_conv1: BatchNormRelu::new("encoder.first_conv.1", FIRST_HIDDEN),
            first_conv3: Linear::new("encoder.first_conv.3", LOCAL, &[FIRST_HIDDEN, 1], true),
            second_conv0: Linear::new(
                "encoder.second_conv.0",
                SECOND_HIDDEN,
                &[2 * LOCAL, 1],
                true,
            ),
            second_conv1: BatchNormRelu::new("encoder.second_conv.1", SECOND_HIDDEN),
            second_conv3: Linear::new("encoder.second_conv.3", c, &[SECOND_HIDDEN, 1], true),
            pos_embed0: Linear::new("pos_embed.0", 128, &[3], true),
            pos_embed2: Linear::new("pos_embed.2", c, &[128], true),
        }
    }

    fn spec(&self, spec: &mut Spec) {
        self.first_conv0.spec(spec);
        self.first_conv1.spec(spec);
        self.first_conv3.spec(spec);
        self.second_conv0.spec(spec);
        self.second_conv1.spec(spec);
        self.second_conv3.spec(spec);
        self.pos_embed0.spec(spec);
        self.pos_embed2.spec(spec);
    }
}

/// The tokenizer's outputs (groups, tokens, positions) and what its backward needs.
pub struct PointMaeTokens {
    /// FPS centres' indices (B, G), u32.
    pub fps_idx: Tensor,
    /// Centres (B, G, 3).
    pub center: Tensor,
    /// Each group's neighbours (B, G, M), u32, nearest first.
    pub knn_idx: Tensor,
    /// Neighbour − centre, neighbour-major: (M, B, G, 3).
    pub neighborhood: Tensor,
    /// Mini-PointNet output (B, G, C).
    pub tokens: Tensor,
    /// Position embedding of the centres (B, G, C).
    pub pos: Tensor,
    saved: TokenizerSaved,
}

/// Everything the forward pass produced; the tensors the backward pass needs included.
pub struct PointMaeForward {
    pub tokens: PointMaeTokens,
    pub blocks: BlocksForward,
}

struct TokenizerSaved {
    points: Tensor,
    fps_rows: Tensor,
    knn_rows: Tensor,
    conv0: LinearSaved,
    bn1: BatchNormReluSaved,
    conv3: LinearSaved,
    local: Tensor,
    global: Tensor,
    global_arg: Tensor,
    bn2: BatchNormReluSaved,
    second_conv3: LinearSaved,
    out_arg: Tensor,
    pos0: LinearSaved,
    pos_hidden: Tensor,
    pos2: LinearSaved,
}

/// The transformer part: per-layer inputs, final features and what backward needs.
pub struct BlocksForward {
    /// pos (B, G, C).
    pub pos: Tensor,
    /// F_l = x_{l−1} + pos for l = 1..depth, each (B, G, C).
    pub layer_inputs: Vec<Tensor>,
    /// norm(x_depth) (B, G, C).
    pub features: Tensor,
    layers: Vec<LayerSaved>,
    norm: LayerNormLayerSaved,
}

impl PointMae {
    pub fn new(cfg: PointMaeConfig) -> Result<Self> {
        cfg.validate("PointMaeConfig")?;
        let blocks = Transformer::with_style("blocks.blocks", cfg.transformer(), BlockStyle::Timm);
        Ok(Self {
            tokenizer: Tokenizer::new(cfg.trans_dim),
            norm: LayerNorm::new("norm", cfg.trans_dim),
            cfg,
            blocks,
        })
    }

    /// The transformer blocks (Point-MAE names), for callers that bring their own tokens.
    pub fn blocks(&self) -> &Transformer {
        &self.blocks
    }

    /// The encoder's parameters and BatchNorm buffers, in state_dict order. Weights start
    /// as Point-MAE initialises them: trunc_normal(std .02), biases 0.
    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new();
        self.tokenizer.spec(&mut spec);
        self.blocks.spec(&mut spec);
        self.norm.spec(&mut spec);
        point_mae_init(&mut spec);
        spec
    }

    /// points (B, N, 3) → tokens, per-layer inputs and features. `train` selects batch
    /// statistics (and running-statistic updates) in the mini-PointNet's BatchNorms.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        points: &Tensor,
        train: bool,
    ) -> Result<PointMaeForward> {
        let tokens = self.tokenize(s, p, points, train)?;
        let blocks = self.blocks_forward(s, p, &tokens.tokens, &tokens.pos)?;
        Ok(PointMaeForward { tokens, blocks })
    }

    /// points (B, N, 3) → groups, tokens and position embeddings (B, G, C).
    pub fn tokenize(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        points: &Tensor,
        train: bool,
    ) -> Result<PointMaeTokens> {
        let sh = points.shape();
        if sh.len() != 3 || sh[2] != 3 {
            return Err(Error::Shape {
                op: "point_mae",
                detail: format!("points must be (B, N, 3), got {sh:?}"),
            });
        }
        let (b, n) = (sh[0], sh[1]);
        let (g, m) = (self.cfg.num_group, self.cfg.group_size);
        if n < g || n < m {
            return Err(Error::InvalidArgument {
                op: "point_mae",
                detail: format!("{n} points per cloud cannot make {g} groups of {m}"),
            });
        }
        let flat = points.reshape(&[b * n, 3])?;
        let sel = fps(s, points, g)?;
        let center = gather_rows(s, &flat, &sel.rows, 1, None)?.reshape(&[b, g, 3])?;
        let (near, _) = knn(s, points, &center, m)?;
        let grouped = gather_rows(s, &flat, &near.rows, 1, None)?.reshape(&[b, g, m, 3])?;
        let grouped = permute(s, &grouped, &[2, 0, 1, 3])?;
        let neg_center = scale(s, &center, -1.0)?;
        let neighborhood = add(s, &grouped, &neg_center)?;

        // Mini-PointNet over (M, B·G) rows.
        let bg = b * g;
        let x0 = neighborhood.reshape(&[m * bg, 3])?;
        let tk = &self.tokenizer;
        let (a1, conv0) = tk.first_conv0.forward(s, p, &x0)?;
        let (h1, bn1) = tk.first_conv1.forward(s, p, &a1, train)?;
        let (local, conv3) = tk.first_conv3.forward(s, p, &h1)?;
        let local = local.reshape(&[m, bg, LOCAL])?;
        let (global, global_arg) = max(s, &local, 0)?;
        // second_conv.0 on [global, local] = W_global·global + W_local·local + b.
        let (w_global, w_local, bias) = self.split_second_conv(s, p)?;
        let from_local = linear(s, &local, &w_local, Some(bias))?;
        let from_global = linear(s, &global, &w_global, None)?;
        let a2 = add(s, &from_local, &from_global)?.reshape(&[m * bg, SECOND_HIDDEN])?;
        let (h2, bn2) = tk.second_conv1.forward(s, p, &a2, train)?;
        let (out, second_conv3) = tk.second_conv3.forward(s, p, &h2)?;
        let out = out.reshape(&[m, bg, self.cfg.encoder_dims])?;
        let (tokens, out_arg) = max(s, &out, 0)?;
        let tokens = tokens.reshape(&[b, g, self.cfg.encoder_dims])?;

        let (pos_hidden, pos_hidden_gelu, pos0) =
            tk.pos_embed0.forward_gelu(s, p, &center, None)?;
        let (pos, pos2) = tk.pos_embed2.forward(s, p, &pos_hidden_gelu)?;
        Ok(PointMaeTokens {
            fps_idx: sel.idx,
            center,
            knn_idx: near.idx,
            neighborhood,
            tokens,
            pos,
            saved: TokenizerSaved {
                points: points.clone(),
                fps_rows: sel.rows,
                knn_rows: near.rows,
                conv0,
                bn1,
                conv3,
                local,
                global,
                global_arg,
                bn2,
                second_conv3,
                out_arg,
                pos0,
                pos_hidden,
                pos2,
            },
        })
    }

    /// second_conv.0's weight split into the columns that read the global feature and
    /// those that read the per-point feature (the concat puts global first), and its bias.
    fn split_second_conv<'p>(
        &self,
        s: &mut Step<'_>,
        p: &'p ParamStore,
    ) -> Result<(Tensor, Tensor, &'p Tensor)> {
        let conv = &self.tokenizer.second_conv0;
        let w = p.matrix(conv.weight_name())?;
        let bias = p.get(conv.bias_name().unwrap_or_default())?;
        Ok((
            slice(s, &w, 1, 0, LOCAL)?,
            slice(s, &w, 1, LOCAL, LOCAL)?,
            bias,
        ))
    }

    /// tokens, pos (B, G, C) → per-layer inputs and final features.
    pub fn blocks_forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        tokens: &Tensor,
        pos: &Tensor,
    ) -> Result<BlocksForward> {
        let depth = self.cfg.depth;
        let mut layer_inputs = Vec::with_capacity(depth);
        let mut layers = Vec::with_capacity(depth);
        let mut x = tokens.clone();
        for l in 0..depth {
            let f = add(s, &x, pos)?;
            let (y, saved) = self.blocks.layer_forward(s, p, l, &f)?;
            layer_inputs.push(f);
            layers.push(saved);
            x = y;
        }
        let (features, norm) = self.norm.forward(s, p, &x)?;
        Ok(BlocksForward {
            pos: pos.clone(),
            layer_inputs,
            features,
            layers,
            norm,
        })
    }

    /// Backward of `blocks_forward` given the gradient of the features and/or of each
    /// layer input (the concept head's): returns (d tokens, d pos).
    pub fn blocks_backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &BlocksForward,
        grad_features: Option<&Tensor>,
        grad_layer_inputs: &[Tensor],
        grads: &mut Grads,
    ) -> Result<(Tensor, Tensor)> {
        let depth = self.cfg.depth;
        if !(grad_layer_inputs.is_empty() || grad_layer_inputs.len() == depth) {
            return Err(Error::InvalidArgument {
                op: "point_mae_backward",
                detail: format!(
                    "{} layer-input gradients for {depth} layers",
                    grad_layer_inputs.len()
                ),
            });
        }
        let mut g = match grad_features {
            Some(gf) => Some(self.norm.backward(s, p, &fwd.norm, gf, grads)?),
            None => None,
        };
        let mut g_pos: Option<Tensor> = None;
        for l in (0..depth).rev() {
            let from_block = match &g {
                Some(gx) => Some(
                    self.blocks
                        .layer_backward(s, p, l, &fwd.layers[l], gx, grads)?,
                ),
                None => None,
            };
            let g_f = match (from_block, grad_layer_inputs.get(l)) {
                (Some(a), Some(b)) => add(s, &a, b)?,
                (Some(a), None) => a,
                (None, Some(b)) => b.clone(),
                (None, None) => {
                    return Err(Error::InvalidArgument {
                        op: "point_mae_backward",
                        detail: "no gradient to propagate".into(),
                    })
                }
            };
            g_pos = Some(match g_pos {
                Some(acc) => add(s, &acc, &g_f)?,
                None => g_f.clone(),
            });
            g = Some(g_f);
        }
        Ok((g.unwrap(), g_pos.unwrap()))
    }

    /// Full backward: d points (B, N, 3); parameter gradients accumulate into `grads`.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &PointMaeForward,
        grad_features: Option<&Tensor>,
        grad_layer_inputs: &[Tensor],
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let (g_tokens, g_pos) =
            self.blocks_backward(s, p, &fwd.blocks, grad_features, grad_layer_inputs, grads)?;
        self.tokenize_backward(s, p, &fwd.tokens, &g_tokens, &g_pos, grads)
    }

    /// Backward of `tokenize` given d tokens and d pos: d points (B, N, 3).
    pub fn tokenize_backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &PointMaeTokens,
        g_tokens: &Tensor,
        g_pos: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let sv = &fwd.saved;
        let (b, g, m) = (
            fwd.center.shape()[0],
            self.cfg.num_group,
            self.cfg.group_size,
        );
        let bg = b * g;
        let n = sv.points.shape()[1];

        // Position embedding → centres.
        let tk = &self.tokenizer;
        let through_gelu = Epilogue::GeluGrad(&sv.pos_hidden);
        let g_hidden =
            tk.pos_embed2
                .backward_epilogue(s, p, &sv.pos2, g_pos, grads, through_gelu)?;
        let g_center_pos = tk.pos_embed0.backward(s, p, &sv.pos0, &g_hidden, grads)?;

        // Mini-PointNet, back to the neighbourhoods.
        let c = self.cfg.encoder_dims;
        let g_out = max_backward(s, &g_tokens.reshape(&[bg, c])?, &sv.out_arg, &[m, bg, c], 0)?
            .reshape(&[m * bg, c])?;
        let g_h2 = tk
            .second_conv3
            .backward(s, p, &sv.second_conv3, &g_out, grads)?;
        let g_a2 = tk
            .second_conv1
            .backward(s, p, &sv.bn2, &g_h2, grads)?
            .reshape(&[m, bg, SECOND_HIDDEN])?;
        let (g_from_local, g_from_global) = add_backward(s, &g_a2, &[bg, SECOND_HIDDEN])?;
        let (w_global, w_local, _) = self.split_second_conv(s, p)?;
        let (g_local, gw_local, gb) = linear_backward(s, &sv.local, &w_local, &g_from_local, true)?;
        let (g_global, gw_global, _) =
            linear_backward(s, &sv.global, &w_global, &g_from_global, false)?;
        let gw = concat(s, &[&gw_global, &gw_local], 1)?.reshape(&[SECOND_HIDDEN, 2 * LOCAL, 1])?;
        let conv = &tk.second_conv0;
        accumulate(s, grads, conv.weight_name(), gw)?;
        if let (Some(name), Some(gb)) = (conv.bias_name(), gb) {
            accumulate(s, grads, name, gb)?;
        }
        let g_local_max = max_backward(s, &g_global, &sv.global_arg, &[m, bg, LOCAL], 0)?;
        let g_local = add(s, &g_local, &g_local_max)?.reshape(&[m * bg, LOCAL])?;
        let g_h1 = tk.first_conv3.backward(s, p, &sv.conv3, &g_local, grads)?;
        let g_a1 = tk.first_conv1.backward(s, p, &sv.bn1, &g_h1, grads)?;
        let g_x0 = tk.first_conv0.backward(s, p, &sv.conv0, &g_a1, grads)?;

        // neighbourhood = grouped − centre: grouped rows scatter to their points, and
        // each centre receives −Σ over its neighbours plus the position-embedding path.
        let g_nb = g_x0.reshape(&[m, b, g, 3])?;
        let (_, g_center_nb) = add_backward(s, &g_nb, &[b, g, 3])?;
        let g_center_nb = scale(s, &g_center_nb, -1.0)?;
        let g_center = add(s, &g_center_pos, &g_center_nb)?;
        let g_grouped = permute_backward(s, &g_nb, &[2, 0, 1, 3])?;
        let knn_inv = inverse_index(s, &sv.knn_rows, b * n)?;
        let from_groups = gather_rows_backward(s, &g_grouped, &knn_inv, 3, 3, 1, None)?;
        let fps_inv = inverse_index(s, &sv.fps_rows, b * n)?;
        let from_centers = gather_rows_backward(s, &g_center, &fps_inv, 3, 3, 1, None)?;
        add(s, &from_groups, &from_centers)?.reshape(&[b, n, 3])
    }
}

/// Point-MAE's `_init_weights`: Linear and Conv1d weights trunc_normal(std .02), their
/// biases 0; norms keep (1, 0).
pub(crate) fn point_mae_init(spec: &mut [ParamSpec]) {
    for p in spec.iter_mut() {
        if let Init::Uniform { .. } = p.init {
            p.init = if p.name.ends_with(".bias") {
                Init::Zeros
            } else {
                Init::TruncNormal { std: 0.02 }
            };
        }
    }
}
