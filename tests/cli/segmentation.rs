//! `edge4d finetune --task semantic-segmentation` and `edge4d eval` on the segmentation
//! net: one SGD step with lr 1 gives exactly w − grad of the PyTorch fixture (weighted,
//! masked loss included), a short run learns, and eval reports mIoU.

use std::path::Path;

use crate::common::*;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{HostTensor, TensorFile};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let (success, text) = edge4d(args);
    assert!(success, "{text}");
    text
}

/// The Synthia fixture's config, weights and batch as files: (params file, config, weights, data).
fn fixture_files(dir: &Path) -> (TensorFile, String, String, String) {
    let f = fixture("p4transformer/synthia_mini_params.safetensors");
    let config = dir.join("seg.toml");
    std::fs::write(&config, synthia_toml(&fixture_config(&f))).unwrap();
    let weights = export_weights(&f, dir);
    let xyz = f.f32("input.xyzs").unwrap();
    let rgb = f.f32("input.rgbs").unwrap();
    let (b, l, n) = (xyz.shape[0], xyz.shape[1], xyz.shape[2]);
    let (labels, _) = f.i64("input.label").unwrap();
    let data = dir.join("seg.safetensors");
    write_atomic(
        &data,
        &[
            ("clip".into(), Stored::F32(xyz)),
            (
                "rgb".into(),
                Stored::F32(HostTensor::new(
                    channels_last(&rgb.data, b, l, 3, n),
                    &[b, l, n, 3],
                )),
            ),
            ("label".into(), Stored::I64(labels, vec![b, l, n])),
            ("mask".into(), Stored::F32(f.f32("input.mask").unwrap())),
            (
                "class_weight".into(),
                Stored::F32(f.f32("input.class_weight").unwrap()),
            ),
        ],
        Default::default(),
    )
    .unwrap();
    (f, s(&config), s(&weights), s(&data))
}

#[test]
fn one_sgd_step_with_lr_one_gives_w_minus_grad() {
    let dir = tempfile::tempdir().unwrap();
    let (params, config, weights, data) = fixture_files(dir.path());
    let out = s(&dir.path().join("run"));
    ok(&[
        &[
            "finetune",
            "--task",
            "semantic-segmentation",
            "--config",
            &config,
            "--data",
            &data,
            "--init",
            &weights,
            "--out",
            &out,
        ][..],
        &ONE_PLAIN_SGD_STEP[..],
    ]
    .concat());
    let trained = TensorFile::open(dir.path().join("run/model.safetensors")).unwrap();
    let golden = fixture("p4transformer/synthia_mini_train.safetensors");
    let grads: Vec<String> = golden
        .names()
        .into_iter()
        .filter(|n| n.starts_with("grad.") && !n.starts_with("grad.input"))
        .collect();
    assert!(grads.len() >= 20, "{} gradients", grads.len());
    let g_max = grads
        .iter()
        .map(|n| max_abs(&golden.f32(n).unwrap().data))
        .fold(0.0f64, f64::max);
    for g in &grads {
        let name = g.strip_prefix("grad.").unwrap();
        let want: Vec<f32> = params
            .f32(&format!("param.{name}"))
            .unwrap()
            .data
            .iter()
            .zip(&golden.f32(g).unwrap().data)
            .map(|(w, g)| w - g)
            .collect();
        assert_within(
            &format!("{name} after one step"),
            &trained.f32(name).unwrap().data,
            &want,
            1e-4 * g_max,
        );
    }
}

/// Clips whose point colours carry the class (so a few steps can learn it), half of
/// them masked out.
fn learnable_dataset(path: &Path, clips: usize) {
    let (l, n, classes) = (3, 256, 5u32);
    let mut rng = edge4d_trainer::rng::SplitMix64::new(11);
    let (mut xyz, mut rgb, mut labels, mut mask) = (vec![], vec![], vec![], vec![]);
    for _ in 0..clips * l * n {
        let y = (rng.next_u64() % classes as u64) as u32;
        xyz.extend([
            rng.uniform(-1.0, 1.0),
            rng.uniform(-1.0, 1.0),
            rng.uniform(-1.0, 1.0),
        ]);
        rgb.extend([y as f32 / 4.0, 1.0 - y as f32 / 4.0, 0.5]);
        labels.push(y as i64);
        mask.push((rng.next_u64() % 4 != 0) as u8 as f32);
    }
    write_atomic(
        path,
        &[
            (
                "clip".into(),
                Stored::F32(HostTensor::new(xyz, &[clips, l, n, 3])),
            ),
            (
                "rgb".into(),
                Stored::F32(HostTensor::new(rgb, &[clips, l, n, 3])),
            ),
            ("label".into(), Stored::I64(labels, vec![clips, l, n])),
            (
                "mask".into(),
                Stored::F32(HostTensor::new(mask, &[clips, l, n])),
            ),
        ],
        Default::default(),
    )
    .unwrap();
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn a_short_run_learns_and_eval_reports_miou() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, _, _) = fixture_files(dir.path());
    let data = dir.path().join("train.safetensors");
    learnable_dataset(&data, 4);
    let out = dir.path().join("run");
    let text = ok(&[
        "finetune",
        "--task",
        "semantic-segmentation",
        "--config",
        &config,
        "--data",
        &s(&data),
        "--val",
        &s(&data),
        "--out",
        &s(&out),
        "--epochs",
        "6",
        "--batch-size",
        "2",
        "--optimizer",
        "adamw",
        "--lr",
        "0.05",
        "--weight-decay",
        "0",
        "--log-every",
        "1",
    ]);
    assert!(text.contains("val mIoU"), "{text}");
    let losses: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["loss"].as_f64())
        .collect();
    assert_eq!(losses.len(), 12);
    let (first, last) = (losses[0], losses[10] + losses[11]);
    assert!(
        last / 2.0 < 0.5 * first,
        "the loss should fall by half: {losses:?}"
    );
    let json = ok(&[
        "eval",
        "--config",
        &config,
        "--weights",
        &s(&out.join("model.safetensors")),
        "--data",
        &s(&data),
        "--json",
        "--predictions",
        &s(&out.join("pred.npy")),
    ]);
    // Predictions as NumPy int64, one per point.
    let pred = edge4d_trainer::npy::read(&out.join("pred.npy")).unwrap();
    assert_eq!(pred.shape, vec![4, 3, 256]);
    assert!(pred.to_i64().unwrap().iter().all(|&c| (0..5).contains(&c)));
    let v: serde_json::Value =
        serde_json::from_str(json.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let miou = v["miou"].as_f64().unwrap();
    assert_eq!(v["per_class_iou"].as_array().unwrap().len(), 5);
    // The run's last validation pass saw the same weights and data.
    let last_val = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["val_accuracy"].as_f64())
        .next_back()
        .unwrap();
    assert!(
        (miou - last_val).abs() < 1e-12,
        "eval {miou} vs the run's {last_val}"
    );
    // Random guesses over 5 balanced classes give an mIoU near 1/9.
    assert!(miou > 0.2, "colours give the class away: mIoU {miou}");
    // Per-clip labels are refused for this task, naming the file.
    let bad = dir.path().join("bad.safetensors");
    write_atomic(
        &bad,
        &[
            (
                "clip".into(),
                Stored::F32(HostTensor::new(vec![0.0; 3 * 256 * 3], &[1, 3, 256, 3])),
            ),
            ("label".into(), Stored::I64(vec![0], vec![1])),
        ],
        Default::default(),
    )
    .unwrap();
    let (success, text) = edge4d(&[
        "finetune",
        "--task",
        "semantic-segmentation",
        "--config",
        &config,
        "--data",
        &s(&bad),
        "--out",
        &s(&dir.path().join("bad-run")),
    ]);
    assert!(
        !success && text.contains("bad.safetensors") && text.contains("one label per point"),
        "{text}"
    );
}
