//! The action-segmentation P4Transformer (C2P models/AS_p4_pretrain.py backbone) against
//! the official C2P pre-training step fixture: FPS and ball-query indices, the per-frame
//! embedding (C2P's teacher) and the transformer output (C2P's student).

use crate::common::*;
use edge4d_runtime::models::params::Init;
use edge4d_runtime::models::{P4Transformer, P4TransformerConfig, ParamStore};

#[test]
fn actionseg_backbone_matches_the_official_c2p_model() {
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let c = fixture_config(&f);
    // The pre-training backbone with a fine-tuning head of 19 classes (HOI4D's).
    let toml = format!("{}num_classes = 19\n", c2p_toml(&c));
    let cfg = P4TransformerConfig::parse(&toml, "c2p fixture").unwrap();
    assert_eq!(cfg.padding(), [1, 1]);
    let model = P4Transformer::new(cfg).unwrap();
    // The pre-training model has no classification head: start from an initialised
    // model and take every backbone tensor from the fixture.
    let mut params = ParamStore::init(dev(), model.spec(), 7).unwrap();
    let mut taken = 0;
    for p in model.spec() {
        let key = format!("param.model.{}", p.name);
        if f.contains(&key) {
            let h = f.f32(&key).unwrap();
            params
                .set(&p.name, dev().upload(&h.data, &h.shape).unwrap())
                .unwrap();
            taken += 1;
        } else {
            assert!(p.name.starts_with("mlp_head"), "fixture lacks {key}");
            assert!(matches!(
                p.init,
                Init::Uniform { .. } | Init::Ones | Init::Zeros
            ));
        }
    }
    assert_eq!(taken, model.spec().len() - 6);

    let ops_names: Vec<String> = f
        .names()
        .into_iter()
        .filter(|n| n.starts_with("ops."))
        .collect();
    let mut fps_calls = Vec::new();
    let mut bq_calls = Vec::new();
    for n in &ops_names {
        let (v, _) = f.u32(n).unwrap();
        if n.ends_with(".fps") {
            fps_calls.push((n.clone(), v));
        } else {
            bq_calls.push((n.clone(), v));
        }
    }
    let (b, l) = (2usize, 6usize);
    for (which, input, fps_from) in [
        ("student", "input.clip_partial", 0usize),
        ("teacher", "input.clip_complete", 6),
    ] {
        let clip = f.f32(input).unwrap();
        let t = dev().upload(&clip.data, &clip.shape).unwrap();
        let fwd = dev().run(|s| model.forward(s, &params, &t)).unwrap();
        // ops.<i>: per output frame one FPS (B, n) then three ball queries (B, n, k).
        let idx = dev().read_u32(&fwd.tube.anchor_sel.idx).unwrap();
        let balls = dev().read_u32(&fwd.tube.balls.idx).unwrap();
        let n = idx.len() / (b * l);
        let k = balls.len() / (b * l * 3 * n);
        for frame in 0..l {
            let want = &fps_calls[fps_from + frame].1;
            for bb in 0..b {
                let got = &idx[(bb * l + frame) * n..(bb * l + frame + 1) * n];
                assert_eq!(
                    got,
                    &want[bb * n..(bb + 1) * n],
                    "{which} FPS, frame {frame}"
                );
                for o in 0..3 {
                    let want = &bq_calls[(fps_from + frame) * 3 + o].1;
                    let at = ((bb * l + frame) * 3 + o) * n * k;
                    assert_eq!(
                        &balls[at..at + n * k],
                        &want[bb * n * k..(bb + 1) * n * k],
                        "{which} balls, frame {frame} offset {o}"
                    );
                }
            }
        }
        let frame_emb = dev().read(fwd.frame_embedding.as_ref().unwrap()).unwrap();
        let out = dev().read(&fwd.transformer_out).unwrap();
        if which == "student" {
            assert_activation(
                "student.frame_embedding",
                &frame_emb,
                &f.f32("student.frame_embedding").unwrap().data,
            );
            assert_activation(
                "student.features",
                &out,
                &f.f32("student.features").unwrap().data,
            );
        } else {
            assert_activation(
                "teacher.features",
                &frame_emb,
                &f.f32("teacher.features").unwrap().data,
            );
        }
    }
}
