//! P4Transformer (models/msr.py) against the golden tensors of the original PyTorch
//! code, through the public API: a TOML config, a state_dict weights file, a clip.

use crate::common::*;
use edge4d_runtime::models::{P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::TensorFile;

#[test]
fn msr_p4transformer_matches_pytorch_forward_and_backward() {
    let f = fixture("p4transformer/msr_p4transformer.safetensors");
    let cfg_json = fixture_config(&f);
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("model.toml");
    std::fs::write(
        &cfg_path,
        config_toml(&cfg_json, "p4transformer-msr", P4_KEYS),
    )
    .unwrap();
    let weights = export_weights(&f, dir.path());

    let cfg = P4TransformerConfig::load(&cfg_path).unwrap();
    let model = P4Transformer::new(cfg.clone()).unwrap();
    let params = ParamStore::load(
        dev(),
        model.spec(),
        &TensorFile::open(&weights).unwrap(),
        "",
        false,
    )
    .unwrap();

    let clip = f.f32("input.clip").unwrap();
    let (labels, _) = f.u32("input.label").unwrap();
    let tclip = dev().upload(&clip.data, &clip.shape).unwrap();
    let tlabels = dev().upload_u32(&labels, &[labels.len()]).unwrap();
    let one = dev().upload(&[1.0], &[1]).unwrap();

    let (fwd, loss, grads, gclip) = dev()
        .run(|s| {
            let fwd = model.forward(s, &params, &tclip)?;
            let (loss, _) = cross_entropy(s, &fwd.logits, &tlabels)?;
            let gl = cross_entropy_backward(s, &fwd.logits, &tlabels, &one)?;
            let mut grads = edge4d_runtime::models::Grads::new();
            let gclip = model.backward(s, &params, &fwd, &gl, &mut grads)?;
            Ok((fwd, loss, grads, gclip))
        })
        .unwrap();

    // Indices exactly.
    let (want, _) = f.u32("tube.anchor_idx").unwrap();
    assert_eq!(
        dev().read_u32(&fwd.tube.anchor_sel.idx).unwrap(),
        want,
        "FPS anchors"
    );
    let (want, _) = f.u32("tube.ball_idx").unwrap();
    assert_eq!(
        dev().read_u32(&fwd.tube.balls.idx).unwrap(),
        want,
        "ball-query neighbours"
    );

    // Activations.
    let read = |t: &edge4d_runtime::Tensor| dev().read(t).unwrap();
    assert_activation(
        "tube.xyzs",
        &read(&fwd.tube.anchors),
        &f.f32("tube.xyzs").unwrap().data,
    );
    let feat = f.f32("tube.features").unwrap();
    let s = &feat.shape;
    let want = channels_last(&feat.data, s[0], s[1], s[2], s[3]);
    assert_activation("tube.features", &read(&fwd.tube.features), &want);
    assert_activation(
        "embedding",
        &read(&fwd.embedding),
        &f.f32("embedding").unwrap().data,
    );
    assert_activation(
        "transformer_out",
        &read(&fwd.transformer_out),
        &f.f32("transformer_out").unwrap().data,
    );
    assert_activation(
        "pooled",
        &read(fwd.pooled.as_ref().unwrap()),
        &f.f32("pooled").unwrap().data,
    );
    assert_activation("logits", &read(&fwd.logits), &f.f32("logits").unwrap().data);
    let want_loss = f.f32("loss").unwrap().data[0];
    let got_loss = read(&loss)[0];
    assert!(
        ((got_loss - want_loss) / want_loss).abs() <= 1e-5,
        "loss {got_loss} vs {want_loss}"
    );

    // Gradients within 1e-4·G, G the largest gradient magnitude in the model.
    let g_max = model
        .spec()
        .iter()
        .map(|p| max_abs(&f.f32(&format!("grad.{}", p.name)).unwrap().data))
        .fold(0.0f64, f64::max);
    assert_eq!(
        grads.len(),
        model.spec().len(),
        "a gradient for every parameter"
    );
    for p in model.spec() {
        let want = f.f32(&format!("grad.{}", p.name)).unwrap();
        let got = &grads[&p.name];
        assert_eq!(got.shape(), &want.shape[..], "grad {} shape", p.name);
        assert_within(
            &format!("grad.{}", p.name),
            &read(got),
            &want.data,
            1e-4 * g_max,
        );
    }
    let want = f.f32("grad.input.clip").unwrap();
    assert_within(
        "grad.input.clip",
        &read(&gclip),
        &want.data,
        1e-4 * g_max.max(max_abs(&want.data)),
    );
}
