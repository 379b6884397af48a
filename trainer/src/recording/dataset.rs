//! Training data from a labelled recording (or a TUM RGB-D folder): every frame is resampled to the model's
//! points and units (as a live stream does), then sliding clips of consecutive frames
//! become a [`ClipDataset`] with a label per clip (its last frame's action, the one a
//! stream predicts) or per frame. Clips reaching outside the labelled intervals are
//! left out.

use super::labels::ActionLabels;
use super::replay::Replay;
use crate::dataset::{ClipDataset, Labels};
use crate::humanoid::generate::resample;
use crate::rng::SplitMix64;
use crate::stream::MSR_UNITS_PER_METRE;
use edge4d_runtime::{Error, Result};

/// How clips are cut from a recording.
#[derive(Debug, Clone)]
pub struct ClipOptions {
    /// Frames per clip.
    pub frames: usize,
    /// Points per frame.
    pub points: usize,
    /// Frames between the starts of consecutive clips.
    pub stride: usize,
    /// One label per frame (action segmentation) instead of one per clip.
    pub per_frame: bool,
    /// Seed of the point resampling.
    pub seed: u64,
}

/// What [`clips_from_recording`] did.
#[derive(Debug, Clone, Default)]
pub struct ClipReport {
    pub frames_read: usize,
    pub frames_labelled: usize,
    pub frames_without_points: usize,
    pub clips: usize,
    /// Clips per class.
    pub per_class: Vec<usize>,
}

fn invalid(detail: String) -> Error {
    Error::InvalidArgument {
        op: "data mcap",
        detail,
    }
}

/// Clips from a recording's frames (see the module's description).
pub fn clips_from_recording(
    replay: &Replay,
    labels: &ActionLabels,
    opts: &ClipOptions,
) -> Result<(ClipDataset, ClipReport)> {
    let frames = replay
        .frames()?
        .map(|f| f.map(|f| (f.log_time_ns, f.points)));
    clips_from_frames(frames, labels, opts)
}

/// Clips from timed point frames (nanoseconds, metres in the camera frame), in time
/// order: a recording's or a TUM RGB-D folder's.
pub fn clips_from_frames(
    frames_in: impl Iterator<Item = Result<(u64, Vec<[f32; 3]>)>>,
    labels: &ActionLabels,
    opts: &ClipOptions,
) -> Result<(ClipDataset, ClipReport)> {
    if opts.frames == 0 || opts.points == 0 || opts.stride == 0 {
        return Err(invalid(format!(
            "frames ({}), points ({}) and stride ({}) must be positive",
            opts.frames, opts.points, opts.stride
        )));
    }
    let mut rng = SplitMix64::new(opts.seed);
    let mut report = ClipReport::default();
    // Resampled frames (model units) and their classes, in log-time order.
    let mut frames: Vec<(Vec<f32>, Option<u32>)> = Vec::new();
    let mut first_ns = None;
    for frame in frames_in {
        let (time_ns, points) = frame?;
        report.frames_read += 1;
        let first = *first_ns.get_or_insert(time_ns);
        let class = labels.class_at(time_ns, first);
        if points.is_empty() {
            report.frames_without_points += 1;
            // A gap: no clip may span it.
            frames.push((Vec::new(), None));
            continue;
        }
        report.frames_labelled += class.is_some() as usize;
        frames.push((
            resample(&points, opts.points, MSR_UNITS_PER_METRE, &mut rng),
            class,
        ));
    }
    let (l, n) = (opts.frames, opts.points);
    let mut clips = Vec::new();
    let mut clip_labels = Vec::new();
    report.per_class = vec![0; labels.classes.len()];
    let mut start = 0;
    while start + l <= frames.len() {
        let window = &frames[start..start + l];
        if window.iter().all(|(p, c)| !p.is_empty() && c.is_some()) {
            for (p, c) in window {
                clips.extend_from_slice(p);
                if opts.per_frame {
                    clip_labels.push(c.expect("checked"));
                }
            }
            let last = window[l - 1].1.expect("checked");
            if !opts.per_frame {
                clip_labels.push(last);
            }
            report.per_class[last as usize] += 1;
            report.clips += 1;
        }
        start += opts.stride;
    }
    if report.clips == 0 {
        return Err(invalid(format!(
            "no clip of {l} consecutive labelled frames: {} frames read, {} of them within a labelled interval",
            report.frames_read, report.frames_labelled
        )));
    }
    let dataset = ClipDataset {
        clips,
        clips_shape: [report.clips, l, n, 3],
        labels: if opts.per_frame {
            Labels::PerFrame(clip_labels)
        } else {
            Labels::PerClip(clip_labels)
        },
        ..ClipDataset::default()
    };
    Ok((dataset, report))
}
