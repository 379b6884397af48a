//! Golden tests: every model, loss and checkpoint path against tensors from the
//! original PyTorch code (`tests/fixtures`, tolerances in its README), reference file
//! formats, configs and the C2P time-window variants.

#[path = "../common/mod.rs"]
mod common;

mod actionseg;
mod c2p_loss;
mod c2p_step;
mod c2p_windows;
mod checkpoint_roundtrip;
mod concept;
mod concept_teacher;
mod configs;
mod msr;
mod partial_view;
mod pointmae;
mod reference_formats;
mod synthia;
