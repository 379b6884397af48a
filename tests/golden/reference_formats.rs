//! Loaders for the reference repositories' preprocessed datasets (reference-spec §9),
//! on tiny files NumPy and h5py wrote in exactly those layouts
//! (scripts/make_reference_format_fixtures.py), compared with what those libraries read
//! back (expected.json).

use std::path::{Path, PathBuf};

use crate::common::*;
use edge4d_trainer::dataset::{ClipDataset, Labels};
use edge4d_trainer::synthia::{SynthiaConfig, INDEX_TO_LABEL};
use serde_json::Value;

fn root() -> PathBuf {
    fixture_path("reference_formats")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap()).unwrap()
}

/// Rows of a JSON array of [x, y, z] as f32 triples.
fn points(v: &Value) -> Vec<[f32; 3]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let p = p.as_array().unwrap();
            [0, 1, 2].map(|k| p[k].as_f64().unwrap() as f32)
        })
        .collect()
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

#[test]
fn msr_npz_object_arrays_become_clips_of_the_reference_points() {
    let want = expected();
    let dir = root().join("msr");
    let train = edge4d_trainer::msr::clips(&dir, true, 3, 4, 1, 0).unwrap();
    // a02_s03 (subject 3: train) has 5 frames → 3 windows of 3; label 2 − 1.
    assert_eq!(train.clips_shape, [3, 3, 4, 3]);
    assert_eq!(train.labels, Labels::PerClip(vec![1, 1, 1]));
    let frames: Vec<Vec<[f32; 3]>> = want["msr"]["a02_s03_e01_sdepth.npz"]
        .as_array()
        .unwrap()
        .iter()
        .map(points)
        .collect();
    for clip in 0..3 {
        for t in 0..3 {
            let frame = &frames[clip + t];
            // Frames of 3..7 points give 4 points: all of them once (plus a random one)
            // when the frame is smaller, 4 distinct ones otherwise.
            let got: Vec<[f32; 3]> = train.clips[((clip * 3 + t) * 4) * 3..][..12]
                .chunks(3)
                .map(|p| [p[0] * 300.0, p[1] * 300.0, p[2] * 300.0])
                .collect();
            for p in &got {
                assert!(
                    frame
                        .iter()
                        .any(|q| (0..3).all(|k| (p[k] - q[k]).abs() <= 1e-3)),
                    "clip {clip} frame {t}: {p:?} is not a point of the source frame"
                );
            }
        }
    }
    assert!(
        edge4d_trainer::msr::clips(&dir, true, 0, 4, 1, 0).is_err(),
        "zero frames"
    );
    let test = edge4d_trainer::msr::clips(&dir, false, 4, 2, 1, 0).unwrap();
    assert_eq!(
        test.labels,
        Labels::PerClip(vec![4]),
        "a05_s07: test, label 4"
    );
    // A truncated archive is named with the problem.
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(dir.join("a02_s03_e01_sdepth.npz")).unwrap();
    std::fs::write(
        tmp.path().join("a01_s01_e01_sdepth.npz"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = edge4d_trainer::msr::clips(tmp.path(), true, 3, 4, 1, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a01_s01_e01_sdepth.npz"), "{e}");
}

#[test]
fn synthia_frames_become_masked_half_crops_with_the_reference_labels() {
    let want = expected();
    let dir = root().join("synthia");
    let cfg = SynthiaConfig {
        points: 16,
        ..SynthiaConfig::default()
    };
    let data = edge4d_trainer::synthia::load(
        &dir.join("sequences"),
        &dir.join("trainval_raw.txt"),
        Some(&dir.join("labelweights.npz")),
        true,
        &cfg,
    )
    .unwrap();
    // 3 listed frames, two halves each.
    assert_eq!(data.clips_shape, [6, 3, 16, 3]);
    let Labels::PerPoint(labels) = &data.labels else {
        panic!("per-point labels")
    };
    let mask = data.mask.as_ref().unwrap();
    // Class weights: 1/ln(1.2 + w) over its minimum, the largest w giving 1.
    let w: Vec<f64> = flat(&Value::from(
        (0..12)
            .map(|i| 0.05 + 0.25 * i as f64 / 11.0)
            .collect::<Vec<_>>(),
    ));
    let inv: Vec<f64> = w.iter().map(|x| 1.0 / (1.2 + x).ln()).collect();
    let min = inv.iter().cloned().fold(f64::INFINITY, f64::min);
    for (got, want) in data.class_weight.as_ref().unwrap().iter().zip(&inv) {
        assert!((*got as f64 - want / min).abs() < 1e-5);
    }
    // Listed frames 10, 11, 13 of SEQS-01-DAWN: the clip of 13 is [13, 13, 11] (12 is
    // not listed, so the most recent frame read repeats), of 10 it is [10, 10, 10].
    let frame = |f: u32| &want["synthia"][format!("SEQS-01-DAWN-{f:06}.npz")];
    let sources = [[10, 10, 10], [11, 10, 10], [13, 13, 11]];
    for (k, src) in sources.iter().enumerate() {
        let cz = flat(&frame(src[0])["center"])[2] as f32;
        for half in 0..2 {
            let clip = 2 * k + half;
            for (t, &f) in src.iter().enumerate() {
                let pc = points(&frame(f)["pc"]);
                let ids = flat(&frame(f)["semantic"]);
                for p in 0..16 {
                    let at = (clip * 3 + t) * 16 + p;
                    let xyz = &data.clips[at * 3..at * 3 + 3];
                    let i = pc
                        .iter()
                        .position(|q| (0..3).all(|k| q[k] == xyz[k]))
                        .unwrap_or_else(|| {
                            panic!("clip {clip} frame {t}: not a point of frame {f}")
                        });
                    let z = xyz[2];
                    if half == 0 {
                        assert!(z > cz - 1.0, "the first half keeps z > c_z − 1");
                    } else {
                        assert!(z < cz + 1.0, "the second half keeps z < c_z + 1");
                    }
                    let class = INDEX_TO_LABEL[ids[i] as usize];
                    let own = if half == 0 { z > cz } else { z < cz };
                    assert_eq!(labels[at] as i32, if class == 12 { 0 } else { class });
                    assert_eq!(mask[at], (own && class != 12) as u8 as f32);
                }
            }
        }
    }
    // Colours come along; the test split has uniform weights.
    assert!(data
        .rgb
        .as_ref()
        .unwrap()
        .iter()
        .all(|c| (0.0..=1.0).contains(c)));
    let test = edge4d_trainer::synthia::load(
        &dir.join("sequences"),
        &dir.join("test_raw.txt"),
        Some(&dir.join("labelweights.npz")),
        false,
        &cfg,
    )
    .unwrap();
    assert_eq!(test.len(), 2);
    assert_eq!(test.class_weight, Some(vec![1.0; 12]));
    // A list naming a missing frame names the file.
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("list.txt");
    std::fs::write(&list, "SEQS-09-FOG/RGBLeft/000001.png 0\n").unwrap();
    let e = edge4d_trainer::synthia::load(&dir.join("sequences"), &list, None, true, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("SEQS-09-FOG-000001.npz"), "{e}");
}

#[test]
fn hoi4d_h5_files_become_frame_and_point_labelled_clips() {
    let want = expected();
    let dir = root().join("hoi4d");
    let seq =
        edge4d_trainer::hoi4d::action_segmentation(&[dir.join("train1.h5")], None, 0).unwrap();
    assert_eq!(seq.clips_shape, [2, 6, 5, 3]);
    let truth = &want["hoi4d"]["train1.h5"];
    let pcd: Vec<f32> = flat(&truth["pcd"]).iter().map(|&v| v as f32).collect();
    assert_eq!(seq.clips, pcd);
    let label: Vec<u32> = flat(&truth["label"]).iter().map(|&v| v as u32).collect();
    assert_eq!(seq.labels, Labels::PerFrame(label));

    // 300 frames (chunked, gzip) → 100 clips of 3 consecutive frames.
    let seg =
        edge4d_trainer::hoi4d::semantic_segmentation(&[dir.join("test1_right.h5")], 3, None, 0)
            .unwrap();
    assert_eq!(seg.clips_shape, [100, 3, 4, 3]);
    let truth = &want["hoi4d"]["test1_right.h5"];
    let pcd: Vec<f32> = flat(&truth["pcd"]).iter().map(|&v| v as f32).collect();
    assert_eq!(
        seg.clips, pcd,
        "clip k holds frames 3k, 3k+1, 3k+2 in order"
    );
    let semantic: Vec<u32> = flat(&truth["semantic"]).iter().map(|&v| v as u32).collect();
    assert_eq!(seg.labels, Labels::PerPoint(semantic.clone()));
    assert!(seg.rgb.is_none(), "the coordinates are the features");

    // Resampled to 3 points per frame, labels follow their points.
    let small =
        edge4d_trainer::hoi4d::semantic_segmentation(&[dir.join("test1_right.h5")], 3, Some(3), 1)
            .unwrap();
    assert_eq!(small.clips_shape, [100, 3, 3, 3]);
    let Labels::PerPoint(small_labels) = &small.labels else {
        panic!("per-point labels")
    };
    for (i, p) in small.clips.chunks(3).enumerate() {
        let frame = i / 3;
        let src = (0..4)
            .find(|&q| (0..3).all(|k| pcd[(frame * 4 + q) * 3 + k] == p[k]))
            .expect("a point of the same frame");
        assert_eq!(small_labels[i], semantic[frame * 4 + src]);
    }
    assert!(
        edge4d_trainer::hoi4d::semantic_segmentation(&[dir.join("test1_right.h5")], 0, None, 0)
            .is_err(),
        "zero frames"
    );
    // Not an HDF5 file, and a file without the task's datasets: named errors.
    let e = edge4d_trainer::hoi4d::action_segmentation(&[root().join("expected.json")], None, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected.json") && e.contains("HDF5"), "{e}");
    let e = edge4d_trainer::hoi4d::action_segmentation(&[dir.join("test1_right.h5")], None, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test1_right.h5") && e.contains("label"), "{e}");
}

fn run_ok(args: &[&str]) -> String {
    let (success, text) = edge4d(args);
    assert!(success, "{text}");
    text
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn data_commands_write_loadable_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root();
    let syn = tmp.path().join("synthia.safetensors");
    run_ok(&[
        "data",
        "synthia",
        "--root",
        &s(&dir.join("synthia/sequences")),
        "--list",
        &s(&dir.join("synthia/trainval_raw.txt")),
        "--labelweights",
        &s(&dir.join("synthia/labelweights.npz")),
        "--points",
        "8",
        "--out",
        &s(&syn),
    ]);
    let d = ClipDataset::load(&syn).unwrap();
    assert_eq!(d.clips_shape, [6, 3, 8, 3]);
    assert!(d.rgb.is_some() && d.mask.is_some() && d.class_weight.is_some());
    let seg = tmp.path().join("hoi4d.safetensors");
    run_ok(&[
        "data",
        "hoi4d",
        "--task",
        "semantic-segmentation",
        "--files",
        &s(&dir.join("hoi4d/test1_right.h5")),
        "--out",
        &s(&seg),
    ]);
    assert!(matches!(
        ClipDataset::load(&seg).unwrap().labels,
        Labels::PerPoint(_)
    ));
    let msr = tmp.path().join("msr");
    run_ok(&[
        "data",
        "msr",
        "--dir",
        &s(&dir.join("msr")),
        "--frames",
        "3",
        "--points",
        "4",
        "--out",
        &s(&msr),
    ]);
    let test = ClipDataset::load(msr.join("test.safetensors")).unwrap();
    assert_eq!(
        test.videos,
        Some(vec![0, 0]),
        "both windows of a05_s07 keep their video"
    );
}
