//! The P4Transformer segmentation net (models/synthia.py; reference-spec §4.2): four
//! P4DConv levels with BatchNorm and ReLU after every 1×1 conv (spatial max, temporal
//! sum, replicate padding, operator '+'), ReLU + transformer on conv4's tokens (no
//! positional embedding), four P4DTransConv feature-propagation levels and a 1×1 output
//! conv. Output (B, L, N, classes), channels-last.
//!
//! BatchNorm runs once per PyTorch call: in P4DConv once per (output frame, temporal
//! offset), in P4DTransConv once per frame, each with its own batch statistics and its
//! own running-statistics update, in PyTorch's order.

use super::config::P4TransformerConfig;
use super::layers::{
    BatchNormRelu, BatchNormReluSaved, ConvBnRelu, ConvBnReluSaved, Layer, Linear, LinearSaved,
};
use super::p4dconv::{displacement_backward, TubeConfig, TubeEmbedding};
use super::params::{Grads, ParamStore, Spec};
use super::transformer::{Transformer, TransformerSaved};
use crate::ops::activation::{relu, relu_backward};
use crate::ops::elementwise::add;
use crate::ops::layout::{concat, concat_backward, permute, permute_backward, slice};
use crate::ops::point::{
    ball_query_frames, displacement, fps_frames, gather_rows, gather_rows_backward, inverse_index,
    three_nn, Balls, Selection,
};
use crate::ops::reduce::{max, max_backward};
use crate::{Error, Result, Step, Tensor};

/// P4DConv with features and a BN/ReLU MLP (conv1..conv4 of the segmentation net).
struct SegConv {
    prefix: String,
    in_planes: usize,
    planes: [usize; 3],
    tube: TubeEmbedding,
    conv_d0: Linear,
    conv_d1: BatchNormRelu,
    /// conv_f.0 and conv_f.1, when the level has input features.
    conv_f: Option<(Linear, BatchNormRelu)>,
    mlp: [ConvBnRelu; 2],
}

struct Call {
    d: BatchNormReluSaved,
    f: Option<BatchNormReluSaved>,
    mlp: Vec<ConvBnReluSaved>,
    arg: Tensor,
}

struct SegConvSaved {
    xyz_shape: Vec<usize>,
    feat_shape: Vec<usize>,
    disp: LinearSaved,
    /// The displacement rows' count (E·4 values).
    disp_rows: usize,
    gathered: Option<LinearSaved>,
    sel: Selection,
    balls: Balls,
    calls: Vec<Call>,
    calls_shape: [usize; 3],
}

impl SegConv {
    fn new(
        prefix: &str,
        in_planes: usize,
        planes: [usize; 3],
        radius: f32,
        k: usize,
        stride: usize,
        kt: usize,
    ) -> Self {
        let pad = kt / 2;
        let n = |rest: &str| format!("{prefix}.{rest}");
        let [c0, c1, c2] = planes;
        Self {
            prefix: prefix.to_string(),
            in_planes,
            planes,
            conv_d0: Linear::new(&n("conv_d.0"), c0, &[4, 1, 1], false),
            conv_d1: BatchNormRelu::new(&n("conv_d.1"), c0),
            conv_f: (in_planes > 0).then(|| {
                (
                    Linear::new(&n("conv_f.0"), c0, &[in_planes, 1, 1], false),
                    BatchNormRelu::new(&n("conv_f.1"), c0),
                )
            }),
            mlp: [
                ConvBnRelu::new(&n("mlp.0"), &n("mlp.1"), c1, &[c0, 1, 1]),
                ConvBnRelu::new(&n("mlp.3"), &n("mlp.4"), c2, &[c1, 1, 1]),
            ],
            tube: TubeEmbedding::new(
                prefix,
                TubeConfig {
                    radius,
                    nsamples: k,
                    spatial_stride: stride,
                    temporal_kernel_size: kt,
                    temporal_stride: 1,
                    temporal_padding: [pad, pad],
                    padding_mode: super::p4dconv::PaddingMode::Replicate,
                    dim: planes[0],
                },
            ),
        }
    }

    fn spec(&self, spec: &mut Spec) {
        self.conv_d0.spec(spec);
        self.conv_d1.spec(spec);
        if let Some((conv, bn)) = &self.conv_f {
            conv.spec(spec);
            bn.spec(spec);
        }
        for unit in &self.mlp {
            unit.spec(spec);
        }
    }

    /// xyz (B, L, N, 3), features (B, L, N, C_in) → (anchors (B, L, n, 3), (B, L, n, C)).
    fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        xyz: &Tensor,
        feat: &Tensor,
        train: bool,
    ) -> Result<(Tensor, Tensor, SegConvSaved)> {
        let c = &self.tube.cfg;
        let (b, l, npts) = (xyz.shape()[0], xyz.shape()[1], xyz.shape()[2]);
        let n = npts / c.spatial_stride;
        if n == 0 {
            return Err(Error::InvalidArgument {
                op: "p4dconv",
                detail: format!(
                    "{}: frames of {npts} points are fewer than spatial_stride {}",
                    self.prefix, c.spatial_stride
                ),
            });
        }
        let tables = self.tube.tables(s.device(), l)?;
        let (l_out, kt, k, c0) = (
            tables.frames_out,
            c.temporal_kernel_size,
            c.nsamples,
            self.planes[0],
        );
        let sel = fps_frames(s, xyz, &tables.anchor, n)?;
        let flat = xyz.reshape(&[b * l * npts, 3])?;
        let anchors = gather_rows(s, &flat, &sel.rows, 1, None)?.reshape(&[b, l_out, n, 3])?;
        let balls = ball_query_frames(s, xyz, &anchors, &tables.neighbour, kt, c.radius, k)?;
        let disp = displacement(s, &flat, &anchors, &balls.rows, 0.0)?;
        let calls = l_out * kt;
        let call_major = |s: &mut Step<'_>, h: &Tensor| -> Result<Tensor> {
            permute(s, &h.reshape(&[b, calls, n * k * c0])?, &[1, 0, 2])
        };
        let disp_rows = disp.numel() / 4;
        let (hd_rows, disp) = self.conv_d0.forward(s, p, &disp)?;
        let hd = call_major(s, &hd_rows)?;
        let (gathered, hf) = match &self.conv_f {
            Some((conv, _)) => {
                let g = gather_rows(
                    s,
                    &feat.reshape(&[b * l * npts, self.in_planes])?,
                    &balls.rows,
                    1,
                    None,
                )?;
                let (h, saved) = conv.forward(s, p, &g)?;
                (Some(saved), Some(call_major(s, &h)?))
            }
            None => (None, None),
        };
        let mut saved_calls = Vec::with_capacity(calls);
        let mut frames = Vec::with_capacity(l_out);
        for t in 0..l_out {
            let mut pooled_sum: Option<Tensor> = None;
            for o in 0..kt {
                let call = t * kt + o;
                let xd = slice(s, &hd, 0, call, 1)?.reshape(&[b * n * k, c0])?;
                let (yd, d) = self.conv_d1.forward(s, p, &xd, train)?;
                let (mut h, f) = match (&hf, &self.conv_f) {
                    (Some(hf), Some((_, bn))) => {
                        let xf = slice(s, hf, 0, call, 1)?.reshape(&[b * n * k, c0])?;
                        let (yf, f) = bn.forward(s, p, &xf, train)?;
                        (add(s, &yd, &yf)?, Some(f))
                    }
                    _ => (yd, None),
                };
                let mut mlp = Vec::new();
                for unit in &self.mlp {
                    let (y, u) = unit.forward(s, p, &h, train)?;
                    mlp.push(u);
                    h = y;
                }
                let c2 = self.planes[2];
                let (pooled, arg) = max(s, &h.reshape(&[b * n, k, c2])?, 1)?;
                pooled_sum = Some(match pooled_sum {
                    Some(acc) => add(s, &acc, &pooled)?,
                    None => pooled,
                });
                saved_calls.push(Call { d, f, mlp, arg });
            }
            frames.push(
                pooled_sum
                    .expect("kt >= 1")
                    .reshape(&[b, 1, n, self.planes[2]])?,
            );
        }
        let parts: Vec<&Tensor> = frames.iter().collect();
        let features = concat(s, &parts, 1)?;
        Ok((
            anchors,
            features,
            SegConvSaved {
                xyz_shape: xyz.shape().to_vec(),
                feat_shape: feat.shape().to_vec(),
                disp,
                disp_rows,
                gathered,
                sel,
                balls,
                calls: saved_calls,
                calls_shape: [calls, b, n * k * c0],
            },
        ))
    }

    /// (d xyz, d features-in) from d features (B, L', n, C) and d anchors (B, L', n, 3).
    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        sv: &SegConvSaved,
        g_feat: &Tensor,
        g_anchors: Option<&Tensor>,
        grads: &mut Grads,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let kt = self.tube.cfg.temporal_kernel_size;
        let k = self.tube.cfg.nsamples;
        let (b, l_out, n) = (g_feat.shape()[0], g_feat.shape()[1], g_feat.shape()[2]);
        let (c0, c2) = (self.planes[0], self.planes[2]);
        let mut gd_calls = Vec::new();
        let mut gf_calls = Vec::new();
        for t in 0..l_out {
            let g_t = slice(s, g_feat, 1, t, 1)?.reshape(&[b * n, c2])?;
            for o in 0..kt {
                let call = &sv.calls[t * kt + o];
                let mut g = max_backward(s, &g_t, &call.arg, &[b * n, k, c2], 1)?
                    .reshape(&[b * n * k, c2])?;
                for (unit, u) in self.mlp.iter().zip(&call.mlp).rev() {
                    g = unit.backward(s, p, u, &g, grads)?;
                }
                gd_calls.push(self.conv_d1.backward(s, p, &call.d, &g, grads)?.reshape(&[
                    1,
                    b,
                    n * k * c0,
                ])?);
                if let (Some(f), Some((_, bn))) = (&call.f, &self.conv_f) {
                    gf_calls.push(
                        bn.backward(s, p, f, &g, grads)?
                            .reshape(&[1, b, n * k * c0])?,
                    );
                }
            }
        }
        let e = sv.disp_rows;
        let from_calls = |s: &mut Step<'_>, parts: &[Tensor]| -> Result<Tensor> {
            let refs: Vec<&Tensor> = parts.iter().collect();
            let g = concat(s, &refs, 0)?;
            permute_backward(s, &g, &[1, 0, 2])?.reshape(&[e, c0])
        };
        let g_hd = from_calls(s, &gd_calls)?;
        let g_disp = self.conv_d0.backward(s, p, &sv.disp, &g_hd, grads)?;
        let g_xyz = displacement_backward(
            s,
            &g_disp,
            &sv.balls.rows,
            &sv.sel.rows,
            g_anchors,
            &sv.xyz_shape,
        )?;
        let g_feat_in = match (&sv.gathered, &self.conv_f) {
            (Some(gathered), Some((conv, _))) => {
                let g_hf = from_calls(s, &gf_calls)?;
                let g_gathered = conv.backward(s, p, gathered, &g_hf, grads)?;
                let points: usize = sv.xyz_shape[..3].iter().product();
                let inv = inverse_index(s, &sv.balls.rows, points)?;
                Some(
                    gather_rows_backward(
                        s,
                        &g_gathered,
                        &inv,
                        self.in_planes,
                        self.in_planes,
                        1,
                        None,
                    )?
                    .reshape(&sv.feat_shape)?,
                )
            }
            _ => None,
        };
        let _ = sv.calls_shape;
        Ok((g_xyz, g_feat_in))
    }
}

/// P4DTransConv: three_nn interpolation from the coarse level, concatenated with the
/// skip features, then 1×1 conv + BN + ReLU layers, BatchNorm per frame.
struct SegDeconv {
    in_planes: usize,
    orig_planes: usize,
    planes: [usize; 2],
    units: [ConvBnRelu; 2],
}

struct FrameSaved {
    rows: Tensor,
    weight: Tensor,
    units: Vec<ConvBnReluSaved>,
}

struct SegDeconvSaved {
    frames: Vec<FrameSaved>,
    coarse_shape: Vec<usize>,
    orig_shape: Vec<usize>,
}

impl SegDeconv {
    fn new(prefix: &str, in_planes: usize, orig_planes: usize, planes: [usize; 2]) -> Self {
        let n = |rest: &str| format!("{prefix}.{rest}");
        let [c1, c2] = planes;
        Self {
            in_planes,
            orig_planes,
            planes,
            units: [
                ConvBnRelu::new(
                    &n("conv.0"),
                    &n("conv.1"),
                    c1,
                    &[in_planes + orig_planes, 1],
                ),
                ConvBnRelu::new(&n("conv.3"), &n("conv.4"), c2, &[c1, 1]),
            ],
        }
    }

    fn spec(&self, spec: &mut Spec) {
        for unit in &self.units {
            unit.spec(spec);
        }
    }

    /// orig xyz (B, L, No, 3) / features (B, L, No, Co), coarse xyz (B, L, n, 3) /
    /// features (B, L, n, Cc) → (B, L, No, C).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        orig_xyz: &Tensor,
        coarse_xyz: &Tensor,
        orig_feat: &Tensor,
        coarse_feat: &Tensor,
        train: bool,
    ) -> Result<(Tensor, SegDeconvSaved)> {
        let (b, l, no) = (
            orig_xyz.shape()[0],
            orig_xyz.shape()[1],
            orig_xyz.shape()[2],
        );
        let nc = coarse_xyz.shape()[2];
        let mut outs = Vec::with_capacity(l);
        let mut frames = Vec::with_capacity(l);
        for t in 0..l {
            let u = slice(s, orig_xyz, 1, t, 1)?.reshape(&[b, no, 3])?;
            let kx = slice(s, coarse_xyz, 1, t, 1)?.reshape(&[b, nc, 3])?;
            let nn = three_nn(s, &u, &kx)?;
            let cf = slice(s, coarse_feat, 1, t, 1)?.reshape(&[b * nc, self.in_planes])?;
            let interp = gather_rows(s, &cf, &nn.sel.rows, 3, Some(&nn.weight))?;
            let skip = slice(s, orig_feat, 1, t, 1)?.reshape(&[b * no, self.orig_planes])?;
            let x = concat(s, &[&interp, &skip], 1)?;
            let (h, u0) = self.units[0].forward(s, p, &x, train)?;
            let (y, u1) = self.units[1].forward(s, p, &h, train)?;
            outs.push(y.reshape(&[b, 1, no, self.planes[1]])?);
            frames.push(FrameSaved {
                rows: nn.sel.rows,
                weight: nn.weight,
                units: vec![u0, u1],
            });
        }
        let refs: Vec<&Tensor> = outs.iter().collect();
        Ok((
            concat(s, &refs, 1)?,
            SegDeconvSaved {
                frames,
                coarse_shape: coarse_feat.shape().to_vec(),
                orig_shape: orig_feat.shape().to_vec(),
            },
        ))
    }

    /// (d coarse features, d orig features).
    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        sv: &SegDeconvSaved,
        g: &Tensor,
        grads: &mut Grads,
    ) -> Result<(Tensor, Tensor)> {
        let (b, l, no) = (g.shape()[0], g.shape()[1], g.shape()[2]);
        let nc = sv.coarse_shape[2];
        let mut g_coarse = Vec::with_capacity(l);
        let mut g_orig = Vec::with_capacity(l);
        for (t, fr) in sv.frames.iter().enumerate() {
            let mut gt = slice(s, g, 1, t, 1)?.reshape(&[b * no, self.planes[1]])?;
            for (unit, u) in self.units.iter().zip(&fr.units).rev() {
                gt = unit.backward(s, p, u, &gt, grads)?;
            }
            let mut parts = concat_backward(s, &gt, &[self.in_planes, self.orig_planes], 1)?;
            let g_skip = parts.pop().expect("two parts");
            let g_interp = parts.pop().expect("two parts");
            let inv = inverse_index(s, &fr.rows, b * nc)?;
            let g_cf = gather_rows_backward(
                s,
                &g_interp,
                &inv,
                self.in_planes,
                self.in_planes,
                3,
                Some(&fr.weight),
            )?;
            g_coarse.push(g_cf.reshape(&[b, 1, nc, self.in_planes])?);
            g_orig.push(g_skip.reshape(&[b, 1, no, self.orig_planes])?);
        }
        let rc: Vec<&Tensor> = g_coarse.iter().collect();
        let ro: Vec<&Tensor> = g_orig.iter().collect();
        Ok((
            concat(s, &rc, 1)?.reshape(&sv.coarse_shape)?,
            concat(s, &ro, 1)?.reshape(&sv.orig_shape)?,
        ))
    }
}

/// The segmentation network.
pub struct SegmentationNet {
    pub cfg: P4TransformerConfig,
    convs: Vec<SegConv>,
    deconvs: Vec<SegDeconv>,
    transformer: Transformer,
    /// `outconv`: Conv2d(last, classes, 1).
    outconv: Linear,
}

/// Forward activations (channels-last) and what backward needs.
pub struct SegForward {
    /// conv1..conv4 anchors (B, L, n_l, 3) and features (B, L, n_l, C_l).
    pub conv_xyz: Vec<Tensor>,
    pub conv_features: Vec<Tensor>,
    /// (B, L·n_4, C_4).
    pub transformer_out: Tensor,
    /// deconv4..deconv1 outputs (B, L, N_l, C).
    pub deconv_features: Vec<Tensor>,
    /// (B, L, N, classes).
    pub logits: Tensor,
    /// FPS indices per conv level (B, L, n_l) and ball-query indices (B, L, kt, n_l, k).
    pub fps_idx: Vec<Tensor>,
    pub ball_idx: Vec<Tensor>,
    saved: SegSaved,
}

struct SegSaved {
    feat0: Tensor,
    convs: Vec<SegConvSaved>,
    tokens_pre: Tensor,
    transformer: TransformerSaved,
    deconvs: Vec<SegDeconvSaved>,
    outconv: LinearSaved,
}

impl SegmentationNet {
    pub fn new(cfg: P4TransformerConfig) -> Result<Self> {
        cfg.require_head("segmentation net")?;
        let w = cfg.widths();
        let d = cfg.deconv();
        let (r, k) = (cfg.radius, cfg.nsamples);
        let convs = vec![
            SegConv::new("conv1", 3, w[0], r, k, 4, 1),
            SegConv::new("conv2", w[0][2], w[1], 2.0 * r, k, 4, 1),
            SegConv::new("conv3", w[1][2], w[2], 4.0 * r, k, 4, 3),
            SegConv::new("conv4", w[2][2], w[3], 8.0 * r, k, 2, 1),
        ];
        let deconvs = vec![
            SegDeconv::new("deconv4", w[3][2], w[2][2], d[0]),
            SegDeconv::new("deconv3", d[0][1], w[1][2], d[1]),
            SegDeconv::new("deconv2", d[1][1], w[0][2], d[2]),
            SegDeconv::new("deconv1", d[2][1], 3, d[3]),
        ];
        let transformer = Transformer::new("transformer", cfg.transformer());
        let outconv = Linear::new("outconv", cfg.num_classes, &[d[3][1], 1, 1], true);
        Ok(Self {
            outconv,
            cfg,
            convs,
            deconvs,
            transformer,
        })
    }

    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new();
        for c in &self.convs {
            c.spec(&mut spec);
        }
        self.transformer.spec(&mut spec);
        for d in &self.deconvs {
            d.spec(&mut spec);
        }
        self.outconv.spec(&mut spec);
        spec
    }

    /// xyz (B, L, N, 3) and colours rgb (B, L, 3, N) → logits (B, L, N, classes).
    /// `train` selects BatchNorm batch statistics (and running-stat updates).
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        xyz: &Tensor,
        rgb: &Tensor,
        train: bool,
    ) -> Result<SegForward> {
        let sh = xyz.shape().to_vec();
        if sh.len() != 4 || sh[3] != 3 || rgb.shape() != [sh[0], sh[1], 3, sh[2]] {
            return Err(Error::Shape {
                op: "p4transformer-synthia",
                detail: format!(
                    "xyz must be (B, L, N, 3) and rgb (B, L, 3, N); got {sh:?} and {:?}",
                    rgb.shape()
                ),
            });
        }
        let feat0 = permute(s, rgb, &[0, 1, 3, 2])?;
        let (mut x, mut f) = (xyz.clone(), feat0.clone());
        let (mut conv_xyz, mut conv_features, mut convs, mut fps_idx, mut ball_idx) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for conv in &self.convs {
            let (nx, nf, saved) = conv.forward(s, p, &x, &f, train)?;
            fps_idx.push(saved.sel.idx.clone());
            ball_idx.push(saved.balls.idx.clone());
            conv_xyz.push(nx.clone());
            conv_features.push(nf.clone());
            convs.push(saved);
            x = nx;
            f = nf;
        }
        let f4 = &conv_features[3];
        let (b, l, n4, c4) = (f4.shape()[0], f4.shape()[1], f4.shape()[2], f4.shape()[3]);
        let tokens_pre = f4.reshape(&[b, l * n4, c4])?;
        let tokens = relu(s, &tokens_pre)?;
        let (out, tsaved) = self.transformer.forward(s, p, &tokens)?;
        let mut coarse = out.reshape(&[b, l, n4, c4])?;
        let mut deconv_features = Vec::new();
        let mut deconvs = Vec::new();
        for (i, d) in self.deconvs.iter().enumerate() {
            // deconv4 upsamples conv4 → conv3 points, ..., deconv1 conv1 → input points.
            let level = 3 - i;
            let coarse_xyz = &conv_xyz[level];
            let (orig_xyz, orig_feat) = if level == 0 {
                (xyz, &feat0)
            } else {
                (&conv_xyz[level - 1], &conv_features[level - 1])
            };
            let (y, saved) = d.forward(s, p, orig_xyz, coarse_xyz, orig_feat, &coarse, train)?;
            deconv_features.push(y.clone());
            deconvs.push(saved);
            coarse = y;
        }
        let (logits, outconv) = self.outconv.forward(s, p, &coarse)?;
        Ok(SegForward {
            conv_xyz,
            conv_features,
            transformer_out: out,
            deconv_features,
            logits,
            fps_idx,
            ball_idx,
            saved: SegSaved {
                feat0,
                convs,
                tokens_pre,
                transformer: tsaved,
                deconvs,
                outconv,
            },
        })
    }

    /// (d xyz, d rgb) from d logits (B, L, N, classes); parameter gradients accumulate
    /// into `grads` in their stored shapes.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &SegForward,
        g_logits: &Tensor,
        grads: &mut Grads,
    ) -> Result<(Tensor, Tensor)> {
        let sv = &fwd.saved;
        let mut g = self.outconv.backward(s, p, &sv.outconv, g_logits, grads)?;
        // Skip-feature gradients per level: index 0 is the input colours.
        let mut g_skip: Vec<Option<Tensor>> = vec![None, None, None, None];
        for (i, d) in self.deconvs.iter().enumerate().rev() {
            let level = 3 - i;
            let (g_coarse, g_orig) = d.backward(s, p, &sv.deconvs[i], &g, grads)?;
            g_skip[level] = Some(g_orig);
            g = g_coarse;
        }
        // g is now d transformer output (B, L, n4, C4).
        let f4 = &fwd.conv_features[3];
        let g_tokens = self.transformer.backward(
            s,
            p,
            &sv.transformer,
            &g.reshape(sv.tokens_pre.shape())?,
            grads,
        )?;
        let g_f4 = relu_backward(s, &sv.tokens_pre, &g_tokens)?.reshape(f4.shape())?;
        let mut g_feat = g_f4;
        let mut g_anchor: Option<Tensor> = None;
        let mut g_rgb_feat = None;
        let mut g_xyz_in = None;
        for level in (0..4).rev() {
            let (g_x, g_f) = self.convs[level].backward(
                s,
                p,
                &sv.convs[level],
                &g_feat,
                g_anchor.as_ref(),
                grads,
            )?;
            let g_f = g_f.expect("every level has input features");
            // Input features of this level: the skip features of the level below.
            let g_in = match g_skip[level].take() {
                Some(skip) => add(s, &g_f, &skip)?,
                None => g_f,
            };
            if level == 0 {
                g_rgb_feat = Some(g_in);
                g_xyz_in = Some(g_x);
            } else {
                g_feat = g_in;
                g_anchor = Some(g_x);
            }
        }
        let g_rgb = permute_backward(s, &g_rgb_feat.expect("level 0"), &[0, 1, 3, 2])?;
        let _ = &sv.feat0;
        for spec in p.spec() {
            if let Some(g) = grads.remove(&spec.name) {
                grads.insert(spec.name.clone(), g.reshape(&spec.shape)?);
            }
        }
        Ok((g_xyz_in.expect("level 0"), g_rgb))
    }
}

/// Per-point weights of the segmentation loss `Σ CE(weight=class_weight,
/// reduction=none)·mask / (Σmask + 1)` (train-syn.py): w[label]·mask / (Σmask + 1).
pub fn segmentation_row_weights(
    labels: &[u32],
    mask: &[f32],
    class_weight: &[f32],
) -> Result<Vec<f32>> {
    if labels.len() != mask.len() {
        return Err(Error::Shape {
            op: "segmentation_loss",
            detail: format!("{} labels but {} mask values", labels.len(), mask.len()),
        });
    }
    let denom = mask.iter().map(|&m| m as f64).sum::<f64>() + 1.0;
    labels
        .iter()
        .zip(mask)
        .map(|(&y, &m)| {
            let w = class_weight
                .get(y as usize)
                .ok_or_else(|| Error::InvalidArgument {
                    op: "segmentation_loss",
                    detail: format!(
                        "label {y} has no class weight ({} classes)",
                        class_weight.len()
                    ),
                })?;
            Ok((*w as f64 * m as f64 / denom) as f32)
        })
        .collect()
}

/// The weighted, masked segmentation loss and its gradient w.r.t. the logits.
/// `logits` (…, classes) flattened to rows, `labels` (rows) U32, `row_weight` (rows)
/// from [`segmentation_row_weights`]. Everything stays on the device: the per-row
/// weights scale the gradient's rows through a transposed trailing broadcast.
pub fn segmentation_loss(
    s: &mut Step<'_>,
    logits: &Tensor,
    labels: &Tensor,
    row_weight: &Tensor,
    one: &Tensor,
) -> Result<(Tensor, Tensor)> {
    use crate::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
    use crate::ops::elementwise::{mul, scale};
    use crate::ops::reduce::sum;
    let classes = *logits.shape().last().unwrap_or(&1);
    let rows = logits.numel() / classes;
    if row_weight.shape() != [rows] || labels.numel() != rows {
        return Err(Error::Shape {
            op: "segmentation_loss",
            detail: format!(
                "{rows} logit rows need {rows} labels and row weights; got {} labels and weights {:?}",
                labels.numel(),
                row_weight.shape()
            ),
        });
    }
    let flat = logits.reshape(&[rows, classes])?;
    let (_, per_row) = cross_entropy(s, &flat, labels)?;
    let weighted = mul(s, &per_row, row_weight)?;
    let loss = sum(s, &weighted.reshape(&[rows, 1])?, 0)?;
    // cross_entropy_backward gives (softmax − onehot)/rows: rescale row r by w_r·rows.
    let g = cross_entropy_backward(s, &flat, labels, one)?;
    let g_t = permute(s, &g, &[1, 0])?;
    let w_rows = scale(s, row_weight, rows as f32)?;
    let g_t = mul(s, &g_t, &w_rows)?;
    let g = permute(s, &g_t, &[1, 0])?;
    Ok((loss, g.reshape(logits.shape())?))
}
