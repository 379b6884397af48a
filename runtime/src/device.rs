//! Backend selection and the device handle: a GPU through wgpu (`gpu.rs`) or the native
//! CPU backend (`cpu/`), each with its buffer pool.

use std::sync::{Arc, Mutex};

pub use crate::backend::{AdapterSummary, BackendChoice};
use crate::cpu::Cpu;
use crate::gpu::Gpu;
use crate::pool::BufferPool;
use crate::{Error, Result};

/// What the caller asks of backend selection.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub backend: BackendChoice,
    /// Threads of the CPU backend; None: `EDGE4D_THREADS`, else every core.
    pub threads: Option<usize>,
}

impl DeviceOptions {
    /// Options from the environment (`EDGE4D_BACKEND`, `EDGE4D_THREADS`).
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            backend: BackendChoice::from_env()?,
            threads: None,
        })
    }

    /// These options on another backend.
    pub fn with_backend(backend: BackendChoice) -> Self {
        Self {
            backend,
            threads: None,
        }
    }
}

/// Per-kernel (dispatches, seconds) under `EDGE4D_PROFILE`, by (shader, entry).
pub(crate) type ProfileTable =
    Mutex<std::collections::HashMap<(&'static str, &'static str), (u64, f64)>>;

/// What executes the recorded steps.
pub(crate) enum Backend {
    Gpu(Gpu),
    Cpu(Cpu),
}

/// The state behind a [`Device`] handle.
pub struct DeviceState {
    /// Unique per device opened in this process (caches key on it).
    pub(crate) id: u64,
    pub(crate) backend: Backend,
    pub(crate) summary: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
    pub(crate) pool: Arc<BufferPool>,
    /// The matmul rung `EDGE4D_MATMUL` named when the device opened.
    pub(crate) matmul_override: Option<crate::ops::matmul::MatmulKernel>,
    /// With `EDGE4D_PROFILE` set: every dispatch runs and is waited for on its own, and
    /// its wall time added here per (shader, entry). A diagnostic mode: it serialises
    /// the work and costs a submission per dispatch.
    pub(crate) profile: Option<ProfileTable>,
    /// Dispatches submitted since the device opened.
    pub(crate) dispatches: std::sync::atomic::AtomicU64,
}

/// An open device: a GPU adapter through wgpu, or the native CPU backend, with its
/// compiled kernels and pooled buffers.
///
/// A cheap handle: clones share one device (`Send + Sync`), so trainers, streams and
/// the C ABI hold it by value. Pipelines are compiled once per device on first use.
#[derive(Clone)]
pub struct Device {
    state: Arc<DeviceState>,
}

impl std::ops::Deref for Device {
    type Target = DeviceState;
    fn deref(&self) -> &DeviceState {
        &self.state
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.summary)
    }
}

const NO_ADAPTER_HINT: &str =
    "use the native CPU backend (EDGE4D_BACKEND=cpu, or auto), install a GPU driver, or \
    Mesa's software drivers to run the WGSL kernels on a CPU-only machine: \
    `apt-get install mesa-vulkan-drivers libvulkan1` (Vulkan, lavapipe) or \
    `apt-get install libegl1 libgl1-mesa-dri` (GL, llvmpipe), then set EDGE4D_BACKEND=vulkan or gl";

fn profiling() -> Option<ProfileTable> {
    std::env::var_os("EDGE4D_PROFILE").map(|_| Mutex::new(Default::default()))
}

impl Device {
    /// Opens a device chosen by `EDGE4D_BACKEND` (default `auto`) and `EDGE4D_THREADS`.
    pub fn from_env() -> Result<Self> {
        Self::new(&DeviceOptions::from_env()?)
    }

    /// Opens the backend the options name; `auto` takes a real GPU, else the CPU.
    pub fn new(options: &DeviceOptions) -> Result<Self> {
        match options.backend {
            BackendChoice::Cpu => Self::cpu(options.threads),
            BackendChoice::Auto => match Self::gpu(options.backend, false) {
                Ok(dev) => Ok(dev),
                Err(e) => {
                    log::info!("no real GPU ({e}); using the native CPU backend");
                    Self::cpu(options.threads)
                }
            },
            named => Self::gpu(named, true),
        }
    }

    /// The native CPU backend with `threads` threads (None: `EDGE4D_THREADS`, else
    /// every core).
    pub fn cpu(threads: Option<usize>) -> Result<Self> {
        let threads = match threads {
            Some(t) => t,
            None => crate::cpu::threads_from_env()?,
        };
        let cpu = Cpu::new(threads)?;
        let summary = cpu.summary();
        log::info!("edge4d device: {summary}");
        Ok(Self::from_state(DeviceState {
            id: Self::next_id(),
            summary,
            limits: crate::cpu::limits(),
            pool: Arc::new(BufferPool::host()),
            backend: Backend::Cpu(cpu),
            matmul_override: crate::ops::matmul::MatmulKernel::from_env()?,
            profile: profiling(),
            dispatches: Default::default(),
        }))
    }

    fn from_state(state: DeviceState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }

    /// A number no other device of this process has, for caches of device tensors.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn next_id() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The most preferred GPU adapter that yields a working device; software adapters
    /// only when `allow_software`.
    fn gpu(choice: BackendChoice, allow_software: bool) -> Result<Self> {
        let matmul_override = crate::ops::matmul::MatmulKernel::from_env()?;
        let adapters = crate::gpu::adapters(choice);
        let mut tried = Vec::new();
        if adapters.is_empty() {
            tried.push(format!(
                "backends {:?}: no adapter found",
                choice.backends()
            ));
        }
        for adapter in adapters {
            let info = adapter.get_info();
            let summary = AdapterSummary::of(&info);
            if summary.is_cpu && !allow_software {
                tried.push(format!(
                    "{summary}: a software rasteriser, used only when named (EDGE4D_BACKEND={})",
                    summary.backend
                ));
                continue;
            }
            match Gpu::open(&adapter) {
                Ok((gpu, limits, pool)) => {
                    log::info!("edge4d device: {summary}");
                    return Ok(Self::from_state(DeviceState {
                        id: Self::next_id(),
                        backend: Backend::Gpu(gpu),
                        summary,
                        limits,
                        pool,
                        matmul_override,
                        profile: profiling(),
                        dispatches: Default::default(),
                    }));
                }
                Err(e) => tried.push(format!("{summary}: {e}")),
            }
        }
        Err(Error::NoAdapter {
            requested: choice.name().into(),
            tried,
            hint: NO_ADAPTER_HINT.into(),
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

    /// True on the native CPU backend.
    pub fn is_native_cpu(&self) -> bool {
        matches!(self.backend, Backend::Cpu(_))
    }

    /// The limits the device was opened with (the native CPU backend keeps WebGPU's
    /// defaults, so every backend refuses the same sizes).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Lists every backend edge4d can use, for `edge4d info`: the GPU adapters wgpu
    /// sees, then the native CPU backend.
    pub fn enumerate(backend: BackendChoice) -> Vec<(AdapterSummary, wgpu::Limits)> {
        let mut out: Vec<(AdapterSummary, wgpu::Limits)> = crate::gpu::adapters(backend)
            .iter()
            .map(|a| (AdapterSummary::of(&a.get_info()), a.limits()))
            .collect();
        if matches!(backend, BackendChoice::Auto | BackendChoice::Cpu) {
            if let Ok(threads) = crate::cpu::threads_from_env() {
                out.push((crate::cpu::summary(threads), crate::cpu::limits()));
            }
        }
        out
    }

    /// Number of bind groups cached (for tests of the cache; 0 on the CPU backend).
    pub fn cached_bind_groups(&self) -> usize {
        match &self.backend {
            Backend::Gpu(g) => g.bind_groups.lock().map(|c| c.len()).unwrap_or(0),
            Backend::Cpu(_) => 0,
        }
    }

    /// Writes the pipelines compiled so far to the user's cache directory where the
    /// backend keeps compiled pipelines across runs (Vulkan; see
    /// [`crate::pipeline_cache`]), so the next process starts warm. Returns whether a
    /// file was written. Also done when the device closes.
    pub fn save_pipeline_cache(&self) -> Result<bool> {
        match &self.backend {
            Backend::Gpu(g) => g.save_pipeline_cache(),
            Backend::Cpu(_) => Ok(false),
        }
    }

    /// Number of compute pipelines compiled so far (native kernels on the CPU backend).
    pub fn compiled_pipelines(&self) -> usize {
        match &self.backend {
            Backend::Gpu(g) => g.compiled_pipelines(),
            Backend::Cpu(c) => c.kernels_used(),
        }
    }

    /// Bytes of pooled buffers on loan now and the most on loan at once since the
    /// device opened or the last [`Device::reset_peak_bytes`].
    pub fn memory_in_use(&self) -> (u64, u64) {
        self.pool.usage()
    }

    /// Compute dispatches submitted since the device opened (kernel launches on a GPU,
    /// native kernel runs on the CPU backend): the benches report them per step.
    pub fn dispatches(&self) -> u64 {
        self.dispatches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts a new peak measurement at the current use.
    pub fn reset_peak_bytes(&self) {
        self.pool.reset_peak()
    }
}
