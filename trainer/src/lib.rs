//! edge4d-trainer: optimizers with their state, training loops and small models
//! built from edge4d-runtime ops.

pub mod augment;
pub mod c2p;
pub mod cloud_io;
pub mod concept;
pub mod data;
pub mod dataset;
pub mod depth_io;
pub mod finetune;
pub mod hoi4d;
pub mod humanoid;
pub mod live;
pub mod metrics;
pub mod mlp;
pub mod msr;
pub mod npy;
pub mod optim;
pub mod pickle;
pub mod plot;
pub mod render;
pub mod rng;
pub mod run_dir;
pub mod schedule;
pub mod segmentation;
pub mod stream;
pub mod synthia;

/// An error naming the file `path` and what is wrong with it.
pub(crate) fn file_error(path: &std::path::Path, detail: String) -> edge4d_runtime::Error {
    edge4d_runtime::Error::TensorFile {
        path: path.display().to_string(),
        detail,
    }
}
