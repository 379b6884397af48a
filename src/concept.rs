//! Concept distillation from the command line:
//! * `edge4d data objects`: synthetic RGB-D object scans (train/ and test/ folders);
//! * `edge4d pretrain --method concept-distill --teacher T.onnx`: prefixes from the
//!   frozen teacher (cached), then AdamW with cosine warm-up on the encoder + concepts;
//! * `edge4d finetune --task classification`: the encoder with Point-MAE's class head.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::concept::cache::PrefixCache;
use edge4d_trainer::concept::classify::ObjectClassifier;
use edge4d_trainer::concept::distill::{concept_config, scale_and_translate, ConceptDistiller};
use edge4d_trainer::concept::pairs::{write_objects, PairedDataset};
use edge4d_trainer::concept::preprocess::decode_image;
use edge4d_trainer::concept::teacher::{sha256_hex, Teacher};
use edge4d_trainer::rng::SplitMix64;
use edge4d_trainer::run_dir::Record;
use edge4d_trainer::schedule::WarmupCosine;
use indicatif::{ProgressBar, ProgressStyle};

use crate::finetune::TrainArgs;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Args)]
pub struct ObjectsArgs {
    /// Output folder: train/ and test/, each colour + depth PNGs, intrinsics.json,
    /// labels.txt and classes.txt.
    #[arg(long)]
    out: PathBuf,
    /// Training frames per class.
    #[arg(long, default_value_t = 24)]
    train_per_class: usize,
    /// Test frames per class (other random objects).
    #[arg(long, default_value_t = 8)]
    test_per_class: usize,
    /// Image side in pixels (colour and depth).
    #[arg(long, default_value_t = 128)]
    side: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn objects(args: &ObjectsArgs) -> Res<()> {
    let t = Instant::now();
    let train = write_objects(
        &args.out.join("train"),
        args.train_per_class,
        args.side,
        args.seed,
    )?;
    let test = write_objects(
        &args.out.join("test"),
        args.test_per_class,
        args.side,
        args.seed ^ 0x7e57,
    )?;
    println!(
        "wrote {train} training and {test} test RGB-D frames to {} in {:.1} s",
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} {{msg}} [{{elapsed}}<{{eta}}]"
        ))
        .unwrap(),
    );
    pb
}

/// Batches of exactly `batch` sample indices, wrapping round at the end of the order.
fn batches(order: &[usize], batch: usize) -> Vec<Vec<usize>> {
    (0..order.len().div_ceil(batch))
        .map(|b| {
            (0..batch)
                .map(|i| order[(b * batch + i) % order.len()])
                .collect()
        })
        .collect()
}

/// This epoch's sample order: shuffled unless --no-shuffle.
fn epoch_order(n: usize, t: &TrainArgs, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if !t.no_shuffle {
        rng.shuffle(&mut order);
    }
    order
}

/// The clouds of `chunk`, concatenated, each augmented unless --no-augment.
fn batch_clouds(
    data: &PairedDataset,
    chunk: &[usize],
    t: &TrainArgs,
    rng: &mut SplitMix64,
) -> Vec<f32> {
    let mut clouds = Vec::with_capacity(chunk.len() * data.points_per_cloud * 3);
    for &i in chunk {
        let mut c = data.samples[i].points.clone();
        if !t.no_augment {
            scale_and_translate(&mut c, rng);
        }
        clouds.extend(c);
    }
    clouds
}

fn cosine(t: &TrainArgs, iters_per_epoch: u64) -> WarmupCosine {
    WarmupCosine {
        base_lr: t.lr,
        min_lr: 1e-6,
        warmup_start_lr: 1e-6,
        warmup_iters: t.warmup_epochs * iters_per_epoch,
        total_iters: t.epochs * iters_per_epoch,
    }
}

/// The teacher's prefix for every sample, from the cache when it has them.
fn prefixes(data: &PairedDataset, teacher: &Teacher, cache_path: &Path) -> Res<Vec<f32>> {
    let mut cache = PrefixCache::open(
        cache_path,
        &teacher.digest,
        teacher.prefix_length,
        teacher.prefix_dim,
    )?;
    if cache.dropped_stale > 0 {
        println!(
            "prefix cache: dropped {} entries made by another teacher or preprocessing",
            cache.dropped_stale
        );
    }
    let pb = bar(data.len() as u64, "teacher");
    let t = Instant::now();
    let mut all = Vec::new();
    for s in &data.samples {
        let bytes = std::fs::read(&s.image)
            .map_err(|e| format!("{}: cannot read: {e}", s.image.display()))?;
        let v = cache.get_or_compute(&sha256_hex(&bytes), || {
            teacher.run(&decode_image(&bytes, &s.image.display().to_string())?)
        })?;
        all.extend(v);
        pb.inc(1);
    }
    pb.finish_and_clear();
    cache.save()?;
    println!(
        "teacher prefixes: {} from the cache, {} computed ({:.1} ms per image) -> {}",
        cache.hits,
        cache.misses,
        if cache.misses > 0 {
            t.elapsed().as_secs_f64() * 1e3 / cache.misses as f64
        } else {
            0.0
        },
        cache_path.display()
    );
    Ok(all)
}

pub fn distill(dev: &Device, teacher_path: &Path, cache: Option<&Path>, t: &TrainArgs) -> Res<()> {
    t.refuse_for_pointmae("concept distillation")?;
    let cfg = PointMaeConfig::load(&t.config)?;
    let cc = concept_config(&cfg).map_err(|e| format!("{}: {e}", t.config.display()))?;
    // Teacher problems (unloadable file, wrong output shape) surface before anything else.
    let teacher = Teacher::load(teacher_path, cc.prefix_length, cc.prefix_dim)?;
    let data = PairedDataset::load(&t.data, cfg.npoints, t.seed)?;
    println!(
        "concept distillation: {} image + point pairs from {}, {} points each; teacher {} ({}…)",
        data.len(),
        t.data.display(),
        cfg.npoints,
        teacher_path.display(),
        &teacher.digest[..12]
    );
    let cache_path = cache
        .map(Path::to_path_buf)
        .unwrap_or_else(|| t.out.join("prefixes.safetensors"));
    let mut run = t.run_dir(0, 0)?;
    let targets = prefixes(&data, &teacher, &cache_path)?;
    let per_prefix = cc.prefix_length * cc.prefix_dim;
    let batch = t.batch_size.max(1);
    let mut distiller =
        ConceptDistiller::new(dev, cfg.clone(), batch, cfg.npoints, t.weight_decay, t.seed)?;
    if let Some(init) = &t.init {
        let (loaded, _) = distiller.init_from(init)?;
        println!("--init {}: {loaded} tensors loaded", init.display());
    }
    let mut rng = SplitMix64::new(t.seed ^ 0xd15);
    let iters = data.len().div_ceil(batch) as u64;
    let schedule = cosine(t, iters);
    let pb = bar(t.epochs * iters, "distill");
    let (mut losses, mut epoch_means) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut it = 0u64;
    // Losses queued but not yet read back: (step, lr, loss tensor).
    let mut pending = Vec::new();
    for epoch in 0..t.epochs {
        let order = epoch_order(data.len(), t, &mut rng);
        for chunk in batches(&order, batch) {
            let clouds = batch_clouds(&data, &chunk, t, &mut rng);
            let target: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| {
                    targets[i * per_prefix..(i + 1) * per_prefix]
                        .iter()
                        .copied()
                })
                .collect();
            let lr = schedule.lr(it);
            pending.push((it, lr, distiller.step(&clouds, &target, lr as f32)?));
            it += 1;
            pb.inc(1);
            if it % t.log_every.max(1) == 0 || it % iters == 0 {
                for (step, lr, loss) in pending.drain(..) {
                    let v = dev.read(&loss)?[0] as f64;
                    losses.push((step as f64, v));
                    run.log(&Record::Step {
                        epoch: step / iters + 1,
                        step: step + 1,
                        loss: v,
                        lr,
                        samples_per_s: None,
                    })?;
                }
                pb.set_message(format!("epoch {epoch} mse {:.4}", losses.last().unwrap().1));
            }
        }
        let this_epoch: Vec<f64> = losses
            .iter()
            .filter(|(s, _)| (*s as u64) / iters == epoch)
            .map(|l| l.1)
            .collect();
        if !this_epoch.is_empty() {
            let mean = this_epoch.iter().sum::<f64>() / this_epoch.len() as f64;
            epoch_means.push(mean);
            run.log(&Record::Epoch {
                epoch: epoch + 1,
                train_loss: mean,
                train_accuracy: None,
                val_accuracy: None,
                metric: "acc".into(),
            })?;
        }
        // One good file per epoch, written atomically.
        distiller.save(
            &t.out.join("model.safetensors"),
            HashMap::from([
                ("method".into(), "concept-distill".into()),
                ("epoch".into(), (epoch + 1).to_string()),
                ("teacher_sha256".into(), teacher.digest.clone()),
            ]),
        )?;
    }
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    run.plot()?;
    println!(
        "{} steps of batch {batch} in {secs:.1} s ({:.0} ms per step) on {}",
        it,
        secs * 1e3 / it.max(1) as f64,
        dev.adapter().name
    );
    if let (Some(first), Some(last)) = (epoch_means.first(), epoch_means.last()) {
        println!("mean MSE: first epoch {first:.5}, last epoch {last:.5}");
    }
    println!(
        "wrote {}, metrics.jsonl and curves.png; fine-tune with: edge4d finetune --task classification --init {}",
        t.out.join("model.safetensors").display(),
        t.out.join("model.safetensors").display()
    );
    Ok(())
}

/// (accuracy, per-class accuracy, confusion) of `clf` on `data`.
fn evaluate(
    clf: &ObjectClassifier,
    data: &PairedDataset,
    classes: usize,
) -> Res<(f64, Vec<(usize, usize)>)> {
    let batch = clf.batch;
    let order: Vec<usize> = (0..data.len()).collect();
    let mut per_class = vec![(0usize, 0usize); classes];
    for chunk in order.chunks(batch) {
        let ids: Vec<usize> = (0..batch).map(|i| chunk[i % chunk.len()]).collect();
        let clouds: Vec<f32> = ids
            .iter()
            .flat_map(|&i| data.samples[i].points.iter().copied())
            .collect();
        let logits = clf.predict(&clouds)?;
        for (k, &i) in chunk.iter().enumerate() {
            let row = &logits[k * classes..(k + 1) * classes];
            let pred = (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            let label = data.samples[i].label.unwrap();
            per_class[label].1 += 1;
            if pred == label {
                per_class[label].0 += 1;
            }
        }
    }
    let (right, all) = per_class.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    Ok((right as f64 / all.max(1) as f64, per_class))
}

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
    let mut rng = SplitMix64::new(t.seed ^ 0xc1a5);
    let iters = data.len().div_ceil(batch) as u64;
    let schedule = cosine(t, iters);
    let mut run = t.run_dir(0, 0)?;
    let pb = bar(t.epochs * iters, "finetune");
    let mut epoch_losses: Vec<f64> = Vec::new();
    let mut it = 0u64;
    let started = Instant::now();
    for epoch in 0..t.epochs {
        let order = epoch_order(data.len(), t, &mut rng);
        let epoch_batches = batches(&order, batch);
        let last = epoch_batches.len();
        for (i, chunk) in epoch_batches.into_iter().enumerate() {
            let clouds = batch_clouds(&data, &chunk, t, &mut rng);
            let labels: Vec<u32> = chunk
                .iter()
                .map(|&i| data.samples[i].label.unwrap() as u32)
                .collect();
            let lr = schedule.lr(it);
            let loss = clf.train_step(&clouds, &labels, lr as f32)?;
            // Every epoch reads at least its last loss, for the epoch's mean.
            if (it + 1) % t.log_every.max(1) == 0 || i + 1 == last {
                let v = dev.read(&loss)?[0] as f64;
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
        clf.save(
            &t.out.join("model.safetensors"),
            HashMap::from([("task".into(), "classification".into())]),
        )?;
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

/// Median time of a distillation step on random clouds and prefixes, per config.
pub fn bench(
    dev: &Device,
    configs: &[PathBuf],
    batch: usize,
    warmup: usize,
    repeats: usize,
    json: bool,
) -> Res<()> {
    for path in configs {
        let cfg = PointMaeConfig::load(path)?;
        let cc = concept_config(&cfg)?;
        let mut distiller = ConceptDistiller::new(dev, cfg.clone(), batch, cfg.npoints, 0.05, 0)?;
        let mut rng = SplitMix64::new(1);
        let clouds: Vec<f32> = (0..batch * cfg.npoints * 3)
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let prefix: Vec<f32> = (0..batch * cc.prefix_length * cc.prefix_dim)
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        let mut times = Vec::with_capacity(repeats);
        for i in 0..warmup + repeats.max(1) {
            let t = Instant::now();
            let loss = distiller.step(&clouds, &prefix, 1e-4)?;
            dev.read(&loss)?;
            if i >= warmup {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let params: usize = distiller
            .params
            .spec()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "concept_distill_step", "config": path.display().to_string(),
                    "batch": batch, "points": cfg.npoints, "groups": cfg.num_group,
                    "dim": cfg.trans_dim, "depth": cfg.depth, "parameters": params,
                    "median_ms": median, "adapter": dev.adapter().name,
                })
            );
        } else {
            println!(
                "{}: batch {batch} × {} points, {} parameters: {median:.1} ms per step (median of {})",
                path.display(),
                cfg.npoints,
                params,
                times.len()
            );
        }
    }
    Ok(())
}
