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

/// The frozen 2D teacher through tract: load-and-optimise time, then the median time
/// of one image (the `image` tensor of `input`, (1, 3, 224, 224), else a ramp); the
/// prefix goes to `output` when given (to compare with another runtime).
pub fn teacher(
    path: &std::path::Path,
    input: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
    warmup: usize,
    repeats: usize,
    json: bool,
) -> Res<()> {
    use edge4d_runtime::tensor_file::{write_atomic, Stored};
    use edge4d_runtime::{HostTensor, TensorFile};
    use edge4d_trainer::concept::teacher::Teacher;

    let t0 = Instant::now();
    let teacher = Teacher::load_any(path)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let n = 3 * 224 * 224;
    let image: Vec<f32> = match input {
        Some(file) => {
            let t = TensorFile::open(file)?.f32("image")?;
            if t.shape != [1, 3, 224, 224] {
                return Err(format!(
                    "{}: `image` is {:?}, expected [1, 3, 224, 224]",
                    file.display(),
                    t.shape
                )
                .into());
            }
            t.data
        }
        None => (0..n).map(|i| i as f32 / n as f32 * 4.0 - 2.0).collect(),
    };
    let mut prefix = Vec::new();
    let mut times = Vec::with_capacity(repeats.max(1));
    for i in 0..warmup + repeats.max(1) {
        let t = Instant::now();
        prefix = teacher.run_preprocessed(&image)?;
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let shape = vec![1, teacher.prefix_length, teacher.prefix_dim];
    if let Some(out) = output {
        let tensors = [(
            "prefix".to_string(),
            Stored::F32(HostTensor {
                data: prefix.clone(),
                shape: shape.clone(),
            }),
        )];
        write_atomic(out, &tensors, Default::default())?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if json {
        println!(
            "{}",
            serde_json::json!({
                "bench": "teacher",
                "teacher": path.display().to_string(),
                "sha256": teacher.digest,
                "prefix": shape,
                "load_ms": load_ms,
                "median_ms_per_image": median,
                "repeats": times.len(),
                "cpu_threads": threads,
            })
        );
    } else {
        println!(
            "{}: prefix {shape:?}, loaded and optimised in {load_ms:.0} ms, {median:.1} ms per image (median of {}, tract on {threads} CPU threads)",
            path.display(),
            times.len()
        );
    }
    Ok(())
}
