//! `edge4d finetune` end to end: one SGD step with lr 1 gives exactly w − grad (the
//! PyTorch fixture's gradients), a resumed run continues bitwise identically, and bad
//! datasets are refused with the file and the problem named.

use std::path::Path;

use crate::common::*;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{HostTensor, TensorFile};

fn edge4d(args: &[&str]) -> std::process::Output {
    crate::common::run_edge4d(args, &[], &[])
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[track_caller]
fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// `edge4d eval --json` on these files, parsed.
fn eval_json(config: &str, weights: &str, data: &str) -> serde_json::Value {
    let out = ok(&edge4d(&[
        "eval",
        "--config",
        config,
        "--weights",
        weights,
        "--data",
        data,
        "--json",
    ]));
    serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap()
}

fn msr_setup(dir: &Path) -> (TensorFile, String, String) {
    let f = fixture("p4transformer/msr_p4transformer.safetensors");
    let config = dir.join("model.toml");
    std::fs::write(
        &config,
        config_toml(&fixture_config(&f), "p4transformer-msr", P4_KEYS),
    )
    .unwrap();
    let weights = export_weights(&f, dir);
    (f, s(&config), s(&weights))
}

/// The MSR fixture's batch as a dataset file, then one plain SGD step with lr 1 from
/// the fixture's weights (plus `extra` flags); returns the fixture and the trained weights.
fn one_fixture_step(dir: &Path, extra: &[&str]) -> (TensorFile, TensorFile) {
    let (f, config, weights) = msr_setup(dir);
    let data = dir.join("data.safetensors");
    let (labels, _) = f.i64("input.label").unwrap();
    write_atomic(
        &data,
        &[
            ("clip".into(), Stored::F32(f.f32("input.clip").unwrap())),
            ("label".into(), Stored::I64(labels, vec![2])),
        ],
        Default::default(),
    )
    .unwrap();
    let out = dir.join("run");
    let (data, out_s) = (s(&data), s(&out));
    let mut args = vec![
        "finetune",
        "--task",
        "action-recognition",
        "--config",
        &config,
        "--data",
        &data,
        "--init",
        &weights,
        "--out",
        &out_s,
    ];
    args.extend_from_slice(&ONE_PLAIN_SGD_STEP);
    args.extend_from_slice(extra);
    ok(&edge4d(&args));
    let trained = TensorFile::open(out.join("model.safetensors")).unwrap();
    (f, trained)
}

#[test]
fn one_sgd_step_with_lr_one_gives_w_minus_grad() {
    let dir = tempfile::tempdir().unwrap();
    let (f, trained) = one_fixture_step(dir.path(), &[]);
    let grads: Vec<String> = f
        .names()
        .into_iter()
        .filter(|n| {
            n.starts_with("grad.") && !n.starts_with("grad.input") && !n.starts_with("grad.tube.")
        })
        .collect();
    assert!(grads.len() >= 10);
    assert_w_minus_grad(&f, &trained, &grads, |name| name.to_string());
}

fn tiny_dataset(path: &Path, clips: usize) {
    // Two classes: a cloud drifting up, or down, over the frames.
    let (l, n) = (6, 160);
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let mut state = 12345u64;
    for c in 0..clips {
        let dir = if c % 2 == 0 { 1.0 } else { -1.0 };
        for t in 0..l {
            for _ in 0..n {
                for axis in 0..3 {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    data.push(
                        u + if axis == 1 {
                            dir * 0.1 * t as f32
                        } else if axis == 2 {
                            3.0
                        } else {
                            0.0
                        },
                    );
                }
            }
        }
        labels.push((c % 2) as i64);
    }
    write_atomic(
        path,
        &[
            (
                "clip".into(),
                Stored::F32(HostTensor::new(data, &[clips, l, n, 3])),
            ),
            ("label".into(), Stored::I64(labels, vec![clips])),
        ],
        Default::default(),
    )
    .unwrap();
}

fn losses(dir: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("step").is_some())
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn a_resumed_run_continues_bitwise_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, _) = msr_setup(dir.path());
    let data = dir.path().join("tiny.safetensors");
    tiny_dataset(&data, 6);
    let common = |out: &Path, epochs: &str| -> Vec<String> {
        [
            "finetune",
            "--task",
            "action-recognition",
            "--config",
            &config,
            "--data",
            &s(&data),
            "--out",
            &s(out),
            "--epochs",
            epochs,
            "--batch-size",
            "2",
            "--lr",
            "0.05",
            "--warmup-epochs",
            "1",
            "--seed",
            "3",
            "--log-every",
            "1",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let straight = dir.path().join("straight");
    let args = common(&straight, "2");
    let text = ok(&edge4d(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert!(text.contains("train acc"), "{text}");

    let resumed = dir.path().join("resumed");
    let args = common(&resumed, "1");
    ok(&edge4d(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    // A run killed during its second epoch: it logged a step past the checkpoint and
    // left half a save behind.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(resumed.join("metrics.jsonl"))
        .unwrap();
    use std::io::Write;
    writeln!(
        log,
        r#"{{"epoch":2,"step":4,"loss":99.0,"lr":0.05,"clips_per_s":1.0}}"#
    )
    .unwrap();
    // No process has an id this large (Linux's pid_max is at most 2^22).
    let stale = resumed.join(".checkpoint.safetensors.tmp-999999999");
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    let mut args = common(&resumed, "2");
    args.extend([
        "--resume".to_string(),
        s(&resumed.join("checkpoint.safetensors")),
    ]);
    let text = ok(&edge4d(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert!(!stale.exists(), "the unfinished save is removed");
    assert!(text.contains("dropped 1 metrics.jsonl record"), "{text}");

    let (a, b) = (losses(&straight), losses(&resumed));
    assert_eq!(a.len(), 6, "three steps per epoch, two epochs");
    assert_eq!(
        a, b,
        "the loss curve of the resumed run is bitwise the uninterrupted one"
    );
    let (fa, fb) = (
        TensorFile::open(straight.join("model.safetensors")).unwrap(),
        TensorFile::open(resumed.join("model.safetensors")).unwrap(),
    );
    for name in fa.names() {
        assert_eq!(
            fa.f32(&name).unwrap(),
            fb.f32(&name).unwrap(),
            "{name} bitwise"
        );
    }

    // A fresh run into a folder that holds one is refused; --overwrite starts a new log.
    let args = common(&resumed, "1");
    let refused = edge4d(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a used --out was accepted");
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    let mut args = common(&resumed, "1");
    args.push("--overwrite".into());
    ok(&edge4d(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(losses(&resumed), a[..3], "only the new run's records");
}

#[test]
fn bad_datasets_are_refused_with_the_file_and_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, _) = msr_setup(dir.path());
    let run = |data: &Path| {
        let out = edge4d(&[
            "finetune",
            "--task",
            "action-recognition",
            "--config",
            &config,
            "--data",
            &s(data),
            "--out",
            &s(&dir.path().join("o")),
            "--epochs",
            "1",
        ]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let nan = dir.path().join("nan.safetensors");
    let mut clip = vec![0.5f32; 2 * 6 * 160 * 3];
    clip[6 * 160 * 3 + 160 * 3 * 2 + 7] = f32::NAN;
    write_atomic(
        &nan,
        &[
            (
                "clip".into(),
                Stored::F32(HostTensor::new(clip.clone(), &[2, 6, 160, 3])),
            ),
            ("label".into(), Stored::I64(vec![0, 1], vec![2])),
        ],
        Default::default(),
    )
    .unwrap();
    let err = run(&nan);
    assert!(
        err.contains("nan.safetensors") && err.contains("clip 1, frame 2, point 2"),
        "{err}"
    );

    let wrong = dir.path().join("labels.safetensors");
    clip[6 * 160 * 3 + 160 * 3 * 2 + 7] = 0.5;
    write_atomic(
        &wrong,
        &[
            (
                "clip".into(),
                Stored::F32(HostTensor::new(clip, &[2, 6, 160, 3])),
            ),
            ("label".into(), Stored::I64(vec![0, 9], vec![2])),
        ],
        Default::default(),
    )
    .unwrap();
    let err = run(&wrong);
    assert!(err.contains("label 8") || err.contains("label 9"), "{err}");
    // eval refuses the same file: a label the model cannot predict is not scored.
    let (_, _, weights) = msr_setup(dir.path());
    let out = edge4d(&[
        "eval",
        "--config",
        &config,
        "--weights",
        &weights,
        "--data",
        &s(&wrong),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("labels.safetensors: label 1 is 9, but the model has 5 classes"),
        "{err}"
    );

    // A file without labels: say the tensor is missing, not that labels are per frame.
    let unlabelled = dir.path().join("unlabelled.safetensors");
    write_atomic(
        &unlabelled,
        &[(
            "clip".into(),
            Stored::F32(HostTensor::new(vec![0.5; 2 * 6 * 160 * 3], &[2, 6, 160, 3])),
        )],
        Default::default(),
    )
    .unwrap();
    let err = run(&unlabelled);
    assert!(
        err.contains("unlabelled.safetensors: the dataset has no `label` tensor"),
        "{err}"
    );

    // `plot` on a file that is not metrics.jsonl names it and the line.
    let not_json = dir.path().join("notes.txt");
    std::fs::write(
        &not_json,
        "{\"epoch\": 1, \"step\": 1, \"loss\": 2, \"lr\": 0.1}\nhello\n",
    )
    .unwrap();
    let out = edge4d(&["plot", &s(&not_json), &s(&dir.path().join("p.png"))]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt: line 2: not a metrics.jsonl record"),
        "{err}"
    );

    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(&nan).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = run(&truncated);
    assert!(err.contains("truncated.safetensors"), "{err}");
}

#[test]
fn eval_reports_accuracy_per_class_and_segmentation_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (f, config, weights) = msr_setup(dir.path());
    let data = dir.path().join("data.safetensors");
    let (labels, _) = f.i64("input.label").unwrap();
    write_atomic(
        &data,
        &[
            ("clip".into(), Stored::F32(f.f32("input.clip").unwrap())),
            ("label".into(), Stored::I64(labels.clone(), vec![2])),
        ],
        Default::default(),
    )
    .unwrap();
    let v = eval_json(&config, &weights, &s(&data));
    // The expected accuracy from the PyTorch logits.
    let logits = f.f32("logits").unwrap().data;
    let hits = logits
        .chunks(5)
        .zip(&labels)
        .filter(|(row, &y)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b })
                .0;
            best as i64 == y
        })
        .count();
    assert_eq!(v["video_accuracy"].as_f64().unwrap(), hits as f64 / 2.0);
    assert_eq!(v["per_class"].as_array().unwrap().len(), 5);

    // Per-frame labels with the action-segmentation model.
    let seg = dir.path().join("seg.toml");
    std::fs::write(
        &seg,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("p4transformer-msr", "p4transformer-actionseg")
            .replace("temporal_stride = 2", "temporal_stride = 1"),
    )
    .unwrap();
    let frames = dir.path().join("frames.safetensors");
    write_atomic(
        &frames,
        &[
            ("clip".into(), Stored::F32(f.f32("input.clip").unwrap())),
            (
                "label".into(),
                Stored::I64(vec![0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 4, 4], vec![2, 6]),
            ),
        ],
        Default::default(),
    )
    .unwrap();
    let train = dir.path().join("seg-run");
    ok(&edge4d(&[
        "finetune",
        "--task",
        "action-segmentation",
        "--config",
        &s(&seg),
        "--data",
        &s(&frames),
        "--out",
        &s(&train),
        "--epochs",
        "1",
        "--batch-size",
        "2",
    ]));
    let v = eval_json(&s(&seg), &s(&train.join("model.safetensors")), &s(&frames));
    for key in ["accuracy", "edit", "f1@10", "f1@25", "f1@50"] {
        let x = v[key].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&x), "{key} = {x}");
    }
    // The HOI4D challenge's pred.npy: (sequences, frames) int64 whose agreement with
    // the labels is the reported accuracy.
    let pred = dir.path().join("pred.npy");
    ok(&edge4d(&[
        "eval",
        "--config",
        &s(&seg),
        "--weights",
        &s(&train.join("model.safetensors")),
        "--data",
        &s(&frames),
        "--predictions",
        &s(&pred),
    ]));
    let pred = edge4d_trainer::npy::read(&pred).unwrap();
    assert_eq!(pred.shape, vec![2, 6]);
    let labels = [0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 4, 4];
    let hits = pred
        .to_i64()
        .unwrap()
        .iter()
        .zip(labels)
        .filter(|(p, y)| **p == *y)
        .count();
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(
        (hits as f64 / 12.0 * 100.0 - acc).abs() < 1e-9,
        "{hits}/12 vs {acc}"
    );
    // A per-frame model on per-clip labels (and the reverse) is refused, not scored by
    // pairing rows.
    for (cfg, weights, labels) in [
        (s(&seg), s(&train.join("model.safetensors")), s(&data)),
        (config.clone(), weights.clone(), s(&frames)),
    ] {
        let out = edge4d(&[
            "eval",
            "--config",
            &cfg,
            "--weights",
            &weights,
            "--data",
            &labels,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cfg} on {labels} was scored");
        assert!(
            err.contains("one prediction per") && err.contains("one label per"),
            "{err}"
        );
    }
}

#[test]
fn a_diverging_run_stops_without_touching_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, _) = msr_setup(dir.path());
    let data = dir.path().join("tiny.safetensors");
    tiny_dataset(&data, 4);
    let out = dir.path().join("run");
    let run = |epochs: &str, lr: &str, extra: &[&str]| {
        let mut a = vec![
            "finetune",
            "--task",
            "action-recognition",
            "--config",
            &config,
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            epochs,
            "--batch-size",
            "2",
            "--lr",
            lr,
            "--log-every",
            "1",
        ];
        a.extend_from_slice(extra);
        edge4d(&a)
    };
    ok(&run("1", "0.01", &[]));
    let ckpt = out.join("checkpoint.safetensors");
    let before = std::fs::read(&ckpt).unwrap();
    let resume = ckpt.to_str().unwrap().to_string();
    let diverged = run("3", "1e30", &["--resume", &resume]);
    let err = String::from_utf8_lossy(&diverged.stderr);
    assert!(!diverged.status.success());
    assert!(
        err.contains("the loss became") && err.contains("intact"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the last good checkpoint is untouched"
    );
}

#[test]
fn cosine_schedule_decays_the_learning_rate_over_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, _) = msr_setup(dir.path());
    let data = dir.path().join("tiny.safetensors");
    tiny_dataset(&data, 4);
    let out = dir.path().join("cos");
    ok(&edge4d(&[
        "finetune",
        "--task",
        "action-recognition",
        "--config",
        &config,
        "--data",
        &s(&data),
        "--out",
        &s(&out),
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--lr",
        "0.1",
        "--cosine",
        "--log-every",
        "1",
    ]));
    let lrs: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["lr"].as_f64())
        .collect();
    assert_eq!(lrs.len(), 4);
    assert_eq!(lrs[0], 0.1);
    assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
}

#[test]
fn clipping_bounds_the_update_to_the_given_norm() {
    let dir = tempfile::tempdir().unwrap();
    let (f, trained) = one_fixture_step(dir.path(), &["--clip-grad-norm", "0.001"]);
    let (mut change, mut grad) = (0.0f64, 0.0f64);
    for name in f.names().into_iter().filter(|n| n.starts_with("param.")) {
        let n = name.strip_prefix("param.").unwrap();
        let before = f.f32(&name).unwrap().data;
        let after = trained.f32(n).unwrap().data;
        change += before
            .iter()
            .zip(&after)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>();
        grad += f
            .f32(&format!("grad.{n}"))
            .unwrap()
            .data
            .iter()
            .map(|g| (*g as f64).powi(2))
            .sum::<f64>();
    }
    assert!(
        grad.sqrt() > 0.01,
        "the fixture's gradient norm is above the limit"
    );
    assert!(
        (change.sqrt() - 0.001).abs() < 2e-5,
        "update norm {}",
        change.sqrt()
    );
}

#[test]
fn eval_sums_clip_probabilities_per_video() {
    let dir = tempfile::tempdir().unwrap();
    let (f, config, weights) = msr_setup(dir.path());
    // Both fixture clips as two clips of one video labelled 3.
    let data = dir.path().join("video.safetensors");
    write_atomic(
        &data,
        &[
            ("clip".into(), Stored::F32(f.f32("input.clip").unwrap())),
            ("label".into(), Stored::I64(vec![3, 3], vec![2])),
            ("video".into(), Stored::I64(vec![0, 0], vec![2])),
        ],
        Default::default(),
    )
    .unwrap();
    let v = eval_json(&config, &weights, &s(&data));
    assert_eq!(v["videos"].as_u64(), Some(1));
    let logits = f.f32("logits").unwrap().data;
    let mut sum = [0.0f64; 5];
    for row in logits.chunks(5) {
        let m = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let z: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += (x as f64 - m).exp() / z;
        }
    }
    let best = (0..5).fold(0, |b, i| if sum[i] > sum[b] { i } else { b });
    assert_eq!(
        v["video_accuracy"].as_f64(),
        Some(if best == 3 { 1.0 } else { 0.0 })
    );
}
