use edge4d_runtime::ops::matmul::{
    matmul, matmul_backward, matmul_backward_epilogue, matmul_with, matmul_with_epilogue, Epilogue,
    MatmulKernel,
};
use edge4d_runtime::reference::activation::{gelu, gelu_backward};
use edge4d_runtime::reference::elementwise::add;
use edge4d_runtime::reference::matmul::{backward, forward, Operand};
use edge4d_runtime::Error;

use crate::common::*;

/// Stored operand shape for op(X) of logical (r, c), batched or not.
fn stored(batch: Option<usize>, r: usize, c: usize, trans: bool) -> (Vec<usize>, Operand) {
    let (rows, cols) = if trans { (c, r) } else { (r, c) };
    let mut shape = vec![rows, cols];
    if let Some(b) = batch {
        shape.insert(0, b);
    }
    (
        shape,
        Operand {
            batch: batch.unwrap_or(1),
            rows,
            cols,
            trans,
        },
    )
}

struct Case {
    batch_a: Option<usize>,
    batch_b: Option<usize>,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    bias: bool,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        out.push(Case {
            batch_a: None,
            batch_b: None,
            m: 37,
            k: 29,
            n: 45,
            ta,
            tb,
            bias: true,
        });
        out.push(Case {
            batch_a: Some(3),
            batch_b: Some(3),
            m: 17,
            k: 70,
            n: 9,
            ta,
            tb,
            bias: false,
        });
        out.push(Case {
            batch_a: Some(2),
            batch_b: None,
            m: 65,
            k: 13,
            n: 66,
            ta,
            tb,
            bias: true,
        });
        out.push(Case {
            batch_a: None,
            batch_b: Some(2),
            m: 5,
            k: 33,
            n: 19,
            ta,
            tb,
            bias: false,
        });
        // Long and narrow, as a per-neighbour MLP: the weight gradient's reduction over
        // m is split into chunks (4096 = 8 chunks) or, for a prime m, is not.
        for m in [4096, 2053] {
            out.push(Case {
                batch_a: None,
                batch_b: None,
                m,
                k: 5,
                n: 7,
                ta,
                tb,
                bias: true,
            });
        }
    }
    out
}

#[test]
fn forward_matches_reference_on_every_rung() {
    let mut rng = Rng::new(1);
    for c in cases() {
        let (sa, oa) = stored(c.batch_a, c.m, c.k, c.ta);
        let (sb, ob) = stored(c.batch_b, c.k, c.n, c.tb);
        let a = rng.vec(sa.iter().product());
        let b = rng.vec(sb.iter().product());
        let bias = rng.vec(c.n);
        let want = forward(
            &f64s(&a),
            oa,
            &f64s(&b),
            ob,
            c.bias.then(|| f64s(&bias)).as_deref(),
        );
        let (ta, tb, tbias) = (up(&a, &sa), up(&b, &sb), up(&bias, &[c.n]));
        let got = dev()
            .run(|s| matmul(s, &ta, &tb, c.bias.then_some(&tbias), c.ta, c.tb))
            .unwrap();
        assert_close(
            &format!("matmul {sa:?}x{sb:?} ta={} tb={}", c.ta, c.tb),
            &down(&got),
            &want,
            1e-5,
            1e-4,
        );
        if !c.bias {
            for kernel in MatmulKernel::ALL {
                let got = dev()
                    .run(|s| matmul_with(s, kernel, &ta, &tb, c.ta, c.tb))
                    .unwrap();
                assert_close(
                    &format!("{} {sa:?}x{sb:?} ta={} tb={}", kernel.name(), c.ta, c.tb),
                    &down(&got),
                    &want,
                    1e-5,
                    1e-4,
                );
            }
        }
    }
}

#[test]
fn backward_matches_reference_including_broadcast_operands() {
    let mut rng = Rng::new(2);
    for c in cases() {
        let (sa, oa) = stored(c.batch_a, c.m, c.k, c.ta);
        let (sb, ob) = stored(c.batch_b, c.k, c.n, c.tb);
        let a = rng.vec(sa.iter().product());
        let b = rng.vec(sb.iter().product());
        let batch = c.batch_a.or(c.batch_b);
        let gshape: Vec<usize> = batch.into_iter().chain([c.m, c.n]).collect();
        let g = rng.vec(gshape.iter().product());
        let (ga, gb, gbias) = backward(&f64s(&a), oa, &f64s(&b), ob, &f64s(&g));
        let (ta, tb, tg) = (up(&a, &sa), up(&b, &sb), up(&g, &gshape));
        let grads = dev()
            .run(|s| matmul_backward(s, &ta, &tb, &tg, c.ta, c.tb, true))
            .unwrap();
        let what = format!("matmul backward {sa:?}x{sb:?} ta={} tb={}", c.ta, c.tb);
        assert_eq!(grads.a.shape(), sa.as_slice());
        assert_eq!(grads.b.shape(), sb.as_slice());
        assert_close(&format!("{what} dA"), &down(&grads.a), &ga, 1e-5, 1e-4);
        assert_close(&format!("{what} dB"), &down(&grads.b), &gb, 1e-5, 1e-4);
        assert_close(
            &format!("{what} dbias"),
            &down(&grads.bias.unwrap()),
            &gbias,
            1e-5,
            1e-4,
        );
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(3);
    for (ta, tb) in [(false, false), (true, true), (false, true), (true, false)] {
        let (_, oa) = stored(Some(2), 3, 4, ta);
        let (_, ob) = stored(None, 4, 5, tb);
        let a = f64s(&rng.vec(24));
        let b = f64s(&rng.vec(20));
        let bias = f64s(&rng.vec(5));
        let r = f64s(&rng.vec(30));
        let (ga, gb, gbias) = backward(&a, oa, &b, ob, &r);
        grad_check("matmul dA", &a, &ga, |a| {
            dot(&forward(a, oa, &b, ob, Some(&bias)), &r)
        });
        grad_check("matmul dB", &b, &gb, |b| {
            dot(&forward(&a, oa, b, ob, Some(&bias)), &r)
        });
        grad_check("matmul dbias", &bias, &gbias, |bias| {
            dot(&forward(&a, oa, &b, ob, Some(bias)), &r)
        });
    }
}

#[test]
fn forward_and_backward_are_bitwise_deterministic() {
    let mut rng = Rng::new(4);
    let a = up(&rng.vec(3 * 33 * 20), &[3, 33, 20]);
    let b = up(&rng.vec(20 * 17), &[17, 20]);
    let bias = up(&rng.vec(17), &[17]);
    let g = up(&rng.vec(3 * 33 * 17), &[3, 33, 17]);
    let run = || {
        dev()
            .run(|s| {
                let y = matmul(s, &a, &b, Some(&bias), false, true)?;
                let gr = matmul_backward(s, &a, &b, &g, false, true, true)?;
                Ok((y, gr))
            })
            .unwrap()
    };
    let (y1, g1) = run();
    let (y2, g2) = run();
    assert_eq!(bits(&y1), bits(&y2));
    assert_eq!(bits(&g1.a), bits(&g2.a));
    assert_eq!(bits(&g1.b), bits(&g2.b));
    assert_eq!(
        bits(g1.bias.as_ref().unwrap()),
        bits(g2.bias.as_ref().unwrap())
    );
}

#[test]
fn mismatched_shapes_are_named_errors() {
    let a = up(&[0.0; 6], &[2, 3]);
    let b = up(&[0.0; 8], &[4, 2]);
    let err = dev()
        .run(|s| matmul(s, &a, &b, None, false, false))
        .unwrap_err();
    assert!(matches!(err, Error::Shape { op: "matmul", .. }), "{err}");
    assert!(
        err.to_string().contains("[2, 3]") && err.to_string().contains("[4, 2]"),
        "{err}"
    );
    let bias = up(&[0.0; 3], &[3]);
    let b = up(&[0.0; 6], &[3, 2]);
    assert!(dev()
        .run(|s| matmul(s, &a, &b, Some(&bias), false, false))
        .is_err());
}

/// Every epilogue on every rung, batched and not, against the unfused reference ops:
/// GELU keeps the pre-activation in C and writes gelu(pre) (+ residual) beside it.
#[test]
fn epilogues_match_the_unfused_ops_on_every_rung() {
    let mut rng = Rng::new(5);
    for batch in [None, Some(3)] {
        let (m, k, n) = (37, 19, 70);
        let (sa, oa) = stored(batch, m, k, false);
        let (sb, ob) = stored(None, k, n, true);
        let out: Vec<usize> = batch.into_iter().chain([m, n]).collect();
        let len: usize = out.iter().product();
        let (a, b, bias) = (
            rng.vec(sa.iter().product()),
            rng.vec(sb.iter().product()),
            rng.vec(n),
        );
        // Pre-activations of a few units, where GELU bends.
        let (aux, a_scaled): (Vec<f32>, Vec<f32>) = (
            rng.vec(len).iter().map(|v| v * 3.0).collect(),
            a.iter().map(|v| v * 2.0).collect(),
        );
        let pre = forward(&f64s(&a_scaled), oa, &f64s(&b), ob, Some(&f64s(&bias)));
        let aux64 = f64s(&aux);
        let (ta, tb, tbias, taux) = (
            up(&a_scaled, &sa),
            up(&b, &sb),
            up(&bias, &[n]),
            up(&aux, &out),
        );
        let cases: [(&str, Epilogue<'_>, Vec<f64>, Option<Vec<f64>>); 4] = [
            (
                "gelu",
                Epilogue::Gelu { residual: None },
                pre.clone(),
                Some(gelu(&pre)),
            ),
            (
                "gelu + residual",
                Epilogue::Gelu {
                    residual: Some(&taux),
                },
                pre.clone(),
                Some(add(&gelu(&pre), &aux64)),
            ),
            (
                "residual",
                Epilogue::Residual(&taux),
                add(&pre, &aux64),
                None,
            ),
            (
                "gelu grad",
                Epilogue::GeluGrad(&taux),
                gelu_backward(&aux64, &pre),
                None,
            ),
        ];
        for kernel in MatmulKernel::ALL {
            for (what, epilogue, want_c, want_act) in &cases {
                let (c, act) = dev()
                    .run(|s| {
                        matmul_with_epilogue(
                            s,
                            kernel,
                            &ta,
                            &tb,
                            Some(&tbias),
                            false,
                            true,
                            *epilogue,
                        )
                    })
                    .unwrap();
                let what = format!("{} {what} epilogue, batch {batch:?}", kernel.name());
                assert_close(&what, &down(&c), want_c, 1e-5, 1e-4);
                assert_eq!(act.is_some(), want_act.is_some(), "{what}: second output");
                if let (Some(act), Some(want)) = (act, want_act) {
                    assert_close(
                        &format!("{what}, activation"),
                        &down(&act),
                        want,
                        1e-5,
                        1e-4,
                    );
                }
            }
        }
    }
}

/// The input gradient of a product can step back through the GELU that made its input
/// in the same kernel; an epilogue on a transposed or broadcast A is refused by name.
#[test]
fn backward_epilogue_steps_through_the_gelu_of_the_input() {
    let mut rng = Rng::new(6);
    let (m, k, n) = (33, 21, 17);
    let (sa, oa) = stored(None, m, k, false);
    let (sb, ob) = stored(None, k, n, true);
    let (a, b, g) = (rng.vec(m * k), rng.vec(n * k), rng.vec(m * n));
    let pre: Vec<f32> = rng.vec(m * k).iter().map(|v| v * 3.0).collect();
    let (ta, tb, tg, tpre) = (up(&a, &sa), up(&b, &sb), up(&g, &[m, n]), up(&pre, &[m, k]));
    let grads = dev()
        .run(|s| {
            matmul_backward_epilogue(
                s,
                &ta,
                &tb,
                &tg,
                false,
                true,
                true,
                Epilogue::GeluGrad(&tpre),
            )
        })
        .unwrap();
    let (ga, gb, gbias) = backward(&f64s(&a), oa, &f64s(&b), ob, &f64s(&g));
    let want_a = gelu_backward(&f64s(&pre), &ga);
    assert_close("dA through GELU", &down(&grads.a), &want_a, 1e-5, 1e-4);
    assert_close("dB beside it", &down(&grads.b), &gb, 1e-5, 1e-4);
    assert_close(
        "dbias beside it",
        &down(&grads.bias.unwrap()),
        &gbias,
        1e-5,
        1e-4,
    );

    let at = up(&a, &[k, m]);
    let err = dev()
        .run(|s| {
            matmul_backward_epilogue(
                s,
                &at,
                &tb,
                &tg,
                true,
                true,
                false,
                Epilogue::GeluGrad(&tpre),
            )
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("epilogue on dA needs A stored untransposed"),
        "{err}"
    );
    let short = up(&pre[..10], &[10]);
    let err = dev()
        .run(|s| {
            matmul_with_epilogue(
                s,
                MatmulKernel::Naive,
                &ta,
                &tb,
                None,
                false,
                true,
                Epilogue::Residual(&short),
            )
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("epilogue operand [10] should hold the output's [33, 17]"),
        "{err}"
    );
}
