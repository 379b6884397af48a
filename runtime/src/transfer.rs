//! Tensors in and out of a device: pooled allocation, uploads, writes and readbacks.
//! On the CPU backend an upload or a read is one copy between host slices.

use crate::device::{Backend, Device};
use crate::pool::BufferKind;
use crate::{DType, Error, Result, Tensor};

impl Device {
    /// An uninitialised pooled tensor.
    pub(crate) fn alloc(&self, shape: &[usize], dtype: DType) -> Tensor {
        let bytes = shape.iter().product::<usize>() as u64 * 4;
        Tensor::from_parts(
            self.pool.acquire(bytes, BufferKind::Storage),
            shape.to_vec(),
            dtype,
        )
    }

    /// Checks a tensor of `shape` against the binding limit before anything is allocated.
    fn check_shape(&self, op: &'static str, shape: &[usize]) -> Result<usize> {
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::TooLarge {
                op,
                what: "tensor",
                bytes: u64::MAX,
                limit: self.limits.max_storage_buffer_binding_size,
            })?;
        if n == 0 {
            return Err(Error::Empty {
                op,
                what: "tensor",
                shape: shape.to_vec(),
            });
        }
        let bytes = (n as u64).saturating_mul(4);
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::TooLarge {
                op,
                what: "tensor",
                bytes,
                limit,
            });
        }
        Ok(n)
    }

    fn check_upload(&self, op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
        let n = self.check_shape(op, shape)?;
        if n != len {
            return Err(Error::Shape {
                op,
                detail: format!("{len} values given for shape {shape:?} ({n} elements)"),
            });
        }
        Ok(())
    }

    /// Copies `bytes` into `tensor` from byte `offset` (ordered before the next
    /// submission on a GPU; at once on the CPU backend, whose steps run at submit).
    fn write_bytes(&self, tensor: &Tensor, offset: u64, bytes: &[u8]) {
        match &self.backend {
            Backend::Gpu(gpu) => gpu.write(&tensor.buf, offset, bytes),
            Backend::Cpu(cpu) => cpu.write(tensor.buf.host(), offset, bytes),
        }
    }

    /// The tensor's 32-bit words, copied to the host.
    fn read_words(&self, tensor: &Tensor) -> Result<Vec<u32>> {
        match &self.backend {
            Backend::Gpu(gpu) => Ok(bytemuck::pod_collect_to_vec(&gpu.read(
                &self.pool,
                &tensor.buf,
                tensor.bytes(),
            )?)),
            Backend::Cpu(cpu) => Ok(cpu.read(tensor.buf.host(), tensor.numel())),
        }
    }

    /// Copies host f32 data to a new tensor. Non-finite values are refused.
    pub fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        self.check_upload("upload", data.len(), shape)?;
        if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "upload",
                what: "data",
                index,
                value,
            });
        }
        let t = self.alloc(shape, DType::F32);
        self.write_bytes(&t, 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// Copies host u32 data (indices, labels) to a new tensor.
    pub fn upload_u32(&self, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        self.check_upload("upload_u32", data.len(), shape)?;
        let t = self.alloc(shape, DType::U32);
        self.write_bytes(&t, 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// A tensor of zeros (its size checked before any host memory is filled).
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let n = self.check_shape("zeros", shape)?;
        self.upload(&vec![0.0; n], shape)
    }

    /// Overwrites a tensor's contents with host data (ordered before the next submission).
    pub fn write(&self, tensor: &Tensor, data: &[f32]) -> Result<()> {
        self.check_upload("write", data.len(), tensor.shape())?;
        self.write_bytes(tensor, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Overwrites elements `start..start + data.len()` of an f32 tensor (ordered before
    /// the next submission); streams write each new frame into a ring this way.
    pub fn write_at(&self, tensor: &Tensor, start: usize, data: &[f32]) -> Result<()> {
        if tensor.dtype() != DType::F32
            || data.is_empty()
            || start
                .checked_add(data.len())
                .is_none_or(|end| end > tensor.numel())
        {
            return Err(Error::Shape {
                op: "write_at",
                detail: format!(
                    "{} values at {start} do not fit an f32 tensor of {:?}",
                    data.len(),
                    tensor.shape()
                ),
            });
        }
        if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "write_at",
                what: "data",
                index,
                value,
            });
        }
        self.write_bytes(tensor, start as u64 * 4, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Reads an f32 tensor back to the host (waits for all submitted work).
    pub fn read(&self, tensor: &Tensor) -> Result<Vec<f32>> {
        if tensor.dtype() != DType::F32 {
            return Err(Error::DType {
                op: "read",
                what: "tensor",
                expected: DType::F32,
                got: tensor.dtype(),
            });
        }
        Ok(bytemuck::cast_vec(self.read_words(tensor)?))
    }

    /// Reads a u32 tensor back to the host.
    pub fn read_u32(&self, tensor: &Tensor) -> Result<Vec<u32>> {
        if tensor.dtype() != DType::U32 {
            return Err(Error::DType {
                op: "read_u32",
                what: "tensor",
                expected: DType::U32,
                got: tensor.dtype(),
            });
        }
        self.read_words(tensor)
    }

    /// Buffers created by the pool so far.
    pub fn buffers_created(&self) -> u64 {
        self.pool.created()
    }

    /// Waits until all submitted work is done (the CPU backend finishes at submit).
    pub fn wait(&self) -> Result<()> {
        match &self.backend {
            Backend::Gpu(gpu) => gpu.wait(),
            Backend::Cpu(_) => Ok(()),
        }
    }
}
