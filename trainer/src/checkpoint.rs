//! Training checkpoints, one format for every task: the model's state_dict under
//! PyTorch's names, the optimizer's state under torch's (`optimizer.*`), and where the
//! run stands (`trainer.epoch`, `trainer.step`, `trainer.rng`), written atomically, so a
//! resumed run continues bitwise as if it had never stopped.

use std::collections::HashMap;
use std::path::Path;

use edge4d_runtime::models::ParamStore;
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Device, Error, Result, TensorFile};

use crate::optim::Optimizer;
use crate::rng::SplitMix64;

/// Where a run stands: completed epochs, optimizer steps taken, the data-order RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPosition {
    pub epoch: u64,
    pub step: u64,
    pub rng: SplitMix64,
}

/// Writes `params`, `opt`'s state and `position` to `path` atomically.
pub fn save(
    dev: &Device,
    path: &Path,
    params: &ParamStore,
    opt: &Optimizer,
    position: RunPosition,
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut tensors = params.stored(dev)?;
    tensors.extend(opt.save_state(dev)?);
    for (name, value) in [
        ("trainer.step", position.step),
        ("trainer.epoch", position.epoch),
        ("trainer.rng", position.rng.state()),
    ] {
        tensors.push((name.into(), Stored::I64(vec![value as i64], vec![])));
    }
    write_atomic(path, &tensors, metadata)
}

/// Restores what [`save`] wrote into `params` (same spec) and `opt`; returns the
/// position.
pub fn load(
    dev: &Device,
    path: &Path,
    params: &mut ParamStore,
    opt: &mut Optimizer,
) -> Result<RunPosition> {
    let f = TensorFile::open(path)?;
    *params = ParamStore::load(dev, params.spec().clone(), &f, "", true)?;
    let scalar = |name: &str| -> Result<u64> {
        let (v, _) = f.i64(name)?;
        v.first()
            .map(|&x| x as u64)
            .ok_or_else(|| Error::TensorFile {
                path: path.display().to_string(),
                detail: format!("{name} is empty"),
            })
    };
    opt.load_state(dev, &f)?;
    Ok(RunPosition {
        epoch: scalar("trainer.epoch")?,
        step: scalar("trainer.step")?,
        rng: SplitMix64::from_state(scalar("trainer.rng")?),
    })
}
