use edge4d_runtime::ops::optim::{adamw_step, sgd_step, AdamWConfig, SgdConfig};
use edge4d_runtime::reference::optim as r;
use edge4d_runtime::Error;

use crate::common::*;

#[test]
fn sgd_matches_reference_over_several_steps() {
    let mut rng = Rng::new(100);
    let n = 1037;
    for cfg in [
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        SgdConfig {
            lr: 0.05,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        },
        SgdConfig {
            lr: 0.01,
            momentum: 0.8,
            weight_decay: 0.01,
            nesterov: true,
        },
    ] {
        let w0 = rng.vec(n);
        let (tw, tb) = (up(&w0, &[n]), up(&vec![0.0; n], &[n]));
        let (mut w, mut buf) = (f64s(&w0), vec![0.0; n]);
        for _ in 0..4 {
            let g = rng.vec(n);
            let tg = up(&g, &[n]);
            dev().run(|s| sgd_step(s, &tw, &tg, &tb, &cfg)).unwrap();
            r::sgd_step(&mut w, &f64s(&g), &mut buf, &cfg);
        }
        assert_close(&format!("sgd {cfg:?} w"), &down(&tw), &w, 1e-6, 1e-5);
        assert_close(&format!("sgd {cfg:?} buf"), &down(&tb), &buf, 1e-6, 1e-5);
    }
}

#[test]
fn adamw_matches_reference_over_several_steps() {
    let mut rng = Rng::new(101);
    let n = 777;
    let cfg = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.05,
        ..Default::default()
    };
    let w0 = rng.vec(n);
    let (tw, tm, tv) = (
        up(&w0, &[n]),
        up(&vec![0.0; n], &[n]),
        up(&vec![0.0; n], &[n]),
    );
    let (mut w, mut m, mut v) = (f64s(&w0), vec![0.0; n], vec![0.0; n]);
    for t in 1..=5 {
        let g = rng.vec(n);
        let tg = up(&g, &[n]);
        dev()
            .run(|s| adamw_step(s, &tw, &tg, &tm, &tv, &cfg, t))
            .unwrap();
        r::adamw_step(&mut w, &f64s(&g), &mut m, &mut v, &cfg, t);
    }
    assert_close("adamw w", &down(&tw), &w, 1e-6, 1e-5);
    assert_close("adamw m", &down(&tm), &m, 1e-6, 1e-5);
    assert_close("adamw v", &down(&tv), &v, 1e-8, 1e-5);
}

#[test]
fn reference_updates_follow_the_gradient_of_a_quadratic() {
    // The optimizers' "backward" is the update itself: on f(w) = |w|^2 / 2 (grad = w)
    // both must shrink w, and SGD without momentum is exactly w (1 - lr).
    let mut w = vec![1.0, -2.0, 0.5];
    let mut buf = vec![0.0; 3];
    let g = w.clone();
    r::sgd_step(
        &mut w,
        &g,
        &mut buf,
        &SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        },
    );
    for (a, b) in w.iter().zip([0.9, -1.8, 0.45]) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}"); // lr is the f32 nearest 0.1
    }
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    let g = w.clone();
    r::adamw_step(
        &mut w,
        &g,
        &mut m,
        &mut v,
        &AdamWConfig {
            lr: 0.1,
            weight_decay: 0.0,
            ..Default::default()
        },
        1,
    );
    // First Adam step moves each weight by lr * sign(g) (up to eps).
    for (a, b) in w.iter().zip([0.8, -1.7, 0.35]) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn updates_are_bitwise_deterministic() {
    let mut rng = Rng::new(102);
    let w0 = rng.vec(5000);
    let g = up(&rng.vec(5000), &[5000]);
    let run = || {
        let (w, m, v) = (
            up(&w0, &[5000]),
            up(&vec![0.0; 5000], &[5000]),
            up(&vec![0.0; 5000], &[5000]),
        );
        dev()
            .run(|s| adamw_step(s, &w, &g, &m, &v, &AdamWConfig::default(), 1))
            .unwrap();
        bits(&w)
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_hyper_parameters_are_refused() {
    let w = up(&[0.0; 3], &[3]);
    let err = dev()
        .run(|s| {
            sgd_step(
                s,
                &w,
                &w.clone(),
                &up(&[0.0; 3], &[3]),
                &SgdConfig {
                    lr: f32::NAN,
                    momentum: 0.0,
                    weight_decay: 0.0,
                    nesterov: false,
                },
            )
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "sgd_step", .. }),
        "{err}"
    );
}

#[test]
fn clip_grad_norm_matches_torch_and_leaves_small_gradients_alone() {
    use edge4d_runtime::ops::optim::clip_grad_norm;
    let mut rng = Rng::new(104);
    let sizes = [37, 1, 513];
    let host: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n)).collect();
    let want_norm = host
        .iter()
        .flatten()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    for max_norm in [0.5f32, 1e3] {
        let tensors: Vec<_> = host.iter().zip(sizes).map(|(h, n)| up(h, &[n])).collect();
        let refs: Vec<&edge4d_runtime::Tensor> = tensors.iter().collect();
        let coef = dev().run(|s| clip_grad_norm(s, &refs, max_norm)).unwrap();
        let c = down(&coef);
        assert!(
            (c[1] as f64 - want_norm).abs() < 1e-5 * want_norm,
            "norm {} vs {want_norm}",
            c[1]
        );
        let (clipped, _) = r::clip_grad_norm(
            &host.iter().map(|h| f64s(h)).collect::<Vec<_>>(),
            max_norm as f64,
        );
        for (t, want) in tensors.iter().zip(&clipped) {
            assert_close("clipped gradient", &down(t), want, 1e-7, 1e-5);
        }
        if max_norm > want_norm as f32 {
            assert_eq!(c[0], 1.0);
            assert_eq!(
                down(&tensors[2]),
                host[2],
                "below the limit nothing changes"
            );
        }
    }
    let t = up(&host[0], &[37]);
    let err = dev()
        .run(|s| clip_grad_norm(s, &[&t], -1.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_norm"), "{err}");
}
