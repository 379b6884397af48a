use edge4d_runtime::ops::dropout::{dropout, dropout_backward};
use edge4d_runtime::reference::dropout as r;
use edge4d_runtime::Error;

use crate::common::*;

#[test]
fn mask_matches_reference_bit_for_bit_and_keeps_about_1_minus_p() {
    let mut rng = Rng::new(80);
    let n = 20_011;
    let x = rng.vec(n);
    let g = rng.vec(n);
    let (tx, tg) = (up(&x, &[n]), up(&g, &[n]));
    for (p, seed) in [(0.1f32, 7u32), (0.5, 123456), (0.9, 0)] {
        let (y, gx) = dev()
            .run(|s| {
                Ok((
                    dropout(s, &tx, p, seed)?,
                    dropout_backward(s, &tg, p, seed)?,
                ))
            })
            .unwrap();
        let y = down(&y);
        assert_close("dropout", &y, &r::apply(&f64s(&x), p, seed), 0.0, 1e-6);
        assert_close(
            "dropout backward",
            &down(&gx),
            &r::apply(&f64s(&g), p, seed),
            0.0,
            1e-6,
        );
        let kept = (0..n).filter(|&i| r::keep(i as u32, seed, p)).count() as f64 / n as f64;
        assert!(
            (kept - (1.0 - p as f64)).abs() < 0.015,
            "p={p}: kept {kept}"
        );
    }
    let a = dev().run(|s| dropout(s, &tx, 0.5, 1)).unwrap();
    let b = dev().run(|s| dropout(s, &tx, 0.5, 2)).unwrap();
    assert_ne!(bits(&a), bits(&b), "different seeds give different masks");
    let c = dev().run(|s| dropout(s, &tx, 0.5, 1)).unwrap();
    assert_eq!(bits(&a), bits(&c), "same seed, same mask");
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(81);
    let x = f64s(&rng.vec(50));
    let g = f64s(&rng.vec(50));
    grad_check("dropout", &x, &r::apply(&g, 0.3, 9), |x| {
        dot(&r::apply(x, 0.3, 9), &g)
    });
}

#[test]
fn p_outside_0_1_is_refused_and_p_0_is_identity() {
    let x = up(&[1.0, 2.0], &[2]);
    assert!(matches!(
        dev().run(|s| dropout(s, &x, 1.0, 0)),
        Err(Error::InvalidArgument { op: "dropout", .. })
    ));
    let y = dev().run(|s| dropout(s, &x, 0.0, 0)).unwrap();
    assert_eq!(down(&y), vec![1.0, 2.0]);
}
