//! `bench attention`: scaled dot-product attention at the paper-MSR shape (8 heads,
//! 768 tokens, head dim 128, --batch-size clips), forward and forward+backward, through
//! the fused (flash-style) kernel and through the unfused ops, with each one's time,
//! peak memory and dispatches.

use edge4d_runtime::models::attention::{attention_backward, attention_with};
use edge4d_runtime::{Device, Tensor};

use super::p4::median_ms;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const HEADS: usize = 8;
const TOKENS: usize = 768;
const HEAD_DIM: usize = 128;

/// Deterministic values in ±1 (a xorshift stream).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

pub fn attention(
    dev: &Device,
    batch: usize,
    warmup: usize,
    repeats: usize,
    json: bool,
) -> BoxResult<()> {
    let bh = batch * HEADS;
    let shape = [bh, TOKENS, HEAD_DIM];
    let n = bh * TOKENS * HEAD_DIM;
    let upload = |seed| dev.upload(&values(n, seed), &shape);
    let (q, k, v, g) = (upload(1)?, upload(2)?, upload(3)?, upload(4)?);
    let adapter = dev.adapter();
    for fused in [false, true] {
        let kernel = if fused { "fused" } else { "unfused" };
        for backward in [false, true] {
            let pass = if backward {
                "forward+backward"
            } else {
                "forward"
            };
            let step = || -> Result<Vec<Tensor>, edge4d_runtime::Error> {
                dev.run(|s| {
                    let (o, saved) = attention_with(s, &q, &k, &v, fused)?;
                    if !backward {
                        return Ok(vec![o]);
                    }
                    let (dq, dk, dv) = attention_backward(s, &saved, &g)?;
                    Ok(vec![dq, dk, dv])
                })
            };
            let resident = dev.memory_in_use().0;
            dev.reset_peak_bytes();
            let d0 = dev.dispatches();
            let outcome = step().and_then(|_| {
                let dispatches = dev.dispatches() - d0;
                let peak = dev.memory_in_use().1 - resident;
                let (ms, runs) = median_ms(dev, warmup, repeats, || step().map(drop))?;
                Ok((ms, runs, peak, dispatches))
            });
            let record = match outcome {
                Ok((ms, runs, peak, dispatches)) => serde_json::json!({
                    "op": "attention", "kernel": kernel, "pass": pass,
                    "batch_heads": bh, "tokens": TOKENS, "head_dim": HEAD_DIM,
                    "ms": (ms * 1000.0).round() / 1000.0, "runs": runs,
                    "peak_bytes": peak, "dispatches": dispatches,
                    "backend": adapter.backend, "adapter": adapter.name,
                }),
                Err(e) => serde_json::json!({
                    "op": "attention", "kernel": kernel, "pass": pass,
                    "batch_heads": bh, "tokens": TOKENS, "head_dim": HEAD_DIM,
                    "error": e.to_string(), "backend": adapter.backend, "adapter": adapter.name,
                }),
            };
            if json {
                println!("{record}");
            } else if let Some(e) = record.get("error").and_then(|e| e.as_str()) {
                println!("{kernel:>8} {pass:<17} (B·H {bh}, T {TOKENS}, dh {HEAD_DIM}): {e}");
            } else {
                println!(
                    "{kernel:>8} {pass:<17} (B·H {bh}, T {TOKENS}, dh {HEAD_DIM}): {:.1} ms, {:.1} MiB beyond the inputs, {} dispatches",
                    record["ms"].as_f64().unwrap_or(0.0),
                    record["peak_bytes"].as_u64().unwrap_or(0) as f64 / (1u64 << 20) as f64,
                    record["dispatches"]
                );
            }
        }
    }
    Ok(())
}
