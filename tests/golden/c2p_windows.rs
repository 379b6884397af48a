//! The C2P time-window variants (paper supplementary Table 7): window 1 is the
//! same-frame term alone, window 5 adds predictors for frames i±2; each term is the
//! same InfoNCE as the official window-3 loss on shifted frames, and the gradients agree
//! with finite differences. Pre-training without the time input (`--no-time`) is the
//! backbone with its positional embedding blind to the frame index.

use crate::common::*;
use edge4d_runtime::models::params::{ParamStore, Spec};
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Tensor, TensorFile};
use edge4d_trainer::c2p::loss::{C2pLoss, LossVariant};

const B: usize = 2;
const L: usize = 7;
const C: usize = 8;
const HIDDEN: usize = 12;

fn loss(variant: LossVariant) -> (C2pLoss, Spec) {
    let loss = C2pLoss::new(dev(), C, HIDDEN, PredictorNorm::LayerNorm, 0.5, variant).unwrap();
    let mut spec = Spec::new();
    loss.spec(&mut spec);
    (loss, spec)
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = edge4d_trainer::rng::SplitMix64::new(seed);
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Frames [from, from + len) of a (B, L, C) host tensor.
fn frames(x: &[f32], from: usize, len: usize) -> Vec<f32> {
    x.chunks(L * C)
        .flat_map(|clip| clip[from * C..(from + len) * C].iter().copied())
        .collect()
}

fn value(
    loss: &C2pLoss,
    p: &ParamStore,
    s: &[f32],
    t: &[f32],
    l: usize,
) -> (f32, Vec<(isize, f32)>) {
    let (st, te) = (
        dev().upload(s, &[B, l, C]).unwrap(),
        dev().upload(t, &[B, l, C]).unwrap(),
    );
    let terms = dev()
        .run(|step| Ok(loss.forward(step, p, &st, &te)?.0))
        .unwrap();
    let read = |t: &Tensor| dev().read(t).unwrap()[0];
    (
        read(&terms.total),
        terms.predicted.iter().map(|(o, t)| (*o, read(t))).collect(),
    )
}

#[test]
fn window_one_is_the_same_frame_term_alone() {
    let (w1, spec1) = loss(LossVariant::SameFrame);
    assert!(spec1.is_empty(), "window 1 has no predictor");
    let (w3, spec3) = loss(LossVariant::Bidirectional);
    let p1 = ParamStore::init(dev(), spec1, 1).unwrap();
    let p3 = ParamStore::init(dev(), spec3, 1).unwrap();
    let (s, t) = (random(B * L * C, 2), random(B * L * C, 3));
    let st = dev().upload(&s, &[B, L, C]).unwrap();
    let te = dev().upload(&t, &[B, L, C]).unwrap();
    let geo3 = dev()
        .run(|step| Ok(w3.forward(step, &p3, &st, &te)?.0.geo))
        .unwrap();
    let (total1, predicted) = value(&w1, &p1, &s, &t, L);
    assert!(predicted.is_empty());
    assert_eq!(total1, dev().read(&geo3).unwrap()[0]);
}

#[test]
fn window_five_terms_are_the_window_three_terms_on_shifted_frames() {
    let (w5, spec5) = loss(LossVariant::Window5);
    let names: Vec<&str> = spec5.iter().map(|p| p.name.as_str()).collect();
    for prefix in [
        "forward_predictor.",
        "back_predictor.",
        "forward_predictor_2.",
        "back_predictor_2.",
    ] {
        assert!(names.iter().any(|n| n.starts_with(prefix)), "{names:?}");
    }
    let p5 = ParamStore::init(dev(), spec5, 4).unwrap();
    let (s, t) = (random(B * L * C, 5), random(B * L * C, 6));
    let (total, predicted) = value(&w5, &p5, &s, &t, L);
    let term = |o: isize| predicted.iter().find(|(x, _)| *x == o).unwrap().1;

    // The i+2 (i−2) term is the window-3 loss's i+1 (i−1) term, with the same
    // predictor weights, on clips whose teacher (student) starts one frame later.
    let dir = tempfile::tempdir().unwrap();
    let (w3, spec3) = loss(LossVariant::Bidirectional);
    let renamed: Vec<(String, Stored)> = p5
        .stored(dev())
        .unwrap()
        .into_iter()
        .filter_map(|(n, v)| {
            let rest = n
                .strip_prefix("forward_predictor_2.")
                .map(|r| format!("forward_predictor.{r}"));
            let rest = rest.or_else(|| {
                n.strip_prefix("back_predictor_2.")
                    .map(|r| format!("back_predictor.{r}"))
            });
            rest.map(|r| (r, v))
        })
        .collect();
    let path = dir.path().join("far.safetensors");
    write_atomic(&path, &renamed, Default::default()).unwrap();
    let p3 = ParamStore::load(dev(), spec3, &TensorFile::open(&path).unwrap(), "", false).unwrap();
    let (_, plus) = value(
        &w3,
        &p3,
        &frames(&s, 0, L - 1),
        &frames(&t, 1, L - 1),
        L - 1,
    );
    let plus_one = plus.iter().find(|(o, _)| *o == 1).unwrap().1;
    assert_eq!(term(2), plus_one, "i+2 term");
    let (_, minus) = value(
        &w3,
        &p3,
        &frames(&s, 1, L - 1),
        &frames(&t, 0, L - 1),
        L - 1,
    );
    let minus_one = minus.iter().find(|(o, _)| *o == -1).unwrap().1;
    assert_eq!(term(-2), minus_one, "i−2 term");

    // total = 0.5 geo + 0.125 (four predicted terms), geo being window 1's loss.
    let (w1, spec1) = loss(LossVariant::SameFrame);
    let (geo, _) = value(&w1, &ParamStore::init(dev(), spec1, 0).unwrap(), &s, &t, L);
    let want = 0.5 * geo + 0.125 * (term(1) + term(-1) + term(2) + term(-2));
    assert!(
        (total - want).abs() <= 1e-5 * want.abs(),
        "{total} vs {want}"
    );
}

#[test]
fn window_five_gradients_agree_with_finite_differences() {
    let (w5, spec5) = loss(LossVariant::Window5);
    let p5 = ParamStore::init(dev(), spec5, 7).unwrap();
    let (s, t) = (random(B * L * C, 8), random(B * L * C, 9));
    let (st, te) = (
        dev().upload(&s, &[B, L, C]).unwrap(),
        dev().upload(&t, &[B, L, C]).unwrap(),
    );
    let (g_s, g_t) = dev()
        .run(|step| {
            let (_, saved) = w5.forward(step, &p5, &st, &te)?;
            let mut grads = Default::default();
            w5.backward(step, &p5, &saved, &mut grads)
        })
        .unwrap();
    let (g_s, g_t) = (dev().read(&g_s).unwrap(), dev().read(&g_t).unwrap());
    // Directional derivatives along the gradient itself: large, so f32 rounding in the
    // two loss values is far below the tolerance.
    for (which, g) in [("student", &g_s), ("teacher", &g_t)] {
        let h = 1e-2f32;
        let norm = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        let d: Vec<f32> = g.iter().map(|v| v / norm).collect();
        let shifted = |sign: f32| {
            let moved = |x: &[f32]| {
                x.iter()
                    .zip(&d)
                    .map(|(a, b)| a + sign * h * b)
                    .collect::<Vec<_>>()
            };
            if which == "student" {
                value(&w5, &p5, &moved(&s), &t, L).0
            } else {
                value(&w5, &p5, &s, &moved(&t), L).0
            }
        };
        let numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * h);
        assert!(
            (numeric - norm).abs() <= 2e-2 * norm,
            "{which}: finite difference {numeric} vs analytic {norm}"
        );
    }
}

/// A copy of `params` whose pos_embedding time column (input 3) is `f` of its values.
fn with_time_weights(params: &ParamStore, f: impl Fn(f32) -> f32) -> ParamStore {
    let mut copy = params.duplicate(dev()).unwrap();
    let w = copy.get("pos_embedding.weight").unwrap();
    let mut data = dev().read(w).unwrap();
    for row in data.chunks_mut(4) {
        row[3] = f(row[3]);
    }
    let shape = w.shape().to_vec();
    copy.set("pos_embedding.weight", dev().upload(&data, &shape).unwrap())
        .unwrap();
    copy
}

/// The C2P fixture's complete clip through `model`: the transformer output.
fn transformer_out(
    f: &TensorFile,
    model: &edge4d_runtime::models::P4Transformer,
    params: &ParamStore,
) -> Vec<f32> {
    let clip = f.f32("input.clip_complete").unwrap();
    let clip = dev().upload(&clip.data, &clip.shape).unwrap();
    let t = dev()
        .run(|s| Ok(model.forward(s, params, &clip)?.transformer_out))
        .unwrap();
    dev().read(&t).unwrap()
}

#[test]
fn without_time_the_backbone_is_the_one_whose_time_weights_are_zero() {
    use edge4d_runtime::models::{P4Transformer, P4TransformerConfig};
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let cfg = P4TransformerConfig::parse(&c2p_toml(&fixture_config(&f)), "c2p").unwrap();
    let with_time = P4Transformer::backbone(cfg.clone()).unwrap();
    let without = P4Transformer::backbone(cfg).unwrap().without_time();
    assert!(with_time.time_in_position() && !without.time_in_position());
    let params = ParamStore::init(dev(), with_time.spec(), 11).unwrap();
    let zeroed = with_time_weights(&params, |_| 0.0);
    let a = transformer_out(&f, &without, &params);
    assert_eq!(a, transformer_out(&f, &with_time, &zeroed));
    assert_ne!(
        a,
        transformer_out(&f, &with_time, &params),
        "time matters when it is fed"
    );
}

#[test]
fn time_scale_is_the_time_weights_scaled() {
    use edge4d_runtime::models::{P4Transformer, P4TransformerConfig};
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let toml = c2p_toml(&fixture_config(&f));
    let plain = P4Transformer::backbone(P4TransformerConfig::parse(&toml, "c2p").unwrap()).unwrap();
    let scaled = P4Transformer::backbone(
        P4TransformerConfig::parse(&format!("{toml}time_scale = 0.25\n"), "c2p").unwrap(),
    )
    .unwrap();
    let params = ParamStore::init(dev(), plain.spec(), 12).unwrap();
    let quartered = with_time_weights(&params, |w| w * 0.25);
    // 0.25 is a power of two, so t · 0.25 · w equals t · (0.25 · w) exactly.
    assert_eq!(
        transformer_out(&f, &scaled, &params),
        transformer_out(&f, &plain, &quartered)
    );
}
