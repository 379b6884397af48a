//! The labelled humanoid dataset: each clip is one action played at a chosen speed by a
//! body of a chosen scale, seen by a depth camera from a chosen viewpoint, sampled to
//! L frames of N points in MSR-Action3D's units (camera frame, millimetres ÷ 300).
//!
//! Split (so that test clips are unseen views, bodies and speeds):
//! | | train | test |
//! |---|---|---|
//! | camera azimuth | 0°, 60°, …, 300°, each ± 10° | 30°, 90°, …, 330°, each ± 10° |
//! | body scale | 0.9, 1.0, 1.1 | 0.95, 1.05 |
//! | playback speed | 0.8, 1.0, 1.2 | 0.9, 1.1 |
//! Both: elevation 0–20°, distance 2.5–3.5 m, start time uniform over the clip.
//! Subjects act in place (the root's straight-line travel over a clip is removed), so
//! walking and running stay in view as MSR-Action3D's subjects do.

use std::path::Path;

use glam::Vec3;

use super::body::Body;
use super::camera::{back_project, DepthCamera, DepthNoise, Intrinsics};
use super::motion::Motion;
use crate::dataset::{ClipDataset, Labels};
use crate::rng::SplitMix64;
use edge4d_runtime::{Error, Result};

/// The 15 actions, in label order.
pub const ACTIONS: [&str; 15] = [
    "walk",
    "run",
    "jump",
    "kick",
    "punch",
    "spinkick",
    "backflip",
    "cartwheel",
    "crawl",
    "roll",
    "spin",
    "dance_a",
    "dance_b",
    "getup_facedown",
    "getup_faceup",
];

/// The body and every action's motion clip.
pub struct Assets {
    pub body: Body,
    pub motions: Vec<Motion>,
}

impl Assets {
    /// Loads `humanoid.urdf` and `humanoid3d_<action>.txt` from `dir` (see
    /// `data/deepmimic/README.md`; `scripts/fetch-motions.sh` recreates them).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| Error::TensorFile {
                path: p.display().to_string(),
                detail: format!(
                    "cannot read ({e}); run scripts/fetch-motions.sh to fetch the motion clips"
                ),
            })
        };
        let body = Body::from_urdf("humanoid.urdf", &read("humanoid.urdf")?)?;
        let motions = ACTIONS
            .iter()
            .map(|a| {
                let name = format!("humanoid3d_{a}.txt");
                Motion::parse(&name, &read(&name)?)
            })
            .collect::<Result<_>>()?;
        Ok(Self { body, motions })
    }

    /// The vendored assets of this repository.
    pub fn bundled() -> Result<Self> {
        Self::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/deepmimic"))
    }
}

/// Which side of the split to draw viewpoints, bodies and speeds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Clip geometry and sensor settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenConfig {
    pub frames: usize,
    pub points: usize,
    /// Frames per second of the sampled video (MSR-Action3D: 15).
    pub fps: f32,
    pub intrinsics: Intrinsics,
    pub noise: DepthNoise,
    /// Multiplies millimetre coordinates (MSR-Action3D pipelines divide by 300).
    pub coordinate_scale: f32,
    /// Label every point with its body part (semantic segmentation) instead of each
    /// clip with its action.
    pub body_part_labels: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            frames: 16,
            points: 512,
            fps: 15.0,
            intrinsics: Intrinsics::MSR_HALF,
            noise: DepthNoise::KINECT,
            coordinate_scale: 1.0 / 300.0,
            body_part_labels: false,
        }
    }
}

/// One clip's viewing conditions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub azimuth_deg: f32,
    pub elevation_deg: f32,
    pub distance: f32,
    pub scale: f32,
    pub speed: f32,
    pub start: f32,
}

impl View {
    /// A random view from one side of the split.
    pub fn sample(split: Split, motion: &Motion, rng: &mut SplitMix64) -> Self {
        let pick = |rng: &mut SplitMix64, v: &[f32]| v[(rng.next_u64() % v.len() as u64) as usize];
        let (base, scales, speeds): (f32, &[f32], &[f32]) = match split {
            Split::Train => (0.0, &[0.9, 1.0, 1.1], &[0.8, 1.0, 1.2]),
            Split::Test => (30.0, &[0.95, 1.05], &[0.9, 1.1]),
        };
        let azimuth = base + 60.0 * (rng.next_u64() % 6) as f32 + rng.uniform(-10.0, 10.0);
        Self {
            azimuth_deg: azimuth,
            elevation_deg: rng.uniform(0.0, 20.0),
            distance: rng.uniform(2.5, 3.5),
            scale: pick(rng, scales),
            speed: pick(rng, speeds),
            start: rng.uniform(0.0, 1.0) * motion.duration(),
        }
    }
}

/// Renders one clip: (L·N·3) coordinates and each point's body part (L·N). Frames
/// with no body pixel are an error.
pub fn render_clip(
    assets: &Assets,
    action: usize,
    view: &View,
    cfg: &GenConfig,
    rng: &mut SplitMix64,
) -> Result<(Vec<f32>, Vec<u32>)> {
    let mut out = Vec::with_capacity(cfg.frames * cfg.points * 3);
    let mut parts = Vec::with_capacity(cfg.frames * cfg.points);
    render_depth_clip(
        assets,
        action,
        view,
        cfg,
        rng,
        |_, image, pixel_parts, rng| {
            let pts = back_project(&image, cfg.intrinsics);
            // back_project keeps the pixels with depth, in order.
            let labels: Vec<u32> = pixel_parts
                .iter()
                .zip(&image)
                .filter(|(_, &d)| d > 0)
                .map(|(&p, _)| p)
                .collect();
            let (xyz, l) = resample_labelled(&pts, &labels, cfg.points, cfg.coordinate_scale, rng);
            out.extend(xyz);
            parts.extend(l);
            Ok(())
        },
    )?;
    Ok((out, parts))
}

/// Renders one clip as the depth camera sees it, handing each frame's depth image
/// (millimetres, row-major, `cfg.intrinsics` size) and the body part each pixel sees
/// (meaningless where the depth is 0) to `each(frame, image, parts, rng)` as it is
/// made. The camera aims at the subject's first pose; a frame with no body pixel is an
/// error.
pub fn render_depth_clip(
    assets: &Assets,
    action: usize,
    view: &View,
    cfg: &GenConfig,
    rng: &mut SplitMix64,
    mut each: impl FnMut(usize, Vec<u16>, Vec<u32>, &mut SplitMix64) -> Result<()>,
) -> Result<()> {
    let shape_parts = assets.body.shape_parts();
    let motion = &assets.motions[action];
    let span = (cfg.frames.saturating_sub(1)) as f32 * view.speed / cfg.fps;
    // Non-looping clips start early enough to fit.
    let start = if motion.looping {
        view.start
    } else {
        view.start.min((motion.duration() - span).max(0.0))
    };
    let first = motion.pose_at(start);
    // Subjects act in place in front of the camera, as in MSR-Action3D: the root's
    // straight-line horizontal travel over the clip is removed (its sway is kept).
    let travel = {
        let v = motion.pose_at(start + span).root_pos - first.root_pos;
        Vec3::new(v.x, 0.0, v.z)
    };
    let target = Vec3::new(first.root_pos.x, first.root_pos.y * 0.9, first.root_pos.z) * view.scale;
    let (az, el) = (
        view.azimuth_deg.to_radians(),
        view.elevation_deg.to_radians(),
    );
    let eye =
        target + Vec3::new(az.sin() * el.cos(), el.sin(), az.cos() * el.cos()) * view.distance;
    let camera = DepthCamera {
        intrinsics: cfg.intrinsics,
        eye,
        target,
        noise: cfg.noise,
    };
    for f in 0..cfg.frames {
        let mut pose = motion.pose_at(start + f as f32 * view.speed / cfg.fps);
        let along = if cfg.frames > 1 {
            f as f32 / (cfg.frames - 1) as f32
        } else {
            0.0
        };
        pose.root_pos -= travel * along;
        let (depth, hits) =
            camera.render_with_hits(&assets.body.posed_shapes(&pose, view.scale), rng);
        let parts = hits
            .iter()
            .map(|&h| shape_parts.get(h as usize).copied().unwrap_or(0))
            .collect();
        if depth.iter().all(|&d| d == 0) {
            return Err(Error::InvalidArgument {
                op: "humanoid",
                detail: format!("{} frame {f}: the body is not in view", ACTIONS[action]),
            });
        }
        each(f, depth, parts, rng)?;
    }
    Ok(())
}

/// `n` points of a frame as interleaved (x, y, z)·`scale`: a random subset when the
/// frame has at least `n` points, else every point plus random repeats (as the
/// reference loaders resample). An empty frame gives an empty vector.
pub fn resample(pts: &[[f32; 3]], n: usize, scale: f32, rng: &mut SplitMix64) -> Vec<f32> {
    resample_labelled(pts, &vec![0; pts.len()], n, scale, rng).0
}

/// [`resample`] carrying a label per point along.
pub fn resample_labelled(
    pts: &[[f32; 3]],
    labels: &[u32],
    n: usize,
    scale: f32,
    rng: &mut SplitMix64,
) -> (Vec<f32>, Vec<u32>) {
    if pts.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut order: Vec<usize> = (0..pts.len()).collect();
    rng.shuffle(&mut order);
    let mut out = Vec::with_capacity(n * 3);
    let mut out_labels = Vec::with_capacity(n);
    for i in 0..n {
        let k = if i < pts.len() {
            order[i]
        } else {
            (rng.next_u64() % pts.len() as u64) as usize
        };
        out.extend(pts[k].iter().map(|v| v * scale));
        out_labels.push(labels[k]);
    }
    (out, out_labels)
}

/// `clips_per_action` clips of every action from one side of the split, in action-major
/// order, labelled by action index.
pub fn generate(
    assets: &Assets,
    split: Split,
    clips_per_action: usize,
    cfg: &GenConfig,
    seed: u64,
) -> Result<ClipDataset> {
    let mut rng = SplitMix64::new(
        seed ^ if split == Split::Train {
            0
        } else {
            0x5EED_7E57
        },
    );
    let mut clips = Vec::new();
    let mut labels = Vec::new();
    let mut point_labels = Vec::new();
    for action in 0..ACTIONS.len() {
        for _ in 0..clips_per_action {
            let mut tries = 0;
            let (clip, parts) = loop {
                let view = View::sample(split, &assets.motions[action], &mut rng);
                match render_clip(assets, action, &view, cfg, &mut rng) {
                    Ok(c) => break c,
                    Err(e) if tries >= 8 => return Err(e),
                    Err(_) => tries += 1,
                }
            };
            clips.extend(clip);
            labels.push(action as u32);
            point_labels.extend(parts);
        }
    }
    Ok(ClipDataset {
        clips,
        clips_shape: [labels.len(), cfg.frames, cfg.points, 3],
        labels: if cfg.body_part_labels {
            Labels::PerPoint(point_labels)
        } else {
            Labels::PerClip(labels)
        },
        ..Default::default()
    })
}
