use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::reference::cross_entropy as r;

use crate::common::*;

#[test]
fn loss_and_gradient_match_reference() {
    let mut rng = Rng::new(90);
    for (b, c) in [(1, 2), (13, 7), (65, 20)] {
        let x: Vec<f32> = rng.vec(b * c).iter().map(|v| v * 4.0).collect();
        let labels: Vec<u32> = (0..b).map(|_| (rng.next_u64() % c as u64) as u32).collect();
        let (tx, tl) = (up(&x, &[b, c]), dev().upload_u32(&labels, &[b]).unwrap());
        let one = up(&[1.5], &[1]);
        let (loss, g) = dev()
            .run(|s| {
                let (loss, _) = cross_entropy(s, &tx, &tl)?;
                Ok((loss, cross_entropy_backward(s, &tx, &tl, &one)?))
            })
            .unwrap();
        let x64 = f64s(&x);
        assert_close(
            "cross entropy",
            &down(&loss),
            &[r::forward(&x64, &labels, c)],
            1e-6,
            1e-5,
        );
        assert_close(
            "cross entropy grad",
            &down(&g),
            &r::backward(&x64, &labels, c, 1.5),
            1e-7,
            1e-5,
        );
    }
}

#[test]
fn out_of_range_label_gives_nan_not_a_wild_read() {
    let x = up(&[0.0; 6], &[2, 3]);
    let l = dev().upload_u32(&[1, 3], &[2]).unwrap();
    let (loss, rows) = dev().run(|s| cross_entropy(s, &x, &l)).unwrap();
    let rows = down(&rows);
    assert!((rows[0] - 3f32.ln()).abs() < 1e-6 && rows[1].is_nan());
    assert!(down(&loss)[0].is_nan());
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(91);
    let x = f64s(&rng.vec(12));
    let labels = [0, 3, 2];
    grad_check(
        "cross entropy",
        &x,
        &r::backward(&x, &labels, 4, 1.0),
        |x| r::forward(x, &labels, 4),
    );
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(92);
    let x = up(&rng.vec(300 * 10), &[300, 10]);
    let labels: Vec<u32> = (0..300).map(|i| i % 10).collect();
    let l = dev().upload_u32(&labels, &[300]).unwrap();
    let one = up(&[1.0], &[1]);
    let run = || {
        let (a, b) = dev()
            .run(|s| {
                Ok((
                    cross_entropy(s, &x, &l)?.0,
                    cross_entropy_backward(s, &x, &l, &one)?,
                ))
            })
            .unwrap();
        (bits(&a), bits(&b))
    };
    assert_eq!(run(), run());
}
