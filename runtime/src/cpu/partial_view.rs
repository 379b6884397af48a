//! Twins of `shaders/wgsl/point/partial_view.wgsl`: C2P's partial views (camera set-up,
//! z-buffer, kept points, their ranks, resampling by a keyed permutation). Frames are
//! independent, so each entry point splits the work by frame; within a frame the
//! z-buffer is a plain minimum over the points' depth bits, as the GPU's atomicMin.

use rayon::prelude::*;

use crate::params::point;

use super::{par_rows, Args, KernelFn};

pub(super) fn twin(entry: &str) -> Option<KernelFn> {
    Some(match entry {
        "setup" => setup,
        "clear" => clear,
        "project" => project,
        "keep" => keep,
        "scan" => scan,
        "compact_kept" => compact_kept,
        "resample" => resample,
        _ => return None,
    })
}

const DROPPED: u32 = u32::MAX;
const EMPTY: u32 = u32::MAX;

type V3 = [f32; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dot(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn scale(a: V3, s: f32) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn length(a: V3) -> f32 {
    dot(a, a).sqrt()
}

fn normalize(a: V3) -> V3 {
    scale(a, 1.0 / length(a))
}

fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn setup(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let (frames, n) = (p.frames as usize, p.n as usize);
    let (points, angles) = (a.f32(0), a.f32(1));
    let cams = &mut a.f32_mut(2)[..frames * 12];
    for (f, cam_out) in cams.chunks_mut(12).enumerate() {
        let mut centre = [0.0f32; 3];
        for q in points[f * n * 3..(f + 1) * n * 3].chunks_exact(3) {
            centre = [centre[0] + q[0], centre[1] + q[1], centre[2] + q[2]];
        }
        centre = scale(centre, 1.0 / n as f32);
        let theta = angles[3 * f].to_radians();
        let phi = angles[3 * f + 1].to_radians();
        let zoom = angles[3 * f + 2];
        let dir = scale(normalize([theta.cos(), phi.sin(), theta.sin()]), -1.0);
        let s = scale(dir, zoom * length(centre));
        let cam = [s[0] + centre[0], s[1] + centre[1], s[2] + centre[2]];
        let z = normalize(sub(centre, cam));
        let x = normalize(cross([0.0, 1.0, 0.0], z));
        let y = cross(z, x);
        cam_out[..3].copy_from_slice(&cam);
        cam_out[3..6].copy_from_slice(&x);
        cam_out[6..9].copy_from_slice(&y);
        cam_out[9..12].copy_from_slice(&z);
    }
}

fn clear(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let len = (p.frames * p.width * p.height) as usize;
    a.u32_mut(3)[..len].fill(EMPTY);
}

/// The pixel (index in the frame's z-buffer) and depth bits of point `q` of a frame
/// seen by `cam`, or None when it is dropped.
fn project_point(p: &point::PartialView, cam: &[f32], q: &[f32]) -> Option<(usize, u32)> {
    let d = sub([q[0], q[1], q[2]], [cam[0], cam[1], cam[2]]);
    let xc = dot([cam[3], cam[4], cam[5]], d);
    let yc = dot([cam[6], cam[7], cam[8]], d);
    let zc = dot([cam[9], cam[10], cam[11]], d);
    // Written as the kernel: a NaN depth is dropped too.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(zc > 0.0) {
        return None;
    }
    let sx = xc * p.focal / zc;
    let sy = yc * p.focal / zc;
    // As the official code: only an upper bound, then truncation toward zero.
    if !(sx < 1e6 && sy < 1e6) {
        return None;
    }
    let px = (sx + p.width as f32 / 2.0).trunc() as i32;
    let py = (sy + p.height as f32 / 2.0).trunc() as i32;
    if px < 0 || py < 0 || px >= p.width as i32 || py >= p.height as i32 {
        return None;
    }
    Some((px as usize * p.height as usize + py as usize, zc.to_bits()))
}

fn project(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let (n, screen) = (p.n as usize, (p.width * p.height) as usize);
    let (points, cams) = (a.f32(0), a.f32(2));
    let zbuf = &mut a.u32_mut(3)[..p.frames as usize * screen];
    zbuf.par_chunks_mut(screen).enumerate().for_each(|(f, z)| {
        let cam = &cams[f * 12..f * 12 + 12];
        for q in points[f * n * 3..(f + 1) * n * 3].chunks_exact(3) {
            if let Some((pixel, depth)) = project_point(&p, cam, q) {
                z[pixel] = z[pixel].min(depth);
            }
        }
    });
}

fn keep(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let (n, screen) = (p.n as usize, (p.width * p.height) as usize);
    let (points, cams, zbuf) = (a.f32(0), a.f32(2), a.u32(3));
    let rank = &mut a.u32_mut(4)[..p.frames as usize * n];
    par_rows(rank, n, |f0, rank| {
        for (r, out) in rank.chunks_mut(n).enumerate() {
            let f = f0 + r;
            let cam = &cams[f * 12..f * 12 + 12];
            for (i, q) in points[f * n * 3..(f + 1) * n * 3]
                .chunks_exact(3)
                .enumerate()
            {
                out[i] = match project_point(&p, cam, q) {
                    Some((pixel, depth)) => {
                        let nearest = f32::from_bits(zbuf[f * screen + pixel]);
                        u32::from(f32::from_bits(depth) - nearest < p.threshold)
                    }
                    None => 0,
                };
            }
        }
    });
}

fn scan(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let n = p.n as usize;
    let rank = &mut a.u32_mut(4)[..p.frames as usize * n];
    let counts = &mut a.u32_mut(5)[..p.frames as usize];
    for (r, c) in rank.chunks_mut(n).zip(counts.iter_mut()) {
        let mut run = 0u32;
        for v in r.iter_mut() {
            if *v == 1 {
                *v = run;
                run += 1;
            } else {
                *v = DROPPED;
            }
        }
        *c = run;
    }
}

fn compact_kept(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let n = p.n as usize;
    let rank = a.u32_mut(4);
    let compact = &mut a.u32_mut(7)[..p.frames as usize * n];
    for (f, out) in compact.chunks_mut(n).enumerate() {
        for (i, &r) in rank[f * n..(f + 1) * n].iter().enumerate() {
            if r != DROPPED {
                out[r as usize] = i as u32;
            }
        }
    }
}

fn hash(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

/// The kernel's keyed permutation of [0, c) at j: a 4-round Feistel network on the
/// smallest even bit width covering c, cycle-walking below c.
fn permute(j: u32, c: u32, key: u32) -> u32 {
    let mut bits = 2u32;
    while (1u32 << bits) < c {
        bits += 2;
    }
    let half = bits / 2;
    let mask = (1u32 << half) - 1;
    let mut v = j;
    loop {
        let mut l = v >> half;
        let mut r = v & mask;
        for round in 0..4u32 {
            let t = l ^ (hash(r ^ key ^ round.wrapping_mul(0x9e3779b9)) & mask);
            l = r;
            r = t;
        }
        v = (l << half) | r;
        if v < c {
            return v;
        }
    }
}

fn resample(a: &Args<'_>) {
    let p: point::PartialView = a.params();
    let (n, m) = (p.n as usize, p.m as usize);
    let (points, counts, compact) = (a.f32(0), a.u32(5), a.u32(7));
    let out = &mut a.f32_mut(6)[..p.frames as usize * m * 3];
    par_rows(out, 3, |o0, out| {
        for (r, q) in out.chunks_mut(3).enumerate() {
            let o = o0 + r;
            let (f, j) = (o / m, (o % m) as u32);
            let seen = counts[f];
            let c = if seen > 0 { seen } else { p.n };
            let key = hash(p.seed ^ hash((f as u32).wrapping_add(0x51ed270b)));
            let r = if c >= p.m {
                permute(j, c, key)
            } else {
                let whole = (p.m / c) * c;
                if j < whole {
                    j % c
                } else {
                    permute(j - whole, c, key)
                }
            };
            let src = if seen > 0 {
                compact[f * n + r as usize] as usize
            } else {
                r as usize
            };
            q.copy_from_slice(&points[(f * n + src) * 3..(f * n + src) * 3 + 3]);
        }
    });
}
