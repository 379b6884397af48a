//! The P4Transformer blocks — tube embedding (P4DConv) and transformer layers — on
//! small random cases: GPU forward vs the f64 reference, GPU backward vs central finite
//! differences of the reference forward.

use edge4d_runtime::models::p4dconv::{PaddingMode, TubeConfig, TubeEmbedding};
use edge4d_runtime::models::params::{Grads, ParamStore, Spec};
use edge4d_runtime::models::transformer::{Transformer, TransformerConfig};
use edge4d_runtime::models::Layer;
use edge4d_runtime::reference::{p4 as r, point as rp};

use crate::common::*;

fn host_params(p: &ParamStore) -> r::Params {
    p.to_host(dev())
        .unwrap()
        .into_iter()
        .map(|(n, h)| (n, f64s(&h.data)))
        .collect()
}

/// Central differences of `loss` w.r.t. every element of `x`, compared with the GPU's
/// gradient at 1e-4·max|g| + 1e-6 (the fixtures' gradient tolerance).
#[track_caller]
fn check_fd(what: &str, gpu: &[f32], x: &[f64], mut loss: impl FnMut(&[f64]) -> f64) {
    let h = 1e-6;
    let mut xp = x.to_vec();
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            xp[i] = x[i] + h;
            let lp = loss(&xp);
            xp[i] = x[i] - h;
            let lm = loss(&xp);
            xp[i] = x[i];
            (lp - lm) / (2.0 * h)
        })
        .collect();
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(what, gpu, &numeric, 1e-4 * scale + 1e-6, 0.0);
}

fn transformer_case(cfg: TransformerConfig, seed: u64) {
    let (b, t) = (2, 5);
    let tf = Transformer::new("transformer", cfg);
    let mut spec = Spec::new();
    tf.spec(&mut spec);
    let params = ParamStore::init(dev(), spec.clone(), seed).unwrap();
    let mut rng = Rng::new(seed);
    let x = rng.vec(b * t * cfg.dim);
    let g = rng.vec(b * t * cfg.dim);
    let (tx, tg) = (up(&x, &[b, t, cfg.dim]), up(&g, &[b, t, cfg.dim]));
    let (y, grads, gx) = dev()
        .run(|s| {
            let (y, saved) = tf.forward(s, &params, &tx)?;
            let mut grads = Grads::new();
            let gx = tf.backward(s, &params, &saved, &tg, &mut grads)?;
            Ok((y, grads, gx))
        })
        .unwrap();
    let hp = host_params(&params);
    let forward = |x: &[f64], p: &r::Params| {
        (0..cfg.depth).fold(x.to_vec(), |h, l| {
            r::transformer_layer(
                &h,
                (t, cfg.dim),
                cfg.heads,
                cfg.dim_head,
                p,
                &format!("transformer.layers.{l}"),
            )
        })
    };
    let x64 = f64s(&x);
    let g64 = f64s(&g);
    assert_close(
        "transformer forward",
        &down(&y),
        &forward(&x64, &hp),
        1e-5,
        1e-5,
    );
    check_fd("transformer d input", &down(&gx), &x64, |xp| {
        dot(&forward(xp, &hp), &g64)
    });
    for p in &spec {
        let mut hp2 = hp.clone();
        let base = hp[&p.name].clone();
        check_fd(
            &format!("transformer d {}", p.name),
            &down(&grads[&p.name]),
            &base,
            |v| {
                hp2.insert(p.name.clone(), v.to_vec());
                dot(&forward(&x64, &hp2), &g64)
            },
        );
    }
    // Bitwise determinism of forward and backward.
    let (y2, grads2, gx2) = dev()
        .run(|s| {
            let (y, saved) = tf.forward(s, &params, &tx)?;
            let mut grads = Grads::new();
            let gx = tf.backward(s, &params, &saved, &tg, &mut grads)?;
            Ok((y, grads, gx))
        })
        .unwrap();
    assert_eq!(bits(&y), bits(&y2));
    assert_eq!(bits(&gx), bits(&gx2));
    for (n, t) in &grads {
        assert_eq!(bits(t), bits(&grads2[n]), "{n} bitwise");
    }
}

#[test]
fn transformer_layers_match_reference_and_finite_differences() {
    transformer_case(
        TransformerConfig {
            dim: 6,
            depth: 2,
            heads: 2,
            dim_head: 3,
            mlp_dim: 5,
        },
        81,
    );
}

#[test]
fn single_head_transformer_without_output_projection_matches_reference() {
    // heads == 1 and dim_head == dim: to_out is the identity (no Linear, no GELU).
    transformer_case(
        TransformerConfig {
            dim: 4,
            depth: 1,
            heads: 1,
            dim_head: 4,
            mlp_dim: 3,
        },
        82,
    );
}

#[test]
fn tube_embedding_matches_reference_and_finite_differences() {
    tube_case(PaddingMode::Replicate);
}

#[test]
fn tube_embedding_with_zero_padding_matches_reference_and_finite_differences() {
    tube_case(PaddingMode::Zeros);
}

fn tube_case(mode: PaddingMode) {
    let (b, l, npts) = (2, 4, 24);
    let cfg = TubeConfig {
        radius: 0.9,
        nsamples: 5,
        spatial_stride: 4,
        temporal_kernel_size: 3,
        temporal_stride: 1,
        temporal_padding: [1, 1],
        padding_mode: mode,
        dim: 7,
    };
    let (n, kt, k, c) = (npts / 4, 3, 5, 7);
    let tube = TubeEmbedding::new("tube_embedding", cfg);
    let mut spec = Spec::new();
    tube.spec(&mut spec);
    let params = ParamStore::init(dev(), spec, 91).unwrap();
    let mut rng = Rng::new(91);
    // Bodies away from the origin (FPS skips points within 0.0316 of it).
    let clip: Vec<f32> = (0..b * l * npts * 3)
        .map(|i| rng.uniform(-1.0, 1.0) + if i % 3 == 2 { 3.0 } else { 0.0 })
        .collect();
    let tclip = up(&clip, &[b, l, npts, 3]);
    let tables = tube.tables(dev(), l).unwrap();
    let l_out = tables.frames_out;
    let gf = rng.vec(b * l_out * n * c);
    let ga = rng.vec(b * l_out * n * 3);
    let (tgf, tga) = (up(&gf, &[b, l_out, n, c]), up(&ga, &[b, l_out, n, 3]));
    let (out, gclip, grads) = dev()
        .run(|s| {
            let (out, saved) = tube.forward(s, &params, &tclip, &tables)?;
            let mut grads = Grads::new();
            let gclip = tube.backward(s, &params, &saved, &tgf, Some(&tga), &mut grads)?;
            Ok((out, gclip, grads))
        })
        .unwrap();
    // Indices: the CUDA-exact references, frame by frame.
    let anchor_idx = dev().read_u32(&out.anchor_sel.idx).unwrap();
    let ball_idx = dev().read_u32(&out.balls.idx).unwrap();
    let anchor_frames = tables.anchor_frames.clone();
    // Padded frame t + o reads frame t + o − 1, or the zero frame L when out of range.
    let neighbour_frames: Vec<u32> = (0..l_out)
        .flat_map(|t| {
            (0..kt).map(move |o| match (mode, (t + o) as isize - 1) {
                (PaddingMode::Zeros, f) if f < 0 || f >= l as isize => l as u32,
                (_, f) => f.clamp(0, l as isize - 1) as u32,
            })
        })
        .collect();
    // The clip as the kernels see it: with the zero frame appended per clip.
    let lp = l + 1;
    let padded: Vec<f32> = (0..b)
        .flat_map(|bb| {
            clip[bb * l * npts * 3..(bb + 1) * l * npts * 3]
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0.0, npts * 3))
                .collect::<Vec<_>>()
        })
        .collect();
    let frame = |bb: usize, f: u32| &padded[(bb * lp + f as usize) * npts * 3..][..npts * 3];
    for bb in 0..b {
        for t in 0..l_out {
            let want = rp::fps(frame(bb, anchor_frames[t]), n);
            assert_eq!(
                &anchor_idx[(bb * l_out + t) * n..][..n],
                &want[..],
                "anchors b{bb} t{t}"
            );
            for o in 0..kt {
                for a in 0..n {
                    let q = &frame(bb, anchor_frames[t])[want[a] as usize * 3..][..3];
                    let (bq, _) =
                        rp::ball_query(frame(bb, neighbour_frames[t * kt + o]), q, 0.9, k);
                    let at = (((bb * l_out + t) * kt + o) * n + a) * k;
                    assert_eq!(&ball_idx[at..at + k], &bq[..], "balls b{bb} t{t} o{o} a{a}");
                }
            }
        }
    }
    let w = f64s(&down(params.get("tube_embedding.conv_d.0.weight").unwrap()));
    // The reference reads the padded layout; perturbations apply to the real frames.
    let pad = |clip: &[f64]| -> Vec<f64> {
        (0..b)
            .flat_map(|bb| {
                clip[bb * l * npts * 3..(bb + 1) * l * npts * 3]
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0.0, npts * 3))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let forward = |clip: &[f64], w: &[f64]| {
        r::tube_embedding(
            &pad(clip),
            (b, lp, npts),
            w,
            &anchor_frames,
            &anchor_idx,
            &neighbour_frames,
            &ball_idx,
            (n, kt, k),
        )
    };
    let clip64 = f64s(&clip);
    let (ra, rf) = forward(&clip64, &w);
    assert_close("anchors", &down(&out.anchors), &ra, 0.0, 0.0);
    assert_close("tube features", &down(&out.features), &rf, 1e-6, 1e-5);
    let (gf64, ga64) = (f64s(&gf), f64s(&ga));
    let loss = |clip: &[f64], w: &[f64]| {
        let (a, f) = forward(clip, w);
        dot(&f, &gf64) + dot(&a, &ga64)
    };
    check_fd("tube d clip", &down(&gclip), &clip64, |x| loss(x, &w));
    check_fd(
        "tube d conv_d",
        &down(&grads["tube_embedding.conv_d.0.weight"]),
        &w,
        |v| loss(&clip64, v),
    );
}
