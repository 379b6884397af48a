//! `edge4d pretrain --method c2p` end to end: one SGD step at lr 1 on the official
//! pre-training step fixture gives `w − grad` for every weight (and the predictors'
//! BatchNorm running statistics after the step); on-the-fly camera views on a small
//! humanoid dataset train, and the result initialises `finetune`.

use std::path::Path;

use crate::common::*;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::TensorFile;

#[test]
fn one_pretraining_step_with_lr_one_gives_w_minus_grad() {
    // Weights under the official checkpoint's names (`model.` before the backbone's),
    // and as a user might export the backbone alone (bare names): both load.
    pretraining_step_from(true);
    pretraining_step_from(false);
}

fn pretraining_step_from(official_names: bool) {
    let f = fixture("p4transformer/c2p_as_pretrain_step.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("c2p.toml");
    std::fs::write(&config, c2p_toml(&fixture_config(&f))).unwrap();
    let mut weights = Vec::new();
    let mut official = std::collections::BTreeSet::new();
    for name in f.names() {
        if let Some(n) = name.strip_prefix("param.") {
            official.insert(n.to_string());
            let stored = if official_names {
                n.to_string()
            } else {
                n.strip_prefix("model.").unwrap_or(n).to_string()
            };
            weights.push((
                stored,
                if n.ends_with("num_batches_tracked") {
                    let (v, s) = f.i64(&name).unwrap();
                    Stored::I64(v, s)
                } else {
                    Stored::F32(f.f32(&name).unwrap())
                },
            ));
        }
    }
    write_atomic(&d.join("init.safetensors"), &weights, Default::default()).unwrap();
    let data = vec![
        (
            "clip".to_string(),
            Stored::F32(f.f32("input.clip_complete").unwrap()),
        ),
        (
            "partial".to_string(),
            Stored::F32(f.f32("input.clip_partial").unwrap()),
        ),
    ];
    write_atomic(&d.join("data.safetensors"), &data, Default::default()).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, out) = edge4d(
        &[
            &[
                "pretrain",
                "--method",
                "c2p",
                "--config",
                &s(&config),
                "--data",
                &s(&d.join("data.safetensors")),
                "--init",
                &s(&d.join("init.safetensors")),
                "--out",
                &s(&d.join("run")),
            ][..],
            &ONE_PLAIN_SGD_STEP[..],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("initialised none"),
        "every tensor loads: {out}"
    );
    let trained = TensorFile::open(d.join("run/model.safetensors")).unwrap();
    // The result is written under the official names, so the official code loads it.
    assert_eq!(
        trained
            .names()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        official
    );
    let grads: Vec<String> = f
        .names()
        .into_iter()
        .filter(|n| {
            n.starts_with("grad.") && !n.starts_with("grad.input") && !n.ends_with(".features")
        })
        .collect();
    assert_eq!(grads.len(), 37);
    assert_w_minus_grad(&f, &trained, &grads, str::to_string);
    for name in f.names() {
        let Some(n) = name.strip_prefix("buffer_after.") else {
            continue;
        };
        if n.ends_with("num_batches_tracked") {
            assert_eq!(trained.i64(n).unwrap().0, f.i64(&name).unwrap().0, "{n}");
        } else {
            let want = f.f32(&name).unwrap().data;
            assert_within(
                n,
                &trained.f32(n).unwrap().data,
                &want,
                1e-4 * max_abs(&want),
            );
        }
    }

    // An --init holding none of the backbone's tensors (the predictors only) is refused
    // with the names it should have.
    let predictors: Vec<(String, Stored)> = weights
        .into_iter()
        .filter(|(n, _)| n.contains("predictor"))
        .collect();
    write_atomic(
        &d.join("heads.safetensors"),
        &predictors,
        Default::default(),
    )
    .unwrap();
    let (ok, out) = edge4d(
        &[
            &[
                "pretrain",
                "--config",
                &s(&config),
                "--data",
                &s(&d.join("data.safetensors")),
                "--init",
                &s(&d.join("heads.safetensors")),
                "--out",
                &s(&d.join("run2")),
            ][..],
            &ONE_PLAIN_SGD_STEP[..],
        ]
        .concat(),
    );
    assert!(
        !ok && out.contains("none of the backbone's")
            && out.contains("tube_embedding.conv_d.0.weight"),
        "{out}"
    );
}

/// A small humanoid dataset (rendered, 2 clips per action, 8 frames x 128 points).
fn humanoid_data(dir: &Path) -> String {
    use edge4d_trainer::humanoid::generate::{generate, Assets, GenConfig, Split};
    let assets = Assets::bundled().unwrap();
    let cfg = GenConfig {
        frames: 8,
        points: 128,
        ..GenConfig::default()
    };
    let data = generate(&assets, Split::Train, 1, &cfg, 3).unwrap();
    let path = dir.join("humanoid.safetensors");
    data.save(&path).unwrap();
    path.to_str().unwrap().to_string()
}

const BACKBONE: &str = r#"
radius = 0.7
nsamples = 8
spatial_stride = 16
temporal_kernel_size = 3
temporal_stride = 1
temporal_padding = [1, 1]
dim = 32
depth = 1
heads = 2
dim_head = 16
mlp_dim = 64
pred_hidden = 64
"#;

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn camera_view_pretraining_runs_and_initialises_finetuning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = humanoid_data(d);
    let c2p = d.join("c2p.toml");
    std::fs::write(
        &c2p,
        format!("model = \"p4transformer-actionseg\"\n{BACKBONE}"),
    )
    .unwrap();
    let msr = d.join("msr.toml");
    // The pre-training config has no head and so no num_classes; the fine-tuning one does.
    std::fs::write(
        &msr,
        format!("model = \"p4transformer-msr\"\n{BACKBONE}num_classes = 15\n"),
    )
    .unwrap();
    let run = d.join("pre");
    let (ok, out) = edge4d(&[
        "pretrain",
        "--config",
        c2p.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "5",
        "--lr",
        "0.01",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("camera trajectories with z-buffer occlusion"),
        "{out}"
    );
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("train_loss").count(), 2, "{metrics}");
    // The per-frame backbone initialises a per-clip model: tube, positional embedding
    // and transformer (transformer1.* → transformer.*); the head starts fresh.
    let (ok, out) = edge4d(&[
        "finetune",
        "--task",
        "action-recognition",
        "--config",
        msr.to_str().unwrap(),
        "--data",
        &data,
        "--init",
        run.join("model.safetensors").to_str().unwrap(),
        "--out",
        d.join("ft").to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "5",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("initialised mlp_head.0.weight, mlp_head.0.bias, mlp_head.1.weight"),
        "{out}"
    );
    // Pre-training data must come with a per-frame backbone config.
    let (ok, out) = edge4d(&[
        "pretrain",
        "--config",
        msr.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        d.join("bad").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("p4transformer-actionseg"), "{out}");
    // A head-less pre-training config cannot be fine-tuned as it is.
    let (ok, out) = edge4d(&[
        "finetune",
        "--task",
        "action-segmentation",
        "--config",
        c2p.to_str().unwrap(),
        "--data",
        &data,
        "--out",
        d.join("bad2").to_str().unwrap(),
    ]);
    assert!(
        !ok && out.contains("num_classes") && out.contains("pre-training"),
        "{out}"
    );
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn action_segmentation_sequences_pretrain_and_finetune_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let data = d.join("seq");
    let (ok, out) = edge4d(&[
        "data",
        "humanoid",
        "--sequences",
        "--out",
        &s(&data),
        "--train-clips",
        "4",
        "--test-clips",
        "2",
        "--frames",
        "40",
        "--points",
        "128",
        "--segment-frames",
        "8,14",
        "--transition-frames",
        "3",
    ]);
    assert!(ok && out.contains("4 sequences of 40 frames"), "{out}");
    let config = d.join("seg.toml");
    std::fs::write(
        &config,
        format!("model = \"p4transformer-actionseg\"\n{BACKBONE}num_classes = 15\n"),
    )
    .unwrap();
    let (ok, out) = edge4d(&[
        "pretrain",
        "--config",
        &s(&config),
        "--data",
        &s(&data.join("train.safetensors")),
        "--out",
        &s(&d.join("pre")),
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--terms",
        "window5",
        "--no-time",
    ]);
    assert!(ok && out.contains("time input 0"), "{out}");
    let pre = TensorFile::open(d.join("pre/model.safetensors")).unwrap();
    assert!(
        pre.contains("forward_predictor_2.net.0.weight")
            && pre.contains("model.pos_embedding.weight")
    );
    let (ok, out) = edge4d(&[
        "finetune",
        "--task",
        "action-segmentation",
        "--config",
        &s(&config),
        "--data",
        &s(&data.join("train.safetensors")),
        "--label-fraction",
        "0.5",
        "--init",
        &s(&d.join("pre/model.safetensors")),
        "--out",
        &s(&d.join("ft")),
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]);
    assert!(ok && out.contains("initialised mlp_head"), "{out}");
    assert!(
        out.contains(": 2 clips of 40 frames"),
        "half of 4 sequences: {out}"
    );
    let (ok, out) = edge4d(&[
        "eval",
        "--config",
        &s(&config),
        "--weights",
        &s(&d.join("ft/model.safetensors")),
        "--data",
        &s(&data.join("test.safetensors")),
        "--json",
    ]);
    assert!(ok, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(v["sequences"], 2);
    for key in ["accuracy", "edit", "f1@10", "f1@25", "f1@50"] {
        assert!(
            (0.0..=100.0).contains(&v[key].as_f64().unwrap()),
            "{key}: {v}"
        );
    }
}
