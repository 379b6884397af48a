use edge4d_runtime::ops::reduce::{max, max_backward, mean, mean_backward, sum, sum_backward};
use edge4d_runtime::reference::{reduce as r, split_axis};

use crate::common::*;

const SHAPE: [usize; 3] = [5, 9, 7];

#[test]
fn sum_mean_max_and_their_backward_match_reference_on_every_axis() {
    let mut rng = Rng::new(60);
    let x = rng.vec(315);
    let tx = up(&x, &SHAPE);
    for axis in 0..3 {
        let dims = split_axis(&SHAPE, axis);
        let mut out_shape = SHAPE.to_vec();
        out_shape.remove(axis);
        let g = rng.vec(dims.0 * dims.2);
        let tg = up(&g, &out_shape);
        let (ys, ym, (yx, arg)) = dev()
            .run(|s| {
                Ok((
                    sum(s, &tx, axis as isize)?,
                    mean(s, &tx, axis as isize)?,
                    max(s, &tx, axis as isize)?,
                ))
            })
            .unwrap();
        let x64 = f64s(&x);
        assert_close("sum", &down(&ys), &r::sum(&x64, dims), 1e-6, 1e-5);
        assert_close("mean", &down(&ym), &r::mean(&x64, dims), 1e-6, 1e-5);
        let (rmax, rarg) = r::max(&x64, dims);
        assert_close("max", &down(&yx), &rmax, 0.0, 0.0);
        assert_eq!(dev().read_u32(&arg).unwrap(), rarg, "argmax on axis {axis}");
        let (gs, gm, gx) = dev()
            .run(|s| {
                Ok((
                    sum_backward(s, &tg, &SHAPE, axis as isize)?,
                    mean_backward(s, &tg, &SHAPE, axis as isize)?,
                    max_backward(s, &tg, &arg, &SHAPE, axis as isize)?,
                ))
            })
            .unwrap();
        let g64 = f64s(&g);
        let rs = r::sum_backward(&g64, dims);
        assert_close("sum backward", &down(&gs), &rs, 0.0, 0.0);
        let rm: Vec<f64> = rs.iter().map(|v| v / dims.1 as f64).collect();
        assert_close("mean backward", &down(&gm), &rm, 1e-7, 1e-6);
        assert_close(
            "max backward",
            &down(&gx),
            &r::max_backward(&g64, &rarg, dims),
            0.0,
            0.0,
        );
    }
    // Negative axes count from the end.
    let a = dev().run(|s| sum(s, &tx, -1)).unwrap();
    assert_eq!(a.shape(), &[5, 9]);
}

#[test]
fn max_ties_pick_the_lowest_index() {
    let x = up(&[1.0, 3.0, 3.0, 2.0, 2.0, 2.0], &[2, 3]);
    let (_, arg) = dev().run(|s| max(s, &x, 1)).unwrap();
    assert_eq!(dev().read_u32(&arg).unwrap(), vec![1, 0]);
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(61);
    let dims = (2, 5, 3);
    let x = f64s(&rng.vec(30));
    let g = f64s(&rng.vec(6));
    grad_check("sum", &x, &r::sum_backward(&g, dims), |x| {
        dot(&r::sum(x, dims), &g)
    });
    let gm: Vec<f64> = r::sum_backward(&g, dims).iter().map(|v| v / 5.0).collect();
    grad_check("mean", &x, &gm, |x| dot(&r::mean(x, dims), &g));
    let (_, arg) = r::max(&x, dims);
    grad_check("max", &x, &r::max_backward(&g, &arg, dims), |x| {
        dot(&r::max(x, dims).0, &g)
    });
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(62);
    let x = up(&rng.vec(64 * 300), &[64, 300]);
    let g = up(&rng.vec(300), &[300]);
    let run = || {
        let (s_, (m_, a_), gs) = dev()
            .run(|s| {
                Ok((
                    sum(s, &x, 0)?,
                    max(s, &x, 0)?,
                    sum_backward(s, &g, &[64, 300], 0)?,
                ))
            })
            .unwrap();
        (
            bits(&s_),
            bits(&m_),
            dev().read_u32(&a_).unwrap(),
            bits(&gs),
        )
    };
    assert_eq!(run(), run());
}
