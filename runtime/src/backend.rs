//! What names a backend: the choice the caller makes (`EDGE4D_BACKEND`) and the
//! description of the adapter it got, shared by the GPU and CPU backends.

use crate::{Error, Result};

/// Which backend to use (`EDGE4D_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// A real GPU (Vulkan, Metal, DX12, then GL), else the native CPU backend. Mesa's
    /// software adapters (lavapipe, llvmpipe) are used only when named.
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    /// Native Rust kernels on the host's cores.
    Cpu,
}

impl BackendChoice {
    /// Parses `auto|vulkan|metal|dx12|gl|cpu` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "vulkan" | "vk" => Ok(Self::Vulkan),
            "metal" => Ok(Self::Metal),
            "dx12" | "d3d12" => Ok(Self::Dx12),
            "gl" | "gles" | "opengl" => Ok(Self::Gl),
            "cpu" | "native" => Ok(Self::Cpu),
            _ => Err(Error::UnknownBackend(s.to_string())),
        }
    }

    /// Reads `EDGE4D_BACKEND`, defaulting to `auto`.
    pub fn from_env() -> Result<Self> {
        Self::parse(&std::env::var("EDGE4D_BACKEND").unwrap_or_default())
    }

    pub(crate) fn backends(self) -> wgpu::Backends {
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
            Self::Cpu => wgpu::Backends::empty(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Vulkan => "vulkan",
            Self::Metal => "metal",
            Self::Dx12 => "dx12",
            Self::Gl => "gl",
            Self::Cpu => "cpu",
        }
    }
}

/// A description of one adapter, for logs and `edge4d info`.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A software or host adapter (lavapipe, llvmpipe, the native CPU backend).
    pub is_cpu: bool,
}

impl AdapterSummary {
    pub(crate) fn of(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            is_cpu: is_software(info),
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

/// Mesa's and others' software rasterisers: a CPU behind a GPU API.
fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_ascii_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "softpipe", "swiftshader", "warp"]
            .iter()
            .any(|s| name.contains(s))
}

/// On a machine without a desktop session (no `XDG_RUNTIME_DIR`), points that variable
/// at a private directory, so that probing Mesa's Vulkan drivers does not print
/// "XDG_RUNTIME_DIR is invalid or not set" — words a newcomer reads as edge4d failing.
/// Changes the process environment: call it first thing in `main`, before any thread
/// starts. A variable that already names a directory is left alone.
pub fn prepare_headless_env() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir()) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let owner = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("edge4d-runtime-{owner}"));
        let private = std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .is_ok();
        if private {
            // Single-threaded at this point, as the contract above asks.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}
