//! Paired image + point folders: clouds from PLY files or depth frames, labels and
//! classes, pc_norm, and the errors a malformed folder gives.

use edge4d_trainer::cloud_io::write_ply;
use edge4d_trainer::concept::pairs::{pc_norm, write_objects, PairedDataset};

fn png(path: &std::path::Path) {
    image::RgbImage::from_pixel(4, 4, image::Rgb([10, 200, 30]))
        .save(path)
        .unwrap();
}

#[test]
fn ply_pairs_with_labels_load_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, offset) in [("a", 0.0f32), ("b", 5.0)] {
        png(&d.join(format!("{name}.color.png")));
        let pts: Vec<[f32; 3]> = (0..10).map(|i| [offset + i as f32, 2.0, -1.0]).collect();
        write_ply(&d.join(format!("{name}.ply")), &pts).unwrap();
    }
    std::fs::write(d.join("labels.txt"), "a mug\nb chair\n").unwrap();
    let data = PairedDataset::load(d, 16, 0).unwrap();
    assert_eq!(data.classes, vec!["chair", "mug"]);
    assert_eq!(data.samples.len(), 2);
    assert_eq!(data.samples[0].label, Some(1));
    let p = &data.samples[0].points;
    assert_eq!(p.len(), 16 * 3);
    let far = p
        .chunks_exact(3)
        .map(|q| (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt())
        .fold(0.0f32, f32::max);
    assert!((far - 1.0).abs() < 1e-5, "farthest point at {far}");

    std::fs::write(d.join("labels.txt"), "a mug\n").unwrap();
    let err = PairedDataset::load(d, 16, 0).err().unwrap().to_string();
    assert!(
        err.contains("labels.txt") && err.contains("no label for b"),
        "{err}"
    );
}

#[test]
fn a_colour_image_without_points_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    png(&dir.path().join("lonely.color.png"));
    let err = PairedDataset::load(dir.path(), 8, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("lonely.depth.png"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = PairedDataset::load(empty.path(), 8, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no <name>.color.png"), "{err}");
}

#[test]
fn rendered_objects_load_as_labelled_rgbd_frames() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(write_objects(dir.path(), 1, 6, 1, 32, 3).unwrap(), 6);
    let data = PairedDataset::load(dir.path(), 32, 0).unwrap();
    assert_eq!(data.classes.len(), 6);
    let mut labels: Vec<usize> = data.samples.iter().map(|s| s.label.unwrap()).collect();
    labels.sort();
    assert_eq!(labels, (0..6).collect::<Vec<_>>());
}

#[test]
fn pc_norm_centres_and_scales() {
    let mut p = vec![1.0, 1.0, 1.0, 3.0, 1.0, 1.0];
    pc_norm(&mut p);
    assert_eq!(p, vec![-1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
}
