//! edge4d-trainer: optimizers with their state, training loops and small models
//! built from edge4d-runtime ops.
//!
//! Features (all on by default): `datasets` (the reference repositories' file formats,
//! PLY/PCD), `concept` (concept distillation with an ONNX teacher), `cli` (the
//! `stream` command). Without them the crate is the training and streaming core the C
//! library links: no tract, HDF5, zip or image decoding.

pub mod augment;
pub mod c2p;
pub mod checkpoint;
#[cfg(feature = "datasets")]
pub mod cloud_io;
#[cfg(feature = "concept")]
pub mod concept;
pub mod data;
pub mod dataset;
pub mod depth_io;
pub mod engine;
pub mod finetune;
#[cfg(feature = "datasets")]
pub mod hoi4d;
pub mod humanoid;
#[cfg(feature = "cli")]
pub mod live;
pub mod metrics;
pub mod mlp;
#[cfg(feature = "datasets")]
pub mod msr;
#[cfg(feature = "datasets")]
pub mod npy;
pub mod optim;
#[cfg(feature = "datasets")]
pub mod pickle;
#[cfg(feature = "plots")]
pub mod plot;
#[cfg(feature = "recordings")]
pub mod recording;
pub mod render;
pub mod rng;
pub mod run_dir;
pub mod schedule;
pub mod segmentation;
pub mod stream;
#[cfg(feature = "datasets")]
pub mod synthia;
pub mod tum;

/// An error naming the file `path` and what is wrong with it.
pub(crate) fn file_error(path: &std::path::Path, detail: String) -> edge4d_runtime::Error {
    edge4d_runtime::Error::TensorFile {
        path: path.display().to_string(),
        detail,
    }
}
