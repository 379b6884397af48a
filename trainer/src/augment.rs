//! Training-time augmentations of clips (B, L, N, 3), as the reference datasets intend
//! them (reference-spec §9.3, §12 #7: the original code's bugs — a flip that negates
//! point 0 only, a jitter that is computed and discarded — are not reproduced).

use crate::rng::SplitMix64;

/// MSR-Action3D (P4Transformer `datasets/msr.py`): every axis of a clip scaled by its own
/// factor from U(lo, hi) (the reference: U(0.9, 1.1)).
pub fn scale_axes(clip: &mut [f32], rng: &mut SplitMix64, lo: f32, hi: f32) {
    let s = [
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
    ];
    for p in clip.chunks_exact_mut(3) {
        for k in 0..3 {
            p[k] *= s[k];
        }
    }
}

/// The mean of the first frame's points (the centre the HOI4D augmentations use).
pub fn first_frame_centre(clip: &[f32], points: usize) -> [f32; 3] {
    let mut c = [0.0f64; 3];
    for p in clip[..points * 3].chunks_exact(3) {
        for k in 0..3 {
            c[k] += p[k] as f64;
        }
    }
    c.map(|v| (v / points.max(1) as f64) as f32)
}

/// HOI4D action segmentation (`AS_base.py`): uniform scale U(lo, hi) about the first
/// frame's centre (the reference: U(0.8, 1.2)).
pub fn scale_about_centre(clip: &mut [f32], points: usize, rng: &mut SplitMix64, lo: f32, hi: f32) {
    let c = first_frame_centre(clip, points);
    let s = rng.uniform(lo, hi);
    for p in clip.chunks_exact_mut(3) {
        for k in 0..3 {
            p[k] = c[k] + (p[k] - c[k]) * s;
        }
    }
}

/// The intended HOI4D flip: mirror x about the first frame's centre, with probability ½.
pub fn flip_x(clip: &mut [f32], points: usize, rng: &mut SplitMix64) {
    if rng.next_u64() & 1 == 0 {
        return;
    }
    let c = first_frame_centre(clip, points);
    for p in clip.chunks_exact_mut(3) {
        p[0] = 2.0 * c[0] - p[0];
    }
}

/// The intended jitter: independent N(0, sigma²) per coordinate, clipped to ±clip.
pub fn jitter(clip: &mut [f32], rng: &mut SplitMix64, sigma: f32, limit: f32) {
    for v in clip.iter_mut() {
        *v += (rng.normal() * sigma).clamp(-limit, limit);
    }
}

/// Synthia 4D (`datasets/synthia.py`): rotation about the vertical (y) axis through the
/// first frame's centre by an angle from U(0, 2π) — the intended range; the original
/// `uniform(np.pi * 2)` draws from U(2π, 1), which covers the same circle.
pub fn rotate_y(clip: &mut [f32], points: usize, rng: &mut SplitMix64) {
    let c = first_frame_centre(clip, points);
    let angle = rng.uniform(0.0, std::f32::consts::TAU);
    let (sin, cos) = angle.sin_cos();
    for p in clip.chunks_exact_mut(3) {
        let (x, z) = (p[0] - c[0], p[2] - c[2]);
        // Row vector times pyquaternion's rotation matrix about +y, as `np.dot(pc, R)`.
        p[0] = c[0] + x * cos - z * sin;
        p[2] = c[2] + x * sin + z * cos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentations_do_what_they_say() {
        let clip: Vec<f32> = (0..2 * 4 * 3).map(|i| i as f32).collect(); // 2 frames x 4 points
        let mut rng = SplitMix64::new(3);
        let mut a = clip.clone();
        scale_axes(&mut a, &mut rng, 0.9, 1.1);
        let ratio: Vec<f32> = (0..3).map(|k| a[3 + k] / clip[3 + k]).collect();
        for (i, p) in a.chunks(3).enumerate().skip(1) {
            for k in 0..3 {
                assert!(
                    (p[k] / clip[i * 3 + k] - ratio[k]).abs() < 1e-5,
                    "one factor per axis"
                );
                assert!((0.9..=1.1).contains(&ratio[k]));
            }
        }
        let c = first_frame_centre(&clip, 4);
        assert_eq!(c, [4.5, 5.5, 6.5]);
        let mut b = clip.clone();
        scale_about_centre(&mut b, 4, &mut rng, 2.0, 2.0 + f32::EPSILON);
        assert!((b[0] - (4.5 + (0.0 - 4.5) * 2.0)).abs() < 1e-4);
        let mut f = clip.clone();
        let mut r2 = SplitMix64::new(0);
        while f == clip {
            flip_x(&mut f, 4, &mut r2);
        }
        assert_eq!(f[0], 9.0);
        assert_eq!(f[1], clip[1], "only x is mirrored");
        let mut j = clip.clone();
        jitter(&mut j, &mut rng, 0.01, 0.05);
        assert!(j
            .iter()
            .zip(&clip)
            .all(|(a, b)| (a - b).abs() <= 0.05 + 1e-6));
        assert!(j != clip);
        let mut r = clip.clone();
        rotate_y(&mut r, 4, &mut rng);
        for (p, q) in r.chunks(3).zip(clip.chunks(3)) {
            assert_eq!(p[1], q[1], "y is the axis");
            let radius = |v: &[f32]| (v[0] - c[0]).hypot(v[2] - c[2]);
            assert!(
                (radius(p) - radius(q)).abs() < 1e-4,
                "distance to the axis kept"
            );
        }
        assert!(r != clip);
    }
}
