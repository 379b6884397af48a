//! `edge4d bench p4transformer` and `edge4d bench point-ops`: model and point-op timings
//! as JSON lines (median over repeats after warm-up, device idle between runs).

use std::time::Instant;

use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::ops::point::{ball_query_frames, fps_frames};
use edge4d_runtime::{Device, Error, Tensor};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Median wall time (ms) of `f` followed by a device wait.
pub fn median_ms(
    dev: &Device,
    warmup: usize,
    repeats: usize,
    mut f: impl FnMut() -> Result<(), Error>,
) -> Result<(f64, usize), Error> {
    for _ in 0..warmup {
        f()?;
        dev.wait()?;
    }
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t0 = Instant::now();
        f()?;
        dev.wait()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times.len()))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A deterministic pseudo-random clip away from the origin (the PyTorch harness makes
/// the same one, bit for bit).
fn clip_data(shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut state = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            u * 2.0 - 1.0 + if i % 3 == 2 { 4.0 } else { 0.0 }
        })
        .collect()
}

fn clip(dev: &Device, shape: &[usize]) -> Result<Tensor, Error> {
    dev.upload(&clip_data(shape), shape)
}

struct ModelCase {
    name: &'static str,
    toml: &'static str,
    batch: usize,
    frames: usize,
    points: usize,
}

const FIXTURE: &str = r#"model = "p4transformer-msr"
radius = 0.5
nsamples = 8
spatial_stride = 10
temporal_kernel_size = 3
temporal_stride = 2
emb_relu = true
dim = 64
depth = 2
heads = 2
dim_head = 16
mlp_dim = 96
num_classes = 5
"#;

/// The paper's MSR-Action3D configuration (train-msr.py).
const PAPER_MSR: &str = r#"model = "p4transformer-msr"
radius = 0.7
nsamples = 32
spatial_stride = 32
temporal_kernel_size = 3
temporal_stride = 2
emb_relu = false
dim = 1024
depth = 5
heads = 8
dim_head = 128
mlp_dim = 2048
num_classes = 20
"#;

pub fn p4transformer(
    dev: &Device,
    configs: &[String],
    warmup: usize,
    repeats: usize,
    json: bool,
) -> BoxResult<()> {
    let cases = [
        ModelCase {
            name: "fixture",
            toml: FIXTURE,
            batch: 2,
            frames: 6,
            points: 160,
        },
        ModelCase {
            name: "humanoid-small",
            toml: include_str!("../../configs/humanoid-small.toml"),
            batch: 8,
            frames: 16,
            points: 512,
        },
        ModelCase {
            name: "paper-msr",
            toml: PAPER_MSR,
            batch: 1,
            frames: 24,
            points: 2048,
        },
    ];
    let adapter = dev.adapter();
    for case in cases.iter().filter(|c| configs.iter().any(|n| n == c.name)) {
        let cfg = P4TransformerConfig::parse(case.toml, case.name)?;
        assert_eq!(cfg.model, ModelKind::Msr);
        let model = P4Transformer::new(cfg.clone())?;
        let params = ParamStore::init(dev, model.spec(), 1)?;
        let x = clip(dev, &[case.batch, case.frames, case.points, 3])?;
        let labels = dev.upload_u32(&vec![0; case.batch], &[case.batch])?;
        let one = dev.upload(&[1.0], &[1])?;
        let forward = || dev.run(|s| model.forward(s, &params, &x).map(|_| ()));
        let train = || {
            dev.run(|s| {
                let f = model.forward(s, &params, &x)?;
                cross_entropy(s, &f.logits, &labels)?;
                let g = cross_entropy_backward(s, &f.logits, &labels, &one)?;
                let mut grads = edge4d_runtime::models::Grads::new();
                model.backward(s, &params, &f, &g, &mut grads).map(|_| ())
            })
        };
        let (fwd_ms, n) = median_ms(dev, warmup, repeats, forward)?;
        dev.reset_peak_bytes();
        let (train_ms, _) = median_ms(dev, warmup, repeats, train)?;
        // Dispatches of one forward pass and of one forward + loss + backward.
        let d0 = dev.dispatches();
        forward()?;
        let d1 = dev.dispatches();
        train()?;
        let (fwd_dispatches, train_dispatches) = (d1 - d0, dev.dispatches() - d1);
        let b = case.batch as f64;
        print_profile(dev, case.name);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "op": "p4transformer",
                    "config": case.name,
                    "clip": [case.batch, case.frames, case.points, 3],
                    "dim": cfg.dim, "depth": cfg.depth,
                    "backend": adapter.backend, "adapter": adapter.name, "device_type": adapter.device_type,
                    "repeats": n,
                    "forward_ms_per_clip": round3(fwd_ms / b),
                    "forward_backward_ms_per_clip": round3(train_ms / b),
                    "peak_bytes": dev.memory_in_use().1,
                    "forward_dispatches": fwd_dispatches,
                    "forward_backward_dispatches": train_dispatches,
                })
            );
        } else {
            println!(
                "{:<10} clip {:?}: forward {:.2} ms/clip, forward+backward {:.2} ms/clip ({adapter})",
                case.name,
                [case.batch, case.frames, case.points, 3],
                fwd_ms / b,
                train_ms / b
            );
        }
    }
    Ok(())
}

pub fn point_ops(dev: &Device, warmup: usize, repeats: usize, json: bool) -> BoxResult<()> {
    let adapter = dev.adapter();
    let report = |op: &str, what: serde_json::Value, ms: f64, n: usize| {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "op": op, "case": what,
                    "backend": adapter.backend, "adapter": adapter.name, "device_type": adapter.device_type,
                    "repeats": n, "median_ms": round3(ms),
                })
            );
        } else {
            println!("{op:<11} {what}: {ms:.3} ms");
        }
    };
    // FPS: many small clouds (a batch of 14 clips × 24 frames) and one large cloud.
    for (clouds, n, m) in [(336usize, 2048usize, 64usize), (1, 8192, 2048)] {
        let x = clip(dev, &[1, clouds, n, 3])?;
        let frames = dev.upload_u32(&(0..clouds as u32).collect::<Vec<_>>(), &[clouds])?;
        let (ms, k) = median_ms(dev, warmup, repeats, || {
            dev.run(|s| fps_frames(s, &x, &frames, m).map(|_| ()))
        })?;
        report(
            "fps",
            serde_json::json!({"clouds": clouds, "points": n, "samples": m}),
            ms,
            k,
        );
    }
    // Ball query as the paper's tube embedding issues it for a batch of 14 clips:
    // 12 output frames × 3 offsets × 64 anchors, k = 32, r = 0.7, 2048 points per frame.
    let (b, l, n, l_out, kt, anchors) = (14usize, 24usize, 2048usize, 12usize, 3usize, 64usize);
    let x = clip(dev, &[b, l, n, 3])?;
    let a = clip(dev, &[b, l_out, anchors, 3])?;
    let table: Vec<u32> = (0..l_out)
        .flat_map(|t| (0..kt).map(move |o| ((2 * t + o) as u32).saturating_sub(1)))
        .collect();
    let frames = dev.upload_u32(&table, &[table.len()])?;
    let (ms, k) = median_ms(dev, warmup, repeats, || {
        dev.run(|s| ball_query_frames(s, &x, &a, &frames, kt, 0.7, 32).map(|_| ()))
    })?;
    report(
        "ball_query",
        serde_json::json!({"queries": b * l_out * kt * anchors, "points": n, "nsample": 32, "radius": 0.7}),
        ms,
        k,
    );
    Ok(())
}

/// `edge4d bench segmentation`: the 4D semantic segmentation net's forward (eval and
/// train mode) and forward + weighted loss + backward, per clip.
pub fn segmentation(
    dev: &Device,
    configs: &[String],
    warmup: usize,
    repeats: usize,
    json: bool,
) -> BoxResult<()> {
    use edge4d_runtime::models::synthia::{segmentation_loss, SegmentationNet};
    // (name, TOML, batch, frames, points); a name that is a .toml file is timed at the
    // humanoid-parts clip size.
    let mut cases: Vec<(String, String, usize, usize, usize)> = Vec::new();
    for name in configs {
        match name.as_str() {
            "humanoid-parts" => cases.push((
                name.clone(),
                include_str!("../../configs/humanoid-parts.toml").into(),
                8,
                3,
                512,
            )),
            "paper-synthia" => cases.push((
                name.clone(),
                include_str!("../../configs/p4transformer-synthia.toml").into(),
                1,
                3,
                16384,
            )),
            path if path.ends_with(".toml") => {
                cases.push((name.clone(), std::fs::read_to_string(path)?, 8, 3, 512))
            }
            other => {
                return Err(format!(
                    "unknown segmentation config {other:?}: humanoid-parts, paper-synthia or a .toml file"
                )
                .into())
            }
        }
    }
    let adapter = dev.adapter();
    for (name, toml, b, l, n) in &cases {
        let (b, l, n) = (*b, *l, *n);
        let cfg = P4TransformerConfig::parse(toml, name)?;
        let model = SegmentationNet::new(cfg.clone())?;
        let params = ParamStore::init(dev, model.spec(), 1)?;
        let xyz = clip(dev, &[b, l, n, 3])?;
        let rgb = clip(dev, &[b, l, 3, n])?;
        let rows = b * l * n;
        let labels = dev.upload_u32(&vec![0; rows], &[rows])?;
        let weights = dev.upload(&vec![1.0 / (rows as f32 + 1.0); rows], &[rows])?;
        let one = dev.upload(&[1.0], &[1])?;
        let time = |train: bool, backward: bool| {
            median_ms(dev, warmup, repeats, || {
                dev.run(|s| {
                    let f = model.forward(s, &params, &xyz, &rgb, train)?;
                    if backward {
                        let (_, g) = segmentation_loss(s, &f.logits, &labels, &weights, &one)?;
                        model.backward(s, &params, &f, &g, &mut Default::default())?;
                    }
                    Ok(())
                })
            })
        };
        let (eval_ms, k) = time(false, false)?;
        let (train_fwd_ms, _) = time(true, false)?;
        let (train_ms, _) = time(true, true)?;
        print_profile(dev, name);
        let per = |ms: f64| round3(ms / b as f64);
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "op": "segmentation",
                    "config": name,
                    "clip": [b, l, n, 3],
                    "backend": adapter.backend, "adapter": adapter.name, "device_type": adapter.device_type,
                    "repeats": k,
                    "eval_forward_ms_per_clip": per(eval_ms),
                    "train_forward_ms_per_clip": per(train_fwd_ms),
                    "forward_backward_ms_per_clip": per(train_ms),
                })
            );
        } else {
            println!(
                "{:<15} clip {:?}: eval forward {:.1} ms/clip, train forward {:.1}, forward+backward {:.1} ({adapter})",
                name,
                [b, l, n, 3],
                eval_ms / b as f64,
                train_fwd_ms / b as f64,
                train_ms / b as f64
            );
        }
    }
    Ok(())
}

/// Under `EDGE4D_PROFILE`, the kernels' share of everything timed so far (stderr).
pub fn print_profile(dev: &Device, what: &str) {
    let Some(rows) = dev.profile() else {
        return;
    };
    let total: f64 = rows.iter().map(|r| r.2).sum();
    eprintln!("profile of {what} (every dispatch waited for; {total:.2} s in all):");
    for (kernel, n, secs) in rows.iter().take(15) {
        eprintln!(
            "  {kernel:<40} {n:>7} dispatches {:>9.1} ms {:>5.1}%",
            secs * 1e3,
            secs / total.max(1e-12) * 100.0
        );
    }
}

/// `edge4d bench c2p`: one C2P pre-training step (forward of the partial and complete
/// clips, the three InfoNCE terms, backward, SGD) on configs/humanoid-c2p.toml at B 8 ×
/// 12 frames × 256 points, as the PyTorch harness's `--c2p-only` (its partial clip is a
/// stand-in: the complete clip with each frame's points reversed, plus 0.05).
pub fn c2p(dev: &Device, warmup: usize, repeats: usize, json: bool) -> BoxResult<()> {
    use edge4d_runtime::models::predictor::PredictorNorm;
    use edge4d_trainer::c2p::loss::LossVariant;
    use edge4d_trainer::c2p::model::{C2pObjective, TeacherMode, TimeInput};
    use edge4d_trainer::finetune::{FinetuneConfig, Finetuner};

    let cfg = P4TransformerConfig::parse(
        include_str!("../../configs/humanoid-c2p.toml"),
        "configs/humanoid-c2p.toml",
    )?;
    let (b, l, n) = (8usize, 12usize, 256usize);
    let (backbone, objective) = C2pObjective::new(
        dev,
        cfg.clone(),
        PredictorNorm::BatchNorm,
        LossVariant::Bidirectional,
        TeacherMode::Shared,
        TimeInput::FrameIndex,
    )?;
    let params = ParamStore::init(dev, objective.spec(&backbone), 1)?;
    let train = FinetuneConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        warmup_epochs: 0,
        ..FinetuneConfig::default()
    };
    let model = edge4d_trainer::finetune::C2pPretraining::new(backbone, objective);
    let mut ft = Finetuner::new(dev, model, params, train, 1)?;
    let complete_data = clip_data(&[b, l, n, 3]);
    let mut partial_data = complete_data.clone();
    for (frame, src) in partial_data
        .chunks_exact_mut(n * 3)
        .zip(complete_data.chunks_exact(n * 3))
    {
        for (dst, p) in frame.chunks_exact_mut(3).zip(src.chunks_exact(3).rev()) {
            for c in 0..3 {
                dst[c] = p[c] + 0.05;
            }
        }
    }
    let complete = dev.upload(&complete_data, &[b, l, n, 3])?;
    let partial = dev.upload(&partial_data, &[b, l, n, 3])?;
    dev.reset_peak_bytes();
    let (ms, k) = median_ms(dev, warmup, repeats, || {
        ft.pretrain_step(&partial, &complete).map(|_| ())
    })?;
    let d0 = dev.dispatches();
    ft.pretrain_step(&partial, &complete)?;
    let step_dispatches = dev.dispatches() - d0;
    let adapter = dev.adapter();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "op": "c2p_step_sgd",
                "config": "humanoid-c2p",
                "clip": [b, l, n, 3],
                "pred_hidden": cfg.pred_hidden,
                "backend": adapter.backend, "adapter": adapter.name, "device_type": adapter.device_type,
                "repeats": k,
                "ms_per_clip": round3(ms / b as f64),
                "step_ms": round3(ms),
                "peak_bytes": dev.memory_in_use().1,
                "dispatches_per_step": step_dispatches,
            })
        );
    } else {
        println!(
            "C2P step (humanoid-c2p, clip {:?}): {:.2} ms/clip, {:.1} ms/step ({adapter})",
            [b, l, n, 3],
            ms / b as f64,
            ms
        );
    }
    Ok(())
}

/// `bench memory`: the peak of pooled memory during one full training step (forward,
/// loss, backward, SGD with momentum) of each P4Transformer config at `batch` clips,
/// with the step's time and dispatches. The first step allocates the optimizer state
/// and every activation; the peak is that of the second, steady one.
pub fn memory(dev: &Device, configs: &[String], batch: usize, json: bool) -> BoxResult<()> {
    use edge4d_trainer::finetune::{FinetuneConfig, Finetuner};
    let cases: [(&str, &str, usize, usize); 3] = [
        ("fixture", FIXTURE, 6, 160),
        (
            "humanoid-small",
            include_str!("../../configs/humanoid-small.toml"),
            16,
            512,
        ),
        ("paper-msr", PAPER_MSR, 24, 2048),
    ];
    for name in configs {
        let Some(&(name, toml, frames, points)) = cases.iter().find(|c| c.0 == name) else {
            return Err(format!(
                "bench memory: unknown config {name:?} (fixture, humanoid-small, paper-msr)"
            )
            .into());
        };
        let cfg = P4TransformerConfig::parse(toml, name)?;
        let model = P4Transformer::new(cfg.clone())?;
        let params = ParamStore::init(dev, model.spec(), 1)?;
        let parameters: usize = model
            .spec()
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        let mut ft = Finetuner::new(dev, model, params, FinetuneConfig::default(), 1)?;
        let x = clip(dev, &[batch, frames, points, 3])?;
        let labels = dev.upload_u32(&vec![0; batch], &[batch])?;
        let loss = ft.train_step(&x, &labels)?;
        dev.read(&loss)?;
        let before = dev.memory_in_use().0;
        dev.reset_peak_bytes();
        let d0 = dev.dispatches();
        let t = Instant::now();
        let loss = ft.train_step(&x, &labels)?;
        dev.read(&loss)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let dispatches = dev.dispatches() - d0;
        let peak = dev.memory_in_use().1;
        let adapter = dev.adapter();
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "op": "training_step_memory", "config": name,
                    "clip": [batch, frames, points, 3], "parameters": parameters,
                    "tokens": (frames / cfg.temporal_stride()) * (points / cfg.spatial_stride()),
                    "heads": cfg.heads, "depth": cfg.depth,
                    "backend": adapter.backend, "adapter": adapter.name, "device_type": adapter.device_type,
                    "resident_bytes": before, "peak_bytes": peak, "step_ms": round3(ms),
                    "dispatches_per_step": dispatches,
                })
            );
        } else {
            println!(
                "{name} at batch {batch}: peak {:.2} GiB during a training step ({:.2} GiB resident: weights, optimizer state, inputs), {ms:.0} ms, {dispatches} dispatches ({adapter})",
                gib(peak),
                gib(before)
            );
        }
    }
    Ok(())
}
