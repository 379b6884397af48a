//! C2P partial views against the official `oper()` (`c2p_partial_view` fixture): the f64
//! reference reproduces the camera, its rotation and the kept points; the GPU kernel
//! (f32, depth as ordered u32 with atomicMin) keeps the same points but for a handful on
//! pixel boundaries, and returns them in input order.

use crate::common::*;
use edge4d_runtime::reference::partial_view as r;

fn case(f: &edge4d_runtime::TensorFile, i: usize) -> (Vec<[f64; 3]>, f64, f64) {
    let (pts, _) = f.f64(&format!("pv.{i}.points")).unwrap();
    let (angles, _) = f.f64(&format!("pv.{i}.angles_deg")).unwrap();
    (
        pts.chunks(3).map(|c| [c[0], c[1], c[2]]).collect(),
        angles[0],
        angles[1],
    )
}

#[test]
fn reference_reproduces_the_official_partial_views() {
    let f = fixture("p4transformer/c2p_partial_view.safetensors");
    for i in 0..3 {
        let (pts, theta, phi) = case(&f, i);
        let cam = r::camera(&pts, theta, phi);
        let (want_cam, _) = f.f64(&format!("pv.{i}.camera")).unwrap();
        let (want_trans, _) = f.f64(&format!("pv.{i}.trans")).unwrap();
        for a in 0..3 {
            assert!((cam.position[a] - want_cam[a]).abs() <= 1e-9 * want_cam[a].abs().max(1.0));
            for b in 0..3 {
                assert!(
                    (cam.trans[a][b] - want_trans[a * 3 + b]).abs() <= 1e-12,
                    "case {i}"
                );
            }
        }
        let kept = r::visible(&pts, &cam, &r::Screen::default());
        let (want, shape) = f.f64(&format!("pv.{i}.out_camera_coords")).unwrap();
        assert_eq!(kept.len(), shape[0], "case {i}: kept count");
        let (world, _) = f.f64(&format!("pv.{i}.out_world")).unwrap();
        for (k, &idx) in kept.iter().enumerate() {
            let pc = r::to_camera(&cam, pts[idx]);
            for a in 0..3 {
                let w = want[k * 3 + a];
                assert!(
                    (pc[a] - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "case {i} point {k}"
                );
                let ww = world[k * 3 + a];
                assert!((pts[idx][a] - ww).abs() <= 1e-9 * ww.abs().max(1.0));
            }
        }
    }
}

#[test]
fn trajectories_sweep_15_to_165_degrees_with_the_vertical_patterns() {
    let t = r::trajectory(24, false, 1);
    assert_eq!(t.len(), 24);
    assert_eq!(t[0], (15.0, 0.0));
    assert!((t[23].0 - 165.0).abs() < 1e-9);
    assert!((t[12].1 - 5.0).abs() < 1e-9, "{:?}", t[12]);
    let back = r::trajectory(24, true, -1);
    assert!((back[0].0 - 165.0).abs() < 1e-9 && back[23].0 == 15.0);
    assert!(back.iter().all(|&(_, v)| v <= 0.0));
    assert_eq!(r::trajectory(7, false, 1).len(), 7);
    assert_eq!(r::trajectory(1, false, 0), vec![(90.0, 0.0)]);
}

/// Runs the GPU kernel on one frame; returns (kept indices, count, output points).
fn gpu_view(pts: &[[f64; 3]], theta: f64, phi: f64, m: usize) -> (Vec<usize>, u32, Vec<f32>) {
    gpu_zoomed_view(pts, theta, phi, 1.0, m)
}

fn gpu_zoomed_view(
    pts: &[[f64; 3]],
    theta: f64,
    phi: f64,
    zoom: f64,
    m: usize,
) -> (Vec<usize>, u32, Vec<f32>) {
    use edge4d_runtime::ops::partial_view::partial_views;
    let flat: Vec<f32> = pts.iter().flatten().map(|&v| v as f32).collect();
    let clip = dev().upload(&flat, &[1, 1, pts.len(), 3]).unwrap();
    let angles = dev()
        .upload(&[theta as f32, phi as f32, zoom as f32], &[1, 1, 3])
        .unwrap();
    let pv = dev()
        .run(|s| partial_views(s, &clip, &angles, m, &r::Screen::default(), 9))
        .unwrap();
    let rank = dev().read_u32(&pv.rank).unwrap();
    let kept: Vec<usize> = (0..pts.len()).filter(|&i| rank[i] != u32::MAX).collect();
    for (k, &i) in kept.iter().enumerate() {
        assert_eq!(rank[i] as usize, k, "ranks follow input order");
    }
    let count = dev().read_u32(&pv.counts).unwrap()[0];
    (kept, count, dev().read(&pv.points).unwrap())
}

#[test]
fn gpu_partial_views_keep_the_reference_points_and_resample_them() {
    let f = fixture("p4transformer/c2p_partial_view.safetensors");
    for i in 0..3 {
        let (pts, theta, phi) = case(&f, i);
        let want = r::visible(&pts, &r::camera(&pts, theta, phi), &r::Screen::default());
        for m in [96usize, 1000] {
            let (kept, count, out) = gpu_view(&pts, theta, phi, m);
            assert_eq!(count as usize, kept.len());
            // f32 vs f64: a point on a pixel boundary may land in the next pixel.
            let differ = want.iter().filter(|i| !kept.contains(i)).count()
                + kept.iter().filter(|i| !want.contains(i)).count();
            assert!(
                differ * 100 <= pts.len(),
                "case {i}: {differ} of {} points differ from the reference",
                pts.len()
            );
            // Every output point is a kept input point, each used as the rule says.
            let mut uses = vec![0usize; pts.len()];
            for q in out.chunks(3) {
                let src = kept
                    .iter()
                    .find(|&&k| pts[k].iter().zip(q).all(|(a, b)| *a as f32 == *b))
                    .unwrap_or_else(|| panic!("case {i}: output {q:?} is not a kept point"));
                uses[*src] += 1;
            }
            let c = kept.len();
            for &k in &kept {
                if m >= c {
                    assert!(
                        (m / c..=m / c + 1).contains(&uses[k]),
                        "case {i}: used {}",
                        uses[k]
                    );
                } else {
                    assert!(uses[k] <= 1, "a subset repeats no point");
                }
            }
        }
    }
}

#[test]
fn a_frame_the_camera_cannot_see_keeps_its_complete_points() {
    // All points at the origin: the camera has no direction to look in.
    let pts = vec![[0.0; 3]; 40];
    let (kept, count, out) = gpu_view(&pts, 90.0, 0.0, 64);
    assert!(kept.is_empty() && count == 0);
    assert_eq!(out.len(), 64 * 3);
    assert!(out.iter().all(|&v| v == 0.0));
}

#[test]
fn zoomed_cameras_match_the_reference() {
    let f = fixture("p4transformer/c2p_partial_view.safetensors");
    let (pts, theta, phi) = case(&f, 1);
    for zoom in [0.8, 1.2] {
        let want = r::visible(
            &pts,
            &r::zoomed_camera(&pts, theta, phi, zoom),
            &r::Screen::default(),
        );
        let (kept, ..) = gpu_zoomed_view(&pts, theta, phi, zoom, 64);
        let differ = want.iter().filter(|i| !kept.contains(i)).count()
            + kept.iter().filter(|i| !want.contains(i)).count();
        assert!(differ * 100 <= pts.len(), "zoom {zoom}: {differ} differ");
        assert!(!kept.is_empty());
    }
}
