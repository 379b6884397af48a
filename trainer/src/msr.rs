//! MSR-Action3D (reference-spec §9.1), from either form the reference code uses:
//! - the raw depth files `aAA_sSS_eEE_sdepth.bin`: a uint32 header (frames, width,
//!   height) then frames·height·width uint32 depths (mm). Each pixel with depth > 0
//!   becomes `x = (u − W/2)/280·z, y = (v − H/2)/280·z, z = depth`, as MeteorNet's
//!   preprocessing does;
//! - MeteorNet's preprocessed `aAA_sSS_eEE_sdepth.npz`, whose `point_clouds` is a
//!   pickled object array of per-frame (n_t, 3) arrays in those millimetres.
//!
//! Coordinates are then divided by 300 and each frame resampled to N points as the
//! P4Transformer dataset does. Label = AA − 1; subjects 1–5 train, 6–10 test.

use std::path::Path;

use crate::dataset::{ClipDataset, Labels};
use crate::file_error as err;
use crate::rng::SplitMix64;
use edge4d_runtime::{Error, Result};

/// The focal length MeteorNet's preprocessing uses.
pub const FOCAL: f32 = 280.0;

/// (action 1–20, subject, episode) from `aAA_sSS_eEE_sdepth.bin` or `.npz`.
pub fn parse_name(name: &str) -> Option<(u32, u32, u32)> {
    let stem = name
        .strip_suffix("_sdepth.bin")
        .or_else(|| name.strip_suffix("_sdepth.npz"))?;
    let mut parts = stem.split('_');
    let num = |p: Option<&str>, c: char| {
        p.and_then(|s| s.strip_prefix(c))
            .and_then(|s| s.parse().ok())
    };
    Some((
        num(parts.next(), 'a')?,
        num(parts.next(), 's')?,
        num(parts.next(), 'e')?,
    ))
}

/// Per-frame point clouds (mm, camera frame) of one raw depth file.
pub fn read_depth_bin(path: &Path) -> Result<Vec<Vec<[f32; 3]>>> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(frames), Some(w), Some(h)) = (word(0), word(1), word(2)) else {
        return Err(err(path, "is shorter than its 12-byte header".into()));
    };
    let (frames, w, h) = (frames as usize, w as usize, h as usize);
    let need = 12 + 4 * frames * w * h;
    if bytes.len() < need || frames == 0 || w == 0 || h == 0 {
        return Err(err(
            path,
            format!(
                "header says {frames} frames of {w}x{h} ({need} bytes) but the file has {} bytes",
                bytes.len()
            ),
        ));
    }
    Ok((0..frames)
        .map(|f| {
            let mut pts = Vec::new();
            for v in 0..h {
                for u in 0..w {
                    let z = word(3 + (f * h + v) * w + u).unwrap_or(0) as f32;
                    if z > 0.0 {
                        pts.push([
                            (u as f32 - w as f32 / 2.0) / FOCAL * z,
                            (v as f32 - h as f32 / 2.0) / FOCAL * z,
                            z,
                        ]);
                    }
                }
            }
            pts
        })
        .collect())
}

/// Per-frame point clouds (mm, camera frame) of one preprocessed `.npz` file.
pub fn read_point_clouds_npz(path: &Path) -> Result<Vec<Vec<[f32; 3]>>> {
    let array = crate::npy::Npz::open(path)?.array("point_clouds")?;
    let crate::npy::Values::Object(frames) = &array.values else {
        return Err(err(
            path,
            "`point_clouds` is not an object array of per-frame clouds".into(),
        ));
    };
    frames
        .iter()
        .enumerate()
        .map(|(t, f)| {
            let xyz = f.to_f32().filter(|_| f.shape.len() == 2 && f.shape[1] == 3);
            let xyz = xyz.ok_or_else(|| {
                err(
                    path,
                    format!(
                        "frame {t} of `point_clouds` is {:?}, not (n, 3) numbers",
                        f.shape
                    ),
                )
            })?;
            if let Some(bad) = xyz.iter().find(|v| !v.is_finite()) {
                return Err(err(
                    path,
                    format!("frame {t} holds a non-finite coordinate {bad}"),
                ));
            }
            Ok(xyz.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect())
        })
        .collect()
}

/// `points` indices into a frame of `n` as P4Transformer's `datasets/msr.py` draws them:
/// without replacement when the frame has more, otherwise every point `points / n`
/// times plus a random `points % n` of them.
pub fn resample_indices(n: usize, points: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut pick = |count: usize| {
        let mut all: Vec<usize> = (0..n).collect();
        // A partial Fisher–Yates shuffle: the first `count` are a uniform sample.
        for i in 0..count {
            let j = i + (rng.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        all.truncate(count);
        all
    };
    if n > points {
        return pick(points);
    }
    let mut idx: Vec<usize> = (0..points / n).flat_map(|_| 0..n).collect();
    idx.extend(pick(points % n));
    idx
}

/// Clips of `frames` consecutive frames (every `stride`-th start) from the videos of
/// `dir` on one side of the subject split, `points` per frame resampled with a seeded
/// RNG, coordinates ÷ 300. Frames without points are an error naming the file.
pub fn clips(
    dir: &Path,
    train: bool,
    frames: usize,
    points: usize,
    stride: usize,
    seed: u64,
) -> Result<ClipDataset> {
    if frames == 0 || points == 0 {
        return Err(Error::InvalidArgument {
            op: "msr",
            detail: format!(
                "clips need at least one frame and one point (got {frames} frames of {points} points)"
            ),
        });
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| parse_name(n).is_some_and(|(_, s, _)| (s <= 5) == train))
        .collect();
    names.sort();
    // A folder holding both forms of one recording reads it once, from the raw file.
    names.dedup_by(|b, a| b.strip_suffix(".npz") == a.strip_suffix(".bin"));
    let mut rng = SplitMix64::new(seed);
    let (mut data, mut labels, mut videos) = (Vec::new(), Vec::new(), Vec::new());
    for (video_index, name) in names.iter().enumerate() {
        let (action, _, _) = parse_name(name).expect("filtered");
        let path = dir.join(name);
        let video = if name.ends_with(".npz") {
            read_point_clouds_npz(&path)?
        } else {
            read_depth_bin(&path)?
        };
        if let Some(f) = video.iter().position(Vec::is_empty) {
            return Err(err(&path, format!("frame {f} has no point")));
        }
        for start in (0..video.len().saturating_sub(frames - 1)).step_by(stride.max(1)) {
            for frame in &video[start..start + frames] {
                for i in resample_indices(frame.len(), points, &mut rng) {
                    data.extend(frame[i].iter().map(|v| v / 300.0));
                }
            }
            labels.push(action - 1);
            videos.push(video_index as u32);
        }
    }
    if labels.is_empty() {
        return Err(err(
            dir,
            format!(
                "holds no {} video of at least {frames} frames",
                if train { "training" } else { "test" }
            ),
        ));
    }
    Ok(ClipDataset {
        clips: data,
        clips_shape: [labels.len(), frames, points, 3],
        labels: Labels::PerClip(labels),
        videos: Some(videos),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bin(path: &Path, frames: u32, w: u32, h: u32, depth: impl Fn(u32, u32, u32) -> u32) {
        let mut b = Vec::new();
        for x in [frames, w, h] {
            b.extend(x.to_le_bytes());
        }
        for f in 0..frames {
            for v in 0..h {
                for u in 0..w {
                    b.extend(depth(f, u, v).to_le_bytes());
                }
            }
        }
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn raw_msr_depth_becomes_labelled_clips_split_by_subject() {
        let dir = std::env::temp_dir().join(format!("edge4d-msr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 4x2 pixels; one pixel lit per frame at u = f.
        let lit = |f: u32, u: u32, v: u32| if u == f && v == 1 { 2800 } else { 0 };
        write_bin(&dir.join("a03_s02_e01_sdepth.bin"), 4, 4, 2, lit);
        write_bin(&dir.join("a07_s06_e02_sdepth.bin"), 3, 4, 2, lit);
        assert_eq!(parse_name("a03_s02_e01_sdepth.bin"), Some((3, 2, 1)));
        let frames = read_depth_bin(&dir.join("a03_s02_e01_sdepth.bin")).unwrap();
        // Frame 1: u = 1, v = 1, z = 2800 → x = (1 − 2)/280·2800 = −10, y = (1 − 1)·… = 0.
        assert_eq!(frames[1], vec![[-10.0, 0.0, 2800.0]]);
        let train = clips(&dir, true, 3, 5, 1, 0).unwrap();
        assert_eq!(
            train.clips_shape,
            [2, 3, 5, 3],
            "two 3-frame windows of the 4-frame video"
        );
        assert_eq!(train.labels, Labels::PerClip(vec![2, 2]));
        assert_eq!(
            train.videos,
            Some(vec![0, 0]),
            "both clips come from one video"
        );
        assert_eq!(
            &train.clips[..3],
            &[(0.0 - 2.0) / 280.0 * 2800.0 / 300.0, 0.0, 2800.0 / 300.0]
        );
        let test = clips(&dir, false, 3, 5, 1, 0).unwrap();
        assert_eq!(test.labels, Labels::PerClip(vec![6]));
        // A truncated file is named with the problem.
        std::fs::write(
            dir.join("a01_s01_e01_sdepth.bin"),
            [1u8, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 1],
        )
        .unwrap();
        let e = clips(&dir, true, 3, 5, 1, 0).unwrap_err().to_string();
        assert!(
            e.contains("a01_s01_e01_sdepth.bin") && e.contains("header says"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
