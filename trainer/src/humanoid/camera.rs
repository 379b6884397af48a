//! A virtual depth camera: pinhole intrinsics, a pose looking at the subject, exact ray
//! casting against the posed body, a depth-noise model, 16-bit millimetre depth, and
//! back-projection to a single-view point cloud as MSR-Action3D's preprocessing does it
//! (`x = (u − W/2)/f·z`, `y = (v − H/2)/f·z`, `z` = depth in mm).

use glam::{Affine3A, Vec3};

use super::body::{ray_hit, Shape};
use crate::rng::SplitMix64;

/// Intrinsics and image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intrinsics {
    pub width: usize,
    pub height: usize,
    /// Focal length in pixels (square pixels).
    pub focal: f32,
}

impl Intrinsics {
    /// The same camera as general pinhole intrinsics: principal point at the image
    /// centre (MSR-Action3D's convention), millimetre depth.
    pub fn depth_intrinsics(self) -> crate::depth_io::DepthIntrinsics {
        crate::depth_io::DepthIntrinsics {
            width: self.width,
            height: self.height,
            fx: self.focal,
            fy: self.focal,
            cx: self.width as f32 / 2.0,
            cy: self.height as f32 / 2.0,
            depth_scale: 0.001,
        }
    }

    /// MSR-Action3D's depth camera at half resolution: 160×120, f = 140 px
    /// (the dataset's 320×240 at f = 280).
    pub const MSR_HALF: Self = Self {
        width: 160,
        height: 120,
        focal: 140.0,
    };
}

/// Depth noise: Gaussian with σ(z) = a + b·(z − 0.4 m)² (the Kinect v1 axial model of
/// Nguyen et al. 2012), then quantised to millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthNoise {
    pub a: f32,
    pub b: f32,
}

impl DepthNoise {
    pub const KINECT: Self = Self {
        a: 0.0012,
        b: 0.0019,
    };
    pub const NONE: Self = Self { a: 0.0, b: 0.0 };
}

/// The hit index of a pixel that sees nothing.
pub const NO_HIT: u32 = u32::MAX;

/// A camera at `eye` looking at `target` with world up +Y (image x right, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthCamera {
    pub intrinsics: Intrinsics,
    pub eye: Vec3,
    pub target: Vec3,
    pub noise: DepthNoise,
}

impl DepthCamera {
    /// (right, down, forward) unit axes of the camera in the world.
    pub fn axes(&self) -> (Vec3, Vec3, Vec3) {
        let forward = (self.target - self.eye).normalize();
        let right = forward.cross(Vec3::Y).normalize();
        let down = forward.cross(right);
        (right, down, forward)
    }

    /// Renders a depth image in millimetres (0 = no return), row-major (height, width).
    pub fn render(&self, shapes: &[(Shape, Affine3A)], rng: &mut SplitMix64) -> Vec<u16> {
        self.render_with_hits(shapes, rng).0
    }

    /// [`Self::render`], plus the index into `shapes` of the surface each pixel sees
    /// ([`NO_HIT`] where none).
    pub fn render_with_hits(
        &self,
        shapes: &[(Shape, Affine3A)],
        rng: &mut SplitMix64,
    ) -> (Vec<u16>, Vec<u32>) {
        let Intrinsics {
            width,
            height,
            focal,
        } = self.intrinsics;
        let (right, down, forward) = self.axes();
        // Shapes in a form cheap to test: inverse placement and a bounding sphere.
        let prepared: Vec<(Shape, Affine3A, Vec3, f32)> = shapes
            .iter()
            .map(|(s, w)| {
                let bound = match *s {
                    Shape::Sphere { radius } => radius,
                    Shape::Capsule {
                        radius,
                        half_length,
                    } => radius + half_length,
                    Shape::Box { half } => half.length(),
                };
                (*s, w.inverse(), w.translation.into(), bound)
            })
            .collect();
        let mut depth = vec![0u16; width * height];
        let mut hits = vec![NO_HIT; width * height];
        for v in 0..height {
            for u in 0..width {
                let x = (u as f32 - width as f32 / 2.0) / focal;
                let y = (v as f32 - height as f32 / 2.0) / focal;
                let dir = (right * x + down * y + forward).normalize();
                let (mut best, mut best_shape) = (f32::INFINITY, NO_HIT);
                for (index, (shape, inv, centre, bound)) in prepared.iter().enumerate() {
                    let oc = self.eye - *centre;
                    let b = oc.dot(dir);
                    if b * b - (oc.length_squared() - bound * bound) < 0.0 {
                        continue;
                    }
                    let o = inv.transform_point3(self.eye);
                    let d = inv.transform_vector3(dir);
                    if let Some(t) = ray_hit(shape, o, d).filter(|&t| t < best) {
                        best = t;
                        best_shape = index as u32;
                    }
                }
                if best.is_finite() {
                    let z = best * dir.dot(forward);
                    let sigma = self.noise.a + self.noise.b * (z - 0.4) * (z - 0.4);
                    let z = z + sigma * if sigma > 0.0 { rng.normal() } else { 0.0 };
                    depth[v * width + u] = (z * 1000.0).round().clamp(1.0, u16::MAX as f32) as u16;
                    hits[v * width + u] = best_shape;
                }
            }
        }
        (depth, hits)
    }
}

/// Back-projects a depth image (mm) to points (x, y, z) in mm in the camera frame,
/// MSR-Action3D's way; pixels without depth are skipped.
pub fn back_project(depth: &[u16], intrinsics: Intrinsics) -> Vec<[f32; 3]> {
    let Intrinsics {
        width,
        height,
        focal,
    } = intrinsics;
    let mut pts = Vec::new();
    for v in 0..height {
        for u in 0..width {
            let z = depth[v * width + u] as f32;
            if z > 0.0 {
                pts.push([
                    (u as f32 - width as f32 / 2.0) / focal * z,
                    (v as f32 - height as f32 / 2.0) / focal * z,
                    z,
                ]);
            }
        }
    }
    pts
}
