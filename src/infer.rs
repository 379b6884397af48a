//! `edge4d infer`: one forward pass of a P4Transformer-family model on a clip file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use edge4d_runtime::models::synthia::SegmentationNet;
use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Device, Error, HostTensor, TensorFile};

#[derive(Args)]
pub struct InferArgs {
    /// Model config (TOML; keys as the reference constructors' arguments plus `model`).
    #[arg(long)]
    config: PathBuf,
    /// Weights: a safetensors state_dict under PyTorch's parameter names.
    #[arg(long)]
    weights: PathBuf,
    /// Input safetensors holding `clip` (B, L, N, 3) float32, and for the segmentation
    /// net `features` (B, L, 3, N) (colours in [0, 1], as models/synthia.py's rgbs).
    #[arg(long)]
    input: PathBuf,
    /// Output safetensors: `logits` ((B, classes) per clip, (B, L', classes) per frame, or
    /// (B, L, N, classes) per point) and `prediction` (argmax, int64).
    #[arg(long)]
    output: PathBuf,
}

pub fn run(dev: &Device, args: &InferArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = P4TransformerConfig::load(&args.config)?;
    let weights = TensorFile::open(&args.weights)?;
    let input = TensorFile::open(&args.input)?;
    if !input.contains("clip") {
        return Err(Error::TensorFile {
            path: args.input.display().to_string(),
            detail: format!(
                "has no tensor named \"clip\" (found: {})",
                input.names().join(", ")
            ),
        }
        .into());
    }
    let clip = input.f32("clip")?;
    let clip_dev = dev
        .upload(&clip.data, &clip.shape)
        .map_err(|e| Error::TensorFile {
            path: args.input.display().to_string(),
            detail: format!("clip {:?}: {e}", clip.shape),
        })?;
    let (logits_dev, started) = if cfg.model == ModelKind::Synthia {
        let net = SegmentationNet::new(cfg.clone())?;
        let params = ParamStore::load(dev, net.spec(), &weights, "", false)?;
        if !input.contains("features") {
            return Err(Error::TensorFile {
                path: args.input.display().to_string(),
                detail:
                    "the segmentation net needs per-point `features` (B, L, 3, N) beside `clip`"
                        .into(),
            }
            .into());
        }
        let feat = input.f32("features")?;
        let feat_dev = dev
            .upload(&feat.data, &feat.shape)
            .map_err(|e| Error::TensorFile {
                path: args.input.display().to_string(),
                detail: format!("features {:?}: {e}", feat.shape),
            })?;
        let started = Instant::now();
        (
            dev.run(|s| Ok(net.forward(s, &params, &clip_dev, &feat_dev, false)?.logits))?,
            started,
        )
    } else {
        let model = P4Transformer::new(cfg.clone())?;
        let params = ParamStore::load(dev, model.spec(), &weights, "", false)?;
        let started = Instant::now();
        (
            dev.run(|s| Ok(model.forward(s, &params, &clip_dev)?.logits))?,
            started,
        )
    };
    let logits = dev.read(&logits_dev)?;
    if let Some(i) = logits.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "the logits are not finite (element {i} is {}): {} or {} holds values too large for f32 arithmetic",
            logits[i],
            args.input.display(),
            args.weights.display()
        )
        .into());
    }
    let elapsed = started.elapsed();
    let shape = logits_dev.shape().to_vec();
    let classes = *shape.last().unwrap();
    let prediction: Vec<i64> = logits
        .chunks(classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                })
                .0 as i64
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("model".to_string(), cfg.model.name().to_string());
    meta.insert("adapter".to_string(), dev.adapter().to_string());
    write_atomic(
        &args.output,
        &[
            (
                "logits".to_string(),
                Stored::F32(HostTensor::new(logits, &shape)),
            ),
            (
                "prediction".to_string(),
                Stored::I64(prediction.clone(), shape[..shape.len() - 1].to_vec()),
            ),
        ],
        meta,
    )?;
    println!("adapter: {}", dev.adapter());
    println!(
        "{}: clip {:?} → logits {:?} in {:.1} ms (forward and readback)",
        cfg.model.name(),
        clip.shape,
        shape,
        elapsed.as_secs_f64() * 1e3
    );
    let per = if cfg.model == ModelKind::ActionSeg {
        "per frame"
    } else {
        "per clip"
    };
    println!("prediction ({per}): {prediction:?}");
    println!("wrote {}", args.output.display());
    Ok(())
}
