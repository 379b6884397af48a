//! C2P's frame-level InfoNCE with its predictors against the losses fixtures
//! (`tests/fixtures/losses/c2p_loss_{bn,ln,msr_bn}`): the loss terms, the gradients of
//! student, teacher and every predictor parameter, and BatchNorm's running statistics
//! after the step (one update per clip).

use crate::common::*;
use edge4d_runtime::models::params::Spec;
use edge4d_runtime::models::predictor::PredictorNorm;
use edge4d_runtime::models::ParamStore;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::TensorFile;
use edge4d_trainer::c2p::loss::{C2pLoss, LossVariant};

/// The fixture's `fc1` / `norm` / `fc2` are the official `net.0` / `net.1` / `net.3`.
fn official_name(fixture_name: &str) -> String {
    fixture_name
        .replace(".fc1.", ".net.0.")
        .replace(".norm.", ".net.1.")
        .replace(".fc2.", ".net.3.")
}

fn check(file: &str, norm: PredictorNorm, variant: LossVariant) {
    let f = fixture(file);
    let cfg = fixture_config(&f);
    let (c, hidden) = (
        cfg["C"].as_u64().unwrap() as usize,
        cfg["hidden"].as_u64().unwrap() as usize,
    );
    let loss = C2pLoss::new(
        dev(),
        c,
        hidden,
        norm,
        cfg["tau"].as_f64().unwrap() as f32,
        variant,
    )
    .unwrap();
    let mut spec = Spec::new();
    loss.spec(&mut spec);
    // The fixture's parameters as a state_dict under the official names.
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = Vec::new();
    for name in f.names() {
        if let Some(n) = name.strip_prefix("param.") {
            let stored = if n.ends_with("num_batches_tracked") {
                let (v, shape) = f.i64(&name).unwrap();
                Stored::I64(v, shape)
            } else {
                Stored::F32(f.f32(&name).unwrap())
            };
            tensors.push((official_name(n), stored));
        }
    }
    let path = dir.path().join("predictors.safetensors");
    write_atomic(&path, &tensors, Default::default()).unwrap();
    let params = ParamStore::load(
        dev(),
        spec.clone(),
        &TensorFile::open(&path).unwrap(),
        "",
        false,
    )
    .unwrap();
    let input = |n: &str| {
        let h = f.f32(n).unwrap();
        dev().upload(&h.data, &h.shape).unwrap()
    };
    let (student, teacher) = (input("input.student"), input("input.teacher"));
    let (terms, grads, g_s, g_t) = dev()
        .run(|s| {
            let (terms, saved) = loss.forward(s, &params, &student, &teacher)?;
            let mut grads = Default::default();
            let (g_s, g_t) = loss.backward(s, &params, &saved, &mut grads)?;
            Ok((terms, grads, g_s, g_t))
        })
        .unwrap();
    let read = |t: &edge4d_runtime::Tensor| dev().read(t).unwrap();
    let mut checked = vec![
        ("total", &terms.total),
        ("geo", &terms.geo),
        ("fwd", terms.fwd.as_ref().unwrap()),
    ];
    if let Some(b) = &terms.back {
        checked.push(("back", b));
    }
    for (name, t) in checked {
        let want = f.f32(&format!("loss.{name}")).unwrap().data;
        assert_within(
            &format!("{file} loss.{name}"),
            &read(t),
            &want,
            1e-5 * want[0].abs() as f64,
        );
    }
    // The README's gradient tolerance: 1e-4·G, G the largest |grad| over all the
    // parameters (some, like fc1's bias before a train-mode BatchNorm, are zero in
    // theory and only rounding noise in either implementation).
    let g_max = f
        .names()
        .iter()
        .filter(|n| n.starts_with("grad.") && !n.starts_with("grad.input."))
        .map(|n| max_abs(&f.f32(n).unwrap().data))
        .fold(0.0, f64::max);
    let grad = |what: &str, got: &[f32], want: &str| {
        let want = f.f32(want).unwrap().data;
        assert_within(what, got, &want, 1e-4 * g_max);
    };
    let input_grad = |what: &str, got: &[f32], want: &str| {
        let want = f.f32(want).unwrap().data;
        assert_within(what, got, &want, 1e-4 * max_abs(&want));
    };
    input_grad("grad student", &read(&g_s), "grad.input.student");
    input_grad("grad teacher", &read(&g_t), "grad.input.teacher");
    let mut grads_checked = 0;
    for name in f.names() {
        let Some(n) = name.strip_prefix("grad.") else {
            continue;
        };
        if n.starts_with("input.") {
            continue;
        }
        grad(&name, &read(&grads[&official_name(n)]), &name);
        grads_checked += 1;
    }
    // fc1 weight and bias, norm weight and bias, fc2 weight and bias.
    let per_predictor = 6;
    let predictors = if variant == LossVariant::Bidirectional {
        2
    } else {
        1
    };
    assert_eq!(grads_checked, per_predictor * predictors, "{file}");
    // Running statistics after B per-clip updates.
    for name in f.names() {
        let Some(n) = name.strip_prefix("buffer_after.") else {
            continue;
        };
        let official = official_name(n);
        if n.ends_with("num_batches_tracked") {
            let (v, _) = f.i64(&name).unwrap();
            assert_eq!(params.counter(&official), Some(v[0]), "{name}");
        } else {
            let want = f.f32(&name).unwrap().data;
            assert_within(
                &name,
                &read(params.get(&official).unwrap()),
                &want,
                1e-4 * max_abs(&want),
            );
        }
    }
}

#[test]
fn c2p_loss_with_batchnorm_predictors_matches_the_official_code() {
    check(
        "losses/c2p_loss_bn.safetensors",
        PredictorNorm::BatchNorm,
        LossVariant::Bidirectional,
    );
}

#[test]
fn c2p_loss_with_layernorm_predictors_matches_the_paper_variant() {
    check(
        "losses/c2p_loss_ln.safetensors",
        PredictorNorm::LayerNorm,
        LossVariant::Bidirectional,
    );
}

#[test]
fn c2p_msr_loss_has_only_the_forward_predictor() {
    check(
        "losses/c2p_loss_msr_bn.safetensors",
        PredictorNorm::BatchNorm,
        LossVariant::ForwardOnly,
    );
}
