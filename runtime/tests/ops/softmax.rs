use edge4d_runtime::ops::softmax::{softmax, softmax_backward};
use edge4d_runtime::reference::softmax as r;

use crate::common::*;

#[test]
fn forward_and_backward_match_reference() {
    let mut rng = Rng::new(30);
    for (rows, d) in [(1, 1), (9, 7), (5, 130), (70, 3)] {
        let x: Vec<f32> = rng.vec(rows * d).iter().map(|v| v * 6.0).collect();
        let g = rng.vec(rows * d);
        let (tx, tg) = (up(&x, &[rows, d]), up(&g, &[rows, d]));
        let y = dev().run(|s| softmax(s, &tx)).unwrap();
        let want = r::forward(&f64s(&x), d);
        assert_close("softmax", &down(&y), &want, 1e-7, 1e-5);
        let gx = dev().run(|s| softmax_backward(s, &y, &tg)).unwrap();
        assert_close(
            "softmax backward",
            &down(&gx),
            &r::backward(&want, &f64s(&g), d),
            1e-6,
            1e-4,
        );
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(31);
    let x = f64s(&rng.vec(15));
    let g = f64s(&rng.vec(15));
    let y = r::forward(&x, 5);
    grad_check("softmax", &x, &r::backward(&y, &g, 5), |x| {
        dot(&r::forward(x, 5), &g)
    });
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(32);
    let x = up(&rng.vec(33 * 257), &[33, 257]);
    let g = up(&rng.vec(33 * 257), &[33, 257]);
    let run = || {
        dev()
            .run(|s| {
                let y = softmax(s, &x)?;
                let gx = softmax_backward(s, &y, &g)?;
                Ok((y, gx))
            })
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!((bits(&a.0), bits(&a.1)), (bits(&b.0), bits(&b.1)));
}
