//! 2D→3D concept distillation (reference-spec §7–§8): a frozen 2D teacher run through
//! tract-onnx gives each image's prefix embedding; a Point-MAE encoder with concept
//! queries learns to predict it from the paired point cloud.

pub mod batching;
pub mod cache;
pub mod classify;
pub mod distill;
pub mod objects;
pub mod pairs;
pub mod preprocess;

use std::path::Path;

use edge4d_runtime::models::ParamStore;
use edge4d_runtime::{Device, Result, TensorFile};

/// Loads every tensor of `path` that `params` has (ParamStore::load_matching) into
/// `params`: returns how many were loaded and the names left as initialised.
pub(crate) fn init_from(
    dev: &Device,
    params: &mut ParamStore,
    path: &Path,
) -> Result<(usize, Vec<String>)> {
    let file = TensorFile::open(path)?;
    let current = std::mem::replace(params, ParamStore::init(dev, Vec::new(), 0)?);
    let (loaded_params, loaded, fresh) = current.load_matching(dev, &file)?;
    *params = loaded_params;
    Ok((loaded, fresh))
}
pub mod teacher;
