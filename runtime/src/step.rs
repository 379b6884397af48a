//! Recording: ops append dispatches to a [`Step`]; `submit` runs them all at once — one
//! compute pass and one queue submission on a GPU, the native twins in order on the
//! CPU backend. Nothing is read back unless asked.

use std::collections::HashMap;
use std::sync::Arc;

use edge4d_shaders::Shader;

use crate::cpu::{CpuDispatch, KernelFn};
use crate::device::{Backend, Device};
use crate::gpu::{Access, GpuDispatch, Pipeline};
use crate::pool::PooledBuffer;
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

/// The compiled form of a dispatch's kernel.
enum Exec {
    Gpu(Arc<Pipeline>),
    Cpu(KernelFn),
}

struct Dispatch {
    /// (shader, entry), for profiles and errors.
    kernel: (&'static str, &'static str),
    exec: Exec,
    /// (slot, buffer, bound bytes).
    buffers: Vec<(u32, Arc<PooledBuffer>, u64)>,
    writable: Vec<bool>,
    uniform_slot: u32,
    uniform_offset: u64,
    uniform_size: u64,
    groups: [u32; 3],
}

/// A batch of work (typically one forward, backward and optimizer step) recorded
/// before it is submitted as a whole.
pub struct Step<'d> {
    dev: &'d Device,
    dispatches: Vec<Dispatch>,
    uniforms: Vec<u8>,
    /// The first kernel that failed to build; reported by `submit`.
    error: Option<Error>,
    /// Every buffer the recorded dispatches bind, by size class, with how many handles
    /// this step holds (its dispatches' and this list's own).
    held: HashMap<u64, Vec<(Arc<PooledBuffer>, usize)>>,
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
            held: HashMap::new(),
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
    /// An op output larger than one binding may be is not allocated (host memory would
    /// run out on the CPU backend, a GPU would refuse the binding): the step records
    /// the error, which `submit` returns before running anything, and the op gets an
    /// empty placeholder.
    pub(crate) fn alloc(&mut self, shape: &[usize], dtype: DType) -> Tensor {
        let limit = self.dev.limits.max_storage_buffer_binding_size;
        let bytes = shape
            .iter()
            .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64));
        match bytes {
            Some(b) if b <= limit => match self.recycled(b) {
                Some(buf) => Tensor::from_parts(buf, shape.to_vec(), dtype),
                None => self.dev.alloc(shape, dtype),
            },
            _ => {
                self.error.get_or_insert(Error::InvalidArgument {
                    op: "step",
                    detail: format!(
                        "an op's output of shape {shape:?} needs {} bytes, above this device's {limit}-byte binding limit: the inputs are too large (fewer points per frame, a smaller nsamples or batch)",
                        bytes.map_or("more than 2^64".to_string(), |b| b.to_string())
                    ),
                });
                self.dev.alloc(&[1], dtype).reshape_unchecked(shape)
            }
        }
    }

    /// A buffer of `bytes`' size class that only this step's dispatches still hold: no
    /// tensor handle can bind it again, and every dispatch that used it runs before the
    /// one about to write it (in order on the CPU backend, behind a barrier in the GPU's
    /// compute pass). So a step's peak memory is what is live at once, not everything
    /// it ever allocated.
    fn recycled(&self, bytes: u64) -> Option<Arc<PooledBuffer>> {
        self.held
            .get(&crate::pool::size_class(bytes))?
            .iter()
            .find(|(buf, handles)| Arc::strong_count(buf) == *handles)
            .map(|(buf, _)| buf.clone())
    }

    /// Counts the step's handle on a buffer a dispatch binds.
    fn hold(&mut self, buf: &Arc<PooledBuffer>) {
        if !buf.is_storage() {
            return;
        }
        let list = self.held.entry(buf.class()).or_default();
        match list.iter_mut().find(|(b, _)| Arc::ptr_eq(b, buf)) {
            Some((_, handles)) => *handles += 1,
            None => list.push((buf.clone(), 2)),
        }
    }

    /// Records one dispatch of `shader::entry`: storage bindings `binds`, the uniform
    /// `params` at binding `uniform_slot`, and a grid of `groups` workgroups.
    pub(crate) fn dispatch(
        &mut self,
        shader: &Shader,
        entry: &'static str,
        binds: &[Bind<'_>],
        uniform_slot: u32,
        params: &impl crate::params::Uniform,
        groups: [u32; 3],
    ) {
        #[cfg(debug_assertions)]
        {
            let layout: Vec<(u32, Access)> = binds.iter().map(|b| (b.slot, b.access)).collect();
            let size = std::mem::size_of_val(params);
            if let Err(e) = crate::reflect::check(shader, entry, &layout, uniform_slot, size) {
                self.error.get_or_insert(Error::Device(e));
                return;
            }
        }
        let exec = match &self.dev.backend {
            Backend::Gpu(gpu) => {
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
                gpu.pipeline(shader, entry, &layout, uniform_slot)
                    .map(Exec::Gpu)
            }
            Backend::Cpu(cpu) => cpu.kernel(shader, entry).map(Exec::Cpu),
        };
        let exec = match exec {
            Ok(e) => e,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        let align = self.dev.limits.min_uniform_buffer_offset_alignment as usize;
        let offset = self.uniforms.len().next_multiple_of(align);
        self.uniforms.resize(offset, 0);
        let bytes = bytemuck::bytes_of(params);
        let size = bytes.len().next_multiple_of(16).max(16);
        self.uniforms.extend_from_slice(bytes);
        self.uniforms.resize(offset + size, 0);
        for b in binds {
            self.hold(&b.tensor.buf);
        }
        self.dispatches.push(Dispatch {
            kernel: (shader.name, entry),
            exec,
            buffers: binds
                .iter()
                .map(|b| (b.slot, b.tensor.buf.clone(), b.tensor.bytes()))
                .collect(),
            writable: binds
                .iter()
                .map(|b| b.access == Access::ReadWrite)
                .collect(),
            uniform_slot,
            uniform_offset: offset as u64,
            uniform_size: size as u64,
            groups,
        });
    }

    /// Runs every recorded dispatch: one compute pass and one submission on a GPU, the
    /// native kernels in order on the CPU backend.
    pub fn submit(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.dispatches.is_empty() {
            return Ok(());
        }
        let dev = self.dev;
        dev.dispatches.fetch_add(
            self.dispatches.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        match &dev.backend {
            Backend::Gpu(gpu) => {
                let work: Vec<GpuDispatch<'_>> = self
                    .dispatches
                    .iter()
                    .map(|d| GpuDispatch {
                        kernel: d.kernel,
                        pipeline: match &d.exec {
                            Exec::Gpu(p) => p,
                            Exec::Cpu(_) => unreachable!("GPU steps record pipelines"),
                        },
                        buffers: &d.buffers,
                        uniform_slot: d.uniform_slot,
                        uniform_offset: d.uniform_offset,
                        uniform_size: d.uniform_size,
                        groups: d.groups,
                    })
                    .collect();
                gpu.submit(&dev.pool, &self.uniforms, &work, dev.profile.as_ref())
            }
            Backend::Cpu(cpu) => {
                let work: Vec<CpuDispatch<'_>> = self
                    .dispatches
                    .iter()
                    .map(|d| CpuDispatch {
                        kernel: d.kernel,
                        run: match d.exec {
                            Exec::Cpu(f) => f,
                            Exec::Gpu(_) => unreachable!("CPU steps record native kernels"),
                        },
                        buffers: &d.buffers,
                        writable: &d.writable,
                        uniform_offset: d.uniform_offset,
                        uniform_size: d.uniform_size,
                    })
                    .collect();
                cpu.run(&self.uniforms, &work, dev.profile.as_ref())
            }
        }
    }
}
