//! C2P partial views on the GPU (`shaders/wgsl/point/partial_view.wgsl`): each frame of
//! a clip seen by a virtual camera at given angles, occluded by a z-buffer, resampled
//! to a fixed number of points. `crate::reference::partial_view` is the f64
//! specification (the official numpy `oper()`).

use edge4d_shaders::point::PARTIAL_VIEW;

use super::{f32_input, u};
use crate::reference::partial_view::Screen;
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

/// A clip's partial views and what the kernel decided per point.
pub struct PartialViews {
    /// (B, L, m, 3): kept points (original coordinates), resampled.
    pub points: Tensor,
    /// (B, L, N): each point's rank among its frame's kept points, u32::MAX if hidden.
    pub rank: Tensor,
    /// (B, L): kept points per frame (0: the camera saw nothing; the frame's complete
    /// points were used instead).
    pub counts: Tensor,
}

/// clip (B, L, N, 3), views (B, L, 3) = (θ, φ in degrees, zoom) per frame → partial
/// views resampled to `m` points per frame with the random stream `seed`. Zoom scales
/// the camera's distance to the frame's centre (1: the official ‖centre‖).
pub fn partial_views(
    s: &mut Step<'_>,
    clip: &Tensor,
    angles: &Tensor,
    m: usize,
    screen: &Screen,
    seed: u32,
) -> Result<PartialViews> {
    f32_input("partial_views", "clip", clip)?;
    f32_input("partial_views", "angles", angles)?;
    let sh = clip.shape();
    if sh.len() != 4 || sh[3] != 3 || sh.contains(&0) {
        return Err(Error::Shape {
            op: "partial_views",
            detail: format!("clip must be (B, L, N, 3) with no empty axis, got {sh:?}"),
        });
    }
    let (frames, n) = (sh[0] * sh[1], sh[2]);
    if angles.numel() != frames * 3 {
        return Err(Error::Shape {
            op: "partial_views",
            detail: format!(
                "views {:?} should hold (θ, φ, zoom) for each of the {frames} frames",
                angles.shape()
            ),
        });
    }
    if m == 0 || screen.width == 0 || screen.height == 0 || !(screen.focal > 0.0) {
        return Err(Error::InvalidArgument {
            op: "partial_views",
            detail: format!("need m > 0 and a non-empty screen with a positive focal length, got m = {m}, {screen:?}"),
        });
    }
    let pixels = frames * screen.width * screen.height;
    let cams = s.alloc(&[frames, 12], DType::F32);
    let zbuf = s.alloc(&[pixels], DType::U32);
    let rank = s.alloc(&[sh[0], sh[1], n], DType::U32);
    let counts = s.alloc(&[sh[0], sh[1]], DType::U32);
    let out = s.alloc(&[sh[0], sh[1], m, 3], DType::F32);
    let compact = s.alloc(&[frames, n], DType::U32);
    let params = crate::params::point::PartialView {
        frames: u(frames),
        n: u(n),
        m: u(m),
        width: u(screen.width),
        height: u(screen.height),
        focal: screen.focal as f32,
        threshold: screen.threshold as f32,
        seed,
    };
    let all = [
        read(0, clip),
        read(1, angles),
        write(2, &cams),
        write(3, &zbuf),
        write(4, &rank),
        write(5, &counts),
        write(6, &out),
        write(7, &compact),
    ];
    let pick = |slots: &[u32]| -> Vec<crate::step::Bind<'_>> {
        all.iter()
            .filter(|b| slots.contains(&b.slot))
            .map(|b| crate::step::Bind { ..*b })
            .collect()
    };
    s.dispatch(
        &PARTIAL_VIEW,
        "setup",
        &pick(&[0, 1, 2]),
        8,
        &params,
        groups_1d(frames),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "clear",
        &pick(&[3]),
        8,
        &params,
        groups_1d(pixels),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "project",
        &pick(&[0, 2, 3]),
        8,
        &params,
        groups_1d(frames * n),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "keep",
        &pick(&[0, 2, 3, 4]),
        8,
        &params,
        groups_1d(frames * n),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "scan",
        &pick(&[4, 5]),
        8,
        &params,
        crate::step::fold_groups(frames),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "compact_kept",
        &pick(&[4, 7]),
        8,
        &params,
        groups_1d(frames * n),
    );
    s.dispatch(
        &PARTIAL_VIEW,
        "resample",
        &pick(&[0, 5, 6, 7]),
        8,
        &params,
        groups_1d(frames * m),
    );
    Ok(PartialViews {
        points: out,
        rank,
        counts,
    })
}
