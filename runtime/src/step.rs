//! Recording: ops append dispatches to a [`Step`]; `submit` encodes them all into one
//! compute pass and one queue submission. Nothing is read back unless asked.

use std::sync::Arc;

use edge4d_shaders::Shader;

use crate::device::{Access, Device, Pipeline};
use crate::pool::{BufferKind, PooledBuffer};
use crate::{DType, Error, Result, Tensor};

/// One storage binding of a dispatch.
pub(crate) struct Bind<'t> {
    pub(crate) slot: u32,
    pub(crate) tensor: &'t Tensor,
    pub(crate) access: Access,
}

pub(crate) fn read(slot: u32, tensor: &Tensor) -> Bind<'_> {
    Bind {
        slot,
        tensor,
        access: Access::Read,
    }
}

pub(crate) fn write(slot: u32, tensor: &Tensor) -> Bind<'_> {
    Bind {
        slot,
        tensor,
        access: Access::ReadWrite,
    }
}

/// What makes a bind group: its pipeline's layout, each storage binding (slot, buffer,
/// size) and the uniform window.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    layout: wgpu::BindGroupLayout,
    buffers: Vec<(u32, wgpu::Buffer, u64)>,
    uniform: wgpu::Buffer,
    uniform_slot: u32,
    uniform_offset: u64,
    uniform_size: u64,
}

/// Cached bind groups beyond this are dropped (a loop that keeps changing shapes
/// must not grow the cache without bound).
const BIND_GROUP_CACHE: usize = 16384;

struct Dispatch {
    /// (shader, entry), for profiles.
    kernel: (&'static str, &'static str),
    pipeline: Arc<Pipeline>,
    buffers: Vec<(u32, Arc<PooledBuffer>, u64)>,
    uniform_slot: u32,
    uniform_offset: u64,
    uniform_size: u64,
    groups: [u32; 3],
}

/// A batch of GPU work (typically one forward, backward and optimizer step) recorded
/// before it is submitted as a whole.
pub struct Step<'d> {
    dev: &'d Device,
    dispatches: Vec<Dispatch>,
    uniforms: Vec<u8>,
    /// The first pipeline that failed to build; reported by `submit`.
    error: Option<Error>,
}

/// Largest workgroup count per grid dimension (WebGPU default).
pub(crate) const MAX_GROUPS: u32 = 65535;

/// Grid for `count` workgroups, folded into y when x would exceed the limit;
/// kernels rebuild the linear id as `x + y * num_workgroups.x`.
pub(crate) fn fold_groups(count: usize) -> [u32; 3] {
    let count = count.max(1);
    let x = count.min(MAX_GROUPS as usize);
    let y = count.div_ceil(x);
    [x as u32, y as u32, 1]
}

/// Grid for one invocation per element with 256-wide workgroups.
pub(crate) fn groups_1d(n: usize) -> [u32; 3] {
    fold_groups(n.div_ceil(256))
}

impl Device {
    /// Starts recording a step.
    pub fn step(&self) -> Step<'_> {
        Step {
            dev: self,
            dispatches: Vec::new(),
            uniforms: Vec::new(),
            error: None,
        }
    }

    /// Records `f` into one step and submits it.
    pub fn run<T>(&self, f: impl FnOnce(&mut Step<'_>) -> Result<T>) -> Result<T> {
        let mut step = self.step();
        let out = f(&mut step)?;
        step.submit()?;
        Ok(out)
    }
}

impl<'d> Step<'d> {
    /// The device this step records for.
    pub fn device(&self) -> &'d Device {
        self.dev
    }

    /// Number of dispatches recorded so far.
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// An uninitialised tensor from the pool; an op of this step must write all of it.
    pub(crate) fn alloc(&self, shape: &[usize], dtype: DType) -> Tensor {
        self.dev.alloc(shape, dtype)
    }

    /// Records one dispatch of `shader::entry`: storage bindings `binds`, the uniform
    /// `params` at binding `uniform_slot`, and a grid of `groups` workgroups.
    pub(crate) fn dispatch(
        &mut self,
        shader: &Shader,
        entry: &'static str,
        binds: &[Bind<'_>],
        uniform_slot: u32,
        params: &[u32],
        groups: [u32; 3],
    ) {
        let slots = binds
            .iter()
            .map(|b| b.slot + 1)
            .max()
            .unwrap_or(0)
            .max(uniform_slot);
        let mut layout = vec![None; slots as usize];
        for b in binds {
            layout[b.slot as usize] = Some(b.access);
        }
        let pipeline = match self.dev.pipeline(shader, entry, &layout, uniform_slot) {
            Ok(p) => p,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        let align = self.dev.limits.min_uniform_buffer_offset_alignment as usize;
        let offset = self.uniforms.len().next_multiple_of(align);
        self.uniforms.resize(offset, 0);
        let size = (params.len() * 4).next_multiple_of(16).max(16);
        self.uniforms
            .extend_from_slice(bytemuck::cast_slice(params));
        self.uniforms.resize(offset + size, 0);
        self.dispatches.push(Dispatch {
            kernel: (shader.name, entry),
            pipeline,
            buffers: binds
                .iter()
                .map(|b| (b.slot, b.tensor.buf.clone(), b.tensor.bytes()))
                .collect(),
            uniform_slot,
            uniform_offset: offset as u64,
            uniform_size: size as u64,
            groups,
        });
    }

    /// Encodes every recorded dispatch into one compute pass and submits it.
    pub fn submit(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.dispatches.is_empty() {
            return Ok(());
        }
        let dev = self.dev;
        dev.scoped(|| self.encode_and_submit())
    }

    fn encode_and_submit(&self) {
        let dev = self.dev;
        let uniform = dev
            .pool
            .acquire(self.uniforms.len() as u64, BufferKind::Uniform);
        dev.queue.write_buffer(uniform.buffer(), 0, &self.uniforms);
        let mut cache = dev.bind_groups.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > BIND_GROUP_CACHE {
            cache.clear();
        }
        let bind_groups: Vec<wgpu::BindGroup> = self
            .dispatches
            .iter()
            .map(|d| {
                let key = BindKey {
                    layout: d.pipeline.layout.clone(),
                    buffers: d
                        .buffers
                        .iter()
                        .map(|(slot, buf, size)| (*slot, buf.buffer().clone(), *size))
                        .collect(),
                    uniform: uniform.buffer().clone(),
                    uniform_slot: d.uniform_slot,
                    uniform_offset: d.uniform_offset,
                    uniform_size: d.uniform_size,
                };
                cache
                    .entry(key)
                    .or_insert_with(|| {
                        let mut entries: Vec<wgpu::BindGroupEntry> = d
                            .buffers
                            .iter()
                            .map(|(slot, buf, size)| wgpu::BindGroupEntry {
                                binding: *slot,
                                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                    buffer: buf.buffer(),
                                    offset: 0,
                                    size: std::num::NonZeroU64::new((*size).max(4)),
                                }),
                            })
                            .collect();
                        entries.push(wgpu::BindGroupEntry {
                            binding: d.uniform_slot,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: uniform.buffer(),
                                offset: d.uniform_offset,
                                size: std::num::NonZeroU64::new(d.uniform_size),
                            }),
                        });
                        dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: None,
                            layout: &d.pipeline.layout,
                            entries: &entries,
                        })
                    })
                    .clone()
            })
            .collect();
        drop(cache);
        let work = self.dispatches.iter().zip(&bind_groups);
        let Some(profile) = &dev.profile else {
            dev.queue.submit([encode(dev, work, "edge4d step")]);
            return;
        };
        for (d, bg) in work {
            let started = std::time::Instant::now();
            dev.queue.submit([encode(
                dev,
                std::iter::once((d, bg)),
                "edge4d profiled dispatch",
            )]);
            let _ = dev.device.poll(wgpu::PollType::wait_indefinitely());
            let mut table = profile.lock().unwrap_or_else(|e| e.into_inner());
            let entry = table.entry(d.kernel).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += started.elapsed().as_secs_f64();
        }
    }
}

/// One command buffer holding `work` in one compute pass.
fn encode<'a>(
    dev: &Device,
    work: impl Iterator<Item = (&'a Dispatch, &'a wgpu::BindGroup)>,
    label: &str,
) -> wgpu::CommandBuffer {
    let mut encoder = dev
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for (d, bg) in work {
            pass.set_pipeline(&d.pipeline.pipeline);
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
    }
    encoder.finish()
}

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

    fn check_upload(&self, op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != len {
            return Err(Error::Shape {
                op,
                detail: format!("{len} values given for shape {shape:?} ({n} elements)"),
            });
        }
        if n == 0 {
            return Err(Error::Empty {
                op,
                what: "tensor",
                shape: shape.to_vec(),
            });
        }
        let bytes = n as u64 * 4;
        let limit = u64::from(self.limits.max_storage_buffer_binding_size);
        if bytes > limit {
            return Err(Error::TooLarge {
                op,
                what: "tensor",
                bytes,
                limit,
            });
        }
        Ok(())
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
        let _serial = self.serial();
        self.queue
            .write_buffer(t.buf.buffer(), 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// Copies host u32 data (indices, labels) to a new tensor.
    pub fn upload_u32(&self, data: &[u32], shape: &[usize]) -> Result<Tensor> {
        self.check_upload("upload_u32", data.len(), shape)?;
        let t = self.alloc(shape, DType::U32);
        let _serial = self.serial();
        self.queue
            .write_buffer(t.buf.buffer(), 0, bytemuck::cast_slice(data));
        Ok(t)
    }

    /// A tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        self.upload(&vec![0.0; n], shape)
    }

    /// Overwrites a tensor's contents with host data (ordered before the next submission).
    pub fn write(&self, tensor: &Tensor, data: &[f32]) -> Result<()> {
        self.check_upload("write", data.len(), tensor.shape())?;
        let _serial = self.serial();
        self.queue
            .write_buffer(tensor.buf.buffer(), 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Overwrites elements `start..start + data.len()` of an f32 tensor (ordered before
    /// the next submission); streams write each new frame into a ring this way.
    pub fn write_at(&self, tensor: &Tensor, start: usize, data: &[f32]) -> Result<()> {
        if tensor.dtype() != DType::F32 || data.is_empty() || start + data.len() > tensor.numel() {
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
        let _serial = self.serial();
        self.queue.write_buffer(
            tensor.buf.buffer(),
            start as u64 * 4,
            bytemuck::cast_slice(data),
        );
        Ok(())
    }

    fn read_bytes(&self, tensor: &Tensor) -> Result<Vec<u8>> {
        let _serial = self.serial();
        let bytes = tensor.bytes();
        let staging = self.pool.acquire(bytes, BufferKind::Readback);
        self.scoped(|| {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("edge4d readback"),
                });
            encoder.copy_buffer_to_buffer(tensor.buf.buffer(), 0, staging.buffer(), 0, bytes);
            self.queue.submit([encoder.finish()]);
        })?;
        let slice = staging.buffer().slice(0..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(e.to_string()))?;
        rx.recv()
            .map_err(|e| Error::Device(format!("readback callback lost: {e}")))?
            .map_err(|e| Error::Device(format!("readback map failed: {e}")))?;
        let out = slice
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("readback view: {e:?}")))?
            .to_vec();
        staging.buffer().unmap();
        self.take_error()?;
        Ok(out)
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
        Ok(bytemuck::cast_slice(&self.read_bytes(tensor)?).to_vec())
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
        Ok(bytemuck::cast_slice(&self.read_bytes(tensor)?).to_vec())
    }

    /// Buffers created by the pool so far.
    pub fn buffers_created(&self) -> u64 {
        self.pool.created()
    }

    /// Waits until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        let _serial = self.serial();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(e.to_string()))?;
        self.take_error()
    }
}
