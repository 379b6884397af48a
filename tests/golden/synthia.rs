//! The P4Transformer segmentation net (models/synthia.py, reduced widths) against the
//! original code's golden tensors: train mode (batch statistics, running-stat updates,
//! every gradient) and eval mode (running statistics).

use crate::common::*;
use edge4d_runtime::models::synthia::{
    segmentation_loss, segmentation_row_weights, SegmentationNet,
};
use edge4d_runtime::models::{P4TransformerConfig, ParamStore};
use edge4d_runtime::TensorFile;

fn config(f: &TensorFile) -> P4TransformerConfig {
    let c = fixture_config(f);
    let toml = synthia_toml(&c);
    P4TransformerConfig::parse(&toml, "synthia fixture").unwrap()
}

/// (B, L, C, N) → (B, L, N, C).
fn cl(f: &TensorFile, name: &str) -> Vec<f32> {
    let t = f.f32(name).unwrap();
    let s = &t.shape;
    channels_last(&t.data, s[0], s[1], s[2], s[3])
}

fn run(train: bool) {
    let params_file = fixture("p4transformer/synthia_mini_params.safetensors");
    let f = fixture(if train {
        "p4transformer/synthia_mini_train.safetensors"
    } else {
        "p4transformer/synthia_mini_eval.safetensors"
    });
    let dir = tempfile::tempdir().unwrap();
    let weights = export_weights(&params_file, dir.path());
    let net = SegmentationNet::new(config(&params_file)).unwrap();
    let params = ParamStore::load(
        dev(),
        net.spec(),
        &TensorFile::open(&weights).unwrap(),
        "",
        false,
    )
    .unwrap();

    let xyz = params_file.f32("input.xyzs").unwrap();
    let rgb = params_file.f32("input.rgbs").unwrap();
    let (labels, _) = params_file.u32("input.label").unwrap();
    let mask = params_file.f32("input.mask").unwrap().data;
    let cw = params_file.f32("input.class_weight").unwrap().data;
    let rw = segmentation_row_weights(&labels, &mask, &cw).unwrap();
    let rows = rw.len();
    let d = dev();
    let (txyz, trgb) = (
        d.upload(&xyz.data, &xyz.shape).unwrap(),
        d.upload(&rgb.data, &rgb.shape).unwrap(),
    );
    let tl = d.upload_u32(&labels, &[rows]).unwrap();
    let trw = d.upload(&rw, &[rows]).unwrap();
    let one = d.upload(&[1.0], &[1]).unwrap();

    let (fwd, loss, back) = d
        .run(|s| {
            let fwd = net.forward(s, &params, &txyz, &trgb, train)?;
            let (loss, g) = segmentation_loss(s, &fwd.logits, &tl, &trw, &one)?;
            let back = if train {
                let mut grads = edge4d_runtime::models::Grads::new();
                let (gxyz, grgb) = net.backward(s, &params, &fwd, &g, &mut grads)?;
                Some((grads, gxyz, grgb))
            } else {
                None
            };
            Ok((fwd, loss, back))
        })
        .unwrap();
    let read = |t: &edge4d_runtime::Tensor| d.read(t).unwrap();

    // FPS and ball-query indices in the original call order.
    let mut ops: Vec<String> = f
        .names()
        .into_iter()
        .filter(|n| n.starts_with("ops."))
        .collect();
    ops.sort();
    let mut at = 0;
    for level in 0..4 {
        let fps = d.read_u32(&fwd.fps_idx[level]).unwrap();
        let balls = d.read_u32(&fwd.ball_idx[level]).unwrap();
        let bs = fwd.ball_idx[level].shape().to_vec(); // (B, L, kt, n, k)
        let (b, l, kt, n, k) = (bs[0], bs[1], bs[2], bs[3], bs[4]);
        for t in 0..l {
            let (want, _) = f.u32(&ops[at]).unwrap();
            assert!(ops[at].ends_with(".fps"), "{}", ops[at]);
            at += 1;
            for bb in 0..b {
                assert_eq!(
                    &fps[(bb * l + t) * n..][..n],
                    &want[bb * n..][..n],
                    "conv{} fps t{t}",
                    level + 1
                );
            }
            for o in 0..kt {
                let (want, _) = f.u32(&ops[at]).unwrap();
                at += 1;
                for bb in 0..b {
                    let got = &balls[(((bb * l + t) * kt + o) * n) * k..][..n * k];
                    assert_eq!(
                        got,
                        &want[bb * n * k..][..n * k],
                        "conv{} balls t{t} o{o}",
                        level + 1
                    );
                }
            }
        }
    }
    assert_eq!(at, ops.len(), "every recorded op call compared");

    for level in 0..4 {
        let name = format!("conv{}", level + 1);
        assert_activation(
            &format!("{name}.xyzs"),
            &read(&fwd.conv_xyz[level]),
            &f.f32(&format!("{name}.xyzs")).unwrap().data,
        );
        assert_activation(
            &format!("{name}.features"),
            &read(&fwd.conv_features[level]),
            &cl(&f, &format!("{name}.features")),
        );
    }
    assert_activation(
        "transformer_out",
        &read(&fwd.transformer_out),
        &f.f32("transformer_out").unwrap().data,
    );
    for (i, level) in [4, 3, 2, 1].iter().enumerate() {
        let name = format!("deconv{level}.features");
        assert_activation(&name, &read(&fwd.deconv_features[i]), &cl(&f, &name));
    }
    assert_activation("output", &read(&fwd.logits), &cl(&f, "output"));
    let (got, want) = (read(&loss)[0], f.f32("loss").unwrap().data[0]);
    assert!(((got - want) / want).abs() <= 1e-5, "loss {got} vs {want}");

    if let Some((grads, gxyz, grgb)) = back {
        let g_max = assert_param_grads(&f, &net.spec(), &grads);
        for (name, got) in [("grad.input.xyzs", &gxyz), ("grad.input.rgbs", &grgb)] {
            let want = f.f32(name).unwrap();
            assert_within(
                name,
                &read(got),
                &want.data,
                1e-4 * g_max.max(max_abs(&want.data)),
            );
        }
        // Running statistics after one train-mode forward (L'·kt updates per P4DConv BN).
        assert_buffers_after(&f, &net.spec(), &params);
    }
}

#[test]
fn segmentation_net_matches_pytorch_in_train_mode() {
    run(true);
}

#[test]
fn segmentation_net_matches_pytorch_in_eval_mode() {
    run(false);
}
