//! `edge4d finetune --task classification`: a (distilled) Point-MAE encoder with
//! Point-MAE's class head on a folder of labelled RGB-D frames, AdamW with Point-MAE's
//! parameter groups, warm-up and cosine decay.

use std::collections::HashMap;
use std::path::Path;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::concept::batching::batch_clouds;
use edge4d_trainer::concept::classify::{evaluate, ObjectClassifier};
use edge4d_trainer::concept::pairs::PairedDataset;

use crate::train_args::{train_loop, LoopPlan, TrainArgs};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn classify(
    dev: &Device,
    val: Option<&Path>,
    val_every: u64,
    label_fraction: f64,
    t: &TrainArgs,
) -> Res<()> {
    t.refuse_for_pointmae("classification")?;
    let cfg = PointMaeConfig::load(&t.config)?;
    let mut data = PairedDataset::load(&t.data, cfg.npoints, t.seed)?;
    if data.samples.iter().any(|s| s.label.is_none()) {
        return Err(format!("{}: classification needs labels.txt", t.data.display()).into());
    }
    if label_fraction < 1.0 {
        let labels: Vec<usize> = data.samples.iter().filter_map(|s| s.label).collect();
        let keep = edge4d_trainer::dataset::stratified_subset(&labels, label_fraction, t.seed)?;
        let all = data.samples.len();
        let mut samples = std::mem::take(&mut data.samples)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>();
        data.samples = keep.iter().filter_map(|&i| samples[i].take()).collect();
        println!(
            "--label-fraction {label_fraction}: training on {} of {all} labelled objects (every class kept)",
            data.samples.len()
        );
    }
    if data.classes.len() != cfg.num_classes {
        return Err(format!(
            "{} has {} classes but {} says num_classes = {}",
            t.data.display(),
            data.classes.len(),
            t.config.display(),
            cfg.num_classes
        )
        .into());
    }
    let val_path = val;
    let val = val_path
        .map(|v| PairedDataset::load(v, cfg.npoints, t.seed ^ 1))
        .transpose()?;
    if let (Some(v), Some(path)) = (&val, val_path) {
        if v.samples.iter().any(|s| s.label.is_none()) || v.classes != data.classes {
            return Err(format!(
                "{}: the validation folder needs labels.txt with the training classes {:?}",
                path.display(),
                data.classes
            )
            .into());
        }
    }
    let classes = cfg.num_classes;
    let batch = t.batch_size.max(2);
    let iters = data.len().div_ceil(batch) as u64;
    let mut clf = ObjectClassifier::new(
        dev,
        cfg.clone(),
        batch,
        cfg.npoints,
        t.weight_decay,
        t.seed,
        t.pointmae_run(iters, 0xc1a5),
    )?;
    match &t.init {
        Some(init) => {
            let (loaded, fresh) = clf.init_from(init)?;
            println!(
                "--init {}: {loaded} tensors loaded, {} initialised (the class head)",
                init.display(),
                fresh.len()
            );
        }
        None => println!("training from scratch (no --init)"),
    }
    println!(
        "optimizer: AdamW (Point-MAE's groups: no decay on 1-D parameters, biases, tokens), lr {} with cosine decay after {} warm-up epochs",
        t.lr, t.warmup_epochs
    );
    let augment = !t.no_augment;
    let mut step = |clf: &mut ObjectClassifier, chunk: &[usize]| {
        let clouds = batch_clouds(&data, chunk, augment, &mut clf.run.rng);
        let labels: Vec<u32> = chunk
            .iter()
            .map(|&i| data.samples[i].label.unwrap_or(0) as u32)
            .collect();
        clf.train_step(&clouds, &labels)
    };
    let mut epoch_end = |clf: &ObjectClassifier, last: bool| {
        let due = clf.run.epoch % val_every.max(1) == 0 || last;
        let val = match val.as_ref().filter(|_| due) {
            Some(v) => Some(evaluate(clf, v, classes)?.0),
            None => None,
        };
        Ok((None, val))
    };
    let plan = LoopPlan {
        header: format!(
            "classification: {} clouds of {} points, {classes} classes",
            data.len(),
            cfg.npoints
        ),
        samples: data.len(),
        metric: "acc",
        metadata: HashMap::from([("task".into(), "classification".into())]),
        full_batches: true,
    };
    train_loop(dev, t, &mut clf, plan, &mut step, &mut epoch_end)?;
    let (name, eval_data) = match &val {
        Some(v) => ("validation", v),
        None => ("training", &data),
    };
    let (acc, per_class) = evaluate(&clf, eval_data, classes)?;
    println!(
        "{name} accuracy: {:.1}% ({} clouds)",
        acc * 100.0,
        eval_data.len()
    );
    println!("{:<12} {:>8} {:>8}", "class", "correct", "accuracy");
    for (c, (right, all)) in per_class.iter().enumerate() {
        let name = data.classes.get(c).map(String::as_str).unwrap_or("?");
        println!(
            "{name:<12} {:>8} {:>7.1}%",
            format!("{right}/{all}"),
            100.0 * *right as f64 / (*all).max(1) as f64
        );
    }
    Ok(())
}
