//! Typed errors for everything the runtime can refuse or fail at.

use thiserror::Error;

/// Every fallible runtime call returns this.
#[derive(Debug, Error)]
pub enum Error {
    /// No adapter could be opened; `tried` lists each attempt and why it failed.
    #[error("no usable GPU adapter (EDGE4D_BACKEND={requested}).\nTried:\n{}\nHow to fix: {hint}", tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    NoAdapter {
        requested: String,
        tried: Vec<String>,
        hint: String,
    },

    /// `EDGE4D_BACKEND` (or a backend option) named something unknown.
    #[error("unknown backend {0:?}: expected one of auto, vulkan, metal, dx12, gl, cpu")]
    UnknownBackend(String),

    /// Operand shapes do not fit the op.
    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },

    /// An operand has no elements.
    #[error("{op}: {what} is empty (shape {shape:?})")]
    Empty {
        op: &'static str,
        what: &'static str,
        shape: Vec<usize>,
    },

    /// Host data given to the runtime holds NaN or infinity.
    #[error("{op}: {what} holds a non-finite value ({value}) at index {index}")]
    NonFinite {
        op: &'static str,
        what: &'static str,
        index: usize,
        value: f32,
    },

    /// An argument is out of its valid range.
    #[error("{op}: invalid argument: {detail}")]
    InvalidArgument { op: &'static str, detail: String },

    /// An operand has the wrong element type.
    #[error("{op}: {what} must be {expected:?}, got {got:?}")]
    DType {
        op: &'static str,
        what: &'static str,
        expected: crate::DType,
        got: crate::DType,
    },

    /// A tensor is larger than one binding may be on this device.
    #[error("{op}: {what} needs {bytes} bytes, above this device's {limit}-byte binding limit")]
    TooLarge {
        op: &'static str,
        what: &'static str,
        bytes: u64,
        limit: u64,
    },

    /// A tensor file (safetensors checkpoint, input or fixture) could not be used.
    #[error("{path}: {detail}")]
    TensorFile { path: String, detail: String },

    /// A model configuration is invalid.
    #[error("config {path}: {detail}")]
    Config { path: String, detail: String },

    /// The device reported an error (validation, out of memory, lost device).
    #[error("GPU device error: {0}")]
    Device(String),
}

/// Runtime result type.
pub type Result<T> = std::result::Result<T, Error>;
