//! `edge4d finetune --task semantic-segmentation`: the 4D semantic segmentation net on
//! a per-point-labelled dataset, with train-syn.py's weighted, masked loss and mIoU.

use std::path::Path;

use edge4d_runtime::models::synthia::SegmentationNet;
use edge4d_runtime::models::{ModelKind, P4TransformerConfig};
use edge4d_runtime::{Device, Error};
use edge4d_trainer::dataset::ClipDataset;
use edge4d_trainer::finetune::Finetuner;
use edge4d_trainer::segmentation::{self, check_data, evaluate, upload, MiouProtocol};

use crate::train_args::{train_loop, LoopPlan, TrainArgs};

pub fn run(
    dev: &Device,
    val_path: Option<&Path>,
    val_every: u64,
    t: &TrainArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = P4TransformerConfig::load(&t.config)?;
    if cfg.model != ModelKind::Synthia {
        return Err(format!(
            "config {} builds {}, but semantic segmentation needs model = \"{}\"",
            t.config.display(),
            cfg.model.name(),
            ModelKind::Synthia.name()
        )
        .into());
    }
    let classes = cfg.num_classes;
    let data = ClipDataset::load(&t.data)?;
    if data.is_empty() {
        return Err(format!("{}: the dataset holds no clips", t.data.display()).into());
    }
    check_data(&data, &t.data, classes)?;
    let val = val_path.map(ClipDataset::load).transpose()?;
    if let (Some(v), Some(p)) = (&val, val_path) {
        check_data(v, p, classes)?;
    }
    let model = SegmentationNet::new(cfg.clone())?;
    let spec = model.spec();
    let params = t.params(dev, spec.clone(), &spec)?;
    let batch = t.batch_size.max(1);
    let iters = data.len().div_ceil(batch) as u64;
    let mut ft = Finetuner::new(dev, model, params, t.finetune_config(), iters)?;
    let [_, l, n, _] = data.clips_shape;
    let class_weight = data.class_weight.clone();
    let augment = !t.no_augment;
    let mut step = |ft: &mut Finetuner<SegmentationNet>, chunk: &[usize]| {
        let sb = segmentation::batch(&data, chunk, augment.then(|| ft.rng()))?;
        let weights = segmentation::row_weights(&sb, class_weight.as_deref(), classes)?;
        let (xyz, feats) = upload(dev, &sb, [chunk.len(), l, n])?;
        let labels = dev.upload_u32(&sb.labels, &[sb.labels.len()])?;
        let weights = dev.upload(&weights, &[weights.len()])?;
        ft.segmentation_step(&xyz, &feats, &labels, &weights)
    };
    let miou = |ft: &Finetuner<SegmentationNet>, d: &ClipDataset| -> Result<f64, Error> {
        let (iou, _) = evaluate(
            dev,
            &ft.model,
            &ft.params,
            d,
            batch,
            classes,
            MiouProtocol::Synthia,
        )?;
        Ok(iou.miou())
    };
    let mut epoch_end = |ft: &Finetuner<SegmentationNet>, last: bool| {
        // The training set's mIoU costs a full extra pass: only at the end of the run.
        let train = if last { Some(miou(ft, &data)?) } else { None };
        let val_due = ft.run.epoch % val_every.max(1) == 0 || last;
        let val = match val.as_ref().filter(|_| val_due) {
            Some(v) => Some(miou(ft, v)?),
            None => None,
        };
        Ok((train, val))
    };
    let plan = LoopPlan {
        metric: "mIoU",
        ..LoopPlan::clips(cfg.model.name(), &data)
    };
    train_loop(dev, t, &mut ft, plan, &mut step, &mut epoch_end)?;
    Ok(())
}
