//! safetensors files on the host: checkpoints (under PyTorch's state_dict names),
//! model inputs and outputs, and the golden fixtures. Writes are atomic (temporary
//! file in the same folder, then rename), so a crash never leaves a half-written file
//! in place of the last good one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{Error, Result};

/// A host tensor: f32 values and a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

impl HostTensor {
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Self {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Self {
            data,
            shape: shape.to_vec(),
        }
    }
}

/// One value to write: f32 data, or integers stored as int64 (labels, counters).
#[derive(Debug, Clone)]
pub enum Stored {
    F32(HostTensor),
    I64(Vec<i64>, Vec<usize>),
}

/// A safetensors file read into memory.
pub struct TensorFile {
    path: String,
    bytes: Vec<u8>,
}

impl TensorFile {
    /// Reads and validates the file's header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let p = path.as_ref();
        let bytes = std::fs::read(p).map_err(|e| Error::TensorFile {
            path: p.display().to_string(),
            detail: format!("cannot read: {e}"),
        })?;
        Self::from_bytes(&p.display().to_string(), bytes)
    }

    /// Wraps bytes already in memory; `name` is used in error messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        let f = Self {
            path: name.to_string(),
            bytes,
        };
        f.parsed()?;
        Ok(f)
    }

    fn err(&self, detail: String) -> Error {
        Error::TensorFile {
            path: self.path.clone(),
            detail,
        }
    }

    fn parsed(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes)
            .map_err(|e| self.err(format!("not a valid safetensors file: {e}")))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .parsed()
            .map(|p| p.names().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        n.sort();
        n
    }

    pub fn contains(&self, name: &str) -> bool {
        self.parsed()
            .map(|p| p.tensor(name).is_ok())
            .unwrap_or(false)
    }

    /// The file's string metadata (`__metadata__`).
    pub fn metadata(&self) -> HashMap<String, String> {
        SafeTensors::read_metadata(&self.bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().clone())
            .unwrap_or_default()
    }

    fn view(&self, name: &str) -> Result<TensorView<'_>> {
        self.parsed()?
            .tensor(name)
            .map_err(|_| self.err(format!("has no tensor named {name:?}")))
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.view(name)?.shape().to_vec())
    }

    /// A floating-point tensor as f32 (F32 as is, F64 rounded).
    pub fn f32(&self, name: &str) -> Result<HostTensor> {
        let v = self.view(name)?;
        let d = v.data();
        let data: Vec<f32> = match v.dtype() {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => {
                return Err(self.err(format!(
                    "tensor {name:?} is {other:?}, expected a float tensor"
                )))
            }
        };
        Ok(HostTensor {
            data,
            shape: v.shape().to_vec(),
        })
    }

    /// A floating-point tensor as f64 (exact for F64 and F32).
    pub fn f64(&self, name: &str) -> Result<(Vec<f64>, Vec<usize>)> {
        let v = self.view(name)?;
        let d = v.data();
        let data = match v.dtype() {
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            _ => self.f32(name)?.data.into_iter().map(f64::from).collect(),
        };
        Ok((data, v.shape().to_vec()))
    }

    /// An integer tensor (I32, I64, U32, U8) as i64.
    pub fn i64(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let v = self.view(name)?;
        let d = v.data();
        let data = match v.dtype() {
            Dtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            Dtype::U32 => d
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            Dtype::U8 => d.iter().map(|&b| b as i64).collect(),
            other => {
                return Err(self.err(format!(
                    "tensor {name:?} is {other:?}, expected an integer tensor"
                )))
            }
        };
        Ok((data, v.shape().to_vec()))
    }

    /// A non-negative integer tensor as u32 (indices, labels).
    pub fn u32(&self, name: &str) -> Result<(Vec<u32>, Vec<usize>)> {
        let (v, shape) = self.i64(name)?;
        let data = v
            .iter()
            .map(|&x| {
                u32::try_from(x)
                    .map_err(|_| self.err(format!("tensor {name:?} holds {x}, not a valid index")))
            })
            .collect::<Result<_>>()?;
        Ok((data, shape))
    }
}

/// Serialises `tensors` with `metadata` and writes them atomically to `path`.
pub fn write_atomic(
    path: impl AsRef<Path>,
    tensors: &[(String, Stored)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let err = |detail: String| Error::TensorFile {
        path: path.display().to_string(),
        detail,
    };
    let bytes: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| match t {
            Stored::F32(h) => (
                name.clone(),
                h.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F32,
                h.shape.clone(),
            ),
            Stored::I64(v, shape) => (
                name.clone(),
                v.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::I64,
                shape.clone(),
            ),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, d, s)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(format!("tensor {n:?}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = (!metadata.is_empty()).then_some(metadata);
    let data =
        safetensors::serialize(views, meta).map_err(|e| err(format!("cannot serialise: {e}")))?;
    write_bytes_atomic(path, &data)
}

/// Writes `data` to a temporary file beside `path`, syncs it, then renames it over `path`.
pub fn write_bytes_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let err = |what: &str, e: std::io::Error| Error::TensorFile {
        path: path.display().to_string(),
        detail: format!("{what}: {e}"),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).map_err(|e| err("cannot create a temporary file", e))?;
    f.write_all(data).map_err(|e| err("cannot write", e))?;
    f.sync_all().map_err(|e| err("cannot sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err("cannot move the finished file into place", e)
    })
}
