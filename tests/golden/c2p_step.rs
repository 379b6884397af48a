//! One C2P pre-training step (official `pretrain_as.py` with the AS P4Transformer) against
//! `tests/fixtures/p4transformer/c2p_as_pretrain_step.safetensors`: student and teacher
//! features, the three loss terms and their total, the gradient of every backbone and
//! predictor parameter and of both input clips, and the predictors' BatchNorm running
//! statistics after the step.

use crate::common::*;
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::models::P4Transformer;
use edge4d_runtime::models::{P4TransformerConfig, ParamStore};
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Tensor, TensorFile};
use edge4d_trainer::c2p::loss::LossVariant;
use edge4d_trainer::c2p::model::{C2pObjective, TeacherMode, TimeInput};

/// The fixture's parameters as one state_dict: `model.*` without its prefix (what a
/// user's backbone export looks like) and the predictors as they are.
fn params(
    f: &TensorFile,
    backbone: &P4Transformer,
    model: &C2pObjective,
    dir: &std::path::Path,
) -> ParamStore {
    let mut tensors = Vec::new();
    for name in f.names() {
        let Some(n) = name.strip_prefix("param.") else {
            continue;
        };
        let n = n.strip_prefix("model.").unwrap_or(n).to_string();
        if n.ends_with("num_batches_tracked") {
            let (v, shape) = f.i64(&name).unwrap();
            tensors.push((n, Stored::I64(v, shape)));
        } else {
            tensors.push((n, Stored::F32(f.f32(&name).unwrap())));
        }
    }
    let path = dir.join("c2p.safetensors");
    write_atomic(&path, &tensors, Default::default()).unwrap();
    ParamStore::load(
        dev(),
        model.spec(backbone),
        &TensorFile::open(&path).unwrap(),
        "",
        false,
    )
    .unwrap()
}

#[test]
fn c2p_pretraining_step_matches_the_official_code() {
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let cfg = fixture_config(&f);
    let toml = c2p_toml(&cfg);
    let cfg = P4TransformerConfig::parse(&toml, "c2p fixture").unwrap();
    let (backbone, model) = C2pObjective::new(
        dev(),
        cfg,
        PredictorNorm::BatchNorm,
        LossVariant::Bidirectional,
        TeacherMode::Shared,
        TimeInput::FrameIndex,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = params(&f, &backbone, &model, dir.path());
    let input = |n: &str| {
        let h = f.f32(n).unwrap();
        dev().upload(&h.data, &h.shape).unwrap()
    };
    let (partial, complete) = (input("input.clip_partial"), input("input.clip_complete"));
    let (fwd, (grads, g_partial, g_complete, g_student, g_teacher)) = dev()
        .run(|s| {
            let fwd = model.forward(s, &backbone, &p, &partial, &complete)?;
            let back = model.backward(s, &backbone, &p, &fwd)?;
            Ok((fwd, back))
        })
        .unwrap();
    let read = |t: &Tensor| dev().read(t).unwrap();
    let want = |n: &str| f.f32(n).unwrap().data;
    assert_activation(
        "student.frame_embedding",
        &read(fwd.student.frame_embedding.as_ref().unwrap()),
        &want("student.frame_embedding"),
    );
    assert_activation(
        "student.features",
        &read(&fwd.student.transformer_out),
        &want("student.features"),
    );
    assert_activation(
        "teacher.features",
        &read(fwd.teacher.features().unwrap()),
        &want("teacher.features"),
    );
    for (name, t) in [
        ("loss", &fwd.terms.total),
        ("loss_distill", &fwd.terms.geo),
        ("loss_predict_forward", fwd.terms.fwd.as_ref().unwrap()),
        ("loss_predict_backward", fwd.terms.back.as_ref().unwrap()),
    ] {
        let w = want(name);
        assert_within(name, &read(t), &w, 1e-5 * w[0].abs() as f64);
    }
    // Gradients: 1e-4·G, G the largest |grad| over all parameters.
    let g_max = f
        .names()
        .iter()
        .filter(|n| {
            n.starts_with("grad.") && !n.starts_with("grad.input.") && !n.contains(".features")
        })
        .map(|n| max_abs(&want(n)))
        .fold(0.0, f64::max);
    let mut checked = 0;
    for name in f.names() {
        let Some(n) = name.strip_prefix("grad.") else {
            continue;
        };
        if n.starts_with("input.") || n.ends_with(".features") {
            continue;
        }
        let key = n.strip_prefix("model.").unwrap_or(n);
        let got = grads
            .get(key)
            .unwrap_or_else(|| panic!("no gradient for {key}"));
        assert_within(&name, &read(got), &want(&name), 1e-4 * g_max);
        checked += 1;
    }
    assert_eq!(
        checked,
        model.spec(&backbone).iter().filter(|s| s.trainable).count()
    );
    for (name, t) in [
        ("grad.student.features", &g_student),
        ("grad.teacher.features", &g_teacher),
        ("grad.input.clip_partial", &g_partial),
        ("grad.input.clip_complete", g_complete.as_ref().unwrap()),
    ] {
        let w = want(name);
        assert_within(name, &read(t), &w, 1e-4 * max_abs(&w));
    }
    for name in f.names() {
        let Some(n) = name.strip_prefix("buffer_after.") else {
            continue;
        };
        if n.ends_with("num_batches_tracked") {
            let (v, _) = f.i64(&name).unwrap();
            assert_eq!(p.counter(n), Some(v[0]), "{name}");
        } else {
            let w = want(&name);
            assert_within(&name, &read(p.get(n).unwrap()), &w, 1e-4 * max_abs(&w));
        }
    }
}

#[test]
fn separate_and_stop_gradient_teachers_give_the_same_loss_from_the_same_weights() {
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let cfg = fixture_config(&f);
    let toml = c2p_toml(&cfg);
    let input = |n: &str| {
        let h = f.f32(n).unwrap();
        dev().upload(&h.data, &h.shape).unwrap()
    };
    let (partial, complete) = (input("input.clip_partial"), input("input.clip_complete"));
    let want_loss = f.f32("loss").unwrap().data;
    let dir = tempfile::tempdir().unwrap();
    for mode in [TeacherMode::StopGradient, TeacherMode::Separate] {
        let cfg = P4TransformerConfig::parse(&toml, "c2p fixture").unwrap();
        let (backbone, model) = C2pObjective::new(
            dev(),
            cfg,
            PredictorNorm::BatchNorm,
            LossVariant::Bidirectional,
            mode,
            TimeInput::FrameIndex,
        )
        .unwrap();
        // The separate teacher starts as a copy of the backbone's tube and embedding.
        let mut tensors = Vec::new();
        for name in f.names() {
            let Some(n) = name.strip_prefix("param.") else {
                continue;
            };
            let n = n.strip_prefix("model.").unwrap_or(n).to_string();
            let stored = if n.ends_with("num_batches_tracked") {
                let (v, shape) = f.i64(&name).unwrap();
                Stored::I64(v, shape)
            } else {
                Stored::F32(f.f32(&name).unwrap())
            };
            if n.starts_with("tube_embedding.") || n.starts_with("pos_embedding.") {
                if let Stored::F32(h) = &stored {
                    tensors.push((format!("teacher.{n}"), Stored::F32(h.clone())));
                }
            }
            tensors.push((n, stored));
        }
        let path = dir.path().join("w.safetensors");
        write_atomic(&path, &tensors, Default::default()).unwrap();
        let p = ParamStore::load(
            dev(),
            model.spec(&backbone),
            &TensorFile::open(&path).unwrap(),
            "",
            mode == TeacherMode::StopGradient,
        )
        .unwrap();
        let (loss, grads, g_complete) = dev()
            .run(|s| {
                let fwd = model.forward(s, &backbone, &p, &partial, &complete)?;
                let (grads, _, g_complete, ..) = model.backward(s, &backbone, &p, &fwd)?;
                Ok((fwd.terms.total, grads, g_complete))
            })
            .unwrap();
        assert_within(
            "loss",
            &dev().read(&loss).unwrap(),
            &want_loss,
            1e-5 * want_loss[0].abs() as f64,
        );
        assert!(g_complete.is_none());
        let teacher_grad = grads.get("teacher.tube_embedding.conv_d.0.weight");
        match mode {
            TeacherMode::Separate => {
                let g = dev()
                    .read(teacher_grad.expect("the separate teacher learns"))
                    .unwrap();
                assert!(max_abs(&g) > 0.0);
            }
            _ => assert!(teacher_grad.is_none()),
        }
    }
}
