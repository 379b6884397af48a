//! `edge4d finetune --task classification`: a (distilled) Point-MAE encoder with
//! Point-MAE's class head on a folder of labelled RGB-D frames, AdamW with Point-MAE's
//! parameter groups, warm-up and cosine decay.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::checkpoint::RunPosition;
use edge4d_trainer::concept::batching::{batch_clouds, batches, epoch_order};
use edge4d_trainer::concept::classify::{evaluate, ObjectClassifier};
use edge4d_trainer::concept::pairs::PairedDataset;
use edge4d_trainer::engine::diverged;
use edge4d_trainer::run_dir::Record;

use crate::train_args::{progress_bar, TrainArgs};

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
    let mut clf =
        ObjectClassifier::new(dev, cfg.clone(), batch, cfg.npoints, t.weight_decay, t.seed)?;
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
    let position = t.start_position(0xc1a5, |ckpt| clf.load_checkpoint(ckpt))?;
    let mut rng = position.rng;
    let iters = data.len().div_ceil(batch) as u64;
    let schedule = t.warmup_cosine(iters);
    let mut run = t.run_dir(position.epoch, position.step)?;
    let pb = progress_bar(t.epochs * iters, "finetune");
    pb.set_position(position.step);
    let mut epoch_losses: Vec<f64> = Vec::new();
    let mut it = position.step;
    let started = Instant::now();
    for epoch in position.epoch..t.last_epoch() {
        let order = epoch_order(data.len(), !t.no_shuffle, &mut rng);
        let epoch_batches = batches(&order, batch);
        let last = epoch_batches.len();
        for (i, chunk) in epoch_batches.into_iter().enumerate() {
            let clouds = batch_clouds(&data, &chunk, !t.no_augment, &mut rng);
            let labels: Vec<u32> = chunk
                .iter()
                .map(|&i| data.samples[i].label.unwrap() as u32)
                .collect();
            let lr = schedule.lr(it);
            let loss = clf.train_step(&clouds, &labels, lr as f32, &mut rng)?;
            // Every epoch reads at least its last loss, for the epoch's mean.
            if (it + 1) % t.log_every.max(1) == 0 || i + 1 == last {
                let v = dev.read(&loss)?[0] as f64;
                if !v.is_finite() {
                    pb.abandon();
                    return Err(diverged(v, it + 1, epoch + 1, &t.out).into());
                }
                run.log(&Record::Step {
                    epoch: epoch + 1,
                    step: it + 1,
                    loss: v,
                    lr,
                    samples_per_s: None,
                })?;
                epoch_losses.push(v);
                pb.set_message(format!("epoch {epoch} loss {v:.3}"));
            }
            it += 1;
            pb.inc(1);
        }
        let mut val_accuracy = None;
        if let Some(v) = &val {
            if (epoch + 1) % val_every.max(1) == 0 || epoch + 1 == t.epochs {
                let (acc, _) = evaluate(&clf, v, classes)?;
                val_accuracy = Some(acc);
            }
        }
        run.log(&Record::Epoch {
            epoch: epoch + 1,
            train_loss: epoch_losses.iter().sum::<f64>() / epoch_losses.len().max(1) as f64,
            train_accuracy: None,
            val_accuracy,
            metric: "acc".into(),
        })?;
        epoch_losses.clear();
        let meta = HashMap::from([("task".into(), "classification".into())]);
        let position = RunPosition {
            epoch: epoch + 1,
            step: it,
            rng,
        };
        clf.save_checkpoint(
            &t.out.join("checkpoint.safetensors"),
            position,
            meta.clone(),
        )?;
        clf.save(&t.out.join("model.safetensors"), meta)?;
    }
    pb.finish_and_clear();
    run.plot()?;
    println!(
        "{it} steps of batch {batch} in {:.1} s on {}",
        started.elapsed().as_secs_f64(),
        dev.adapter().name
    );
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
    println!("wrote {}", t.out.join("model.safetensors").display());
    Ok(())
}
