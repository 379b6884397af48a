//! The wgpu side of a device: adapter opening, the pipeline and bind-group caches,
//! encoding a step into one compute pass, and buffer transfers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edge4d_shaders::Shader;

use crate::backend::{AdapterSummary, BackendChoice};
use crate::device::ProfileTable;
use crate::pool::{BufferKind, BufferPool, PooledBuffer};
use crate::{Error, Result};

/// How a storage buffer is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: &'static str,
    entry: &'static str,
    layout: Vec<Option<Access>>,
}

pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
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

/// One dispatch as the GPU encodes it.
pub(crate) struct GpuDispatch<'a> {
    pub(crate) kernel: (&'static str, &'static str),
    pub(crate) pipeline: &'a Pipeline,
    pub(crate) buffers: &'a [(u32, Arc<PooledBuffer>, u64)],
    pub(crate) uniform_slot: u32,
    pub(crate) uniform_offset: u64,
    pub(crate) uniform_size: u64,
    pub(crate) groups: [u32; 3],
}

/// An open wgpu device and its caches.
pub(crate) struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    /// Bind groups of recent dispatches, so a steady loop (same pipelines, same pooled
    /// buffers) creates none after its first step.
    pub(crate) bind_groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    device_error: Arc<Mutex<Option<String>>>,
    /// Compiled pipelines kept across runs where the backend allows (Vulkan).
    pipeline_cache: Option<PersistentCache>,
    /// Serialises this device's GL calls (see [`Gpu::serial`]).
    gl_serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
}

/// Orders adapters: real GPUs before virtual or software ones; native APIs before GL.
fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = if info.backend == wgpu::Backend::Gl {
        1
    } else {
        0
    };
    (kind, api)
}

/// Every adapter of the chosen backends, most preferred first.
pub(crate) fn adapters(choice: BackendChoice) -> Vec<wgpu::Adapter> {
    if choice.backends().is_empty() {
        return Vec::new();
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = choice.backends();
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(choice.backends()));
    adapters.sort_by_key(|a| preference(&a.get_info()));
    adapters
}

/// A wgpu pipeline cache with the file it was read from and is written back to.
struct PersistentCache {
    cache: wgpu::PipelineCache,
    file: std::path::PathBuf,
    /// Pipelines were compiled since the file was read or written.
    dirty: std::sync::atomic::AtomicBool,
}

impl PersistentCache {
    fn open(device: &wgpu::Device, file: std::path::PathBuf) -> Self {
        let data = std::fs::read(&file).ok();
        // SAFETY: the data was written by `get_data` of a cache for an adapter with
        // the same key (vendor, device, driver); `fallback` makes wgpu start an empty
        // cache when the driver rejects it.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("edge4d pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Self {
            cache,
            file,
            dirty: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Writes the cache atomically when pipelines were compiled since the last write.
    fn save(&self) -> Result<bool> {
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        let Some(data) = self.cache.get_data() else {
            return Ok(false);
        };
        crate::pipeline_cache::write(&self.file, &data)?;
        Ok(true)
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        if let Err(e) = self.save_pipeline_cache() {
            log::warn!("{e}");
        }
    }
}

impl Gpu {
    /// Writes the compiled pipelines to the user's cache directory (Vulkan), so the
    /// next process starts warm; returns whether anything was written.
    pub(crate) fn save_pipeline_cache(&self) -> Result<bool> {
        match &self.pipeline_cache {
            Some(c) => c.save(),
            None => Ok(false),
        }
    }

    /// Opens `adapter` with WebGPU's default limits.
    pub(crate) fn open(adapter: &wgpu::Adapter) -> Result<(Self, wgpu::Limits, Arc<BufferPool>)> {
        if !adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(Error::Device("no compute shader support".into()));
        }
        let summary = AdapterSummary::of(&adapter.get_info());
        // Ask for WebGPU's default limits so every kernel provably fits them; fall back
        // to what the adapter offers (some GL drivers miss a graphics-only default).
        let supported = adapter.limits();
        let wanted = wgpu::Limits::default();
        let limits = if wanted.check_limits(&supported) {
            wanted
        } else {
            wanted
                .using_resolution(supported.clone())
                .using_alignment(supported.clone())
        };
        let limits = if limits.check_limits(&supported) {
            limits
        } else {
            supported
        };
        let cache_file = crate::pipeline_cache::file_for(&adapter.get_info())
            .filter(|_| adapter.features().contains(wgpu::Features::PIPELINE_CACHE));
        let features = if cache_file.is_some() {
            wgpu::Features::PIPELINE_CACHE
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("edge4d"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Device(e.to_string()))?;
        let device_error = Arc::new(Mutex::new(None::<String>));
        let sink = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("wgpu: {e}");
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        // wgpu's GL backend shares one context behind a lock that panics after a short
        // wait; queueing our own calls keeps that lock uncontended across threads.
        let gl_serial =
            (summary.backend == "gl").then(|| Arc::new(parking_lot::ReentrantMutex::new(())));
        let pool = Arc::new(BufferPool::gpu(device.clone(), gl_serial.clone()));
        let pipeline_cache = cache_file.map(|file| PersistentCache::open(&device, file));
        Ok((
            Self {
                pipeline_cache,
                device,
                queue,
                modules: Mutex::new(HashMap::new()),
                pipelines: Mutex::new(HashMap::new()),
                bind_groups: Mutex::new(HashMap::new()),
                device_error,
                gl_serial,
            },
            limits,
            pool,
        ))
    }

    /// Held around every call into wgpu that touches the GL context (a no-op elsewhere).
    pub(crate) fn serial(&self) -> Option<parking_lot::ReentrantMutexGuard<'_, ()>> {
        self.gl_serial.as_ref().map(|m| m.lock())
    }

    /// Runs `f` inside a validation error scope (scopes are per thread, so concurrent
    /// callers see only their own errors).
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _serial = self.serial();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Device(e.to_string())),
            None => self.take_error().map(|_| out),
        }
    }

    /// Returns (and clears) the first uncaptured error (out of memory, device lost).
    pub(crate) fn take_error(&self) -> Result<()> {
        let mut slot = self.device_error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(msg) => Err(Error::Device(msg)),
            None => Ok(()),
        }
    }

    pub(crate) fn compiled_pipelines(&self) -> usize {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The compute pipeline for `shader`'s `entry`, whose storage bindings are
    /// `layout[slot]` (None: unused slot) and whose uniform is at `uniform_slot`,
    /// compiled on first use.
    pub(crate) fn pipeline(
        &self,
        shader: &Shader,
        entry: &'static str,
        layout: &[Option<Access>],
        uniform_slot: u32,
    ) -> Result<Arc<Pipeline>> {
        let key = PipelineKey {
            shader: shader.path,
            entry,
            layout: layout.to_vec(),
        };
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(p.clone());
        }
        let _serial = self.serial();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules
                .entry(shader.path)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(shader.path),
                            source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                        })
                })
                .clone()
        };
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = layout
            .iter()
            .enumerate()
            .filter_map(|(i, access)| access.map(|a| (i, a)))
            .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: uniform_slot,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
        let bgl = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(entry),
                entries: &entries,
            });
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("{}::{}", shader.path, entry)),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: self.pipeline_cache.as_ref().map(|c| &c.cache),
            });
        if let Some(c) = &self.pipeline_cache {
            c.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Device(format!("{}::{entry}: {e}", shader.path)));
        }
        let p = Arc::new(Pipeline {
            pipeline,
            layout: bgl,
        });
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, p.clone());
        Ok(p)
    }

    /// Encodes `dispatches` into one compute pass and submits it (or, with a profile
    /// table, each on its own, waited for and timed).
    pub(crate) fn submit(
        &self,
        pool: &Arc<BufferPool>,
        uniforms: &[u8],
        dispatches: &[GpuDispatch<'_>],
        profile: Option<&ProfileTable>,
    ) -> Result<()> {
        self.scoped(|| self.encode_and_submit(pool, uniforms, dispatches, profile))
    }

    fn encode_and_submit(
        &self,
        pool: &Arc<BufferPool>,
        uniforms: &[u8],
        dispatches: &[GpuDispatch<'_>],
        profile: Option<&ProfileTable>,
    ) {
        let uniform = pool.acquire(uniforms.len() as u64, BufferKind::Uniform);
        self.queue.write_buffer(uniform.buffer(), 0, uniforms);
        let mut cache = self.bind_groups.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > BIND_GROUP_CACHE {
            cache.clear();
        }
        let bind_groups: Vec<wgpu::BindGroup> = dispatches
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
                        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: None,
                            layout: &d.pipeline.layout,
                            entries: &entries,
                        })
                    })
                    .clone()
            })
            .collect();
        drop(cache);
        let work = dispatches.iter().zip(&bind_groups);
        let Some(profile) = profile else {
            self.queue.submit([self.encode(work, "edge4d step")]);
            return;
        };
        for (d, bg) in work {
            let started = std::time::Instant::now();
            self.queue
                .submit([self.encode(std::iter::once((d, bg)), "edge4d profiled dispatch")]);
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
            let mut table = profile.lock().unwrap_or_else(|e| e.into_inner());
            let entry = table.entry(d.kernel).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += started.elapsed().as_secs_f64();
        }
    }

    /// One command buffer holding `work` in one compute pass.
    fn encode<'a, 'b: 'a>(
        &self,
        work: impl Iterator<Item = (&'a GpuDispatch<'b>, &'a wgpu::BindGroup)>,
        label: &str,
    ) -> wgpu::CommandBuffer {
        let mut encoder = self
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

    /// Writes `bytes` at byte `offset` of `buf` (ordered before the next submission).
    pub(crate) fn write(&self, buf: &PooledBuffer, offset: u64, bytes: &[u8]) {
        let _serial = self.serial();
        self.queue.write_buffer(buf.buffer(), offset, bytes);
    }

    /// Copies the first `bytes` bytes of `buf` to the host (waits for submitted work).
    pub(crate) fn read(
        &self,
        pool: &Arc<BufferPool>,
        buf: &PooledBuffer,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        let _serial = self.serial();
        let staging = pool.acquire(bytes, BufferKind::Readback);
        self.scoped(|| {
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("edge4d readback"),
                });
            encoder.copy_buffer_to_buffer(buf.buffer(), 0, staging.buffer(), 0, bytes);
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

    /// Waits until all submitted work is done.
    pub(crate) fn wait(&self) -> Result<()> {
        let _serial = self.serial();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(e.to_string()))?;
        self.take_error()
    }
}
