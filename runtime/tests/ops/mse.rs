use edge4d_runtime::ops::mse::{mse, mse_backward};
use edge4d_runtime::reference::mse as r;

use crate::common::*;

#[test]
fn loss_and_gradient_match_reference() {
    let mut rng = Rng::new(41);
    for shape in [vec![1, 1], vec![3, 7], vec![2, 10, 77]] {
        let n: usize = shape.iter().product();
        let (a, b) = (rng.vec(n), rng.vec(n));
        let (ta, tb, tg) = (up(&a, &shape), up(&b, &shape), up(&[0.75], &[1]));
        let (loss, g) = dev()
            .run(|s| Ok((mse(s, &ta, &tb)?, mse_backward(s, &ta, &tb, &tg)?)))
            .unwrap();
        let (a64, b64) = (f64s(&a), f64s(&b));
        assert_close("mse", &down(&loss), &[r::forward(&a64, &b64)], 1e-7, 1e-5);
        assert_close(
            "mse grad",
            &down(&g),
            &r::backward(&a64, &b64, 0.75),
            1e-7,
            1e-5,
        );
    }
}

#[test]
fn reference_gradient_matches_finite_differences() {
    let mut rng = Rng::new(42);
    let (a, b) = (f64s(&rng.vec(12)), f64s(&rng.vec(12)));
    grad_check("mse", &a, &r::backward(&a, &b, 1.0), |x| r::forward(x, &b));
}

#[test]
fn mismatched_shapes_are_an_error() {
    let (a, b) = (up(&[0.0; 6], &[2, 3]), up(&[0.0; 6], &[3, 2]));
    let err = dev().run(|s| mse(s, &a, &b)).unwrap_err().to_string();
    assert!(err.contains("same non-empty shape"), "{err}");
}
