//! `edge4d pretrain --method concept-distill`: prefixes from the frozen 2D teacher
//! (cached), then AdamW with warm-up and cosine decay on the Point-MAE encoder and its
//! concept queries, aligned by MSE with the prefixes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::checkpoint::RunPosition;
use edge4d_trainer::concept::batching::{batch_clouds, batches, epoch_order};
use edge4d_trainer::concept::cache::PrefixCache;
use edge4d_trainer::concept::distill::{concept_config, ConceptDistiller};
use edge4d_trainer::concept::pairs::PairedDataset;
use edge4d_trainer::concept::preprocess::decode_image;
use edge4d_trainer::concept::teacher::{sha256_hex, Teacher};
use edge4d_trainer::engine::diverged;
use edge4d_trainer::run_dir::Record;

use crate::train_args::{progress_bar, TrainArgs};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

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
    let pb = progress_bar(data.len() as u64, "teacher");
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
    let per_prefix = cc.prefix_length * cc.prefix_dim;
    let batch = t.batch_size.max(1);
    let mut distiller =
        ConceptDistiller::new(dev, cfg.clone(), batch, cfg.npoints, t.weight_decay, t.seed)?;
    if let Some(init) = &t.init {
        let (loaded, _) = distiller.init_from(init)?;
        println!("--init {}: {loaded} tensors loaded", init.display());
    }
    let position = t.start_position(0xd15, |ckpt| distiller.load_checkpoint(ckpt))?;
    let mut run = t.run_dir(position.epoch, position.step)?;
    let targets = prefixes(&data, &teacher, &cache_path)?;
    let mut rng = position.rng;
    let iters = data.len().div_ceil(batch) as u64;
    let schedule = t.warmup_cosine(iters);
    let pb = progress_bar(t.epochs * iters, "distill");
    pb.set_position(position.step);
    let (mut losses, mut epoch_means) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut it = position.step;
    // Losses queued but not yet read back: (step, lr, loss tensor).
    let mut pending = Vec::new();
    for epoch in position.epoch..t.last_epoch() {
        let order = epoch_order(data.len(), !t.no_shuffle, &mut rng);
        for chunk in batches(&order, batch) {
            let clouds = batch_clouds(&data, &chunk, !t.no_augment, &mut rng);
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
                    if !v.is_finite() {
                        pb.abandon();
                        return Err(diverged(v, step + 1, epoch + 1, &t.out).into());
                    }
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
        // One good file of each per epoch, written atomically.
        let meta = HashMap::from([
            ("method".into(), "concept-distill".into()),
            ("epoch".into(), (epoch + 1).to_string()),
            ("teacher_sha256".into(), teacher.digest.clone()),
        ]);
        let position = RunPosition {
            epoch: epoch + 1,
            step: it,
            rng,
        };
        distiller.save_checkpoint(
            &t.out.join("checkpoint.safetensors"),
            position,
            meta.clone(),
        )?;
        distiller.save(&t.out.join("model.safetensors"), meta)?;
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
