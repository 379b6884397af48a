use edge4d_runtime::ops::batchnorm::{batchnorm, batchnorm_backward, BatchNormState};
use edge4d_runtime::reference::batchnorm as r;
use edge4d_runtime::Error;

use crate::common::*;

const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

fn check(shape: &[usize], train: bool, seed: u64) {
    let mut rng = Rng::new(seed);
    let (n, c) = (shape[0], shape[1]);
    let l: usize = shape[2..].iter().product();
    let numel = n * c * l;
    let x: Vec<f32> = rng.vec(numel).iter().map(|v| v * 2.0 + 0.3).collect();
    let gamma = rng.vec(c);
    let beta = rng.vec(c);
    let rm = rng.vec(c);
    let rv: Vec<f32> = rng.vec(c).iter().map(|v| v.abs() + 0.5).collect();
    let g = rng.vec(numel);
    let (tx, tgm, tb, trm, trv, tg) = (
        up(&x, shape),
        up(&gamma, &[c]),
        up(&beta, &[c]),
        up(&rm, &[c]),
        up(&rv, &[c]),
        up(&g, shape),
    );
    let state = BatchNormState {
        running_mean: &trm,
        running_var: &trv,
        eps: EPS,
        momentum: MOMENTUM,
        train,
    };
    let (y, (gx, ggamma, gbeta)) = dev()
        .run(|s| {
            let (y, saved) = batchnorm(s, &tx, &tgm, &tb, &state)?;
            Ok((y, batchnorm_backward(s, &tx, &tgm, &saved, &tg)?))
        })
        .unwrap();
    let (mut rm64, mut rv64) = (f64s(&rm), f64s(&rv));
    let (x64, gm64) = (f64s(&x), f64s(&gamma));
    let want = r::forward(
        &x64,
        (n, c, l),
        &gm64,
        &f64s(&beta),
        &mut rm64,
        &mut rv64,
        EPS as f64,
        MOMENTUM as f64,
        train,
    );
    let what = format!("batchnorm {shape:?} train={train}");
    assert_close(&what, &down(&y), &want, 1e-5, 1e-4);
    assert_close(
        &format!("{what} running_mean"),
        &down(&trm),
        &rm64,
        1e-6,
        1e-5,
    );
    assert_close(
        &format!("{what} running_var"),
        &down(&trv),
        &rv64,
        1e-6,
        1e-5,
    );
    let (rgx, rgg, rgb) = r::backward(
        &x64,
        (n, c, l),
        &gm64,
        &f64s(&rm),
        &f64s(&rv),
        EPS as f64,
        train,
        &f64s(&g),
    );
    assert_close(&format!("{what} dx"), &down(&gx), &rgx, 1e-5, 1e-4);
    assert_close(&format!("{what} dgamma"), &down(&ggamma), &rgg, 1e-5, 1e-4);
    assert_close(&format!("{what} dbeta"), &down(&gbeta), &rgb, 1e-5, 1e-4);
}

#[test]
fn train_and_eval_match_reference_including_running_statistics() {
    check(&[7, 5], true, 50);
    check(&[3, 6, 11], true, 51);
    check(&[2, 3, 5, 7], true, 52);
    check(&[3, 6, 11], false, 53);
    check(&[130, 4], true, 54);
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(55);
    let dims = (3, 2, 4);
    let x = f64s(&rng.vec(24));
    let gamma = f64s(&rng.vec(2));
    let beta = f64s(&rng.vec(2));
    let g = f64s(&rng.vec(24));
    let (rm, rv) = (vec![0.1, -0.2], vec![0.7, 1.3]);
    for train in [true, false] {
        let f = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut m, mut v) = (rm.clone(), rv.clone());
            dot(
                &r::forward(x, dims, gamma, beta, &mut m, &mut v, 1e-5, 0.1, train),
                &g,
            )
        };
        let (gx, gg, gb) = r::backward(&x, dims, &gamma, &rm, &rv, 1e-5, train, &g);
        grad_check("batchnorm dx", &x, &gx, |x| f(x, &gamma, &beta));
        grad_check("batchnorm dgamma", &gamma, &gg, |gm| f(&x, gm, &beta));
        grad_check("batchnorm dbeta", &beta, &gb, |b| f(&x, &gamma, b));
    }
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(56);
    let x = up(&rng.vec(16 * 24 * 40), &[16, 24, 40]);
    let gm = up(&rng.vec(24), &[24]);
    let b = up(&rng.vec(24), &[24]);
    let g = up(&rng.vec(16 * 24 * 40), &[16, 24, 40]);
    let run = || {
        let rm = up(&[0.0; 24], &[24]);
        let rv = up(&[1.0; 24], &[24]);
        let state = BatchNormState {
            running_mean: &rm,
            running_var: &rv,
            eps: EPS,
            momentum: MOMENTUM,
            train: true,
        };
        let (y, gr) = dev()
            .run(|s| {
                let (y, saved) = batchnorm(s, &x, &gm, &b, &state)?;
                Ok((y, batchnorm_backward(s, &x, &gm, &saved, &g)?))
            })
            .unwrap();
        (
            bits(&y),
            bits(&gr.0),
            bits(&gr.1),
            bits(&gr.2),
            bits(&rm),
            bits(&rv),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn single_value_per_channel_in_train_mode_is_refused() {
    let x = up(&[1.0, 2.0], &[1, 2]);
    let gm = up(&[1.0; 2], &[2]);
    let state = BatchNormState {
        running_mean: &gm,
        running_var: &gm,
        eps: EPS,
        momentum: MOMENTUM,
        train: true,
    };
    let err = dev()
        .run(|s| batchnorm(s, &x, &gm, &gm, &state).map(|r| r.0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                op: "batchnorm",
                ..
            }
        ),
        "{err}"
    );
}
