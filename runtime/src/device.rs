//! Adapter selection and the device context: queue, pipeline cache, buffer pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edge4d_shaders::Shader;

use crate::pool::BufferPool;
use crate::{Error, Result};

/// Which wgpu backend to use (`EDGE4D_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Prefer a real GPU, then any adapter (including Mesa's lavapipe and llvmpipe).
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl BackendChoice {
    /// Parses `auto|vulkan|metal|dx12|gl` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "vulkan" | "vk" => Ok(Self::Vulkan),
            "metal" => Ok(Self::Metal),
            "dx12" | "d3d12" => Ok(Self::Dx12),
            "gl" | "gles" | "opengl" => Ok(Self::Gl),
            _ => Err(Error::UnknownBackend(s.to_string())),
        }
    }

    /// Reads `EDGE4D_BACKEND`, defaulting to `auto`.
    pub fn from_env() -> Result<Self> {
        Self::parse(&std::env::var("EDGE4D_BACKEND").unwrap_or_default())
    }

    fn backends(self) -> wgpu::Backends {
        match self {
            Self::Auto => {
                wgpu::Backends::VULKAN
                    | wgpu::Backends::METAL
                    | wgpu::Backends::DX12
                    | wgpu::Backends::GL
            }
            Self::Vulkan => wgpu::Backends::VULKAN,
            Self::Metal => wgpu::Backends::METAL,
            Self::Dx12 => wgpu::Backends::DX12,
            Self::Gl => wgpu::Backends::GL,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Vulkan => "vulkan",
            Self::Metal => "metal",
            Self::Dx12 => "dx12",
            Self::Gl => "gl",
        }
    }
}

/// What the caller asks of adapter selection.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub backend: BackendChoice,
}

impl DeviceOptions {
    /// Options from the environment (`EDGE4D_BACKEND`).
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            backend: BackendChoice::from_env()?,
        })
    }
}

/// A description of one adapter, for logs and `edge4d info`.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub is_cpu: bool,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            is_cpu: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

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

/// An open GPU device: the adapter, queue, compiled pipelines and pooled buffers.
///
/// Cheap to share across threads (`Send + Sync`); pipelines are compiled once per
/// device on first use and cached.
pub struct Device {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) pool: Arc<BufferPool>,
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    /// Bind groups of recent dispatches, so a steady loop (same pipelines, same pooled
    /// buffers) creates none after its first step.
    pub(crate) bind_groups: Mutex<HashMap<crate::step::BindKey, wgpu::BindGroup>>,
    device_error: Arc<Mutex<Option<String>>>,
    /// Serialises this device's GL calls (see [`Device::serial`]).
    gl_serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
    /// With `EDGE4D_PROFILE` set: every dispatch is submitted and waited for on its
    /// own, and its wall time added here per (shader, entry). A diagnostic mode: it
    /// serialises the GPU and costs a submission per dispatch.
    pub(crate) profile: Option<Mutex<HashMap<(&'static str, &'static str), (u64, f64)>>>,
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

const NO_ADAPTER_HINT: &str =
    "install a GPU driver, or Mesa's software drivers for a CPU-only machine: \
    `apt-get install mesa-vulkan-drivers libvulkan1` (Vulkan, lavapipe) or \
    `apt-get install libegl1 libgl1-mesa-dri` (GL, llvmpipe), then set EDGE4D_BACKEND=vulkan or gl";

impl Device {
    /// Opens a device chosen by `EDGE4D_BACKEND` (default `auto`).
    pub fn from_env() -> Result<Self> {
        Self::new(&DeviceOptions::from_env()?)
    }

    /// Opens the most preferred adapter that yields a working device.
    pub fn new(options: &DeviceOptions) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = options.backend.backends();
        let instance = wgpu::Instance::new(desc);
        let mut adapters =
            pollster::block_on(instance.enumerate_adapters(options.backend.backends()));
        adapters.sort_by_key(|a| preference(&a.get_info()));
        let mut tried = Vec::new();
        if adapters.is_empty() {
            tried.push(format!(
                "backends {:?}: no adapter found",
                options.backend.backends()
            ));
        }
        for adapter in adapters {
            let info = adapter.get_info();
            let summary = AdapterSummary::of(&info);
            if !adapter
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            {
                tried.push(format!("{summary}: no compute shader support"));
                continue;
            }
            match Self::open(&adapter, summary.clone()) {
                Ok(device) => {
                    log::info!("edge4d device: {summary}");
                    return Ok(device);
                }
                Err(e) => tried.push(format!("{summary}: {e}")),
            }
        }
        Err(Error::NoAdapter {
            requested: options.backend.name().into(),
            tried,
            hint: NO_ADAPTER_HINT.into(),
        })
    }

    fn open(adapter: &wgpu::Adapter, summary: AdapterSummary) -> Result<Self> {
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
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("edge4d"),
            required_features: wgpu::Features::empty(),
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
        let pool = Arc::new(BufferPool::new(device.clone(), gl_serial.clone()));
        Ok(Self {
            device,
            queue,
            summary,
            limits,
            pool,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            bind_groups: Mutex::new(HashMap::new()),
            device_error,
            gl_serial,
            profile: std::env::var_os("EDGE4D_PROFILE").map(|_| Mutex::new(HashMap::new())),
        })
    }

    /// Per-kernel wall time gathered under `EDGE4D_PROFILE`: ("shader:entry",
    /// dispatches, seconds), slowest first; None when profiling is off.
    pub fn profile(&self) -> Option<Vec<(String, u64, f64)>> {
        let table = self
            .profile
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(String, u64, f64)> = table
            .iter()
            .map(|((shader, entry), (n, secs))| (format!("{shader}:{entry}"), *n, *secs))
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        Some(rows)
    }

    /// The adapter this device runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The limits the device was opened with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Lists every adapter wgpu can see, for `edge4d info`.
    pub fn enumerate(backend: BackendChoice) -> Vec<(AdapterSummary, wgpu::Limits)> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backend.backends();
        let instance = wgpu::Instance::new(desc);
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backend.backends()));
        adapters.sort_by_key(|a| preference(&a.get_info()));
        adapters
            .iter()
            .map(|a| (AdapterSummary::of(&a.get_info()), a.limits()))
            .collect()
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
                cache: None,
            });
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

    /// Number of bind groups cached (for tests of the cache).
    pub fn cached_bind_groups(&self) -> usize {
        self.bind_groups.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Number of compute pipelines compiled so far.
    pub fn compiled_pipelines(&self) -> usize {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
