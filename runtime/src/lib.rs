//! edge4d-runtime: the device, tensors, and ops with forward and backward passes,
//! computed by hand-written WGSL kernels through wgpu on a GPU, or by their native Rust
//! twins on the CPU backend (`EDGE4D_BACKEND=cpu`, or `auto` without a GPU).
//!
//! ```no_run
//! use edge4d_runtime::{ops, Device};
//! let dev = Device::from_env()?;
//! let x = dev.upload(&[1.0, -2.0, 3.0, -4.0], &[2, 2])?;
//! let w = dev.upload(&[0.5, 0.0, 0.0, 0.5], &[2, 2])?;
//! let y = dev.run(|s| {
//!     let h = ops::matmul::matmul(s, &x, &w, None, false, true)?;
//!     ops::activation::relu(s, &h)
//! })?;
//! assert_eq!(dev.read(&y)?, vec![0.5, 0.0, 1.5, 0.0]);
//! # Ok::<(), edge4d_runtime::Error>(())
//! ```

mod backend;
pub mod cpu;
pub mod device;
pub mod error;
mod gpu;
pub mod models;
pub mod ops;
pub mod params;
pub mod pipeline_cache;
mod pool;
pub mod reference;
#[cfg(debug_assertions)]
mod reflect;
pub mod step;
pub mod tensor;
pub mod tensor_file;
mod transfer;

pub use backend::prepare_headless_env;
pub use device::{AdapterSummary, BackendChoice, Device, DeviceOptions};
pub use error::{Error, Result};
pub use step::Step;
pub use tensor::{DType, Tensor};
pub use tensor_file::{HostTensor, Stored, TensorFile};
