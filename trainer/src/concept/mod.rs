//! 2D→3D concept distillation (reference-spec §7–§8): a frozen 2D teacher run through
//! tract-onnx gives each image's prefix embedding; a Point-MAE encoder with concept
//! queries learns to predict it from the paired point cloud.

pub mod adamw;
pub mod cache;
pub mod classify;
pub mod distill;
pub mod objects;
pub mod pairs;
pub mod preprocess;
pub mod teacher;
