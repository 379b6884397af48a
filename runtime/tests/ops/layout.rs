use edge4d_runtime::ops::layout::{
    concat, concat_backward, permute, permute_backward, slice, slice_backward, transpose,
};
use edge4d_runtime::reference::layout as r;
use edge4d_runtime::Error;

use crate::common::*;

#[test]
fn slice_and_its_backward_match_reference() {
    let mut rng = Rng::new(70);
    let shape = [4, 7, 5];
    let x = rng.vec(140);
    let tx = up(&x, &shape);
    for (axis, start, len) in [(0, 1, 2), (1, 2, 4), (2, 4, 1)] {
        let y = dev()
            .run(|s| slice(s, &tx, axis as isize, start, len))
            .unwrap();
        let want = r::slice(&f64s(&x), &shape, axis, start, len);
        assert_close("slice", &down(&y), &want, 0.0, 0.0);
        let g = rng.vec(want.len());
        let tg = up(&g, y.shape());
        let gx = dev()
            .run(|s| slice_backward(s, &tg, &shape, axis as isize, start))
            .unwrap();
        assert_close(
            "slice backward",
            &down(&gx),
            &r::slice_backward(&f64s(&g), &shape, axis, start, len),
            0.0,
            0.0,
        );
    }
}

#[test]
fn concat_and_its_backward_match_reference() {
    let mut rng = Rng::new(71);
    let (a, b, c) = (rng.vec(2 * 3 * 4), rng.vec(2 * 5 * 4), rng.vec(2 * 1 * 4));
    let (ta, tb, tc) = (up(&a, &[2, 3, 4]), up(&b, &[2, 5, 4]), up(&c, &[2, 1, 4]));
    let y = dev().run(|s| concat(s, &[&ta, &tb, &tc], 1)).unwrap();
    assert_eq!(y.shape(), &[2, 9, 4]);
    let want = r::concat(
        &[
            (&f64s(&a), &[2, 3, 4]),
            (&f64s(&b), &[2, 5, 4]),
            (&f64s(&c), &[2, 1, 4]),
        ],
        1,
    );
    assert_close("concat", &down(&y), &want, 0.0, 0.0);
    let parts = dev()
        .run(|s| concat_backward(s, &y, &[3, 5, 1], 1))
        .unwrap();
    assert_eq!(down(&parts[0]), a);
    assert_eq!(down(&parts[1]), b);
    assert_eq!(down(&parts[2]), c);
    let bad = up(&[0.0; 6], &[2, 3]);
    assert!(matches!(
        dev().run(|s| concat(s, &[&ta, &bad], 1)),
        Err(Error::Shape { op: "concat", .. })
    ));
}

#[test]
fn permute_transpose_and_inverse_match_reference() {
    let mut rng = Rng::new(72);
    let shape = [2, 3, 5, 7];
    let x = rng.vec(210);
    let tx = up(&x, &shape);
    for perm in [[0, 1, 3, 2], [3, 2, 1, 0], [1, 3, 0, 2]] {
        let y = dev().run(|s| permute(s, &tx, &perm)).unwrap();
        let want = r::permute(&f64s(&x), &shape, &perm);
        assert_close(&format!("permute {perm:?}"), &down(&y), &want, 0.0, 0.0);
        let back = dev().run(|s| permute_backward(s, &y, &perm)).unwrap();
        assert_eq!(back.shape(), &shape);
        assert_eq!(down(&back), x, "inverse of {perm:?}");
    }
    let t = dev().run(|s| transpose(s, &tx, 1, 3)).unwrap();
    assert_eq!(t.shape(), &[2, 7, 5, 3]);
    assert!(matches!(
        dev().run(|s| permute(s, &tx, &[0, 0, 1, 2])),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn reshape_is_a_view_and_round_trips() {
    let x = up(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let y = x.reshape(&[3, 2]).unwrap();
    assert!(y.same_buffer(&x));
    assert_eq!(
        down(&y.reshape(&[6]).unwrap()),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
}

#[test]
fn reference_backward_matches_finite_differences() {
    // Linear ops: the backward is the adjoint, so <slice(x), g> = <x, slice_backward(g)>.
    let mut rng = Rng::new(73);
    let shape = [3, 4, 2];
    let x = f64s(&rng.vec(24));
    let g = f64s(&rng.vec(3 * 2 * 2));
    grad_check("slice", &x, &r::slice_backward(&g, &shape, 1, 1, 2), |x| {
        dot(&r::slice(x, &shape, 1, 1, 2), &g)
    });
    let gp = f64s(&rng.vec(24));
    let perm = [2, 0, 1];
    let inv = [1, 2, 0];
    let back = r::permute(&gp, &[2, 3, 4], &inv);
    grad_check("permute", &x, &back, |x| {
        dot(&r::permute(x, &shape, &perm), &gp)
    });
}

#[test]
fn layout_ops_are_bitwise_deterministic() {
    let mut rng = Rng::new(74);
    let x = up(&rng.vec(6 * 50 * 9), &[6, 50, 9]);
    let run = || {
        let (a, b) = dev()
            .run(|s| {
                Ok((
                    permute(s, &x, &[2, 0, 1])?,
                    slice_backward(s, &x, &[6, 60, 9], 1, 3)?,
                ))
            })
            .unwrap();
        (bits(&a), bits(&b))
    };
    assert_eq!(run(), run());
}
