//! `edge4d bench concept`: the median time of a concept-distillation step.

use std::path::PathBuf;
use std::time::Instant;

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::Device;
use edge4d_trainer::concept::distill::{concept_config, ConceptDistiller};
use edge4d_trainer::engine::RunState;
use edge4d_trainer::rng::SplitMix64;
use edge4d_trainer::schedule::Schedule;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

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
        let run = RunState::new(Schedule::constant(1e-4), false, SplitMix64::new(0));
        let mut distiller =
            ConceptDistiller::new(dev, cfg.clone(), batch, cfg.npoints, 0.05, 0, run)?;
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
            let loss = distiller.step(&clouds, &prefix)?;
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
