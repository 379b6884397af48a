//! Model configurations in TOML. Keys are the reference constructors' argument names
//! (`radius`, `nsamples`, `spatial_stride`, …) plus `model`, which names the network.
//! Unknown and missing keys are errors that name the key.

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// Which network a config builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ModelKind {
    /// P4Transformer for action recognition (models/msr.py): one prediction per clip.
    #[serde(rename = "p4transformer-msr")]
    Msr,
    /// P4Transformer for 4D semantic segmentation (models/synthia.py).
    #[serde(rename = "p4transformer-synthia")]
    Synthia,
    /// HOI4D action segmentation (AS_p4_base.py): one prediction per frame.
    #[serde(rename = "p4transformer-actionseg")]
    ActionSeg,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Msr => "p4transformer-msr",
            Self::Synthia => "p4transformer-synthia",
            Self::ActionSeg => "p4transformer-actionseg",
        }
    }
}

/// A P4Transformer-family configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P4TransformerConfig {
    pub model: ModelKind,
    pub radius: f32,
    pub nsamples: usize,
    pub spatial_stride: usize,
    pub temporal_kernel_size: usize,
    pub temporal_stride: usize,
    /// Frames replicated before and after the clip; defaults to the reference model's
    /// ([1, 0] for msr, [1, 1] for actionseg).
    #[serde(default)]
    pub temporal_padding: Option<[usize; 2]>,
    #[serde(default)]
    pub emb_relu: bool,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub mlp_dim: usize,
    pub num_classes: usize,
    /// C2P predictor width (pre-training only).
    #[serde(default)]
    pub pred_hidden: Option<usize>,
    /// C2P InfoNCE temperature (pre-training only).
    #[serde(default)]
    pub tau: Option<f32>,
}

impl P4TransformerConfig {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_string(),
            detail: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| Error::Config {
            path: p.display().to_string(),
            detail: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &p.display().to_string())
    }

    /// The temporal padding in effect.
    pub fn padding(&self) -> [usize; 2] {
        self.temporal_padding.unwrap_or(match self.model {
            ModelKind::Msr => [1, 0],
            ModelKind::ActionSeg => [1, 1],
            ModelKind::Synthia => [0, 0],
        })
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Config {
                path: origin.to_string(),
                detail,
            })
        };
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return bad(format!(
                "radius must be a positive number, got {}",
                self.radius
            ));
        }
        for (key, v) in [
            ("nsamples", self.nsamples),
            ("spatial_stride", self.spatial_stride),
            ("temporal_kernel_size", self.temporal_kernel_size),
            ("temporal_stride", self.temporal_stride),
            ("dim", self.dim),
            ("depth", self.depth),
            ("heads", self.heads),
            ("dim_head", self.dim_head),
            ("mlp_dim", self.mlp_dim),
            ("num_classes", self.num_classes),
        ] {
            if v == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        if self.temporal_kernel_size % 2 == 0 {
            return bad(format!(
                "temporal_kernel_size must be odd, got {}",
                self.temporal_kernel_size
            ));
        }
        Ok(())
    }
}
