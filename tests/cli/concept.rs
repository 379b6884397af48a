//! Concept distillation from the command line, end to end on a tiny config: synthetic
//! RGB-D objects, distillation with the committed tiny ONNX teacher (the MSE falls and
//! the prefix cache is reused on a second run), the checkpoint initialising
//! classification fine-tuning, and bad input refused before any training.

use std::path::Path;

use crate::common::edge4d;
use edge4d_runtime::TensorFile;

const TEACHER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/teacher/tiny_teacher.onnx"
);

fn tiny_config(dir: &Path, prefix_dim: usize) -> String {
    let path = dir.join(format!("tiny-{prefix_dim}.toml"));
    std::fs::write(
        &path,
        format!(
            "model = \"point-mae\"\nnpoints = 64\nnum_group = 8\ngroup_size = 8\ntrans_dim = 32\nencoder_dims = 32\ndepth = 2\nnum_heads = 2\nconcepts = 4\nprefix_length = 10\nprefix_dim = {prefix_dim}\nconcept_hidden = 32\nnum_classes = 6\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn losses(metrics: &Path) -> Vec<f64> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["loss"].as_f64())
        .collect()
}

/// `edge4d data objects` into `d/objects`: `train` scans per class (1 for testing) of
/// `side` pixels.
fn objects(d: &std::path::Path, train: usize, side: usize) -> std::path::PathBuf {
    let data = d.join("objects");
    let (train, side) = (train.to_string(), side.to_string());
    let (ok, out) = edge4d(&[
        "data",
        "objects",
        "--out",
        data.to_str().unwrap(),
        "--train-per-class",
        &train,
        "--test-per-class",
        "1",
        "--side",
        &side,
    ]);
    assert!(ok, "{out}");
    data
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn distillation_then_classification_fine_tuning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = objects(d, 2, 48);
    let config = tiny_config(d, 16);
    let run = d.join("distill");
    let train = data.join("train");
    let pretrain = |epochs: &str, extra: &[&str]| {
        let mut args = vec![
            "pretrain",
            "--method",
            "concept-distill",
            "--teacher-onnx",
            TEACHER,
            "--config",
            &config,
            "--data",
            train.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            epochs,
            "--batch-size",
            "4",
            "--lr",
            "2e-3",
            "--weight-decay",
            "0.05",
            "--log-every",
            "1",
            "--no-augment",
        ];
        args.extend_from_slice(extra);
        edge4d(&args)
    };
    let (ok, out) = pretrain("10", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("12 computed"), "{out}");
    let l = losses(&run.join("metrics.jsonl"));
    assert_eq!(l.len(), 30, "{out}");
    let (first, last) = (l[..3].iter().sum::<f64>(), l[27..].iter().sum::<f64>());
    assert!(last < 0.5 * first, "MSE {first} → {last}:\n{out}");
    assert!(run.join("curves.png").exists() && run.join("model.safetensors").exists());

    // A second run into the same folder is refused unless it starts over; it answers
    // every prefix from the cache.
    let (ok, out) = pretrain("1", &[]);
    assert!(!ok && out.contains("already holds a run"), "{out}");
    let (ok, out) = pretrain("1", &["--overwrite"]);
    assert!(ok && out.contains("12 from the cache, 0 computed"), "{out}");

    let (ok, out) = edge4d(&[
        "finetune",
        "--task",
        "classification",
        "--config",
        &config,
        "--data",
        train.to_str().unwrap(),
        "--val",
        data.join("test").to_str().unwrap(),
        "--init",
        run.join("model.safetensors").to_str().unwrap(),
        "--out",
        d.join("cls").to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--optimizer",
        "adamw",
        "--lr",
        "5e-4",
        "--label-fraction",
        "0.5",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("training on 6 of 12 labelled objects"),
        "{out}"
    );
    // The encoder's 46 tensors (BatchNorm buffers included) come from distillation; the
    // class token, its position and the class head (18 tensors) start fresh.
    assert!(out.contains("46 tensors loaded, 18 initialised"), "{out}");
    assert!(
        out.contains("validation accuracy") && out.contains("capsule"),
        "{out}"
    );
    // The same metrics schema as every task: epochs from 1, an epoch record with the
    // validation accuracy (which `edge4d plot` draws).
    use edge4d_trainer::run_dir::{read_metrics, Record};
    let records = read_metrics(&d.join("cls/metrics.jsonl")).unwrap();
    assert!(
        records.iter().any(|r| matches!(
            r,
            Record::Epoch {
                epoch: 1,
                val_accuracy: Some(_),
                ..
            }
        )),
        "{records:?}"
    );
    let distilled = read_metrics(&run.join("metrics.jsonl")).unwrap();
    assert!(
        matches!(
            distilled[0],
            Record::Step {
                epoch: 1,
                step: 1,
                ..
            }
        ),
        "{distilled:?}"
    );
}

#[test]
fn bad_teacher_and_bad_images_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = objects(d, 1, 32);
    let train = data.join("train");
    let pretrain = |config: &str, teacher: &str| {
        edge4d(&[
            "pretrain",
            "--method",
            "concept-distill",
            "--teacher-onnx",
            teacher,
            "--config",
            config,
            "--data",
            train.to_str().unwrap(),
            "--out",
            d.join("run").to_str().unwrap(),
            "--epochs",
            "1",
            "--batch-size",
            "2",
        ])
    };
    // The teacher outputs 10 × 16, the config asks for 10 × 20.
    let (ok, out) = pretrain(&tiny_config(d, 20), TEACHER);
    assert!(
        !ok && out.contains("the config expects a prefix of 10 × 20"),
        "{out}"
    );
    assert!(!out.contains("steps of batch"), "{out}");

    let broken = d.join("broken.onnx");
    std::fs::write(&broken, b"\x08\x07garbage").unwrap();
    let (ok, out) = pretrain(&tiny_config(d, 16), broken.to_str().unwrap());
    assert!(
        !ok && out.contains("broken.onnx") && out.contains("not an ONNX model"),
        "{out}"
    );

    std::fs::write(train.join("sphere_0000.color.png"), b"not a png").unwrap();
    let (ok, out) = pretrain(&tiny_config(d, 16), TEACHER);
    assert!(
        !ok && out.contains("sphere_0000.color.png") && out.contains("not a readable"),
        "{out}"
    );
    assert!(!out.contains("steps of batch"), "{out}");
}

#[test]
fn point_mae_training_refuses_the_flags_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = tiny_config(d, 16);
    for (task, flags) in [
        ("classification", &["--momentum", "0.5"][..]),
        ("classification", &["--optimizer", "sgd"][..]),
        ("classification", &["--milestones", "3"][..]),
        ("classification", &["--clip-grad-norm", "1"][..]),
        ("distill", &["--gamma", "0.5"][..]),
    ] {
        let mut args = if task == "distill" {
            vec![
                "pretrain",
                "--method",
                "concept-distill",
                "--teacher-onnx",
                TEACHER,
            ]
        } else {
            vec!["finetune", "--task", "classification"]
        };
        args.extend_from_slice(&[
            "--config",
            &config,
            "--data",
            "missing-folder",
            "--out",
            d.to_str().unwrap(),
        ]);
        args.extend_from_slice(flags);
        let (ok, out) = edge4d(&args);
        assert!(
            !ok && out.contains("cannot use") && out.contains(flags[0]),
            "{flags:?}: {out}"
        );
    }
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn concept_runs_resume_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = objects(d, 2, 32);
    let config = tiny_config(d, 16);
    let train = data.join("train");
    let run = |task: &str, out: &Path, epochs: &str, extra: &[&str]| {
        let mut args = if task == "distill" {
            vec![
                "pretrain",
                "--method",
                "concept-distill",
                "--teacher-onnx",
                TEACHER,
            ]
        } else {
            vec![
                "finetune",
                "--task",
                "classification",
                "--optimizer",
                "adamw",
            ]
        };
        args.extend_from_slice(&[
            "--config",
            &config,
            "--data",
            train.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            epochs,
            "--batch-size",
            "4",
            "--lr",
            "1e-3",
            "--log-every",
            "1",
        ]);
        args.extend_from_slice(extra);
        let (ok, text) = edge4d(&args);
        assert!(ok, "{text}");
    };
    for task in ["distill", "classification"] {
        let (straight, resumed) = (d.join(format!("{task}-a")), d.join(format!("{task}-b")));
        run(task, &straight, "2", &[]);
        // The same run stopped after its first epoch (cosine decay spans both), then
        // resumed.
        run(task, &resumed, "2", &["--stop-after-epoch", "1"]);
        let ckpt = resumed.join("checkpoint.safetensors");
        run(task, &resumed, "2", &["--resume", ckpt.to_str().unwrap()]);
        assert_eq!(
            losses(&straight.join("metrics.jsonl")),
            losses(&resumed.join("metrics.jsonl")),
            "{task}: the resumed loss curve is the uninterrupted one"
        );
        let (a, b) = (
            TensorFile::open(straight.join("model.safetensors")).unwrap(),
            TensorFile::open(resumed.join("model.safetensors")).unwrap(),
        );
        for name in a.names() {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            assert_eq!(
                a.f32(&name).unwrap(),
                b.f32(&name).unwrap(),
                "{task}: {name}"
            );
        }
    }
}
