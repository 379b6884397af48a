//! A performance for streaming: one subject doing actions one after another in front of
//! one depth camera, rendered frame by frame with the true action of each frame.
//!
//! Each action is played as the dataset's clips are (in place, the camera re-aimed at
//! the subject as it starts, like a robot's head tracking a person), so a model trained
//! on `edge4d data humanoid` clips sees the same kind of frames, one at a time.

use super::generate::{render_depth_clip, Assets, GenConfig, View};
use crate::rng::SplitMix64;
use edge4d_runtime::{Error, Result};

/// Renders `actions` in order, `frames_per_action` frames each, seen from `view`
/// (its `start` is redrawn per action), handing each depth image and its action to
/// `each(frame, depth, action)` as it is made.
pub fn perform(
    assets: &Assets,
    actions: &[usize],
    frames_per_action: usize,
    view: &View,
    cfg: &GenConfig,
    rng: &mut SplitMix64,
    mut each: impl FnMut(usize, Vec<u16>, usize) -> Result<()>,
) -> Result<()> {
    if frames_per_action == 0 {
        return Err(Error::InvalidArgument {
            op: "humanoid",
            detail: "frames_per_action must be positive".into(),
        });
    }
    let cfg = GenConfig {
        frames: frames_per_action,
        ..*cfg
    };
    let mut frame = 0;
    for &action in actions {
        let motion = assets
            .motions
            .get(action)
            .ok_or_else(|| Error::InvalidArgument {
                op: "humanoid",
                detail: format!(
                    "action {action} is out of range ({} actions)",
                    assets.motions.len()
                ),
            })?;
        let view = View {
            start: rng.uniform(0.0, 1.0) * motion.duration(),
            ..*view
        };
        render_depth_clip(assets, action, &view, &cfg, rng, |_, depth, _, _| {
            each(frame, depth, action)?;
            frame += 1;
            Ok(())
        })?;
    }
    Ok(())
}
