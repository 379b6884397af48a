//! `edge4d eval`: accuracy of a model on a clip dataset, with the reference metrics —
//! per-clip accuracy and a per-class table for action recognition; framewise accuracy,
//! segmental edit score and F1@{10,25,50} (MS-TCN) for action segmentation; per-class
//! IoU and mIoU (Synthia 4D or HOI4D protocol) for semantic segmentation.

use std::path::PathBuf;

use clap::Args;
use edge4d_runtime::models::synthia::SegmentationNet;
use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::{Device, TensorFile};
use edge4d_trainer::dataset::{ClipDataset, Labels};
use edge4d_trainer::metrics::{edit_score, f1_from_counts, f_score_counts, video_accuracy};

#[derive(Args)]
pub struct EvalArgs {
    /// Model config (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Weights (a state_dict, e.g. a finetune run's model.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// Dataset file (`clip` and `label`).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,
    /// Class names for the table, comma-separated (default: class numbers).
    #[arg(long, value_delimiter = ',')]
    class_names: Vec<String>,
    /// One JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Write the predicted classes as a NumPy int64 array: (clips,) per clip, (clips,
    /// frames) per frame — the HOI4D challenge's `pred.npy` — or (clips, frames, points).
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Semantic segmentation's mIoU: synthia (argmax over all classes, mean over all)
    /// or hoi4d (argmax over classes 2.., mean over present classes except 0 and 1).
    #[arg(long, value_enum, default_value_t = Miou::Synthia)]
    miou: Miou,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Miou {
    Synthia,
    Hoi4d,
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

pub fn run(dev: &Device, args: &EvalArgs) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = P4TransformerConfig::load(&args.config)?;
    if cfg.model == ModelKind::Synthia {
        return segmentation(dev, args, cfg);
    }
    let model = P4Transformer::new(cfg.clone())?;
    let params = ParamStore::load(
        dev,
        model.spec(),
        &TensorFile::open(&args.weights)?,
        "",
        false,
    )?;
    let data = ClipDataset::load(&args.data)?;
    let per_frame_model = cfg.model == ModelKind::ActionSeg;
    match (&data.labels, per_frame_model) {
        (Labels::PerClip(_), true) | (Labels::PerFrame(_), false) => {
            let (model, labels) = if per_frame_model {
                ("one prediction per frame", "one label per clip")
            } else {
                ("one prediction per clip", "one label per frame")
            };
            return Err(format!(
                "{} ({}) makes {model}, but {} holds {labels}: evaluate a {} model on this data",
                args.config.display(),
                cfg.model.name(),
                args.data.display(),
                if per_frame_model {
                    "p4transformer-msr"
                } else {
                    "p4transformer-actionseg"
                }
            )
            .into());
        }
        _ => {}
    }
    if let Labels::PerClip(labels) | Labels::PerFrame(labels) = &data.labels {
        if let Some(i) = labels.iter().position(|&y| y as usize >= cfg.num_classes) {
            return Err(format!(
                "{}: label {i} is {}, but the model has {} classes (0 to {})",
                args.data.display(),
                labels[i],
                cfg.num_classes,
                cfg.num_classes - 1
            )
            .into());
        }
    }
    let [b, l, n, _] = data.clips_shape;
    let all: Vec<usize> = (0..b).collect();
    let mut probs: Vec<Vec<f64>> = Vec::new();
    for chunk in all.chunks(args.batch_size.max(1)) {
        let (clips, _) = data.batch(chunk);
        let clip = dev.upload(&clips, &[chunk.len(), l, n, 3])?;
        let logits = dev.run(|s| Ok(model.forward(s, &params, &clip)?.logits))?;
        let classes = *logits.shape().last().unwrap_or(&1);
        probs.extend(dev.read(&logits)?.chunks(classes).map(softmax));
    }
    let rows = probs.len() / b.max(1);
    let argmaxes: Vec<usize> = probs
        .iter()
        .map(|p| edge4d_trainer::metrics::argmax(p))
        .collect();
    write_predictions(
        args,
        &argmaxes,
        &if rows == 1 { vec![b] } else { vec![b, rows] },
    )?;
    let name = |c: usize| {
        args.class_names
            .get(c)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    };
    match &data.labels {
        Labels::None => {
            return Err(format!(
                "{}: the dataset has no `label` to evaluate against",
                args.data.display()
            )
            .into())
        }
        Labels::PerClip(labels) => {
            // Video accuracy sums the softmax of every clip of a video (train-msr.py);
            // without `video` in the file each clip is its own video.
            let clip_video: Vec<usize> = match &data.videos {
                Some(v) => v.iter().map(|&x| x as usize).collect(),
                None => (0..b).collect(),
            };
            let n_videos = clip_video.iter().max().map_or(0, |m| m + 1);
            let mut video_labels = vec![0usize; n_videos];
            for (&v, &y) in clip_video.iter().zip(labels) {
                video_labels[v] = y as usize;
            }
            let (clip_acc, video_acc, per_class) =
                video_accuracy(&probs, &clip_video, &video_labels);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"clips": b, "videos": n_videos, "clip_accuracy": clip_acc, "video_accuracy": video_acc, "per_class": per_class})
                );
            } else {
                println!("adapter: {}", dev.adapter());
                println!(
                    "{b} clips of {n_videos} videos: clip accuracy {:.1}%, video accuracy {:.1}%",
                    clip_acc * 100.0,
                    video_acc * 100.0
                );
                println!("{:<16} {:>8}", "class", "accuracy");
                for (c, acc) in per_class.iter().enumerate() {
                    let a = acc.map_or("-".to_string(), |a| format!("{:.1}%", a * 100.0));
                    println!("{:<16} {a:>8}", name(c));
                }
            }
        }
        Labels::PerPoint(_) => {
            return Err(format!(
                "{}: per-point labels need a segmentation model (p4transformer-synthia)",
                args.data.display()
            )
            .into())
        }
        Labels::PerFrame(labels) => {
            let frames_out = probs.len() / b;
            if frames_out != l {
                return Err(format!(
                    "the model predicts {frames_out} frames per clip, the labels have {l}"
                )
                .into());
            }
            let (mut hits, mut edit) = (0usize, 0.0f64);
            let mut counts = [(0u64, 0u64, 0u64); 3];
            for i in 0..b {
                let pred: Vec<usize> = probs[i * l..(i + 1) * l]
                    .iter()
                    .map(|p| edge4d_trainer::metrics::argmax(p))
                    .collect();
                let truth: Vec<usize> = labels[i * l..(i + 1) * l]
                    .iter()
                    .map(|&y| y as usize)
                    .collect();
                hits += pred.iter().zip(&truth).filter(|(a, b)| a == b).count();
                edit += edit_score(&pred, &truth);
                for (k, tau) in [0.1, 0.25, 0.5].iter().enumerate() {
                    let (tp, fp, fn_) = f_score_counts(&pred, &truth, *tau);
                    counts[k] = (counts[k].0 + tp, counts[k].1 + fp, counts[k].2 + fn_);
                }
            }
            let acc = hits as f64 / (b * l) as f64 * 100.0;
            let f1: Vec<f64> = counts
                .iter()
                .map(|&(tp, fp, f)| f1_from_counts(tp, fp, f))
                .collect();
            let edit = edit / b as f64;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"sequences": b, "accuracy": acc, "edit": edit, "f1@10": f1[0], "f1@25": f1[1], "f1@50": f1[2]})
                );
            } else {
                println!("adapter: {}", dev.adapter());
                println!("{b} sequences: Acc {acc:.1}  Edit {edit:.1}  F1@10 {:.1}  F1@25 {:.1}  F1@50 {:.1}", f1[0], f1[1], f1[2]);
            }
        }
    }
    Ok(())
}

fn segmentation(
    dev: &Device,
    args: &EvalArgs,
    cfg: P4TransformerConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    use edge4d_trainer::segmentation::MiouProtocol;
    let classes = cfg.num_classes;
    let model = SegmentationNet::new(cfg)?;
    let file = TensorFile::open(&args.weights)?;
    let checkpoint = file.contains("trainer.step");
    let params = ParamStore::load(dev, model.spec(), &file, "", checkpoint)?;
    let data = ClipDataset::load(&args.data)?;
    edge4d_trainer::segmentation::check_data(&data, &args.data, classes)?;
    let protocol = match args.miou {
        Miou::Synthia => MiouProtocol::Synthia,
        Miou::Hoi4d => MiouProtocol::Hoi4d,
    };
    let (iou, predictions) = edge4d_trainer::segmentation::evaluate(
        dev,
        &model,
        &params,
        &data,
        args.batch_size,
        classes,
        protocol,
    )?;
    let [b, l, n, _] = data.clips_shape;
    write_predictions(args, &predictions, &[b, l, n])?;
    let miou = edge4d_trainer::segmentation::miou(&iou, protocol);
    let per_class = iou.per_class();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"clips": data.len(), "miou": miou, "per_class_iou": per_class})
        );
    } else {
        println!("adapter: {}", dev.adapter());
        println!("{} clips: mIoU {:.1}%", data.len(), miou * 100.0);
        println!("{:<16} {:>8}", "class", "IoU");
        for (c, v) in per_class.iter().enumerate() {
            let name = args
                .class_names
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.to_string());
            println!("{name:<16} {:>7.1}%", v * 100.0);
        }
    }
    Ok(())
}

/// Writes `--predictions` (when given) as an int64 `.npy` of `shape`.
fn write_predictions(
    args: &EvalArgs,
    predictions: &[usize],
    shape: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = &args.predictions else {
        return Ok(());
    };
    use edge4d_trainer::npy::{i64_bytes, to_npy_bytes};
    let values: Vec<i64> = predictions.iter().map(|&p| p as i64).collect();
    let bytes = to_npy_bytes("<i8", shape, &i64_bytes(&values));
    edge4d_runtime::tensor_file::write_bytes_atomic(path, &bytes)?;
    Ok(())
}
