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
    /// Tube embedding (msr, actionseg); the segmentation net fixes its own strides.
    #[serde(default)]
    pub spatial_stride: Option<usize>,
    #[serde(default)]
    pub temporal_kernel_size: Option<usize>,
    #[serde(default)]
    pub temporal_stride: Option<usize>,
    /// Frames replicated before and after the clip; defaults to the reference model's
    /// ([1, 0] for msr, [1, 1] for actionseg).
    #[serde(default)]
    pub temporal_padding: Option<[usize; 2]>,
    /// "replicate" (the reference models' choice, default) or "zeros".
    #[serde(default)]
    pub temporal_padding_mode: super::p4dconv::PaddingMode,
    #[serde(default)]
    pub emb_relu: bool,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub mlp_dim: usize,
    /// Classes the head predicts; absent (0) in a pre-training config, whose backbone
    /// has no head.
    #[serde(default)]
    pub num_classes: usize,
    /// Segmentation net: `mlp_planes` of conv1..conv4 (default: the paper's
    /// [[32,64,128],[128,128,256],[256,256,512],[512,512,1024]]).
    #[serde(default)]
    pub widths: Option<Vec<[usize; 3]>>,
    /// Segmentation net: `mlp_planes` of deconv4..deconv1 (default
    /// [[256,256],[256,256],[128,128],[128,128]]).
    #[serde(default)]
    pub deconv: Option<Vec<[usize; 2]>>,
    /// Multiplies the frame index (1, 2, …) the positional embedding sees; default 1,
    /// as the reference models. Long sequences keep time near the coordinates' scale
    /// with it, e.g. 1/15 (seconds at 15 fps) for 150 frames.
    #[serde(default)]
    pub time_scale: Option<f32>,
    /// C2P predictor width (pre-training only).
    #[serde(default)]
    pub pred_hidden: Option<usize>,
    /// C2P InfoNCE temperature (pre-training only).
    #[serde(default)]
    pub tau: Option<f32>,
}

/// Deserialises a config from TOML text; `origin` names the source in errors.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::Config {
        path: origin.to_string(),
        detail: e.to_string(),
    })
}

/// Reads a config file: (text, the path as errors name it).
pub(crate) fn read_config(path: &Path) -> Result<(String, String)> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: origin.clone(),
        detail: format!("cannot read: {e}"),
    })?;
    Ok((text, origin))
}

impl P4TransformerConfig {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let cfg: Self = from_toml(text, origin)?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let (text, origin) = read_config(path.as_ref())?;
        Self::parse(&text, &origin)
    }

    /// The transformer's hyper-parameters.
    pub fn transformer(&self) -> super::transformer::TransformerConfig {
        super::transformer::TransformerConfig {
            dim: self.dim,
            depth: self.depth,
            heads: self.heads,
            dim_head: self.dim_head,
            mlp_dim: self.mlp_dim,
        }
    }

    /// Refuses a config without `num_classes` (a pre-training config) where `what`
    /// needs a classification head.
    pub fn require_head(&self, what: &str) -> Result<()> {
        if self.num_classes > 0 {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: "config",
            detail: format!(
                "the {what} needs `num_classes` for its head; this config has none (a pre-training config): add num_classes to fine-tune, evaluate or stream with it"
            ),
        })
    }

    /// The temporal padding in effect.
    pub fn padding(&self) -> [usize; 2] {
        self.temporal_padding.unwrap_or(match self.model {
            ModelKind::Msr => [1, 0],
            ModelKind::ActionSeg => [1, 1],
            ModelKind::Synthia => [0, 0],
        })
    }

    /// The factor on the frame index in the positional embedding.
    pub fn time_scale(&self) -> f32 {
        self.time_scale.unwrap_or(1.0)
    }

    /// Spatial stride of the tube embedding (validated present for msr/actionseg).
    pub fn spatial_stride(&self) -> usize {
        self.spatial_stride.unwrap_or(1)
    }

    pub fn temporal_kernel_size(&self) -> usize {
        self.temporal_kernel_size.unwrap_or(1)
    }

    pub fn temporal_stride(&self) -> usize {
        self.temporal_stride.unwrap_or(1)
    }

    /// The segmentation net's conv widths.
    pub fn widths(&self) -> Vec<[usize; 3]> {
        self.widths.clone().unwrap_or_else(|| {
            vec![
                [32, 64, 128],
                [128, 128, 256],
                [256, 256, 512],
                [512, 512, 1024],
            ]
        })
    }

    /// The segmentation net's deconv widths (deconv4 first).
    pub fn deconv(&self) -> Vec<[usize; 2]> {
        self.deconv
            .clone()
            .unwrap_or_else(|| vec![[256, 256], [256, 256], [128, 128], [128, 128]])
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::Config {
                path: origin.to_string(),
                detail,
            })
        };
        if self.model == ModelKind::Synthia {
            if self.widths().len() != 4 || self.deconv().len() != 4 {
                return bad(
                    "widths needs 4 entries (conv1..conv4) and deconv 4 (deconv4..deconv1)".into(),
                );
            }
            if self.widths()[3][2] != self.dim {
                return bad(format!(
                    "dim ({}) must equal conv4's output width ({}): the transformer runs on conv4's features",
                    self.dim,
                    self.widths()[3][2]
                ));
            }
        } else {
            for (key, v) in [
                ("spatial_stride", self.spatial_stride),
                ("temporal_kernel_size", self.temporal_kernel_size),
                ("temporal_stride", self.temporal_stride),
            ] {
                if v.is_none() {
                    return bad(format!(
                        "missing key `{key}` (required by {})",
                        self.model.name()
                    ));
                }
            }
        }
        if !(self.time_scale().is_finite() && self.time_scale() > 0.0) {
            return bad(format!(
                "time_scale must be a positive number, got {}",
                self.time_scale()
            ));
        }
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return bad(format!(
                "radius must be a positive number, got {}",
                self.radius
            ));
        }
        for (key, v) in [
            ("nsamples", self.nsamples),
            ("spatial_stride", self.spatial_stride()),
            ("temporal_kernel_size", self.temporal_kernel_size()),
            ("temporal_stride", self.temporal_stride()),
            ("dim", self.dim),
            ("depth", self.depth),
            ("heads", self.heads),
            ("dim_head", self.dim_head),
            ("mlp_dim", self.mlp_dim),
        ] {
            if v == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        if self.temporal_kernel_size() % 2 == 0 {
            return bad(format!(
                "temporal_kernel_size must be odd, got {}",
                self.temporal_kernel_size()
            ));
        }
        self.check_sizes().or_else(bad)
    }

    /// Refuses sizes no device can hold, before anything is allocated (see
    /// [`check_weight_sizes`]).
    fn check_sizes(&self) -> std::result::Result<(), String> {
        let v = |x: usize| x as u128;
        let inner = v(self.heads) * v(self.dim_head);
        let hidden = v(self.pred_hidden.unwrap_or(0));
        let per_layer = v(self.dim) * 4 * inner + 2 * v(self.dim) * v(self.mlp_dim);
        check_weight_sizes(
            &[
                ("dim, heads and dim_head (to_qkv)", v(self.dim) * 3 * inner),
                (
                    "dim and mlp_dim (the feed-forward)",
                    v(self.dim) * v(self.mlp_dim),
                ),
                (
                    "mlp_dim and num_classes (the head)",
                    v(self.mlp_dim.max(self.dim)) * v(self.num_classes),
                ),
                ("dim and pred_hidden (the predictors)", v(self.dim) * hidden),
            ],
            &format!("depth = {} layers of this width", self.depth),
            v(self.depth) * per_layer,
        )
    }
}

/// Refuses sizes no device can hold, before anything is allocated: every weight
/// matrix (`matrices`: the keys that size it, its floats) must fit one binding
/// (WebGPU's default 128 MiB, the limit every backend keeps), and all parameters
/// together (`total`, described by `total_keys`) at most 1 GiB of floats (with
/// gradients and optimizer state a training run needs four times that).
pub(crate) fn check_weight_sizes(
    matrices: &[(&str, u128)],
    total_keys: &str,
    total: u128,
) -> std::result::Result<(), String> {
    const BINDING_FLOATS: u128 = (128 << 20) / 4;
    const TOTAL_FLOATS: u128 = (1 << 30) / 4;
    let gib = |floats: u128| floats as f64 * 4.0 / (1u64 << 30) as f64;
    for &(keys, floats) in matrices {
        if floats > BINDING_FLOATS {
            return Err(format!(
                "{keys} make a weight of {floats} floats ({:.2} GiB), above the 128 MiB one tensor may take: make them smaller",
                gib(floats)
            ));
        }
    }
    if total > TOTAL_FLOATS {
        return Err(format!(
            "{total_keys} hold {total} parameters ({:.1} GiB), above the 1 GiB a model may take",
            gib(total)
        ));
    }
    Ok(())
}
