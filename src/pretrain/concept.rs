//! `edge4d pretrain --method concept-distill`: prefixes from the frozen 2D teacher
//! (cached), then AdamW with warm-up and cosine decay on the Point-MAE encoder and its
//! concept queries, aligned by MSE with the prefixes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::concept::batching::batch_clouds;
use edge4d_trainer::concept::cache::PrefixCache;
use edge4d_trainer::concept::distill::{concept_config, ConceptDistiller};
use edge4d_trainer::concept::pairs::PairedDataset;
use edge4d_trainer::concept::preprocess::decode_image;
use edge4d_trainer::concept::teacher::{sha256_hex, Teacher};

use crate::train_args::{progress_bar, train_loop, LoopPlan, TrainArgs};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The teacher's prefix for every sample, from the cache when it has them.
fn prefixes(data: &PairedDataset, teacher: &Teacher, cache_path: &Path) -> Res<Vec<f32>> {
    if let Some(dir) = cache_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    }
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
    let iters = data.len().div_ceil(batch) as u64;
    let mut distiller = ConceptDistiller::new(
        dev,
        cfg.clone(),
        batch,
        cfg.npoints,
        t.weight_decay,
        t.seed,
        t.pointmae_run(iters, 0xd15),
    )?;
    if let Some(init) = &t.init {
        let (loaded, _) = distiller.init_from(init)?;
        println!("--init {}: {loaded} tensors loaded", init.display());
    }
    let targets = prefixes(&data, &teacher, &cache_path)?;
    let augment = !t.no_augment;
    let mut step = |d: &mut ConceptDistiller, chunk: &[usize]| {
        let clouds = batch_clouds(&data, chunk, augment, &mut d.run.rng);
        let target: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| {
                targets[i * per_prefix..(i + 1) * per_prefix]
                    .iter()
                    .copied()
            })
            .collect();
        d.step(&clouds, &target)
    };
    let plan = LoopPlan {
        header: format!(
            "concept distillation: {} clouds of {} points",
            data.len(),
            cfg.npoints
        ),
        samples: data.len(),
        metric: "acc",
        metadata: HashMap::from([
            ("method".into(), "concept-distill".into()),
            ("teacher_sha256".into(), teacher.digest.clone()),
        ]),
        full_batches: true,
    };
    let summary = train_loop(dev, t, &mut distiller, plan, &mut step, &mut |_, _| {
        Ok((None, None))
    })?;
    if let (Some(first), Some(last)) = (summary.first(), summary.last()) {
        println!(
            "mean MSE: epoch {} {:.5}, epoch {} {:.5}",
            first.epoch, first.train_loss, last.epoch, last.train_loss
        );
    }
    println!(
        "fine-tune with: edge4d finetune --task classification --init {}",
        t.out.join("model.safetensors").display()
    );
    Ok(())
}
