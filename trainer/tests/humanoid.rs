//! The human-motion data pipeline: motion clips, forward kinematics, the depth camera,
//! back-projection and the labelled split. CPU only.

use edge4d_trainer::humanoid::body::{ray_hit, Shape, BODY_PARTS};
use edge4d_trainer::humanoid::camera::{back_project, DepthCamera, DepthNoise, Intrinsics};
use edge4d_trainer::humanoid::generate::{
    generate, render_clip, Assets, GenConfig, Split, View, ACTIONS,
};
use edge4d_trainer::humanoid::motion::Motion;
use edge4d_trainer::rng::SplitMix64;
use glam::{Affine3A, Vec3};

#[test]
fn every_action_clip_parses_and_poses_a_standing_sized_body() {
    let assets = Assets::bundled().unwrap();
    assert_eq!(assets.motions.len(), 15);
    for (m, name) in assets.motions.iter().zip(ACTIONS) {
        assert!(m.duration() > 0.3, "{name}: {} s", m.duration());
        assert_eq!(m.name, format!("humanoid3d_{name}.txt"));
    }
    // The first walk pose: head near 1.6–1.9 m, feet near the ground.
    let walk = &assets.motions[0];
    let shapes = assets.body.posed_shapes(&walk.pose_at(0.0), 1.0);
    let ys: Vec<f32> = shapes.iter().map(|(_, w)| w.translation.y).collect();
    let top = ys.iter().cloned().fold(f32::MIN, f32::max);
    let bottom = ys.iter().cloned().fold(f32::MAX, f32::min);
    assert!((1.4..1.9).contains(&top), "highest shape centre at {top} m");
    assert!(
        (-0.05..0.2).contains(&bottom),
        "lowest shape centre at {bottom} m"
    );
    // Scaling the body scales its height.
    let tall = assets.body.posed_shapes(&walk.pose_at(0.0), 1.1);
    let top_tall = tall
        .iter()
        .map(|(_, w)| w.translation.y)
        .fold(f32::MIN, f32::max);
    assert!((top_tall / top - 1.1).abs() < 1e-3);
}

#[test]
fn looping_clips_wrap_and_others_hold_their_last_pose() {
    let assets = Assets::bundled().unwrap();
    let walk = &assets.motions[0];
    assert!(walk.looping);
    let d = walk.duration();
    let a = walk.pose_at(0.25 * d);
    let b = walk.pose_at(1.25 * d);
    for k in 0..12 {
        assert!(
            a.joints[k].dot(b.joints[k]).abs() > 0.9999,
            "joint {k} repeats after a cycle"
        );
    }
    let kick = &assets.motions[3];
    assert!(!kick.looping);
    assert_eq!(
        kick.pose_at(kick.duration() + 5.0),
        kick.pose_at(kick.duration())
    );
}

#[test]
fn rays_hit_spheres_capsules_and_boxes_where_they_should() {
    let o = Vec3::new(0.0, 0.0, -5.0);
    assert!((ray_hit(&Shape::Sphere { radius: 1.0 }, o, Vec3::Z).unwrap() - 4.0).abs() < 1e-5);
    // A capsule along z seen end-on hits its cap; from the side its cylinder.
    let cap = Shape::Capsule {
        radius: 0.5,
        half_length: 1.0,
    };
    assert!((ray_hit(&cap, o, Vec3::Z).unwrap() - 3.5).abs() < 1e-5);
    assert!((ray_hit(&cap, Vec3::new(-5.0, 0.0, 0.3), Vec3::X).unwrap() - 4.5).abs() < 1e-5);
    assert!(ray_hit(&cap, Vec3::new(-5.0, 0.0, 1.6), Vec3::X).is_none());
    let bx = Shape::Box {
        half: Vec3::new(1.0, 2.0, 3.0),
    };
    assert!((ray_hit(&bx, Vec3::new(0.0, -9.0, 0.0), Vec3::Y).unwrap() - 7.0).abs() < 1e-5);
    assert!(ray_hit(&bx, Vec3::new(1.5, -9.0, 0.0), Vec3::Y).is_none());
}

#[test]
fn the_depth_camera_measures_distance_and_back_projects_as_msr_action3d() {
    let intr = Intrinsics {
        width: 40,
        height: 30,
        focal: 35.0,
    };
    let cam = DepthCamera {
        intrinsics: intr,
        eye: Vec3::ZERO,
        target: Vec3::new(0.0, 0.0, -1.0),
        noise: DepthNoise::NONE,
    };
    // A 0.5 m sphere 3 m ahead: the centre pixel reads 2.5 m.
    let sphere = (
        Shape::Sphere { radius: 0.5 },
        Affine3A::from_translation(Vec3::new(0.0, 0.0, -3.0)),
    );
    let depth = cam.render(&[sphere], &mut SplitMix64::new(0));
    assert_eq!(depth[15 * 40 + 20], 2500);
    assert_eq!(depth[0], 0, "corners see nothing");
    let pts = back_project(&depth, intr);
    let centre = pts.iter().find(|p| p[0] == 0.0 && p[1] == 0.0).unwrap();
    assert_eq!(centre[2], 2500.0);
    // Every point lies on the sphere (in the camera frame: x right, y down, z forward).
    for p in &pts {
        let v = Vec3::new(p[0], p[1], p[2]) / 1000.0 - Vec3::new(0.0, 0.0, 3.0);
        assert!((v.length() - 0.5).abs() < 0.01, "{p:?}");
    }
    // Noise is applied and stays small at 2.5 m (σ ≈ 9 mm).
    let noisy = DepthCamera {
        noise: DepthNoise::KINECT,
        ..cam
    };
    let d2 = noisy.render(&[sphere], &mut SplitMix64::new(1));
    let diff = (d2[15 * 40 + 20] as i32 - 2500).abs();
    assert!(diff < 60, "{diff} mm");
}

#[test]
fn generation_is_deterministic_labelled_and_split_by_view() {
    let assets = Assets::bundled().unwrap();
    let cfg = GenConfig {
        frames: 4,
        points: 64,
        intrinsics: Intrinsics {
            width: 64,
            height: 48,
            focal: 56.0,
        },
        ..GenConfig::default()
    };
    let a = generate(&assets, Split::Train, 1, &cfg, 5).unwrap();
    let b = generate(&assets, Split::Train, 1, &cfg, 5).unwrap();
    assert_eq!(a.clips, b.clips);
    assert_eq!(a.clips_shape, [15, 4, 64, 3]);
    assert_eq!(a.classes_seen(), 15);
    // MSR-Action3D units: depth in mm / 300, a body 2.5–3.5 m away → z ≈ 7–12.
    let z: Vec<f32> = a.clips.chunks(3).map(|p| p[2]).collect();
    let (lo, hi) = z
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo > 5.0 && hi < 14.0, "z from {lo} to {hi}");
    // Train and test azimuths never come within 10° of each other's sectors.
    let mut rng = SplitMix64::new(9);
    for _ in 0..200 {
        let tr = View::sample(Split::Train, &assets.motions[0], &mut rng)
            .azimuth_deg
            .rem_euclid(60.0);
        let te = View::sample(Split::Test, &assets.motions[0], &mut rng)
            .azimuth_deg
            .rem_euclid(60.0);
        assert!(!(10.0..50.0).contains(&tr), "train azimuth {tr} mod 60");
        assert!((20.0..=40.0).contains(&te), "test azimuth {te} mod 60");
    }
    let view = View {
        azimuth_deg: 0.0,
        elevation_deg: 0.0,
        distance: 3.0,
        scale: 1.0,
        speed: 1.0,
        start: 0.0,
    };
    let (clip, parts) = render_clip(&assets, 1, &view, &cfg, &mut rng).unwrap();
    assert_eq!(clip.len(), 4 * 64 * 3);
    assert_eq!(parts.len(), 4 * 64);
    // Body parts: the head sees the camera from above the legs (image y points down).
    let mean_y = |part: u32| {
        let ys: Vec<f32> = (0..parts.len())
            .filter(|&i| parts[i] == part)
            .map(|i| clip[i * 3 + 1])
            .collect();
        assert!(!ys.is_empty(), "part {part} is seen");
        ys.iter().sum::<f32>() / ys.len() as f32
    };
    assert!(parts.iter().all(|&p| (p as usize) < BODY_PARTS.len()));
    assert!(mean_y(1) < mean_y(0), "head above torso");
    assert!(mean_y(0) < mean_y(4).min(mean_y(5)), "torso above legs");
}

#[test]
fn bad_motion_files_are_named() {
    let err = Motion::parse("broken.txt", "{\"Frames\": [[1, 2, 3]]}")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("broken.txt") && err.contains("frame 0"),
        "{err}"
    );
    let err = Assets::load("/nonexistent/motions")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("fetch-motions.sh"), "{err}");
}

#[test]
fn surface_samples_lie_on_the_posed_body_and_keep_their_identity() {
    let assets = Assets::bundled().unwrap();
    let samples = assets.body.sample_surface(2000, &mut SplitMix64::new(4));
    assert_eq!(samples.len(), 2000);
    let pose = assets.motions[7].pose_at(0.4);
    let shapes = assets.body.posed_shapes(&pose, 1.05);
    let pts = assets.body.place(&samples, &pose, 1.05);
    for (&(i, _), p) in samples.iter().zip(&pts) {
        // Its distance to the surface of the shape it was drawn on, in that shape's frame.
        let (shape, w) = &shapes[i];
        let local = w.inverse().transform_point3(*p);
        let d = match shape {
            Shape::Sphere { radius } => (local.length() - radius).abs(),
            Shape::Capsule {
                radius,
                half_length,
            } => {
                let c = Vec3::new(0.0, 0.0, local.z.clamp(-half_length, *half_length));
                ((local - c).length() - radius).abs()
            }
            Shape::Box { half } => (local.abs() - *half).max_element().abs(),
        };
        assert!(d < 1e-4, "point {p:?} is {d} m off its shape");
    }
    // The same samples in another pose move with the body.
    let later = assets
        .body
        .place(&samples, &assets.motions[7].pose_at(0.9), 1.05);
    assert!(pts
        .iter()
        .zip(&later)
        .any(|(a, b)| (*a - *b).length() > 0.05));
}
