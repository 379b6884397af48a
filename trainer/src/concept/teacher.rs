//! The frozen 2D teacher: any ONNX model mapping a CLIP-preprocessed image
//! (1, 3, 224, 224) to a prefix (1, k_cap, d_cap) (CLIP ViT-B/32 + ClipCap's MLP mapper,
//! reference-spec §8, exported by `scripts/export_clip_clipcap.py`), run on the CPU by
//! tract. Loading checks the output shape against the configured prefix, so a wrong
//! model fails before any training starts.

use std::path::{Path, PathBuf};

use edge4d_runtime::Result;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use super::preprocess::{clip_preprocess, CLIP_SIZE};
use crate::file_error as err;

/// A loaded, optimised teacher.
pub struct Teacher {
    plan: TypedSimplePlan<TypedModel>,
    path: PathBuf,
    /// SHA-256 of the ONNX file: the cache's key for "which teacher made this".
    pub digest: String,
    pub prefix_length: usize,
    pub prefix_dim: usize,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Teacher {
    /// Loads `path` whatever prefix it makes: its output must be (1, k_cap, d_cap).
    pub fn load_any(path: &Path) -> Result<Self> {
        let (plan, digest) = Self::plan(path)?;
        match Self::output_shape(&plan, path)?[..] {
            [1, k, d] => Ok(Self {
                plan,
                path: path.to_path_buf(),
                digest,
                prefix_length: k,
                prefix_dim: d,
            }),
            ref other => Err(err(
                path,
                format!(
                    "the teacher outputs {other:?} for one image, not a prefix (1, k_cap, d_cap)"
                ),
            )),
        }
    }

    /// Loads `path` and checks that it maps (1, 3, 224, 224) to k_cap × d_cap values.
    pub fn load(path: &Path, prefix_length: usize, prefix_dim: usize) -> Result<Self> {
        let (plan, digest) = Self::plan(path)?;
        let out_shape = Self::output_shape(&plan, path)?;
        let numel: usize = out_shape.iter().product();
        if out_shape.first() != Some(&1) || numel != prefix_length * prefix_dim {
            return Err(err(
                path,
                format!(
                    "the teacher outputs {out_shape:?} for one image, but the config expects a prefix of {prefix_length} × {prefix_dim} (prefix_length × prefix_dim)"
                ),
            ));
        }
        Ok(Self {
            plan,
            path: path.to_path_buf(),
            digest,
            prefix_length,
            prefix_dim,
        })
    }

    /// The optimised plan of `path` for one 224 × 224 image, and the file's SHA-256.
    fn plan(path: &Path) -> Result<(TypedSimplePlan<TypedModel>, String)> {
        let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        let side = CLIP_SIZE as usize;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, side, side]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| err(path, format!("not an ONNX model tract can run: {e:#}")))?;
        Ok((plan, sha256_hex(&bytes)))
    }

    fn output_shape(plan: &TypedSimplePlan<TypedModel>, path: &Path) -> Result<Vec<usize>> {
        let fact = plan
            .model()
            .output_fact(0)
            .map_err(|e| err(path, format!("has no output: {e}")))?;
        fact.shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| err(path, format!("output shape {:?} is not fixed", fact.shape)))
    }

    /// The prefix (k_cap · d_cap values) for one preprocessed image (3 · 224 · 224 values).
    pub fn run_preprocessed(&self, chw: &[f32]) -> Result<Vec<f32>> {
        let side = CLIP_SIZE as usize;
        let input = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), chw.to_vec())
            .map_err(|e| err(&self.path, format!("input is not 3 × 224 × 224: {e}")))?;
        let out = self
            .plan
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|e| err(&self.path, format!("inference failed: {e:#}")))?;
        let view = out[0]
            .to_array_view::<f32>()
            .map_err(|e| err(&self.path, format!("output is not float32: {e}")))?;
        let v: Vec<f32> = view.iter().copied().collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(err(&self.path, format!("output {i} is {}", v[i])));
        }
        Ok(v)
    }

    /// The prefix for a decoded RGB image.
    pub fn run(&self, img: &image::RgbImage) -> Result<Vec<f32>> {
        self.run_preprocessed(&clip_preprocess(img))
    }
}
