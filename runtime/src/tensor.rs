//! GPU tensors: a pooled buffer, a shape and an element type.

use std::sync::Arc;

use crate::pool::PooledBuffer;
use crate::{Error, Result};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    /// Indices and labels.
    U32,
}

/// A dense, row-major tensor in GPU memory. Cloning shares the buffer.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) buf: Arc<PooledBuffer>,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.dtype, self.shape)
    }
}

impl Tensor {
    pub(crate) fn from_parts(buf: Arc<PooledBuffer>, shape: Vec<usize>, dtype: DType) -> Self {
        Self { buf, shape, dtype }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
    }

    /// Size in bytes (4 per element).
    pub fn bytes(&self) -> u64 {
        (self.numel() as u64).saturating_mul(4)
    }

    /// The same data under another shape with the same element count (no copy).
    /// Its backward is a reshape of the gradient back to this shape.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::Shape {
                op: "reshape",
                detail: format!(
                    "cannot view {:?} ({} elements) as {:?} ({} elements)",
                    self.shape,
                    self.numel(),
                    shape,
                    n
                ),
            });
        }
        Ok(Self {
            buf: self.buf.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
        })
    }

    /// This buffer under any shape, for a step that has already failed and will not
    /// run (see `Step::alloc`).
    pub(crate) fn reshape_unchecked(&self, shape: &[usize]) -> Tensor {
        Self {
            buf: self.buf.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
        }
    }

    /// True when both handles share one buffer.
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }
}
