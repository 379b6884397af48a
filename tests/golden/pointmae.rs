//! Point-MAE's tokenizer and encoder (Group + MaskTransformer, no masking) against the
//! original code's golden tensors: FPS and kNN indices exactly, activations, the loss
//! mean((x_vis − target)²), every gradient and the BatchNorm running statistics.

use crate::common::*;
use edge4d_runtime::models::pointmae::{PointMae, PointMaeConfig};
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::mse::{mse, mse_backward};
use edge4d_runtime::TensorFile;

pub fn pointmae_toml(c: &serde_json::Value) -> String {
    format!(
        "model = \"point-mae\"\nnum_group = {}\ngroup_size = {}\ntrans_dim = {}\nencoder_dims = {}\ndepth = {}\nnum_heads = {}\n",
        c["num_group"], c["group_size"], c["trans_dim"], c["encoder_dims"], c["depth"], c["num_heads"]
    )
}

/// (M, B, G, 3) → (B, G, M, 3).
fn group_major(x: &[f32], m: usize, bg: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for j in 0..m {
        for r in 0..bg {
            for c in 0..3 {
                out[(r * m + j) * 3 + c] = x[(j * bg + r) * 3 + c];
            }
        }
    }
    out
}

fn run(train: bool) {
    let params_file = fixture("p4transformer/pointmae_encoder_params.safetensors");
    let f = fixture(if train {
        "p4transformer/pointmae_encoder_train.safetensors"
    } else {
        "p4transformer/pointmae_encoder_eval.safetensors"
    });
    let cfg = fixture_config(&params_file);
    let net =
        PointMae::new(PointMaeConfig::parse(&pointmae_toml(&cfg), "fixture").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = export_weights(&params_file, dir.path());
    let params = ParamStore::load(
        dev(),
        net.spec(),
        &TensorFile::open(&weights).unwrap(),
        "",
        false,
    )
    .unwrap();
    let d = dev();
    let points = params_file.f32("input.points").unwrap();
    let target = params_file.f32("input.target").unwrap();
    let tp = d.upload(&points.data, &points.shape).unwrap();
    let tt = d.upload(&target.data, &target.shape).unwrap();
    let one = d.upload(&[1.0], &[1]).unwrap();
    let (fwd, loss, back) = d
        .run(|s| {
            let fwd = net.forward(s, &params, &tp, train)?;
            let loss = mse(s, &fwd.blocks.features, &tt)?;
            let back = if train {
                let g = mse_backward(s, &fwd.blocks.features, &tt, &one)?;
                let mut grads = Grads::new();
                let gp = net.backward(s, &params, &fwd, Some(&g), &[], &mut grads)?;
                Some((grads, gp))
            } else {
                None
            };
            Ok((fwd, loss, back))
        })
        .unwrap();
    let read = |t: &edge4d_runtime::Tensor| d.read(t).unwrap();

    let (fps_want, _) = f.u32("group.fps_idx").unwrap();
    assert_eq!(
        d.read_u32(&fwd.tokens.fps_idx).unwrap(),
        fps_want,
        "FPS indices"
    );
    let (knn_want, _) = f.u32("group.knn_idx").unwrap();
    assert_eq!(
        d.read_u32(&fwd.tokens.knn_idx).unwrap(),
        knn_want,
        "kNN indices"
    );
    assert_activation(
        "group.center",
        &read(&fwd.tokens.center),
        &f.f32("group.center").unwrap().data,
    );
    let (m, bg) = (net.cfg.group_size, fwd.tokens.center.numel() / 3);
    assert_activation(
        "group.neighborhood",
        &group_major(&read(&fwd.tokens.neighborhood), m, bg),
        &f.f32("group.neighborhood").unwrap().data,
    );
    assert_activation(
        "tokens",
        &read(&fwd.tokens.tokens),
        &f.f32("tokens").unwrap().data,
    );
    assert_activation("pos", &read(&fwd.tokens.pos), &f.f32("pos").unwrap().data);
    assert_activation(
        "x_vis",
        &read(&fwd.blocks.features),
        &f.f32("x_vis").unwrap().data,
    );
    let (got, want) = (read(&loss)[0], f.f32("loss").unwrap().data[0]);
    assert!(((got - want) / want).abs() <= 1e-5, "loss {got} vs {want}");

    if let Some((grads, gp)) = back {
        let g_max = assert_param_grads(&f, &net.spec(), &grads);
        let want = f.f32("grad.input.points").unwrap();
        assert_within(
            "grad.input.points",
            &read(&gp),
            &want.data,
            1e-4 * g_max.max(max_abs(&want.data)),
        );
        assert_buffers_after(&f, &net.spec(), &params);
    }
}

#[test]
fn point_mae_encoder_matches_pytorch_in_train_mode() {
    run(true);
}

#[test]
fn point_mae_encoder_matches_pytorch_in_eval_mode() {
    run(false);
}
