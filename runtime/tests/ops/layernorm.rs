use edge4d_runtime::ops::layernorm::{layernorm, layernorm_backward};
use edge4d_runtime::reference::layernorm as r;
use edge4d_runtime::Error;

use crate::common::*;

const EPS: f32 = 1e-5;

#[test]
fn forward_and_backward_match_reference() {
    let mut rng = Rng::new(40);
    for (shape, d) in [(vec![3, 5, 37], 37), (vec![100, 3], 3), (vec![2, 200], 200)] {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 3.0 + 0.5).collect();
        let gamma = rng.vec(d);
        let beta = rng.vec(d);
        let g = rng.vec(n);
        let (tx, tgm, tb, tg) = (
            up(&x, &shape),
            up(&gamma, &[d]),
            up(&beta, &[d]),
            up(&g, &shape),
        );
        let (y, (gx, ggamma, gbeta)) = dev()
            .run(|s| {
                let (y, saved) = layernorm(s, &tx, &tgm, &tb, EPS)?;
                Ok((y, layernorm_backward(s, &tx, &tgm, &saved, &tg)?))
            })
            .unwrap();
        let (x64, gm64) = (f64s(&x), f64s(&gamma));
        assert_close(
            "layernorm",
            &down(&y),
            &r::forward(&x64, &gm64, &f64s(&beta), EPS as f64),
            1e-5,
            1e-4,
        );
        let (rgx, rgg, rgb) = r::backward(&x64, &gm64, EPS as f64, &f64s(&g));
        assert_close("layernorm dx", &down(&gx), &rgx, 1e-5, 1e-4);
        assert_close("layernorm dgamma", &down(&ggamma), &rgg, 1e-5, 1e-4);
        assert_close("layernorm dbeta", &down(&gbeta), &rgb, 1e-5, 1e-4);
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(41);
    let x = f64s(&rng.vec(12));
    let gamma = f64s(&rng.vec(4));
    let beta = f64s(&rng.vec(4));
    let g = f64s(&rng.vec(12));
    let (gx, ggamma, gbeta) = r::backward(&x, &gamma, 1e-5, &g);
    grad_check("layernorm dx", &x, &gx, |x| {
        dot(&r::forward(x, &gamma, &beta, 1e-5), &g)
    });
    grad_check("layernorm dgamma", &gamma, &ggamma, |gm| {
        dot(&r::forward(&x, gm, &beta, 1e-5), &g)
    });
    grad_check("layernorm dbeta", &beta, &gbeta, |b| {
        dot(&r::forward(&x, &gamma, b, 1e-5), &g)
    });
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(42);
    let x = up(&rng.vec(300 * 96), &[300, 96]);
    let gm = up(&rng.vec(96), &[96]);
    let b = up(&rng.vec(96), &[96]);
    let g = up(&rng.vec(300 * 96), &[300, 96]);
    let run = || {
        dev()
            .run(|s| {
                let (y, saved) = layernorm(s, &x, &gm, &b, EPS)?;
                Ok((y, layernorm_backward(s, &x, &gm, &saved, &g)?))
            })
            .unwrap()
    };
    let (a, c) = (run(), run());
    assert_eq!(bits(&a.0), bits(&c.0));
    assert_eq!(
        (bits(&a.1 .0), bits(&a.1 .1), bits(&a.1 .2)),
        (bits(&c.1 .0), bits(&c.1 .1), bits(&c.1 .2))
    );
}

#[test]
fn wrong_gamma_length_is_a_shape_error() {
    let x = up(&[0.0; 6], &[2, 3]);
    let gm = up(&[1.0; 2], &[2]);
    let err = dev()
        .run(|s| layernorm(s, &x, &gm, &gm, EPS).map(|r| r.0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                op: "layernorm",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn l2normalize_matches_reference_finite_differences_and_clamps_tiny_rows() {
    use edge4d_runtime::ops::layernorm::{l2normalize, l2normalize_backward};
    let mut rng = Rng::new(43);
    for (rows, d) in [(7, 5), (3, 130), (1, 1)] {
        let mut x = rng.vec(rows * d);
        // A row below eps exercises the clamp.
        x[..d].iter_mut().for_each(|v| *v *= 1e-14);
        let g = rng.vec(rows * d);
        let (tx, tg) = (up(&x, &[rows, d]), up(&g, &[rows, d]));
        let (y, gx) = dev()
            .run(|s| {
                let (y, saved) = l2normalize(s, &tx, 1e-12)?;
                Ok((y, l2normalize_backward(s, &saved, &tg)?))
            })
            .unwrap();
        let x64 = f64s(&x);
        assert_close(
            "l2normalize",
            &down(&y),
            &r::l2normalize(&x64, d, 1e-12),
            1e-5,
            1e-5,
        );
        let want = r::l2normalize_backward(&x64, d, 1e-12, &f64s(&g));
        // The clamped row's gradient is g / eps (huge): compare the others.
        assert_close("l2normalize dx", &down(&gx)[d..], &want[d..], 1e-5, 1e-4);
        assert_close(
            "l2normalize dx (clamped)",
            &down(&gx)[..d],
            &want[..d],
            1e-5,
            1e-4,
        );
    }
    let x = f64s(&rng.vec(12));
    let g = f64s(&rng.vec(12));
    let gx = r::l2normalize_backward(&x, 4, 1e-12, &g);
    grad_check("l2normalize dx", &x, &gx, |x| {
        dot(&r::l2normalize(x, 4, 1e-12), &g)
    });
}
