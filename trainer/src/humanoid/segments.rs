//! Action-segmentation sequences, HOI4D-style: long videos (150 frames at 15 fps by
//! default) in which one subject performs several actions in a row, every frame
//! labelled with the action it belongs to.
//!
//! Each sequence has one viewpoint, body scale and playback speed, drawn from the same
//! split as the clips (`generate.rs`: test sequences are unseen views, bodies and
//! speeds). Actions follow one another with no immediate repeat, each for a random
//! number of frames; at each change the body moves from the last pose of the previous
//! action into the new one over `transition` frames (positions lerped, rotations
//! slerped), labelled with the new action, as an annotator marks the start of the
//! next action where the movement towards it begins. The subject acts in place, as in
//! the clips, and the camera follows the subject's height smoothly from action to
//! action, like a robot's head tracking a person.

use glam::Vec3;

use super::camera::{back_project, DepthCamera};
use super::generate::{resample, Assets, GenConfig, Split, View};
use super::motion::Pose;
use crate::dataset::{ClipDataset, Labels};
use crate::rng::SplitMix64;
use edge4d_runtime::{Error, Result};

/// The shape of the sequences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequenceConfig {
    /// Frames per sequence (HOI4D: 150).
    pub frames: usize,
    /// Each action lasts this many frames, uniformly at random (the last one is cut
    /// at the end of the sequence).
    pub min_segment: usize,
    pub max_segment: usize,
    /// Frames over which the body moves from one action into the next.
    pub transition: usize,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            frames: 150,
            min_segment: 20,
            max_segment: 50,
            transition: 6,
        }
    }
}

impl SequenceConfig {
    pub fn check(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::InvalidArgument {
                op: "humanoid sequences",
                detail,
            })
        };
        if self.frames < 2 {
            return bad(format!("frames must be at least 2, got {}", self.frames));
        }
        if self.min_segment == 0 || self.min_segment > self.max_segment {
            return bad(format!(
                "segment lengths must satisfy 1 ≤ min ≤ max, got {}..{}",
                self.min_segment, self.max_segment
            ));
        }
        if self.transition >= self.min_segment {
            return bad(format!(
                "the transition ({} frames) must be shorter than the shortest action ({})",
                self.transition, self.min_segment
            ));
        }
        Ok(())
    }
}

/// One action's stretch of a sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub action: usize,
    pub frames: usize,
    /// Motion time (s) of the segment's first frame.
    pub start: f32,
}

/// Draws the segments of one sequence: actions with no immediate repeat, lengths in
/// [min_segment, max_segment], together exactly `frames` long.
pub fn draw_segments(
    assets: &Assets,
    view: &View,
    gen: &GenConfig,
    seq: &SequenceConfig,
    rng: &mut SplitMix64,
) -> Vec<Segment> {
    let actions = assets.motions.len() as u64;
    let mut out: Vec<Segment> = Vec::new();
    let mut total = 0;
    while total < seq.frames {
        let action = loop {
            let a = (rng.next_u64() % actions) as usize;
            if out.last().is_none_or(|s| s.action != a) || actions == 1 {
                break a;
            }
        };
        let span = (seq.max_segment - seq.min_segment + 1) as u64;
        let len = (seq.min_segment + (rng.next_u64() % span) as usize).min(seq.frames - total);
        let motion = &assets.motions[action];
        let duration = (len.saturating_sub(1)) as f32 * view.speed / gen.fps;
        // Non-looping motions start early enough to fit.
        let latest = if motion.looping {
            motion.duration()
        } else {
            (motion.duration() - duration).max(0.0)
        };
        out.push(Segment {
            action,
            frames: len,
            start: rng.uniform(0.0, 1.0) * latest,
        });
        total += len;
    }
    out
}

/// The poses of a sequence's frames (the body acting in place) and each frame's
/// action, with the transitions blended in.
pub fn sequence_poses(
    assets: &Assets,
    segments: &[Segment],
    view: &View,
    gen: &GenConfig,
    seq: &SequenceConfig,
) -> (Vec<Pose>, Vec<usize>) {
    let mut poses: Vec<Pose> = Vec::new();
    let mut labels = Vec::new();
    for (k, s) in segments.iter().enumerate() {
        let motion = &assets.motions[s.action];
        let span = s.frames.saturating_sub(1) as f32 * view.speed / gen.fps;
        let first = motion.pose_at(s.start);
        let travel = {
            let v = motion.pose_at(s.start + span).root_pos - first.root_pos;
            Vec3::new(v.x, 0.0, v.z)
        };
        // Every action starts over the same spot on the floor.
        let origin = Vec3::new(first.root_pos.x, 0.0, first.root_pos.z);
        let previous = poses.last().cloned();
        for f in 0..s.frames {
            let mut pose = motion.pose_at(s.start + f as f32 * view.speed / gen.fps);
            let along = if s.frames > 1 {
                f as f32 / (s.frames - 1) as f32
            } else {
                0.0
            };
            pose.root_pos -= origin + travel * along;
            if let (true, Some(prev)) = (k > 0 && f < seq.transition, &previous) {
                pose = prev.blend(&pose, (f + 1) as f32 / (seq.transition + 1) as f32);
            }
            poses.push(pose);
            labels.push(s.action);
        }
    }
    (poses, labels)
}

/// Renders a sequence's poses with one camera of `view`, aimed at the subject's height
/// (eased towards each new action's over the transition): per frame, `points`
/// coordinates. A frame with no body pixel is an error.
fn render_poses(
    assets: &Assets,
    poses: &[Pose],
    segments: &[Segment],
    view: &View,
    gen: &GenConfig,
    seq: &SequenceConfig,
    rng: &mut SplitMix64,
) -> Result<Vec<f32>> {
    let (az, el) = (
        view.azimuth_deg.to_radians(),
        view.elevation_deg.to_radians(),
    );
    let direction = Vec3::new(az.sin() * el.cos(), el.sin(), az.cos() * el.cos());
    // Aim height per frame: each action's first pose, eased over the transitions.
    let mut heights = Vec::with_capacity(poses.len());
    let mut frame = 0;
    let mut previous: Option<f32> = None;
    for s in segments {
        let h = poses[frame].root_pos.y * 0.9;
        for f in 0..s.frames {
            heights.push(match previous {
                Some(p) if f < seq.transition => {
                    p + (h - p) * (f + 1) as f32 / (seq.transition + 1) as f32
                }
                _ => h,
            });
        }
        frame += s.frames;
        previous = Some(h);
    }
    let mut out = Vec::with_capacity(poses.len() * gen.points * 3);
    for (f, (pose, h)) in poses.iter().zip(&heights).enumerate() {
        let target = Vec3::new(0.0, *h, 0.0) * view.scale;
        let camera = DepthCamera {
            intrinsics: gen.intrinsics,
            eye: target + direction * view.distance,
            target,
            noise: gen.noise,
        };
        let (depth, _) = camera.render_with_hits(&assets.body.posed_shapes(pose, view.scale), rng);
        let pts = back_project(&depth, gen.intrinsics);
        if pts.is_empty() {
            return Err(Error::InvalidArgument {
                op: "humanoid sequences",
                detail: format!("frame {f}: the body is not in view"),
            });
        }
        out.extend(resample(&pts, gen.points, gen.coordinate_scale, rng));
    }
    Ok(out)
}

/// `count` sequences from one side of the split, per-frame labels (action indices).
/// `gen.frames` is ignored (`seq.frames` sets the length).
pub fn generate_sequences(
    assets: &Assets,
    split: Split,
    count: usize,
    gen: &GenConfig,
    seq: &SequenceConfig,
    seed: u64,
) -> Result<ClipDataset> {
    seq.check()?;
    let mut rng = SplitMix64::new(
        seed ^ 0x5E9_5E9
            ^ if split == Split::Train {
                0
            } else {
                0x5EED_7E57
            },
    );
    let mut clips = Vec::with_capacity(count * seq.frames * gen.points * 3);
    let mut labels = Vec::with_capacity(count * seq.frames);
    for _ in 0..count {
        let mut tries = 0;
        let (points, frame_labels) = loop {
            // The view's own start time is unused: each segment draws its own.
            let view = View::sample(split, &assets.motions[0], &mut rng);
            let segments = draw_segments(assets, &view, gen, seq, &mut rng);
            let (poses, frame_labels) = sequence_poses(assets, &segments, &view, gen, seq);
            match render_poses(assets, &poses, &segments, &view, gen, seq, &mut rng) {
                Ok(points) => break (points, frame_labels),
                Err(e) if tries >= 8 => return Err(e),
                Err(_) => tries += 1,
            }
        };
        clips.extend(points);
        labels.extend(frame_labels.into_iter().map(|a| a as u32));
    }
    Ok(ClipDataset {
        clips,
        clips_shape: [count, seq.frames, gen.points, 3],
        labels: Labels::PerFrame(labels),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_hold_several_actions_with_per_frame_labels_and_no_repeats() {
        let assets = Assets::bundled().unwrap();
        let gen = GenConfig {
            points: 64,
            ..GenConfig::default()
        };
        let seq = SequenceConfig {
            frames: 40,
            min_segment: 8,
            max_segment: 14,
            transition: 3,
        };
        let data = generate_sequences(&assets, Split::Test, 2, &gen, &seq, 7).unwrap();
        assert_eq!(data.clips_shape, [2, 40, 64, 3]);
        assert!(data.clips.iter().all(|v| v.is_finite()));
        let Labels::PerFrame(labels) = &data.labels else {
            panic!("per-frame labels expected");
        };
        for frames in labels.chunks(40) {
            let mut runs = vec![(frames[0], 1)];
            for &y in &frames[1..] {
                match runs.last_mut() {
                    Some((a, n)) if *a == y => *n += 1,
                    _ => runs.push((y, 1)),
                }
            }
            assert!(runs.len() >= 3, "{runs:?}");
            // Every action but the last (cut at the end) lasts min..=max frames.
            for &(_, n) in &runs[..runs.len() - 1] {
                assert!((8..=14).contains(&n), "{runs:?}");
            }
        }
        // Same seed, same data; another seed, other data.
        let again = generate_sequences(&assets, Split::Test, 2, &gen, &seq, 7).unwrap();
        assert_eq!(again.clips, data.clips);
        let other = generate_sequences(&assets, Split::Test, 2, &gen, &seq, 8).unwrap();
        assert_ne!(other.clips, data.clips);
    }

    #[test]
    fn transitions_move_the_body_continuously_into_the_next_action() {
        let assets = Assets::bundled().unwrap();
        let gen = GenConfig::default();
        let seq = SequenceConfig {
            frames: 30,
            min_segment: 15,
            max_segment: 15,
            transition: 5,
        };
        let mut rng = SplitMix64::new(3);
        let view = View::sample(Split::Train, &assets.motions[0], &mut rng);
        let segments = draw_segments(&assets, &view, &gen, &seq, &mut rng);
        assert_eq!(segments.iter().map(|s| s.frames).sum::<usize>(), 30);
        let (poses, labels) = sequence_poses(&assets, &segments, &view, &gen, &seq);
        assert_eq!(labels[14], segments[0].action);
        assert_eq!(labels[15], segments[1].action);
        // Across the cut the root moves less than it jumps without blending.
        let step = |a: &Pose, b: &Pose| (a.root_pos - b.root_pos).length();
        let blended = step(&poses[14], &poses[15]);
        let unblended = sequence_poses(
            &assets,
            &segments,
            &view,
            &gen,
            &SequenceConfig {
                transition: 0,
                ..seq
            },
        )
        .0;
        assert!(
            blended <= step(&unblended[14], &unblended[15]) + 1e-6,
            "{blended}"
        );
        // After the transition the new action plays as it is.
        assert_eq!(poses[15 + 5], unblended[15 + 5]);
    }

    #[test]
    fn bad_shapes_are_refused() {
        for seq in [
            SequenceConfig {
                frames: 1,
                ..Default::default()
            },
            SequenceConfig {
                min_segment: 0,
                ..Default::default()
            },
            SequenceConfig {
                min_segment: 60,
                max_segment: 50,
                ..Default::default()
            },
            SequenceConfig {
                transition: 20,
                ..Default::default()
            },
        ] {
            assert!(seq.check().is_err(), "{seq:?}");
        }
    }
}
