//! TUM RGB-D style folders as a depth source: `depth.txt` lists "timestamp path" per
//! frame (comment lines start with `#`), each path a 16-bit PNG at 5000 units per
//! metre. Intrinsics come from the folder's `intrinsics.json` when it has one, else from
//! the TUM benchmark's published calibration of the Kinect it names
//! (`freiburg1/2/3` in the folder name), else the ROS default (525, 525, 319.5, 239.5).

use std::path::{Path, PathBuf};

use crate::depth_io::DepthIntrinsics;
use crate::file_error as err;
use edge4d_runtime::Result;

/// One depth frame of a TUM folder: its timestamp (seconds) and PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct TumFrame {
    pub timestamp: f64,
    pub path: PathBuf,
}

/// Whether `dir` is a TUM RGB-D style folder (it holds `depth.txt`).
pub fn is_tum(dir: &Path) -> bool {
    dir.join("depth.txt").is_file()
}

/// The frames `depth.txt` lists, in its order; an error names the line at fault.
pub fn frames(dir: &Path) -> Result<Vec<TumFrame>> {
    let list = dir.join("depth.txt");
    let text =
        std::fs::read_to_string(&list).map_err(|e| err(&list, format!("cannot read: {e}")))?;
    let mut frames = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(stamp), Some(file)) = (parts.next(), parts.next()) else {
            return Err(err(
                &list,
                format!("line {}: expected \"timestamp path\", got {line:?}", i + 1),
            ));
        };
        let timestamp: f64 = stamp
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite())
            .ok_or_else(|| {
                err(
                    &list,
                    format!("line {}: {stamp:?} is not a timestamp", i + 1),
                )
            })?;
        if frames
            .last()
            .is_some_and(|f: &TumFrame| f.timestamp > timestamp)
        {
            return Err(err(
                &list,
                format!("line {}: timestamp {stamp} goes back in time", i + 1),
            ));
        }
        frames.push(TumFrame {
            timestamp,
            path: dir.join(file),
        });
    }
    if frames.is_empty() {
        return Err(err(&list, "lists no depth frames".into()));
    }
    Ok(frames)
}

/// The folder's intrinsics (see the module documentation).
pub fn intrinsics(dir: &Path) -> Result<DepthIntrinsics> {
    let own = dir.join("intrinsics.json");
    if own.is_file() {
        return DepthIntrinsics::load(&own);
    }
    let name = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .to_string_lossy()
        .to_lowercase();
    let (fx, fy, cx, cy) = if name.contains("freiburg1") {
        (517.3, 516.5, 318.6, 255.3)
    } else if name.contains("freiburg2") {
        (520.9, 521.0, 325.1, 249.7)
    } else if name.contains("freiburg3") {
        (535.4, 539.2, 320.1, 247.6)
    } else {
        (525.0, 525.0, 319.5, 239.5)
    };
    Ok(DepthIntrinsics {
        width: 640,
        height: 480,
        fx,
        fy,
        cx,
        cy,
        depth_scale: 1.0 / 5000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_txt_lists_frames_in_order_and_bad_lines_are_named() {
        let dir = std::env::temp_dir().join(format!(
            "edge4d-tum-{}-rgbd_dataset_freiburg1_xyz",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("depth.txt"),
            "# depth maps\n# timestamp filename\n1305031102.160407 depth/1305031102.160407.png\n1305031102.194330 depth/1305031102.194330.png\n",
        )
        .unwrap();
        assert!(is_tum(&dir));
        let f = frames(&dir).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].path, dir.join("depth/1305031102.194330.png"));
        let k = intrinsics(&dir).unwrap();
        assert_eq!((k.fx, k.cy, k.depth_scale), (517.3, 255.3, 1.0 / 5000.0));
        for (text, problem) in [
            (
                "1.0 a.png\n0.5 b.png\n",
                "line 2: timestamp 0.5 goes back in time",
            ),
            ("x a.png\n", "line 1: \"x\" is not a timestamp"),
            ("1.0\n", "line 1: expected \"timestamp path\""),
            ("# nothing\n", "lists no depth frames"),
        ] {
            std::fs::write(dir.join("depth.txt"), text).unwrap();
            let e = frames(&dir).unwrap_err().to_string();
            assert!(e.contains("depth.txt") && e.contains(problem), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
