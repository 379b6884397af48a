use edge4d_runtime::ops::elementwise::{add, add_backward, mul, mul_backward, scale};
use edge4d_runtime::reference::elementwise as r;
use edge4d_runtime::Error;

use crate::common::*;

const A: [usize; 3] = [3, 7, 13];

#[test]
fn add_mul_scale_match_reference_with_and_without_broadcast() {
    let mut rng = Rng::new(10);
    let a = rng.vec(273);
    for b_shape in [vec![3, 7, 13], vec![13], vec![7, 13]] {
        let b = rng.vec(b_shape.iter().product());
        let (ta, tb) = (up(&a, &A), up(&b, &b_shape));
        let (s_, m_) = dev()
            .run(|s| Ok((add(s, &ta, &tb)?, mul(s, &ta, &tb)?)))
            .unwrap();
        assert_close("add", &down(&s_), &r::add(&f64s(&a), &f64s(&b)), 0.0, 1e-6);
        assert_close("mul", &down(&m_), &r::mul(&f64s(&a), &f64s(&b)), 0.0, 1e-6);
        let g = rng.vec(273);
        let tg = up(&g, &A);
        let ((ga, gb), (ma, mb)) = dev()
            .run(|s| {
                Ok((
                    add_backward(s, &tg, &b_shape)?,
                    mul_backward(s, &ta, &tb, &tg)?,
                ))
            })
            .unwrap();
        let (rga, rgb) = r::add_backward(&f64s(&g), b.len());
        assert_close("add da", &down(&ga), &rga, 0.0, 1e-6);
        assert_close("add db", &down(&gb), &rgb, 1e-5, 1e-5);
        let (rma, rmb) = r::mul_backward(&f64s(&a), &f64s(&b), &f64s(&g));
        assert_close("mul da", &down(&ma), &rma, 0.0, 1e-6);
        assert_close("mul db", &down(&mb), &rmb, 1e-5, 1e-5);
        assert_eq!(gb.shape(), b_shape.as_slice());
    }
    let tx = up(&a, &A);
    let y = dev().run(|s| scale(s, &tx, -0.75)).unwrap();
    assert_close("scale", &down(&y), &r::scale(&f64s(&a), -0.75), 0.0, 1e-6);
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(11);
    let a = f64s(&rng.vec(12));
    let b = f64s(&rng.vec(4));
    let g = f64s(&rng.vec(12));
    let (ga, gb) = r::add_backward(&g, 4);
    grad_check("add da", &a, &ga, |a| dot(&r::add(a, &b), &g));
    grad_check("add db", &b, &gb, |b| dot(&r::add(&a, b), &g));
    let (ma, mb) = r::mul_backward(&a, &b, &g);
    grad_check("mul da", &a, &ma, |a| dot(&r::mul(a, &b), &g));
    grad_check("mul db", &b, &mb, |b| dot(&r::mul(&a, b), &g));
    grad_check("scale", &a, &r::scale(&g, 1.7), |a| {
        dot(&r::scale(a, 1.7), &g)
    });
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(12);
    let a = up(&rng.vec(4000 * 3), &[4000, 3]);
    let b = up(&rng.vec(3), &[3]);
    let g = up(&rng.vec(4000 * 3), &[4000, 3]);
    let run = || {
        dev()
            .run(|s| Ok((mul(s, &a, &b)?, mul_backward(s, &a, &b, &g)?)))
            .unwrap()
    };
    let (y1, (a1, b1)) = run();
    let (y2, (a2, b2)) = run();
    assert_eq!(bits(&y1), bits(&y2));
    assert_eq!(bits(&a1), bits(&a2));
    assert_eq!(bits(&b1), bits(&b2));
}

#[test]
fn incompatible_broadcast_is_a_shape_error() {
    let a = up(&[0.0; 6], &[2, 3]);
    let b = up(&[0.0; 2], &[2]);
    assert!(matches!(
        dev().run(|s| add(s, &a, &b)),
        Err(Error::Shape { op: "add", .. })
    ));
    assert!(matches!(
        dev().run(|s| scale(s, &a, f32::INFINITY)),
        Err(Error::NonFinite { .. })
    ));
}
