//! `edge4d infer` end to end: config + PyTorch state_dict + clip file in, logits out,
//! equal to the PyTorch reference; and clear errors for bad files.

use crate::common::*;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::TensorFile;

/// `edge4d infer` with these files; returns (success, stdout, stderr).
fn infer(config: &str, weights: &str, input: &str, output: &str) -> (bool, String, String) {
    let run = edge4d(&[
        "infer",
        "--config",
        config,
        "--weights",
        weights,
        "--input",
        input,
        "--output",
        output,
    ]);
    (
        run.status.success(),
        String::from_utf8_lossy(&run.stdout).to_string(),
        String::from_utf8_lossy(&run.stderr).to_string(),
    )
}

fn edge4d(args: &[&str]) -> std::process::Output {
    crate::common::run_edge4d(args, &[], &[])
}

#[test]
fn infer_reproduces_pytorch_logits_and_reports_bad_inputs() {
    let f = fixture("p4transformer/msr_p4transformer.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("model.toml");
    std::fs::write(
        &config,
        config_toml(&fixture_config(&f), "p4transformer-msr", P4_KEYS),
    )
    .unwrap();
    let weights = export_weights(&f, dir.path());
    let input = dir.path().join("clip.safetensors");
    write_atomic(
        &input,
        &[("clip".into(), Stored::F32(f.f32("input.clip").unwrap()))],
        Default::default(),
    )
    .unwrap();
    let output = dir.path().join("out.safetensors");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (c, w, i, o) = (p(&config), p(&weights), p(&input), p(&output));

    let (success, stdout, stderr) = infer(&c, &w, &i, &o);
    assert!(
        success,
        "{stdout}
{stderr}"
    );
    assert!(
        stdout.contains("adapter:") && stdout.contains(" ms"),
        "{stdout}"
    );
    let out = TensorFile::open(&output).unwrap();
    assert_activation(
        "logits",
        &out.f32("logits").unwrap().data,
        &f.f32("logits").unwrap().data,
    );
    assert_eq!(out.shape("prediction").unwrap(), vec![2]);

    // A config that does not match the weights: every mismatched tensor is named.
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("dim = 64", "dim = 32"),
    )
    .unwrap();
    let (success, _, err) = infer(wrong.to_str().unwrap(), &w, &i, &o);
    assert!(!success);
    assert!(
        err.contains(
            "tube_embedding.conv_d.0.weight has shape [64, 4, 1, 1], the model needs [32, 4, 1, 1]"
        ),
        "{err}"
    );

    // Unknown and missing keys.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("radius", "radios"),
    )
    .unwrap();
    let (success, _, err) = infer(bad.to_str().unwrap(), &w, &i, &o);
    assert!(!success);
    assert!(err.contains("radios"), "{err}");

    // Missing weights are each named.
    let partial = dir.path().join("partial.safetensors");
    let wf = TensorFile::open(&weights).unwrap();
    let kept: Vec<(String, Stored)> = wf
        .names()
        .into_iter()
        .filter(|n| !n.starts_with("mlp_head"))
        .map(|n| (n.clone(), Stored::F32(wf.f32(&n).unwrap())))
        .collect();
    write_atomic(&partial, &kept, Default::default()).unwrap();
    let (success, _, err) = infer(&c, partial.to_str().unwrap(), &i, &o);
    assert!(!success);
    assert!(
        err.contains("missing mlp_head.0.weight") && err.contains("missing mlp_head.3.bias"),
        "{err}"
    );

    // Non-finite coordinates.
    let mut clip = f.f32("input.clip").unwrap();
    clip.data[17] = f32::NAN;
    let nan_input = dir.path().join("nan.safetensors");
    write_atomic(
        &nan_input,
        &[("clip".into(), Stored::F32(clip))],
        Default::default(),
    )
    .unwrap();
    let (success, _, err) = infer(&c, &w, nan_input.to_str().unwrap(), &o);
    assert!(!success);
    assert!(
        err.contains("non-finite") && err.contains("index 17"),
        "{err}"
    );

    // Finite coordinates too large for f32 arithmetic: non-finite logits are an error,
    // not a prediction.
    let mut clip = f.f32("input.clip").unwrap();
    for v in clip.data.iter_mut().step_by(3) {
        *v = 3e38;
    }
    let huge_input = dir.path().join("huge.safetensors");
    write_atomic(
        &huge_input,
        &[("clip".into(), Stored::F32(clip))],
        Default::default(),
    )
    .unwrap();
    let (success, out, err) = infer(&c, &w, huge_input.to_str().unwrap(), &o);
    assert!(!success, "{out}");
    assert!(err.contains("logits are not finite"), "{err}");

    // A NaN in the weights file names the file and the tensor.
    let nan_weights = dir.path().join("nan_weights.safetensors");
    let tensors: Vec<(String, Stored)> = wf
        .names()
        .into_iter()
        .map(|n| {
            let mut t = wf.f32(&n).unwrap();
            if n == "mlp_head.0.weight" {
                t.data[3] = f32::NAN;
            }
            (n.clone(), Stored::F32(t))
        })
        .collect();
    write_atomic(&nan_weights, &tensors, Default::default()).unwrap();
    let (success, _, err) = infer(&c, nan_weights.to_str().unwrap(), &i, &o);
    assert!(!success);
    assert!(
        err.contains("nan_weights.safetensors")
            && err.contains("tensor mlp_head.0.weight holds a non-finite value (NaN) at index 3"),
        "{err}"
    );

    // A clip with too few points per frame for the spatial stride.
    let small = dir.path().join("small.safetensors");
    let tiny = edge4d_runtime::HostTensor::new(vec![1.0; 2 * 6 * 4 * 3], &[2, 6, 4, 3]);
    write_atomic(
        &small,
        &[("clip".into(), Stored::F32(tiny))],
        Default::default(),
    )
    .unwrap();
    let (success, _, err) = infer(&c, &w, small.to_str().unwrap(), &o);
    assert!(!success);
    assert!(err.contains("fewer than spatial_stride"), "{err}");
}

#[test]
fn infer_runs_the_segmentation_net_per_point_in_eval_mode() {
    let params = fixture("p4transformer/synthia_mini_params.safetensors");
    let eval = fixture("p4transformer/synthia_mini_eval.safetensors");
    let c = fixture_config(&params);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seg.toml");
    std::fs::write(&config, synthia_toml(&c)).unwrap();
    let weights = export_weights(&params, dir.path());
    let input = dir.path().join("clip.safetensors");
    let output = dir.path().join("out.safetensors");
    write_atomic(
        &input,
        &[
            (
                "clip".into(),
                Stored::F32(params.f32("input.xyzs").unwrap()),
            ),
            (
                "features".into(),
                Stored::F32(params.f32("input.rgbs").unwrap()),
            ),
        ],
        Default::default(),
    )
    .unwrap();
    let run = edge4d(&[
        "infer",
        "--config",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = TensorFile::open(&output).unwrap();
    let want = eval.f32("output").unwrap();
    let s = &want.shape;
    assert_activation(
        "per-point logits",
        &out.f32("logits").unwrap().data,
        &channels_last(&want.data, s[0], s[1], s[2], s[3]),
    );
    assert_eq!(out.shape("prediction").unwrap(), vec![s[0], s[1], s[3]]);
}
