use edge4d_runtime::ops::point::*;
use edge4d_runtime::reference::point as r;

use crate::common::*;

fn ops_file() -> edge4d_runtime::TensorFile {
    fixture("p4transformer/ops.safetensors")
}

fn scalar(f: &edge4d_runtime::TensorFile, name: &str) -> usize {
    f.i64(name).unwrap().0[0] as usize
}

#[test]
fn fps_matches_the_cuda_kernel_on_every_fixture_case() {
    let f = ops_file();
    let names = cases(&f, "fps");
    assert!(names.len() >= 8, "fixture cases: {names:?}");
    for case in names {
        let xyz = f.f32(&format!("fps.{case}.xyz")).unwrap();
        let m = scalar(&f, &format!("fps.{case}.m"));
        let (want, _) = f.u32(&format!("fps.{case}.idx")).unwrap();
        let t = dev().upload(&xyz.data, &xyz.shape).unwrap();
        let sel = dev().run(|s| fps(s, &t, m)).unwrap();
        assert_eq!(
            dev().read_u32(&sel.idx).unwrap(),
            want,
            "GPU fps, case {case}"
        );
        let n = xyz.shape[1];
        let reference: Vec<u32> = xyz.data.chunks(n * 3).flat_map(|c| r::fps(c, m)).collect();
        assert_eq!(reference, want, "reference fps, case {case}");
        let rows: Vec<u32> = want
            .iter()
            .enumerate()
            .map(|(i, &k)| (i / m * n) as u32 + k)
            .collect();
        assert_eq!(
            dev().read_u32(&sel.rows).unwrap(),
            rows,
            "fps rows, case {case}"
        );
    }
}

#[test]
fn ball_query_matches_the_cuda_kernel_on_every_fixture_case() {
    let f = ops_file();
    for case in cases(&f, "bq") {
        let xyz = f.f32(&format!("bq.{case}.xyz")).unwrap();
        let q = f.f32(&format!("bq.{case}.new_xyz")).unwrap();
        let radius = f.f32(&format!("bq.{case}.radius")).unwrap().data[0];
        let k = scalar(&f, &format!("bq.{case}.nsample"));
        let (want, _) = f.u32(&format!("bq.{case}.idx")).unwrap();
        let (want_count, _) = f.u32(&format!("bq.{case}.count")).unwrap();
        let tx = dev().upload(&xyz.data, &xyz.shape).unwrap();
        let tq = dev().upload(&q.data, &q.shape).unwrap();
        let balls = dev().run(|s| ball_query(s, &tx, &tq, radius, k)).unwrap();
        assert_eq!(
            dev().read_u32(&balls.idx).unwrap(),
            want,
            "GPU ball query, case {case}"
        );
        assert_eq!(
            dev().read_u32(&balls.count).unwrap(),
            want_count,
            "hit counts, case {case}"
        );
        let (n, m) = (xyz.shape[1], q.shape[1]);
        let mut reference = Vec::new();
        for b in 0..xyz.shape[0] {
            for j in 0..m {
                let query = &q.data[(b * m + j) * 3..(b * m + j) * 3 + 3];
                reference.extend(
                    r::ball_query(&xyz.data[b * n * 3..(b + 1) * n * 3], query, radius, k).0,
                );
            }
        }
        assert_eq!(reference, want, "reference ball query, case {case}");
    }
}

#[test]
fn knn_matches_knn_cuda_on_every_fixture_case() {
    let f = ops_file();
    for case in cases(&f, "knn") {
        let refs = f.f32(&format!("knn.{case}.ref")).unwrap();
        let q = f.f32(&format!("knn.{case}.query")).unwrap();
        let k = scalar(&f, &format!("knn.{case}.k"));
        let (want, _) = f.u32(&format!("knn.{case}.idx")).unwrap();
        let (want_dist, _) = f.f64(&format!("knn.{case}.dist")).unwrap();
        let tr = dev().upload(&refs.data, &refs.shape).unwrap();
        let tq = dev().upload(&q.data, &q.shape).unwrap();
        let (sel, dist) = dev().run(|s| knn(s, &tr, &tq, k)).unwrap();
        assert_eq!(
            dev().read_u32(&sel.idx).unwrap(),
            want,
            "GPU knn, case {case}"
        );
        assert_close(
            &format!("knn distances, case {case}"),
            &down(&dist),
            &want_dist,
            0.0,
            2e-7,
        );
        let (n, m) = (refs.shape[1], q.shape[1]);
        let mut reference = Vec::new();
        for b in 0..refs.shape[0] {
            for j in 0..m {
                let query = &q.data[(b * m + j) * 3..(b * m + j) * 3 + 3];
                reference.extend(r::knn(&refs.data[b * n * 3..(b + 1) * n * 3], query, k).0);
            }
        }
        assert_eq!(reference, want, "reference knn, case {case}");
    }
}

#[test]
fn three_nn_matches_the_cuda_kernel_and_weights_sum_to_one() {
    let f = ops_file();
    let unknown = f.f32("three_nn.unknown").unwrap();
    let known = f.f32("three_nn.known").unwrap();
    let (want, _) = f.u32("three_nn.idx").unwrap();
    let (want_dist, _) = f.f64("three_nn.dist").unwrap();
    let tu = dev().upload(&unknown.data, &unknown.shape).unwrap();
    let tk = dev().upload(&known.data, &known.shape).unwrap();
    let nn = dev().run(|s| three_nn(s, &tu, &tk)).unwrap();
    assert_eq!(dev().read_u32(&nn.sel.idx).unwrap(), want);
    assert_close("three_nn distances", &down(&nn.dist), &want_dist, 0.0, 2e-7);
    let (n, m) = (unknown.shape[1], known.shape[1]);
    let mut ref_w = Vec::new();
    for b in 0..unknown.shape[0] {
        for j in 0..n {
            let u = &unknown.data[(b * n + j) * 3..(b * n + j) * 3 + 3];
            let (idx, _, w) = r::three_nn(&known.data[b * m * 3..(b + 1) * m * 3], u);
            assert_eq!(&idx[..], &want[(b * n + j) * 3..(b * n + j) * 3 + 3]);
            ref_w.extend(w.iter().map(|&v| v as f64));
        }
    }
    assert_close("three_nn weights", &down(&nn.weight), &ref_w, 1e-7, 1e-6);
}

#[test]
fn three_nn_with_fewer_than_three_known_points_pads_with_zero_weight() {
    let tu = up(&[0.1, 0.2, 0.3, 1.0, 1.0, 1.0], &[1, 2, 3]);
    let tk = up(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[1, 2, 3]);
    let nn = dev().run(|s| three_nn(s, &tu, &tk)).unwrap();
    let idx = dev().read_u32(&nn.sel.idx).unwrap();
    let w = down(&nn.weight);
    assert_eq!(idx[2], 0);
    assert_eq!(w[2], 0.0);
    assert!((w[0] + w[1] - 1.0).abs() < 1e-6);
}

/// Random rows with heavy reuse of a few targets (as padded balls repeat the first hit).
fn skewed_rows(rng: &mut Rng, e: usize, targets: usize) -> Vec<u32> {
    (0..e)
        .map(|_| {
            if rng.next_u64() % 3 == 0 {
                (rng.next_u64() % 3) as u32
            } else {
                (rng.next_u64() % targets as u64) as u32
            }
        })
        .collect()
}

#[test]
fn gather_and_its_atomic_free_backward_match_reference() {
    let mut rng = Rng::new(71);
    let (targets, c, e) = (37, 5, 301);
    let x = rng.vec(targets * c);
    let rows = skewed_rows(&mut rng, e, targets);
    let g = rng.vec(e * c);
    let tx = up(&x, &[targets, c]);
    let trows = dev().upload_u32(&rows, &[e]).unwrap();
    let tg = up(&g, &[e, c]);
    let run = || {
        dev()
            .run(|s| {
                let y = gather_rows(s, &tx, &trows, 1, None)?;
                let inv = inverse_index(s, &trows, targets)?;
                let gx = gather_rows_backward(s, &tg, &inv, c, c, 1, None)?;
                Ok((y, gx, inv))
            })
            .unwrap()
    };
    let (y, gx, inv) = run();
    assert_close(
        "gather",
        &down(&y),
        &r::gather(&f64s(&x), c, &rows, 1, None),
        0.0,
        0.0,
    );
    let want = r::gather_backward(&f64s(&g), c, &rows, 1, None, targets);
    assert_close("gather backward", &down(&gx), &want, 1e-6, 1e-5);
    // The inverse index lists each target's entries in ascending order.
    let offsets = dev().read_u32(&inv.offsets).unwrap();
    let entries = dev().read_u32(&inv.entries).unwrap();
    for t in 0..targets {
        let mine: Vec<u32> = (0..e as u32)
            .filter(|&i| rows[i as usize] == t as u32)
            .collect();
        assert_eq!(
            &entries[offsets[t] as usize..offsets[t + 1] as usize],
            &mine[..],
            "target {t}"
        );
    }
    let (_, gx2, _) = run();
    assert_eq!(bits(&gx), bits(&gx2), "scatter is bitwise deterministic");
}

#[test]
fn weighted_gather_is_three_interpolate_with_its_backward() {
    let mut rng = Rng::new(72);
    let (targets, c, out) = (11, 4, 19);
    let x = rng.vec(targets * c);
    let rows: Vec<u32> = (0..out * 3)
        .map(|_| (rng.next_u64() % targets as u64) as u32)
        .collect();
    let w: Vec<f32> = (0..out * 3).map(|_| rng.uniform(0.0, 1.0)).collect();
    let g = rng.vec(out * c);
    let (tx, tw, tg) = (up(&x, &[targets, c]), up(&w, &[out, 3]), up(&g, &[out, c]));
    let trows = dev().upload_u32(&rows, &[out, 3]).unwrap();
    let (y, gx) = dev()
        .run(|s| {
            let y = gather_rows(s, &tx, &trows, 3, Some(&tw))?;
            let inv = inverse_index(s, &trows, targets)?;
            Ok((y, gather_rows_backward(s, &tg, &inv, c, c, 3, Some(&tw))?))
        })
        .unwrap();
    let w64 = f64s(&w);
    assert_close(
        "interpolate",
        &down(&y),
        &r::gather(&f64s(&x), c, &rows, 3, Some(&w64)),
        1e-6,
        1e-5,
    );
    let want = r::gather_backward(&f64s(&g), c, &rows, 3, Some(&w64), targets);
    assert_close("interpolate backward", &down(&gx), &want, 1e-6, 1e-5);
    // The reference backward is the adjoint of the forward.
    let x64 = f64s(&x);
    grad_check("interpolate reference", &x64, &want, |x| {
        dot(&r::gather(x, c, &rows, 3, Some(&w64)), &f64s(&g))
    });
}

#[test]
fn displacement_and_its_backward_match_a_direct_computation() {
    let mut rng = Rng::new(73);
    let (b, l, npts, l_out, offsets, n, k) = (2, 3, 9, 2, 3, 4, 5);
    let xyz = rng.vec(b * l * npts * 3);
    let anchors = rng.vec(b * l_out * n * 3);
    let e = b * l_out * offsets * n * k;
    let rows: Vec<u32> = (0..e)
        .map(|i| {
            let bb = i / (l_out * offsets * n * k);
            (bb * l * npts) as u32 + (rng.next_u64() % (l * npts) as u64) as u32
        })
        .collect();
    let g = rng.vec(e * 4);
    let (tx, ta) = (up(&xyz, &[b, l, npts, 3]), up(&anchors, &[b, l_out, n, 3]));
    let trows = dev().upload_u32(&rows, &[b, l_out, offsets, n, k]).unwrap();
    let tg = up(&g, &[b, l_out, offsets, n, k, 4]);
    let (disp, ga, gx) = dev()
        .run(|s| {
            let disp = displacement(s, &tx, &ta, &trows, 0.0)?;
            let ga = displacement_anchor_grad(s, &tg)?;
            let inv = inverse_index(s, &trows, b * l * npts)?;
            Ok((disp, ga, gather_rows_backward(s, &tg, &inv, 3, 4, 1, None)?))
        })
        .unwrap();
    let mut want = Vec::new();
    let mut want_ga = vec![0.0f64; b * l_out * n * 3];
    for (i, &row) in rows.iter().enumerate() {
        let a = (i / k) % n;
        let o = (i / (k * n)) % offsets;
        let bt = i / (k * n * offsets);
        for c in 0..3 {
            want.push((xyz[row as usize * 3 + c] - anchors[(bt * n + a) * 3 + c]) as f64);
            want_ga[(bt * n + a) * 3 + c] -= g[i * 4 + c] as f64;
        }
        want.push(o as f64 - 1.0);
    }
    assert_close("displacement", &down(&disp), &want, 0.0, 0.0);
    assert_close("anchor gradient", &down(&ga), &want_ga, 1e-6, 1e-5);
    let g3: Vec<f64> = g
        .chunks(4)
        .flat_map(|c| c[..3].iter().map(|&v| v as f64))
        .collect();
    let want_gx = r::gather_backward(&g3, 3, &rows, 1, None, b * l * npts);
    assert_close("neighbour gradient", &down(&gx), &want_gx, 1e-6, 1e-5);
}

#[test]
fn point_ops_refuse_bad_shapes_and_arguments() {
    let t = up(&[0.0; 12], &[2, 2, 3]);
    let bad = up(&[0.0; 8], &[2, 2, 2]);
    let err = dev().run(|s| fps(s, &bad, 2)).unwrap_err().to_string();
    assert!(
        err.contains("fps") && err.contains("3 coordinates"),
        "{err}"
    );
    let err = dev()
        .run(|s| ball_query(s, &t, &t, -1.0, 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("radius"), "{err}");
    let err = dev().run(|s| knn(s, &t, &t, 5)).unwrap_err().to_string();
    assert!(err.contains("k = 5"), "{err}");
}

#[test]
fn fps_on_clouds_beyond_the_register_cache_matches_reference() {
    // 2500 points take the uncached kernel; a coarse lattice makes ties common.
    let mut rng = Rng::new(74);
    let n = 2500;
    let xyz: Vec<f32> = (0..n * 3)
        .map(|i| (rng.next_u64() % 9) as f32 * 0.25 + if i % 3 == 2 { 1.0 } else { 0.0 })
        .collect();
    let t = up(&xyz, &[1, n, 3]);
    let sel = dev().run(|s| fps(s, &t, 40)).unwrap();
    assert_eq!(dev().read_u32(&sel.idx).unwrap(), r::fps(&xyz, 40));
}
