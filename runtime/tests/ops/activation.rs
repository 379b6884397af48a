use edge4d_runtime::ops::activation::{gelu, gelu_backward, relu, relu_backward};
use edge4d_runtime::reference::activation as r;

use crate::common::*;

#[test]
fn relu_and_gelu_match_reference() {
    let mut rng = Rng::new(20);
    let x: Vec<f32> = rng
        .vec_away_from_zero(1001)
        .iter()
        .map(|v| v * 5.0)
        .collect();
    let g = rng.vec(1001);
    let (tx, tg) = (up(&x, &[7, 11, 13]), up(&g, &[7, 11, 13]));
    let (y, gy, z, gz) = dev()
        .run(|s| {
            Ok((
                relu(s, &tx)?,
                relu_backward(s, &tx, &tg)?,
                gelu(s, &tx)?,
                gelu_backward(s, &tx, &tg)?,
            ))
        })
        .unwrap();
    let (x64, g64) = (f64s(&x), f64s(&g));
    assert_close("relu", &down(&y), &r::relu(&x64), 0.0, 0.0);
    assert_close(
        "relu backward",
        &down(&gy),
        &r::relu_backward(&x64, &g64),
        0.0,
        0.0,
    );
    assert_close("gelu", &down(&z), &r::gelu(&x64), 2e-6, 1e-5);
    assert_close(
        "gelu backward",
        &down(&gz),
        &r::gelu_backward(&x64, &g64),
        2e-6,
        1e-5,
    );
}

#[test]
fn reference_erf_is_accurate() {
    // Values from Abramowitz & Stegun table 7.1 / high-precision evaluation.
    for (x, want) in [
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (2.0, 0.9953222650189527),
        (3.5, 0.9999992569016276),
    ] {
        assert!((r::erf(x) - want).abs() < 1e-12, "erf({x}) = {}", r::erf(x));
        assert!((r::erf(-x) + want).abs() < 1e-12);
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(21);
    let x: Vec<f64> = f64s(&rng.vec_away_from_zero(40))
        .iter()
        .map(|v| v * 4.0)
        .collect();
    let g = f64s(&rng.vec(40));
    grad_check("relu", &x, &r::relu_backward(&x, &g), |x| {
        dot(&r::relu(x), &g)
    });
    grad_check("gelu", &x, &r::gelu_backward(&x, &g), |x| {
        dot(&r::gelu(x), &g)
    });
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(22);
    let x = up(&rng.vec(5000), &[5000]);
    let g = up(&rng.vec(5000), &[5000]);
    let run = || {
        dev()
            .run(|s| {
                Ok((
                    gelu(s, &x)?,
                    gelu_backward(s, &x, &g)?,
                    relu_backward(s, &x, &g)?,
                ))
            })
            .unwrap()
    };
    let a = run();
    let b = run();
    assert_eq!(
        (bits(&a.0), bits(&a.1), bits(&a.2)),
        (bits(&b.0), bits(&b.1), bits(&b.2))
    );
}
