//! The humanoid's body from its URDF: a tree of links with joint offsets and collision
//! shapes (spheres, capsules, boxes), posed by forward kinematics and intersected with
//! rays by the depth camera.

use glam::{Affine3A, Quat, Vec3};

use super::motion::{Pose, JOINTS};
use edge4d_runtime::{Error, Result};

/// The pybullet environment loads the humanoid URDF with globalScaling 0.25, which is
/// the scale the mocap root trajectories are in (metres).
pub const URDF_SCALE: f32 = 0.25;

/// A collision primitive in its shape frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Sphere {
        radius: f32,
    },
    /// Along the shape frame's z axis: `half_length` from the centre to each cap centre.
    Capsule {
        radius: f32,
        half_length: f32,
    },
    Box {
        half: Vec3,
    },
}

#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub parent: Option<usize>,
    /// Joint origin in the parent link's frame.
    pub joint_origin: Vec3,
    /// Index into the pose's joint rotations, if the joint moves.
    pub pose_joint: Option<usize>,
    pub shapes: Vec<(Shape, Affine3A)>,
}

/// The skeleton, scaled to metres.
#[derive(Debug, Clone)]
pub struct Body {
    pub links: Vec<Link>,
}

/// Body parts for per-point labels, in label order.
pub const BODY_PARTS: [&str; 6] = [
    "torso",
    "head",
    "right arm",
    "left arm",
    "right leg",
    "left leg",
];

/// The body part (index into [`BODY_PARTS`]) a humanoid.urdf link belongs to.
pub fn body_part(link: &str) -> u32 {
    let side = |right: u32| {
        if link.starts_with("left_") {
            right + 1
        } else {
            right
        }
    };
    match link {
        "neck" => 1,
        l if l.ends_with("_shoulder") || l.ends_with("_elbow") || l.ends_with("_wrist") => side(2),
        l if l.ends_with("_hip") || l.ends_with("_knee") || l.ends_with("_ankle") => side(4),
        _ => 0,
    }
}

impl Body {
    /// The body part of every shape, in [`Body::posed_shapes`] order.
    pub fn shape_parts(&self) -> Vec<u32> {
        self.links
            .iter()
            .flat_map(|l| std::iter::repeat_n(body_part(&l.name), l.shapes.len()))
            .collect()
    }
}

fn floats(s: &str) -> Vec<f32> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn vec3(node: Option<roxmltree::Node<'_, '_>>, attr: &str) -> Vec3 {
    node.and_then(|n| n.attribute(attr))
        .map(floats)
        .filter(|v| v.len() == 3)
        .map(|v| Vec3::new(v[0], v[1], v[2]))
        .unwrap_or(Vec3::ZERO)
}

impl Body {
    /// Parses the humanoid URDF (`origin`, `sphere`, `capsule`, `box` as pybullet writes them).
    pub fn from_urdf(name: &str, text: &str) -> Result<Self> {
        let err = |detail: String| Error::TensorFile {
            path: name.to_string(),
            detail,
        };
        let doc = roxmltree::Document::parse(text)
            .map_err(|e| err(format!("not a URDF document: {e}")))?;
        let mut links: Vec<Link> = Vec::new();
        for l in doc.descendants().filter(|n| n.has_tag_name("link")) {
            let mut shapes = Vec::new();
            for c in l.children().filter(|n| n.has_tag_name("collision")) {
                let origin = c.children().find(|n| n.has_tag_name("origin"));
                let xyz = vec3(origin, "xyz") * URDF_SCALE;
                let rpy = vec3(origin, "rpy");
                let rot = Quat::from_rotation_z(rpy.z)
                    * Quat::from_rotation_y(rpy.y)
                    * Quat::from_rotation_x(rpy.x);
                let placement = Affine3A::from_rotation_translation(rot, xyz);
                let g = c.descendants().find(|n| n.has_tag_name("geometry"));
                let shape = g
                    .and_then(|g| g.children().find(|n| n.is_element()))
                    .and_then(|s| {
                        let f = |a: &str| s.attribute(a).and_then(|v| v.trim().parse::<f32>().ok());
                        match s.tag_name().name() {
                            "sphere" => Some(Shape::Sphere {
                                radius: f("radius")? * URDF_SCALE,
                            }),
                            "capsule" => Some(Shape::Capsule {
                                radius: f("radius")? * URDF_SCALE,
                                half_length: f("length")? * 0.5 * URDF_SCALE,
                            }),
                            "box" => {
                                let v = floats(s.attribute("size")?);
                                (v.len() == 3).then(|| Shape::Box {
                                    half: Vec3::new(v[0], v[1], v[2]) * 0.5 * URDF_SCALE,
                                })
                            }
                            _ => None,
                        }
                    });
                if let Some(shape) = shape {
                    shapes.push((shape, placement));
                }
            }
            links.push(Link {
                name: l.attribute("name").unwrap_or("").to_string(),
                parent: None,
                joint_origin: Vec3::ZERO,
                pose_joint: None,
                shapes,
            });
        }
        for j in doc.descendants().filter(|n| n.has_tag_name("joint")) {
            let child = j
                .children()
                .find(|n| n.has_tag_name("child"))
                .and_then(|n| n.attribute("link"));
            let parent = j
                .children()
                .find(|n| n.has_tag_name("parent"))
                .and_then(|n| n.attribute("link"));
            let (Some(child), Some(parent)) = (child, parent) else {
                return Err(err(format!(
                    "joint {:?} lacks a parent or child",
                    j.attribute("name")
                )));
            };
            let ci = links
                .iter()
                .position(|l| l.name == child)
                .ok_or_else(|| err(format!("unknown link {child}")))?;
            let pi = links
                .iter()
                .position(|l| l.name == parent)
                .ok_or_else(|| err(format!("unknown link {parent}")))?;
            links[ci].parent = Some(pi);
            links[ci].joint_origin =
                vec3(j.children().find(|n| n.has_tag_name("origin")), "xyz") * URDF_SCALE;
            let jname = j.attribute("name").unwrap_or("");
            links[ci].pose_joint = JOINTS.iter().position(|(n, _)| *n == jname);
        }
        // Parents must come first for forward kinematics.
        for (i, l) in links.iter().enumerate() {
            if let Some(p) = l.parent {
                if p >= i {
                    return Err(err(format!("link {} is listed before its parent", l.name)));
                }
            }
        }
        for (name, _) in JOINTS {
            if !links
                .iter()
                .any(|l| l.pose_joint.is_some() && l.name == name)
            {
                return Err(err(format!(
                    "has no joint named {name} for the motion clips"
                )));
            }
        }
        Ok(Self { links })
    }

    /// World transform of every link for `pose`, with the whole body (and its root
    /// trajectory) scaled by `scale`.
    pub fn forward_kinematics(&self, pose: &Pose, scale: f32) -> Vec<Affine3A> {
        let mut world: Vec<Affine3A> = Vec::with_capacity(self.links.len());
        for l in &self.links {
            let t = match l.parent {
                None => Affine3A::IDENTITY,
                Some(p) => {
                    let rot = l.pose_joint.map_or(Quat::IDENTITY, |j| pose.joints[j]);
                    world[p] * Affine3A::from_rotation_translation(rot, l.joint_origin * scale)
                }
            };
            // The root link carries the mocap's root placement.
            let t = if l.name == "root" {
                Affine3A::from_rotation_translation(pose.root_rot, pose.root_pos * scale)
            } else {
                t
            };
            world.push(t);
        }
        world
    }

    /// Every shape placed in the world for `pose`: (shape scaled, world-from-shape).
    pub fn posed_shapes(&self, pose: &Pose, scale: f32) -> Vec<(Shape, Affine3A)> {
        let world = self.forward_kinematics(pose, scale);
        let mut out = Vec::new();
        for (l, w) in self.links.iter().zip(&world) {
            for (shape, local) in &l.shapes {
                let (_, rot, trans) = local.to_scale_rotation_translation();
                let local = Affine3A::from_rotation_translation(rot, trans * scale);
                let s = match *shape {
                    Shape::Sphere { radius } => Shape::Sphere {
                        radius: radius * scale,
                    },
                    Shape::Capsule {
                        radius,
                        half_length,
                    } => Shape::Capsule {
                        radius: radius * scale,
                        half_length: half_length * scale,
                    },
                    Shape::Box { half } => Shape::Box { half: half * scale },
                };
                out.push((s, *w * local));
            }
        }
        out
    }
}

/// Distance along a unit ray (origin `o`, direction `d`, both in the shape frame) to
/// the shape's surface, if it is hit in front of the origin.
pub fn ray_hit(shape: &Shape, o: Vec3, d: Vec3) -> Option<f32> {
    match *shape {
        Shape::Sphere { radius } => ray_sphere(o, d, Vec3::ZERO, radius),
        Shape::Capsule {
            radius,
            half_length,
        } => {
            let mut best = f32::INFINITY;
            // The side: |xy| = r with |z| <= half_length.
            let a = d.x * d.x + d.y * d.y;
            if a > 1e-12 {
                let b = o.x * d.x + o.y * d.y;
                let c = o.x * o.x + o.y * o.y - radius * radius;
                let disc = b * b - a * c;
                if disc >= 0.0 {
                    let t = (-b - disc.sqrt()) / a;
                    if t > 0.0 && (o.z + t * d.z).abs() <= half_length {
                        best = t;
                    }
                }
            }
            for cap in [-half_length, half_length] {
                if let Some(t) = ray_sphere(o, d, Vec3::new(0.0, 0.0, cap), radius) {
                    best = best.min(t);
                }
            }
            best.is_finite().then_some(best)
        }
        Shape::Box { half } => {
            let (mut t0, mut t1) = (f32::NEG_INFINITY, f32::INFINITY);
            for k in 0..3 {
                let (ok, dk, hk) = (o[k], d[k], half[k]);
                if dk.abs() < 1e-12 {
                    if ok.abs() > hk {
                        return None;
                    }
                } else {
                    let (a, b) = ((-hk - ok) / dk, (hk - ok) / dk);
                    t0 = t0.max(a.min(b));
                    t1 = t1.min(a.max(b));
                }
            }
            (t0 <= t1 && t0 > 0.0).then_some(t0)
        }
    }
}

fn ray_sphere(o: Vec3, d: Vec3, c: Vec3, r: f32) -> Option<f32> {
    let oc = o - c;
    let b = oc.dot(d);
    let disc = b * b - (oc.length_squared() - r * r);
    if disc < 0.0 {
        return None;
    }
    let t = -b - disc.sqrt();
    (t > 0.0).then_some(t)
}

/// A point fixed on the body's surface: (shape index in `posed_shapes` order, point in
/// the shape's frame at unit body scale). Sampled once, placed in every pose, so each
/// point keeps its identity across frames (complete, non-occluded clouds).
pub type SurfacePoint = (usize, Vec3);

fn shape_area(s: &Shape) -> f32 {
    use std::f32::consts::PI;
    match *s {
        Shape::Sphere { radius } => 4.0 * PI * radius * radius,
        Shape::Capsule {
            radius,
            half_length,
        } => 4.0 * PI * radius * radius + 2.0 * PI * radius * 2.0 * half_length,
        Shape::Box { half } => 8.0 * (half.x * half.y + half.y * half.z + half.x * half.z),
    }
}

fn unit_direction(rng: &mut crate::rng::SplitMix64) -> Vec3 {
    let z = rng.uniform(-1.0, 1.0);
    let phi = rng.uniform(0.0, std::f32::consts::TAU);
    let r = (1.0 - z * z).max(0.0).sqrt();
    Vec3::new(r * phi.cos(), r * phi.sin(), z)
}

impl Body {
    /// `n` points uniformly distributed over the body's surface (area-weighted over its
    /// shapes; overlapping shapes are not clipped against each other).
    pub fn sample_surface(&self, n: usize, rng: &mut crate::rng::SplitMix64) -> Vec<SurfacePoint> {
        let shapes: Vec<Shape> = self
            .links
            .iter()
            .flat_map(|l| l.shapes.iter().map(|(s, _)| *s))
            .collect();
        let areas: Vec<f32> = shapes.iter().map(shape_area).collect();
        let total: f32 = areas.iter().sum();
        (0..n)
            .map(|_| {
                let mut pick = rng.uniform(0.0, total);
                let mut i = 0;
                while i + 1 < areas.len() && pick >= areas[i] {
                    pick -= areas[i];
                    i += 1;
                }
                let p = match shapes[i] {
                    Shape::Sphere { radius } => unit_direction(rng) * radius,
                    Shape::Capsule {
                        radius,
                        half_length,
                    } => {
                        let side = 2.0 * std::f32::consts::PI * radius * 2.0 * half_length;
                        if rng.uniform(0.0, shape_area(&shapes[i])) < side {
                            let a = rng.uniform(0.0, std::f32::consts::TAU);
                            Vec3::new(
                                radius * a.cos(),
                                radius * a.sin(),
                                rng.uniform(-half_length, half_length),
                            )
                        } else {
                            let d = unit_direction(rng);
                            d * radius + Vec3::new(0.0, 0.0, half_length.copysign(d.z))
                        }
                    }
                    Shape::Box { half } => {
                        let faces = [half.y * half.z, half.x * half.z, half.x * half.y];
                        let mut f = rng.uniform(0.0, faces.iter().sum());
                        let mut axis = 0;
                        while axis < 2 && f >= faces[axis] {
                            f -= faces[axis];
                            axis += 1;
                        }
                        let mut q = Vec3::new(
                            rng.uniform(-half.x, half.x),
                            rng.uniform(-half.y, half.y),
                            rng.uniform(-half.z, half.z),
                        );
                        q[axis] = if rng.next_u64() & 1 == 0 {
                            half[axis]
                        } else {
                            -half[axis]
                        };
                        q
                    }
                };
                (i, p)
            })
            .collect()
    }

    /// World positions of surface points in `pose`, for a body of `scale`.
    pub fn place(&self, points: &[SurfacePoint], pose: &Pose, scale: f32) -> Vec<Vec3> {
        let posed = self.posed_shapes(pose, scale);
        points
            .iter()
            .map(|&(i, p)| posed[i].1.transform_point3(p * scale))
            .collect()
    }
}
