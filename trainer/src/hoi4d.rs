//! HOI4D in the layouts the reference repositories preprocess it to (reference-spec
//! §9.3, §9.4), read from HDF5 with a pure-Rust reader:
//! - action segmentation, `train{1..4}.h5` / `test{1,2}.h5`: `pcd` (n, T, P, 3) and
//!   `label` (n, T) — one sequence per clip, one label per frame;
//! - semantic segmentation, `train{1..4}.h5` / `test{1,2}_right.h5`: `pcd`
//!   (n, 300, P, 3) and `semantic` (n, 300, P) — clips of 3 consecutive frames starting
//!   at 3·(index % 100), so each sequence gives 100 clips; the coordinates are the
//!   input features (`rgb = pcd` in `seg_base.py`).
//!
//! `center` is not needed: augmentations work about the first frame's centroid.

use std::path::{Path, PathBuf};

use edge4d_runtime::{Error, Result};

use crate::dataset::{ClipDataset, Labels};
use crate::file_error as err;
use crate::msr::resample_indices;
use crate::rng::SplitMix64;

/// One dataset of an HDF5 file: (values, shape).
fn read<T: hdf5_pure::H5Element>(
    file: &hdf5_pure::File,
    path: &Path,
    name: &str,
) -> Result<(Vec<T>, Vec<usize>)> {
    let ds = file
        .dataset(name)
        .map_err(|e| err(path, format!("has no dataset `{name}`: {e}")))?;
    let shape: Vec<usize> = ds
        .shape()
        .map_err(|e| err(path, format!("`{name}` has an unreadable shape: {e}")))?
        .iter()
        .map(|&d| d as usize)
        .collect();
    let values = ds
        .read::<T>()
        .map_err(|e| err(path, format!("`{name}` cannot be read: {e}")))?;
    if values.len() != shape.iter().product::<usize>() {
        return Err(err(
            path,
            format!("`{name}` holds {} values for shape {shape:?}", values.len()),
        ));
    }
    Ok((values, shape))
}

fn open(path: &Path) -> Result<hdf5_pure::File> {
    hdf5_pure::File::open(path).map_err(|e| err(path, format!("is not a readable HDF5 file: {e}")))
}

fn check_sizes(frames: usize, points: Option<usize>) -> Result<()> {
    if frames == 0 || points == Some(0) {
        return Err(Error::InvalidArgument {
            op: "hoi4d",
            detail: format!(
                "clips need at least one frame and one point per frame (got {frames} frames, {points:?} points)"
            ),
        });
    }
    Ok(())
}

/// Checks `pcd` (n, T, P, 3) and that every coordinate is finite.
fn check_points(path: &Path, pcd: &[f32], shape: &[usize]) -> Result<()> {
    if shape.len() != 4 || shape[3] != 3 || shape.contains(&0) {
        return Err(err(
            path,
            format!("`pcd` is {shape:?}, expected (sequences, frames, points, 3)"),
        ));
    }
    if let Some(i) = pcd.iter().position(|v| !v.is_finite()) {
        let per_seq = shape[1] * shape[2] * 3;
        return Err(err(
            path,
            format!(
                "`pcd` holds a non-finite coordinate in sequence {}, frame {}, point {}",
                i / per_seq,
                i % per_seq / (shape[2] * 3),
                i % (shape[2] * 3) / 3
            ),
        ));
    }
    Ok(())
}

fn labels(path: &Path, name: &str, raw: Vec<i64>) -> Result<Vec<u32>> {
    raw.into_iter()
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| err(path, format!("`{name}` holds {v}, not a class index")))
        })
        .collect()
}

/// Appends frame `points` of (P, 3) `frame` (and its per-point `labels`) to the output,
/// resampled to `points` per frame when given.
fn push_frame(
    out: &mut Vec<f32>,
    out_labels: Option<&mut Vec<u32>>,
    frame: &[f32],
    frame_labels: Option<&[u32]>,
    points: Option<usize>,
    rng: &mut SplitMix64,
) {
    let n = frame.len() / 3;
    let idx: Vec<usize> = match points {
        Some(p) if p != n => resample_indices(n, p, rng),
        _ => (0..n).collect(),
    };
    for &i in &idx {
        out.extend_from_slice(&frame[i * 3..i * 3 + 3]);
    }
    if let (Some(o), Some(l)) = (out_labels, frame_labels) {
        o.extend(idx.iter().map(|&i| l[i]));
    }
}

/// Action segmentation sequences from `files`, `points` per frame when given.
pub fn action_segmentation(
    files: &[PathBuf],
    points: Option<usize>,
    seed: u64,
) -> Result<ClipDataset> {
    check_sizes(1, points)?;
    let mut rng = SplitMix64::new(seed);
    let (mut clips, mut all_labels, mut shape) = (Vec::new(), Vec::new(), None::<[usize; 3]>);
    let mut count = 0;
    for path in files {
        let file = open(path)?;
        let (pcd, ps) = read::<f32>(&file, path, "pcd")?;
        check_points(path, &pcd, &ps)?;
        let (label, ls) = read::<i64>(&file, path, "label")?;
        if ls != ps[..2] {
            return Err(err(
                path,
                format!("`label` is {ls:?}, expected {:?} (one per frame)", &ps[..2]),
            ));
        }
        let (t, p) = (ps[1], points.unwrap_or(ps[2]));
        if let Some(s) = shape.filter(|s| s[..2] != [t, p]) {
            return Err(err(
                path,
                format!(
                    "has {t} frames of {p} points; earlier files had {} of {}",
                    s[0], s[1]
                ),
            ));
        }
        shape = Some([t, p, 3]);
        for frame in pcd.chunks_exact(ps[2] * 3) {
            push_frame(&mut clips, None, frame, None, points, &mut rng);
        }
        all_labels.extend(labels(path, "label", label)?);
        count += ps[0];
    }
    let [t, p, _] = shape.ok_or_else(|| Error::InvalidArgument {
        op: "hoi4d",
        detail: "no HDF5 file given".into(),
    })?;
    Ok(ClipDataset {
        clips,
        clips_shape: [count, t, p, 3],
        labels: Labels::PerFrame(all_labels),
        ..Default::default()
    })
}

/// Semantic segmentation clips of `frames` consecutive frames (the reference: 3) from
/// `files`, `points` per frame when given.
pub fn semantic_segmentation(
    files: &[PathBuf],
    frames: usize,
    points: Option<usize>,
    seed: u64,
) -> Result<ClipDataset> {
    check_sizes(frames, points)?;
    let mut rng = SplitMix64::new(seed);
    let (mut clips, mut all_labels, mut shape) = (Vec::new(), Vec::new(), None::<usize>);
    let mut count = 0;
    for path in files {
        let file = open(path)?;
        let (pcd, ps) = read::<f32>(&file, path, "pcd")?;
        check_points(path, &pcd, &ps)?;
        let (semantic, ss) = read::<i64>(&file, path, "semantic")?;
        if ss != ps[..3] {
            return Err(err(
                path,
                format!(
                    "`semantic` is {ss:?}, expected {:?} (one per point)",
                    &ps[..3]
                ),
            ));
        }
        let semantic = labels(path, "semantic", semantic)?;
        let (t, n) = (ps[1], ps[2]);
        if t < frames {
            return Err(err(
                path,
                format!("has {t} frames per sequence, fewer than a {frames}-frame clip"),
            ));
        }
        let p = points.unwrap_or(n);
        if let Some(s) = shape.filter(|&s| s != p) {
            return Err(err(
                path,
                format!("has {p} points per frame; earlier files had {s}"),
            ));
        }
        shape = Some(p);
        for seq in 0..ps[0] {
            for start in (0..=t - frames).step_by(frames) {
                for f in start..start + frames {
                    let at = (seq * t + f) * n;
                    push_frame(
                        &mut clips,
                        Some(&mut all_labels),
                        &pcd[at * 3..(at + n) * 3],
                        Some(&semantic[at..at + n]),
                        points,
                        &mut rng,
                    );
                }
                count += 1;
            }
        }
    }
    let p = shape.ok_or_else(|| Error::InvalidArgument {
        op: "hoi4d",
        detail: "no HDF5 file given".into(),
    })?;
    Ok(ClipDataset {
        clips,
        clips_shape: [count, frames, p, 3],
        labels: Labels::PerPoint(all_labels),
        ..Default::default()
    })
}
