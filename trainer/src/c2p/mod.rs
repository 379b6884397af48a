//! C2P: complete-to-partial 4D distillation (reference-spec §5).

pub mod loss;
pub mod model;
pub mod teacher;
