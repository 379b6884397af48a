//! The single-file clip dataset: one safetensors file holding `clip` (B, L, N, 3)
//! float32 and `label` — (B) int64 for one label per clip, (B, L) for one per frame —
//! and optionally `video` (B) int64, the video each clip was cut from (for video-level
//! accuracy, which sums the clips' probabilities per video).
//! Loading validates everything a training run would otherwise trip over later.

use std::path::Path;

use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Error, HostTensor, Result, TensorFile};

/// Labels of a clip dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// One label per clip (action recognition).
    PerClip(Vec<u32>),
    /// One label per frame, (B, L) row-major (action segmentation).
    PerFrame(Vec<u32>),
}

/// Clips and labels in host memory.
#[derive(Debug, Clone)]
pub struct ClipDataset {
    /// (B, L, N, 3) row-major.
    pub clips: Vec<f32>,
    pub clips_shape: [usize; 4],
    pub labels: Labels,
    /// The source video of each clip, when several clips come from one video.
    pub videos: Option<Vec<u32>>,
}

impl ClipDataset {
    /// Reads and validates a dataset file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let p = path.as_ref();
        let f = TensorFile::open(p)?;
        let err = |detail: String| Error::TensorFile {
            path: p.display().to_string(),
            detail,
        };
        for key in ["clip", "label"] {
            if !f.contains(key) {
                return Err(err(format!(
                    "has no `{key}` tensor (a dataset holds `clip` (B, L, N, 3) float32 and `label` (B) or (B, L) int64; found: {})",
                    f.names().join(", ")
                )));
            }
        }
        let clip = f.f32("clip")?;
        let s = clip.shape.clone();
        if s.len() != 4 || s[3] != 3 || s.contains(&0) {
            return Err(err(format!(
                "`clip` must be (B, L, N, 3) with no empty axis, got {s:?}"
            )));
        }
        if let Some(i) = clip.data.iter().position(|v| !v.is_finite()) {
            let per_clip = s[1] * s[2] * 3;
            return Err(err(format!(
                "`clip` holds a non-finite coordinate ({}) in clip {}, frame {}, point {}",
                clip.data[i],
                i / per_clip,
                i % per_clip / (s[2] * 3),
                i % (s[2] * 3) / 3
            )));
        }
        let (raw, ls) = f.i64("label")?;
        if let Some(&bad) = raw.iter().find(|&&v| v < 0 || v > u32::MAX as i64) {
            return Err(err(format!("`label` holds {bad}, not a class index")));
        }
        let values: Vec<u32> = raw.iter().map(|&v| v as u32).collect();
        let labels = match ls.as_slice() {
            [b] if *b == s[0] => Labels::PerClip(values),
            [b, l] if *b == s[0] && *l == s[1] => Labels::PerFrame(values),
            other => {
                return Err(err(format!(
                    "`label` has shape {other:?}; for clips {s:?} it must be [{}] (per clip) or [{}, {}] (per frame)",
                    s[0], s[0], s[1]
                )))
            }
        };
        let videos = if f.contains("video") {
            let (v, vs) = f.u32("video")?;
            if vs != [s[0]] {
                return Err(err(format!(
                    "`video` has shape {vs:?}, expected [{}]",
                    s[0]
                )));
            }
            Some(v)
        } else {
            None
        };
        Ok(Self {
            clips: clip.data,
            clips_shape: [s[0], s[1], s[2], s[3]],
            labels,
            videos,
        })
    }

    /// Writes the dataset (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let [b, l, _, _] = self.clips_shape;
        let (labels, shape) = match &self.labels {
            Labels::PerClip(v) => (v, vec![b]),
            Labels::PerFrame(v) => (v, vec![b, l]),
        };
        write_atomic(
            path,
            &[
                (
                    "clip".into(),
                    Stored::F32(HostTensor::new(self.clips.clone(), &self.clips_shape)),
                ),
                (
                    "label".into(),
                    Stored::I64(labels.iter().map(|&v| v as i64).collect(), shape),
                ),
            ],
            Default::default(),
        )
    }

    pub fn len(&self) -> usize {
        self.clips_shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest label + 1.
    pub fn classes_seen(&self) -> usize {
        let v = match &self.labels {
            Labels::PerClip(v) | Labels::PerFrame(v) => v,
        };
        v.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// The clips and labels of `indices`, in that order: (clip data, labels).
    pub fn batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<u32>) {
        let [_, l, n, _] = self.clips_shape;
        let per = l * n * 3;
        let mut clips = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::new();
        for &i in indices {
            clips.extend_from_slice(&self.clips[i * per..(i + 1) * per]);
            match &self.labels {
                Labels::PerClip(v) => labels.push(v[i]),
                Labels::PerFrame(v) => labels.extend_from_slice(&v[i * l..(i + 1) * l]),
            }
        }
        (clips, labels)
    }
}
