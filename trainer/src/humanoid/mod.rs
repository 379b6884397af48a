//! Human-motion point-cloud videos from real motion capture: DeepMimic clips played on
//! the pybullet humanoid's body (forward kinematics of its spheres, capsules and
//! boxes), watched by a virtual depth camera, back-projected like a real depth sensor.

pub mod body;
pub mod camera;
pub mod generate;
pub mod motion;
pub mod segments;
pub mod sequence;
