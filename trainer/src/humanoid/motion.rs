//! DeepMimic motion clips: per frame a duration, the root position and rotation, and
//! the 12 joint rotations of the humanoid (Y up, quaternions w first).

use glam::{Quat, Vec3};

use edge4d_runtime::{Error, Result};

/// The DeepMimic joints after the root, in file order, and whether each is a 1-DoF
/// revolute joint (knees, elbows: one angle) or spherical (a quaternion).
pub const JOINTS: [(&str, bool); 12] = [
    ("chest", false),
    ("neck", false),
    ("right_hip", false),
    ("right_knee", true),
    ("right_ankle", false),
    ("right_shoulder", false),
    ("right_elbow", true),
    ("left_hip", false),
    ("left_knee", true),
    ("left_ankle", false),
    ("left_shoulder", false),
    ("left_elbow", true),
];

/// One pose: root placement and each joint's local rotation (revolute joints as a
/// rotation about their axis, local z).
#[derive(Debug, Clone, PartialEq)]
pub struct Pose {
    pub root_pos: Vec3,
    pub root_rot: Quat,
    pub joints: [Quat; 12],
}

impl Pose {
    /// The pose `w` of the way from `self` to `other` (positions linearly, rotations by
    /// slerp): 0 gives `self`, 1 gives `other`.
    pub fn blend(&self, other: &Pose, w: f32) -> Pose {
        let mut joints = self.joints;
        for (j, o) in joints.iter_mut().zip(&other.joints) {
            *j = j.slerp(*o, w);
        }
        Pose {
            root_pos: self.root_pos.lerp(other.root_pos, w),
            root_rot: self.root_rot.slerp(other.root_rot, w),
            joints,
        }
    }
}

/// A motion clip.
#[derive(Debug, Clone)]
pub struct Motion {
    pub name: String,
    pub poses: Vec<Pose>,
    /// Start time of each pose (seconds).
    pub times: Vec<f32>,
    pub looping: bool,
}

fn quat_wxyz(v: &[f32]) -> Quat {
    Quat::from_xyzw(v[1], v[2], v[3], v[0]).normalize()
}

impl Motion {
    /// Parses a DeepMimic JSON clip (`{"Loop": ..., "Frames": [[dt, ...44 values], ...]}`).
    pub fn parse(name: &str, text: &str) -> Result<Self> {
        let err = |detail: String| Error::TensorFile {
            path: name.to_string(),
            detail,
        };
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| err(format!("not a DeepMimic JSON clip: {e}")))?;
        let frames = v["Frames"]
            .as_array()
            .ok_or_else(|| err("has no \"Frames\" array".into()))?;
        if frames.is_empty() {
            return Err(err("has no frames".into()));
        }
        let mut poses = Vec::with_capacity(frames.len());
        let mut times = Vec::with_capacity(frames.len());
        let mut t = 0.0f32;
        for (i, f) in frames.iter().enumerate() {
            let vals: Vec<f32> = f
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_f64())
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default();
            if vals.len() != 44 || vals.iter().any(|x| !x.is_finite()) {
                return Err(err(format!(
                    "frame {i} has {} finite numbers, expected 44",
                    vals.len()
                )));
            }
            let mut joints = [Quat::IDENTITY; 12];
            let mut at = 8;
            for (j, (_, revolute)) in JOINTS.iter().enumerate() {
                if *revolute {
                    joints[j] = Quat::from_rotation_z(vals[at]);
                    at += 1;
                } else {
                    joints[j] = quat_wxyz(&vals[at..at + 4]);
                    at += 4;
                }
            }
            poses.push(Pose {
                root_pos: Vec3::new(vals[1], vals[2], vals[3]),
                root_rot: quat_wxyz(&vals[4..8]),
                joints,
            });
            times.push(t);
            t += vals[0];
        }
        Ok(Self {
            name: name.to_string(),
            poses,
            times,
            looping: v["Loop"].as_str() == Some("wrap"),
        })
    }

    /// Time of the last pose (seconds).
    pub fn duration(&self) -> f32 {
        *self.times.last().unwrap_or(&0.0)
    }

    /// The pose at time `t`, interpolated between key poses (positions linearly,
    /// rotations by slerp). Looping clips wrap, carrying the root's horizontal travel
    /// over from cycle to cycle (a walk keeps walking); others hold their last pose.
    pub fn pose_at(&self, t: f32) -> Pose {
        let d = self.duration();
        let (t, cycles) = if d <= 0.0 {
            (0.0, 0.0)
        } else if self.looping {
            (t.rem_euclid(d), (t / d).floor())
        } else {
            (t.clamp(0.0, d), 0.0)
        };
        let travel = {
            let v = self.poses[self.poses.len() - 1].root_pos - self.poses[0].root_pos;
            Vec3::new(v.x, 0.0, v.z) * cycles
        };
        let i = self
            .times
            .partition_point(|&x| x <= t)
            .saturating_sub(1)
            .min(self.poses.len() - 1);
        let j = (i + 1).min(self.poses.len() - 1);
        let span = self.times[j] - self.times[i];
        let a = if span > 0.0 {
            ((t - self.times[i]) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (p, q) = (&self.poses[i], &self.poses[j]);
        let mut joints = [Quat::IDENTITY; 12];
        for k in 0..12 {
            joints[k] = p.joints[k].slerp(q.joints[k], a);
        }
        Pose {
            root_pos: p.root_pos.lerp(q.root_pos, a) + travel,
            root_rot: p.root_rot.slerp(q.root_rot, a),
            joints,
        }
    }
}
