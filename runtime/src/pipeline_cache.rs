//! Where compiled GPU pipelines persist between runs: one file per adapter and driver
//! version (wgpu's pipeline cache, Vulkan only) in the user's cache directory:
//! `$EDGE4D_CACHE_DIR`, else `$XDG_CACHE_HOME/edge4d`, `$HOME/.cache/edge4d` or
//! `%LOCALAPPDATA%\edge4d`, under `pipelines/`. `EDGE4D_PIPELINE_CACHE=off` turns it off.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The user's edge4d cache directory, when one can be named.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("EDGE4D_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("edge4d")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("edge4d")))
        .or_else(|| var("LOCALAPPDATA").map(|d| d.join("edge4d")))
}

/// Whether `EDGE4D_PIPELINE_CACHE` leaves the cache on (anything but off, 0, false).
fn enabled() -> bool {
    !matches!(
        std::env::var("EDGE4D_PIPELINE_CACHE").as_deref(),
        Ok("off" | "0" | "false")
    )
}

/// The cache file for `info`'s adapter and driver, where the backend has a pipeline
/// cache and a cache directory exists or can be made.
pub(crate) fn file_for(info: &wgpu::AdapterInfo) -> Option<PathBuf> {
    if !enabled() {
        return None;
    }
    let key = wgpu::util::pipeline_cache_key(info)?;
    // The driver's version too, so an updated driver starts a new file.
    let driver: String = format!("{}_{}", info.driver, info.driver_info)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Some(
        cache_dir()?
            .join("pipelines")
            .join(format!("{key}_{driver}.bin")),
    )
}

/// Writes `data` to `file` atomically (a temporary file renamed over it).
pub(crate) fn write(file: &Path, data: &[u8]) -> Result<()> {
    let fail =
        |what: &str, e: std::io::Error| Error::Device(format!("{}: {what}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create its folder", e))?;
    }
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(|e| fail("cannot write the pipeline cache", e))?;
    std::fs::rename(&tmp, file).map_err(|e| fail("cannot move the pipeline cache in place", e))
}
