//! Teacher prefixes cached in one safetensors file, one tensor per image named by the
//! SHA-256 of the image file's bytes, so a device trains without re-running the teacher.
//! The file's metadata records which teacher (the ONNX file's SHA-256), which prefix
//! shape and which preprocessing made the entries: entries from another teacher or
//! preprocessing are stale and dropped (and recomputed); an entry of the wrong shape is
//! a corrupt cache and an error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use edge4d_runtime::tensor_file::{write_atomic, HostTensor, Stored};
use edge4d_runtime::{Error, Result, TensorFile};

/// Names the preprocessing in the cache; bump it when `preprocess` changes.
pub const PREPROCESS_ID: &str = "clip-vit-b32-224/v1";

pub struct PrefixCache {
    path: PathBuf,
    teacher: String,
    shape: [usize; 2],
    entries: BTreeMap<String, Vec<f32>>,
    dirty: bool,
    /// Entries found in the file but made by another teacher or preprocessing.
    pub dropped_stale: usize,
    /// Lookups answered from the cache / computed by the teacher since opening.
    pub hits: usize,
    pub misses: usize,
}

impl PrefixCache {
    /// Opens (or starts) the cache at `path` for the teacher whose digest is given.
    pub fn open(
        path: &Path,
        teacher_digest: &str,
        prefix_length: usize,
        prefix_dim: usize,
    ) -> Result<Self> {
        let mut cache = Self {
            path: path.to_path_buf(),
            teacher: teacher_digest.to_string(),
            shape: [prefix_length, prefix_dim],
            entries: BTreeMap::new(),
            dirty: false,
            dropped_stale: 0,
            hits: 0,
            misses: 0,
        };
        if !path.exists() {
            return Ok(cache);
        }
        let file = TensorFile::open(path)?;
        let meta = file.metadata();
        let names = file.names();
        let same_maker = meta.get("teacher") == Some(&cache.teacher)
            && meta.get("preprocess").map(String::as_str) == Some(PREPROCESS_ID);
        if !same_maker {
            cache.dropped_stale = names.len();
            cache.dirty = true;
            log::warn!(
                "{}: {} cached prefixes were made by another teacher or preprocessing; recomputing",
                path.display(),
                names.len()
            );
            return Ok(cache);
        }
        for name in names {
            let t = file.f32(&name)?;
            if t.shape != cache.shape {
                return Err(Error::TensorFile {
                    path: path.display().to_string(),
                    detail: format!(
                        "cached prefix {name} has shape {:?}, expected {:?}; delete the cache to rebuild it",
                        t.shape, cache.shape
                    ),
                });
            }
            cache.entries.insert(name, t.data);
        }
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The prefix of the image whose content hash is `key`, computing and storing it on
    /// a miss.
    pub fn get_or_compute(
        &mut self,
        key: &str,
        compute: impl FnOnce() -> Result<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        if let Some(v) = self.entries.get(key) {
            self.hits += 1;
            return Ok(v.clone());
        }
        let v = compute()?;
        if v.len() != self.shape[0] * self.shape[1] {
            return Err(Error::InvalidArgument {
                op: "prefix cache",
                detail: format!("a prefix of {} values for shape {:?}", v.len(), self.shape),
            });
        }
        self.misses += 1;
        self.entries.insert(key.to_string(), v.clone());
        self.dirty = true;
        Ok(v)
    }

    /// Writes the cache atomically when it changed.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let tensors: Vec<(String, Stored)> = self
            .entries
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Stored::F32(HostTensor {
                        data: v.clone(),
                        shape: self.shape.to_vec(),
                    }),
                )
            })
            .collect();
        let meta = HashMap::from([
            ("teacher".to_string(), self.teacher.clone()),
            ("preprocess".to_string(), PREPROCESS_ID.to_string()),
            (
                "prefix_shape".to_string(),
                format!("{}x{}", self.shape[0], self.shape[1]),
            ),
        ]);
        write_atomic(&self.path, &tensors, meta)?;
        self.dirty = false;
        Ok(())
    }
}
