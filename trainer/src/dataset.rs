//! The single-file clip dataset: one safetensors file holding `clip` (B, L, N, 3)
//! float32 and `label` — (B) int64 for one label per clip, (B, L) for one per frame,
//! (B, L, N) for one per point; absent for unlabelled pre-training data — and
//! optionally:
//! - `video` (B) int64, the video each clip was cut from (for video-level accuracy,
//!   which sums the clips' probabilities per video);
//! - `partial` (B, L, N, 3), precomputed partial views of the clips for C2P;
//! - for semantic segmentation: `rgb` (B, L, N, 3) point colours in [0, 1] (without
//!   them the coordinates are the input features, as HOI4D's segmentation does),
//!   `mask` (B, L, N) float32, 1 where a point counts in the loss and the metrics
//!   (Synthia's half-crops and void points), and `class_weight` (classes) float32,
//!   the loss's class weights.
//!
//! Loading validates everything a training run would otherwise trip over later.

use std::path::Path;

use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Error, HostTensor, Result, TensorFile};

/// Labels of a clip dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Labels {
    /// One label per clip (action recognition).
    PerClip(Vec<u32>),
    /// One label per frame, (B, L) row-major (action segmentation).
    PerFrame(Vec<u32>),
    /// One label per point, (B, L, N) row-major (semantic segmentation).
    PerPoint(Vec<u32>),
    /// No labels (pre-training data).
    #[default]
    None,
}

/// Clips and labels in host memory.
#[derive(Debug, Clone, Default)]
pub struct ClipDataset {
    /// (B, L, N, 3) row-major.
    pub clips: Vec<f32>,
    pub clips_shape: [usize; 4],
    pub labels: Labels,
    /// The source video of each clip, when several clips come from one video.
    pub videos: Option<Vec<u32>>,
    /// Precomputed partial views, (B, L, N, 3) like `clips`.
    pub partial: Option<Vec<f32>>,
    /// Point colours, (B, L, N, 3) like `clips`.
    pub rgb: Option<Vec<f32>>,
    /// Loss and metric mask, (B, L, N): 1 counts, 0 does not.
    pub mask: Option<Vec<f32>>,
    /// Class weights of the segmentation loss.
    pub class_weight: Option<Vec<f32>>,
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
        if !f.contains("clip") {
            return Err(err(format!(
                "has no `clip` tensor (a dataset holds `clip` (B, L, N, 3) float32 and `label` (B) or (B, L) int64; found: {})",
                f.names().join(", ")
            )));
        }
        let clip = f.f32("clip")?;
        let s = clip.shape.clone();
        if s.len() != 4 || s[3] != 3 || s.contains(&0) {
            return Err(err(format!(
                "`clip` must be (B, L, N, 3) with no empty axis, got {s:?}"
            )));
        }
        let finite = |name: &str, data: &[f32]| -> Result<()> {
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                let per_clip = s[1] * s[2] * 3;
                return Err(err(format!(
                    "`{name}` holds a non-finite coordinate ({}) in clip {}, frame {}, point {}",
                    data[i],
                    i / per_clip,
                    i % per_clip / (s[2] * 3),
                    i % (s[2] * 3) / 3
                )));
            }
            Ok(())
        };
        finite("clip", &clip.data)?;
        let partial = if f.contains("partial") {
            let p = f.f32("partial")?;
            if p.shape != s {
                return Err(err(format!(
                    "`partial` has shape {:?}, it must match `clip` {s:?}",
                    p.shape
                )));
            }
            finite("partial", &p.data)?;
            Some(p.data)
        } else {
            None
        };
        let rgb = if f.contains("rgb") {
            let c = f.f32("rgb")?;
            if c.shape != s {
                return Err(err(format!(
                    "`rgb` has shape {:?}, it must match `clip` {s:?}",
                    c.shape
                )));
            }
            finite("rgb", &c.data)?;
            Some(c.data)
        } else {
            None
        };
        let mask = if f.contains("mask") {
            let m = f.f32("mask")?;
            if m.shape != s[..3] {
                return Err(err(format!(
                    "`mask` has shape {:?}, expected {:?} (one value per point)",
                    m.shape,
                    &s[..3]
                )));
            }
            if let Some(bad) = m.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(err(format!("`mask` holds {bad}; it must be 0 or 1")));
            }
            Some(m.data)
        } else {
            None
        };
        let class_weight = if f.contains("class_weight") {
            let w = f.f32("class_weight")?;
            if w.shape.len() != 1 || w.data.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(err(format!(
                    "`class_weight` must be one finite, non-negative weight per class; got shape {:?}",
                    w.shape
                )));
            }
            Some(w.data)
        } else {
            None
        };
        let labels = if f.contains("label") {
            let (raw, ls) = f.i64("label")?;
            if let Some(&bad) = raw.iter().find(|&&v| v < 0 || v > u32::MAX as i64) {
                return Err(err(format!("`label` holds {bad}, not a class index")));
            }
            let values: Vec<u32> = raw.iter().map(|&v| v as u32).collect();
            match ls.as_slice() {
                [b] if *b == s[0] => Labels::PerClip(values),
                [b, l] if *b == s[0] && *l == s[1] => Labels::PerFrame(values),
                [b, l, n] if [*b, *l, *n] == s[..3] => Labels::PerPoint(values),
                other => {
                    return Err(err(format!(
                        "`label` has shape {other:?}; for clips {s:?} it must be [{}] (per clip), [{}, {}] (per frame) or [{}, {}, {}] (per point)",
                        s[0], s[0], s[1], s[0], s[1], s[2]
                    )))
                }
            }
        } else {
            Labels::None
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
            partial,
            rgb,
            mask,
            class_weight,
        })
    }

    /// Writes the dataset (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let [b, l, n, _] = self.clips_shape;
        let mut tensors = vec![(
            "clip".to_string(),
            Stored::F32(HostTensor::new(self.clips.clone(), &self.clips_shape)),
        )];
        let labels = match &self.labels {
            Labels::PerClip(v) => Some((v, vec![b])),
            Labels::PerFrame(v) => Some((v, vec![b, l])),
            Labels::PerPoint(v) => Some((v, vec![b, l, n])),
            Labels::None => None,
        };
        if let Some((labels, shape)) = labels {
            tensors.push((
                "label".into(),
                Stored::I64(labels.iter().map(|&v| v as i64).collect(), shape),
            ));
        }
        if let Some(p) = &self.partial {
            tensors.push((
                "partial".into(),
                Stored::F32(HostTensor::new(p.clone(), &self.clips_shape)),
            ));
        }
        if let Some(c) = &self.rgb {
            tensors.push((
                "rgb".into(),
                Stored::F32(HostTensor::new(c.clone(), &self.clips_shape)),
            ));
        }
        if let Some(m) = &self.mask {
            tensors.push((
                "mask".into(),
                Stored::F32(HostTensor::new(m.clone(), &[b, l, n])),
            ));
        }
        if let Some(w) = &self.class_weight {
            tensors.push((
                "class_weight".into(),
                Stored::F32(HostTensor::new(w.clone(), &[w.len()])),
            ));
        }
        if let Some(v) = &self.videos {
            tensors.push((
                "video".into(),
                Stored::I64(v.iter().map(|&x| x as i64).collect(), vec![b]),
            ));
        }
        write_atomic(path, &tensors, Default::default())
    }

    pub fn len(&self) -> usize {
        self.clips_shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest label + 1.
    pub fn classes_seen(&self) -> usize {
        match &self.labels {
            Labels::PerClip(v) | Labels::PerFrame(v) | Labels::PerPoint(v) => {
                v.iter().max().map_or(0, |&m| m as usize + 1)
            }
            Labels::None => 0,
        }
    }

    /// The partial views of `indices`, in that order (None without `partial`).
    pub fn partial_batch(&self, indices: &[usize]) -> Option<Vec<f32>> {
        let [_, l, n, _] = self.clips_shape;
        let per = l * n * 3;
        let p = self.partial.as_ref()?;
        Some(
            indices
                .iter()
                .flat_map(|&i| p[i * per..(i + 1) * per].iter().copied())
                .collect(),
        )
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
                Labels::PerPoint(v) => labels.extend_from_slice(&v[i * l * n..(i + 1) * l * n]),
                Labels::None => {}
            }
        }
        (clips, labels)
    }
}

/// The indices of a seeded subset holding `fraction` (in (0, 1]) of each class's
/// samples, at least one per class present, in ascending order: the labelled part of a
/// label-efficiency study.
pub fn stratified_subset(labels: &[usize], fraction: f64, seed: u64) -> Result<Vec<usize>> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::InvalidArgument {
            op: "label fraction",
            detail: format!("must be in (0, 1], got {fraction}"),
        });
    }
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut rng = crate::rng::SplitMix64::new(seed ^ 0x1ABE1);
    let mut keep = Vec::new();
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        let n = ((members.len() as f64 * fraction).ceil() as usize)
            .max(1)
            .min(members.len());
        keep.extend_from_slice(&members[..n]);
    }
    keep.sort();
    Ok(keep)
}

#[cfg(test)]
mod subset_tests {
    use super::stratified_subset;

    #[test]
    fn every_class_keeps_its_share_and_at_least_one() {
        let labels: Vec<usize> = (0..100)
            .map(|i| if i < 90 { 0 } else { 1 + i % 2 })
            .collect();
        let keep = stratified_subset(&labels, 0.1, 3).unwrap();
        let count = |c| keep.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((count(0), count(1), count(2)), (9, 1, 1));
        assert!(keep.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(keep, stratified_subset(&labels, 0.1, 3).unwrap());
        assert_ne!(keep, stratified_subset(&labels, 0.1, 4).unwrap());
        assert_eq!(stratified_subset(&labels, 1.0, 3).unwrap().len(), 100);
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            assert!(stratified_subset(&labels, bad, 3).is_err());
        }
    }
}
