use edge4d_runtime::ops::attention::{flash_attention, flash_attention_backward, MAX_HEAD_DIM};
use edge4d_runtime::reference::attention as r;

use crate::common::*;

/// Random q, k, v and output gradient for (bh, tq, tk, dh); the scaled scores have a
/// standard deviation of `spread`, so rows are peaked and the running max moves
/// between key tiles. (q_d k_d of entries uniform in ±c has variance c⁴/9.)
fn case(seed: u64, [bh, tq, tk, dh]: [usize; 4], spread: f32) -> [Vec<f32>; 4] {
    let mut rng = Rng::new(seed);
    let s = (3.0 * spread).sqrt();
    let mut big = |n: usize| -> Vec<f32> { rng.vec(n).iter().map(|v| v * s).collect() };
    let (q, k) = (big(bh * tq * dh), big(bh * tk * dh));
    [q, k, rng.vec(bh * tk * dh), rng.vec(bh * tq * dh)]
}

#[test]
fn forward_and_backward_match_reference() {
    // One key, ragged tiles on both sides of 64, the widest head, more keys than queries.
    for (i, dims) in [
        [1, 1, 1, 1],
        [2, 5, 7, 3],
        [3, 70, 130, 33],
        [1, 65, 64, MAX_HEAD_DIM],
        [2, 3, 200, 16],
    ]
    .into_iter()
    .enumerate()
    {
        let [bh, tq, tk, dh] = dims;
        let [q, k, v, g] = case(40 + i as u64, dims, 4.0);
        let (tq_, tk_, tv, tg) = (
            up(&q, &[bh, tq, dh]),
            up(&k, &[bh, tk, dh]),
            up(&v, &[bh, tk, dh]),
            up(&g, &[bh, tq, dh]),
        );
        let (o, lse) = dev().run(|s| flash_attention(s, &tq_, &tk_, &tv)).unwrap();
        let (q64, k64, v64, g64) = (f64s(&q), f64s(&k), f64s(&v), f64s(&g));
        let (want_o, want_lse) = r::forward(&q64, &k64, &v64, bh, tq, tk, dh);
        let what = format!("flash attention {dims:?}");
        // Scores of spread 4 carry a rounding error of about eps · Σ|q_d k_d| / √dh
        // (~1e-6 at dh 256), which moves each p, and so o and dv (|v|, |g| ≤ 1), by that much.
        assert_close(&format!("{what} o"), &down(&o), &want_o, 1e-5, 1e-4);
        assert_close(&format!("{what} lse"), &down(&lse), &want_lse, 1e-5, 1e-5);
        let (dq, dk, dv) = dev()
            .run(|s| flash_attention_backward(s, &tq_, &tk_, &tv, &o, &lse, &tg))
            .unwrap();
        let (wq, wk, wv) = r::backward(&q64, &k64, &v64, &g64, bh, tq, tk, dh);
        assert_close(&format!("{what} dq"), &down(&dq), &wq, 1e-5, 1e-3);
        assert_close(&format!("{what} dk"), &down(&dk), &wk, 1e-5, 1e-3);
        assert_close(&format!("{what} dv"), &down(&dv), &wv, 1e-5, 1e-4);
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let dims @ [bh, tq, tk, dh] = [2, 3, 4, 5];
    let [q, k, v, g] = case(50, dims, 3.0).map(|x| f64s(&x));
    let (dq, dk, dv) = r::backward(&q, &k, &v, &g, bh, tq, tk, dh);
    let loss = |q: &[f64], k: &[f64], v: &[f64]| dot(&r::forward(q, k, v, bh, tq, tk, dh).0, &g);
    grad_check("attention dq", &q, &dq, |x| loss(x, &k, &v));
    grad_check("attention dk", &k, &dk, |x| loss(&q, x, &v));
    grad_check("attention dv", &v, &dv, |x| loss(&q, &k, x));
}

#[test]
fn reference_log_sum_exp_is_that_of_the_scaled_scores() {
    let dims @ [bh, tq, tk, dh] = [2, 3, 4, 5];
    let [q, k, v, _] = case(51, dims, 3.0).map(|x| f64s(&x));
    let (_, lse) = r::forward(&q, &k, &v, bh, tq, tk, dh);
    for h in 0..bh {
        for i in 0..tq {
            let qi = &q[(h * tq + i) * dh..][..dh];
            let direct: f64 = (0..tk)
                .map(|j| {
                    let kj = &k[(h * tk + j) * dh..][..dh];
                    (dot(qi, kj) / (dh as f64).sqrt()).exp()
                })
                .sum::<f64>()
                .ln();
            assert!((lse[h * tq + i] - direct).abs() < 1e-12, "row {h},{i}");
        }
    }
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let dims @ [bh, tq, tk, dh] = [4, 97, 150, 40];
    let [q, k, v, g] = case(52, dims, 4.0);
    let (q, k, v, g) = (
        up(&q, &[bh, tq, dh]),
        up(&k, &[bh, tk, dh]),
        up(&v, &[bh, tk, dh]),
        up(&g, &[bh, tq, dh]),
    );
    let run = || {
        dev()
            .run(|s| {
                let (o, lse) = flash_attention(s, &q, &k, &v)?;
                let (dq, dk, dv) = flash_attention_backward(s, &q, &k, &v, &o, &lse, &g)?;
                Ok([o, lse, dq, dk, dv])
            })
            .unwrap()
            .map(|t| bits(&t))
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_shapes_and_wide_heads_are_named_errors() {
    let t = |shape: &[usize]| up(&vec![0.5; shape.iter().product()], shape);
    let (q, k) = (t(&[2, 3, 4]), t(&[2, 5, 4]));
    let err = |r: edge4d_runtime::Result<(edge4d_runtime::Tensor, edge4d_runtime::Tensor)>| {
        r.unwrap_err().to_string()
    };
    let e = err(dev().run(|s| flash_attention(s, &q, &k, &t(&[2, 6, 4]))));
    assert!(
        e.contains("flash_attention") && e.contains("[2, 6, 4]"),
        "{e}"
    );
    let e = err(dev().run(|s| flash_attention(s, &q, &t(&[1, 5, 4]), &t(&[1, 5, 4]))));
    assert!(e.contains("(BH, Tq, dh)"), "{e}");
    let e = err(dev().run(|s| flash_attention(s, &t(&[2, 12]), &k, &k)));
    assert!(e.contains("q [2, 12]"), "{e}");
    let wide = t(&[1, 2, MAX_HEAD_DIM + 1]);
    let e = err(dev().run(|s| flash_attention(s, &wide, &wide, &wide)));
    assert!(e.contains("head dim 257"), "{e}");
    let (o, lse) = dev().run(|s| flash_attention(s, &q, &k, &k)).unwrap();
    let e = dev()
        .run(|s| flash_attention_backward(s, &q, &k, &k, &o, &t(&[2, 4]), &o))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("lse [2, 4] should be [2, 3]"), "{e}");
    drop(lse);
}

/// The model-level attention gives the same output and gradients fused and unfused,
/// and fuses exactly when the scores would pass `FUSE_ABOVE_BYTES`.
#[test]
fn fused_and_unfused_paths_agree_and_the_switch_is_by_score_size() {
    use edge4d_runtime::models::attention::{
        attention_backward, attention_with, fuses, FUSE_ABOVE_BYTES,
    };
    let dims @ [bh, tq, tk, dh] = [3, 40, 70, 24];
    let [q, k, v, g] = case(53, dims, 4.0);
    let (tq_, tk_, tv, tg) = (
        up(&q, &[bh, tq, dh]),
        up(&k, &[bh, tk, dh]),
        up(&v, &[bh, tk, dh]),
        up(&g, &[bh, tq, dh]),
    );
    let run = |fused: bool| {
        dev()
            .run(|s| {
                let (o, saved) = attention_with(s, &tq_, &tk_, &tv, fused)?;
                let (dq, dk, dv) = attention_backward(s, &saved, &tg)?;
                Ok([o, dq, dk, dv])
            })
            .unwrap()
            .map(|t| down(&t))
    };
    let (fused, unfused) = (run(true), run(false));
    for (name, (a, b)) in ["o", "dq", "dk", "dv"]
        .iter()
        .zip(fused.iter().zip(&unfused))
    {
        assert_close(&format!("fused vs unfused {name}"), a, &f64s(b), 1e-5, 1e-4);
    }
    assert!(!fuses(&tq_, &tk_), "a 34 KB score tensor stays unfused");
    // 8 heads × 768 × 768 of the paper at batch 4 pass 64 MiB (scores 75 MB); at 3 not.
    let shape = |b: usize| [b * 8, 768, 128];
    let zeros = |b: usize| dev().zeros(&shape(b)).unwrap();
    assert_eq!(FUSE_ABOVE_BYTES, 64 << 20);
    assert!(!fuses(&zeros(3), &zeros(3)));
    assert!(fuses(&zeros(4), &zeros(4)));
}
