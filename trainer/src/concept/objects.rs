//! Synthetic RGB-D object scans: one coloured primitive (twelve classes: sphere, box,
//! cylinder, cone, torus, capsule, octahedron, hexagonal prism, wedge, pyramid,
//! ellipsoid, cross) of random size, proportions, pose and colour, seen by a pinhole
//! RGB-D camera, from one or several viewpoints. Colour and depth come from one
//! sphere-traced signed distance field, so image and points are pixel-aligned as a real
//! RGB-D frame's are. The object class is the label, for classification fine-tuning.

use glam::{Mat3, Vec3};

use crate::depth_io::DepthIntrinsics;
use crate::rng::SplitMix64;

/// Object classes, in label order.
pub const CLASSES: [&str; 12] = [
    "sphere",
    "box",
    "cylinder",
    "cone",
    "torus",
    "capsule",
    "octahedron",
    "hex_prism",
    "wedge",
    "pyramid",
    "ellipsoid",
    "cross",
];

/// Signed distance of an axis-aligned box of half-extents `s`.
fn sd_box(p: Vec3, s: Vec3) -> f32 {
    let q = p.abs() - s;
    q.max(Vec3::ZERO).length() + q.x.max(q.y.max(q.z)).min(0.0)
}

/// One rendered frame.
pub struct RgbdFrame {
    /// Row-major RGB, width × height × 3.
    pub rgb: Vec<u8>,
    /// Depth in millimetres, 0 where the ray missed.
    pub depth: Vec<u16>,
    pub intrinsics: DepthIntrinsics,
}

/// A camera of `side` × `side` pixels with a 60° field of view.
pub fn camera(side: usize) -> DepthIntrinsics {
    let f = side as f32 / 2.0 / (30f32.to_radians()).tan();
    DepthIntrinsics {
        width: side,
        height: side,
        fx: f,
        fy: f,
        cx: (side as f32 - 1.0) / 2.0,
        cy: (side as f32 - 1.0) / 2.0,
        depth_scale: 0.001,
    }
}

struct Object {
    class: usize,
    size: Vec3,
    rotation: Mat3,
    centre: Vec3,
    colour: Vec3,
}

impl Object {
    /// Signed distance in the object's frame (unit-ish shapes scaled by `size`).
    fn sdf(&self, world: Vec3) -> f32 {
        let p = self.rotation.transpose() * (world - self.centre);
        let s = self.size;
        match self.class {
            0 => p.length() - s.x,
            1 => {
                let q = p.abs() - s;
                q.max(Vec3::ZERO).length() + q.x.max(q.y.max(q.z)).min(0.0)
            }
            2 => {
                let d = glam::Vec2::new(glam::Vec2::new(p.x, p.z).length() - s.x, p.y.abs() - s.y);
                d.x.max(d.y).min(0.0) + d.max(glam::Vec2::ZERO).length()
            }
            3 => {
                // Cone along y from base (−h) to apex (+h), base radius r.
                let (r, h) = (s.x, s.y);
                let q = glam::Vec2::new(glam::Vec2::new(p.x, p.z).length(), p.y + h);
                let k = glam::Vec2::new(-r, 2.0 * h);
                let apex = glam::Vec2::new(0.0, 2.0 * h);
                let t = ((q - apex).dot(k) / k.length_squared()).clamp(0.0, 1.0);
                let side = q - apex - k * t;
                let base = glam::Vec2::new(q.x - q.x.min(r), q.y);
                let inside = q.y > 0.0 && q.y < 2.0 * h && q.x < r * (1.0 - q.y / (2.0 * h));
                let d = side.length().min(base.length());
                if inside {
                    -d.min(q.y)
                } else {
                    d
                }
            }
            4 => {
                let q = glam::Vec2::new(glam::Vec2::new(p.x, p.z).length() - s.x, p.y);
                q.length() - s.z
            }
            5 => {
                let y = p.y.clamp(-s.y, s.y);
                (p - Vec3::new(0.0, y, 0.0)).length() - s.x
            }
            // The bounds below never overestimate the distance, so sphere tracing stays
            // on the surface.
            6 => (p.x.abs() + p.y.abs() + p.z.abs() - s.x) * 0.577_350_3,
            7 => {
                // Hexagonal prism along z, apothem s.x, half-length s.y.
                let q = p.abs();
                let across = (q.x * 0.866_025_4 + q.y * 0.5).max(q.y);
                (across - s.x).max(q.z - s.y)
            }
            8 => {
                // Triangular prism along z: triangle of size s.x, half-length s.y.
                let q = p.abs();
                (q.z - s.y).max((q.x * 0.866_025_4 + p.y * 0.5).max(-p.y) - s.x * 0.5)
            }
            9 => {
                // Square pyramid: base half-width s.x at y = −s.y, apex at y = +s.y.
                let slope = s.x / (2.0 * s.y);
                let norm = (1.0 + slope * slope).sqrt();
                let side = (p.x.abs().max(p.z.abs()) + slope * (p.y - s.y)) / norm;
                side.max(-p.y - s.y)
            }
            10 => {
                let k0 = (p / s).length();
                let k1 = (p / (s * s)).length();
                k0 * (k0 - 1.0) / k1.max(1e-6)
            }
            _ => {
                // Three bars of half-length s.x and half-width s.y, crossing.
                let (a, b) = (s.x, s.y);
                sd_box(p, Vec3::new(a, b, b))
                    .min(sd_box(p, Vec3::new(b, a, b)))
                    .min(sd_box(p, Vec3::new(b, b, a)))
            }
        }
    }

    fn normal(&self, p: Vec3) -> Vec3 {
        let e = 1e-3;
        Vec3::new(
            self.sdf(p + Vec3::X * e) - self.sdf(p - Vec3::X * e),
            self.sdf(p + Vec3::Y * e) - self.sdf(p - Vec3::Y * e),
            self.sdf(p + Vec3::Z * e) - self.sdf(p - Vec3::Z * e),
        )
        .normalize_or_zero()
    }
}

fn random_rotation(rng: &mut SplitMix64) -> Mat3 {
    let axis = Vec3::new(rng.normal(), rng.normal(), rng.normal()).normalize_or(Vec3::Y);
    Mat3::from_axis_angle(axis, rng.uniform(0.0, std::f32::consts::TAU))
}

fn random_object(class: usize, rng: &mut SplitMix64) -> Object {
    let mut u = |lo: f32, hi: f32| rng.uniform(lo, hi);
    let size = match class {
        0 => Vec3::splat(u(0.15, 0.25)),
        1 => Vec3::new(u(0.08, 0.22), u(0.08, 0.22), u(0.08, 0.22)),
        2 => Vec3::new(u(0.07, 0.15), u(0.12, 0.25), 0.0),
        3 => Vec3::new(u(0.10, 0.18), u(0.10, 0.20), 0.0),
        4 => Vec3::new(u(0.13, 0.2), 0.0, u(0.035, 0.07)),
        5 => Vec3::new(u(0.06, 0.1), u(0.08, 0.16), 0.0),
        6 => Vec3::splat(u(0.18, 0.28)),
        7 => Vec3::new(u(0.1, 0.16), u(0.06, 0.2), 0.0),
        8 => Vec3::new(u(0.25, 0.4), u(0.06, 0.2), 0.0),
        9 => Vec3::new(u(0.12, 0.2), u(0.1, 0.18), 0.0),
        10 => Vec3::new(u(0.2, 0.28), u(0.08, 0.13), u(0.1, 0.16)),
        _ => Vec3::new(u(0.15, 0.24), u(0.03, 0.06), 0.0),
    };
    let centre = Vec3::new(u(-0.05, 0.05), u(-0.05, 0.05), u(0.75, 0.95));
    let colour = Vec3::new(u(0.15, 1.0), u(0.15, 1.0), u(0.15, 1.0));
    Object {
        class,
        size,
        rotation: random_rotation(rng),
        centre,
        colour,
    }
}

/// Renders one object of `class` (index into `CLASSES`) on a `side`-pixel camera.
pub fn render(class: usize, side: usize, rng: &mut SplitMix64) -> RgbdFrame {
    render_views(class, side, 1, rng).remove(0)
}

/// One random object of `class` seen from `views` viewpoints: the first as drawn, each
/// further one with the object turned to a new random orientation (same shape, size
/// and colour) in front of a new background.
pub fn render_views(
    class: usize,
    side: usize,
    views: usize,
    rng: &mut SplitMix64,
) -> Vec<RgbdFrame> {
    let mut obj = random_object(class % CLASSES.len(), rng);
    let mut frames = Vec::with_capacity(views.max(1));
    for view in 0..views.max(1) {
        if view > 0 {
            obj.rotation = random_rotation(rng);
        }
        frames.push(render_object(&obj, side, rng));
    }
    frames
}

fn render_object(obj: &Object, side: usize, rng: &mut SplitMix64) -> RgbdFrame {
    let cam = camera(side);
    let light = Vec3::new(-0.4, -0.7, -0.6).normalize();
    let background = [
        rng.uniform(0.0, 0.25),
        rng.uniform(0.0, 0.25),
        rng.uniform(0.0, 0.25),
    ];
    let mut rgb = Vec::with_capacity(side * side * 3);
    let mut depth = Vec::with_capacity(side * side);
    for v in 0..side {
        for u in 0..side {
            let dir = Vec3::new(
                (u as f32 - cam.cx) / cam.fx,
                (v as f32 - cam.cy) / cam.fy,
                1.0,
            );
            let ray = dir.normalize();
            let mut t = 0.3;
            let mut hit = None;
            for _ in 0..96 {
                let p = ray * t;
                let d = obj.sdf(p);
                if d < 1e-4 {
                    hit = Some(p);
                    break;
                }
                t += d;
                if t > 2.0 {
                    break;
                }
            }
            match hit {
                Some(p) => {
                    let shade = 0.25 + 0.75 * obj.normal(p).dot(-light).max(0.0);
                    let c = obj.colour * shade;
                    rgb.extend([c.x, c.y, c.z].map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8));
                    depth.push((p.z * 1000.0).round() as u16);
                }
                None => {
                    let fade = 1.0 - 0.5 * v as f32 / side as f32;
                    rgb.extend(background.map(|x| (x * fade * 255.0).round() as u8));
                    depth.push(0);
                }
            }
        }
    }
    RgbdFrame {
        rgb,
        depth,
        intrinsics: cam,
    }
}
