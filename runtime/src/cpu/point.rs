//! Twins of `shaders/wgsl/point/` (all but partial views): farthest point sampling,
//! ball query, kNN, three_nn, the row gathers with their scatter backward, P4DConv's
//! displacements, and the inverse index. Distances are computed as the CUDA kernels,
//! ((dx*dx + dy*dy) + dz*dz) in f32 without fused multiply-adds, so chosen indices
//! match the GPU kernels bit for bit. Each query or cloud is one sequential loop; the
//! work is split across queries or clouds.

use rayon::prelude::*;

use crate::params::point;

use super::{par_rows, par_rows2, Args, KernelFn, SendPtr};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    Some(match (name, entry) {
        ("fps", "fps" | "fps_cached") => fps,
        ("ball_query", "ball_query") => ball_query,
        ("knn", "knn") => knn,
        ("three_nn", "three_nn") => three_nn,
        ("gather", "gather") => gather,
        ("gather", "scatter") => scatter,
        ("displacement", "displacement") => displacement,
        ("displacement", "anchor_grad") => anchor_grad,
        ("inverse_index", "clear") => inverse_clear,
        ("inverse_index", "count") => inverse_count,
        ("inverse_index", "scan") => inverse_scan,
        ("inverse_index", "fill") => inverse_fill,
        ("inverse_index", "sort") => inverse_sort,
        _ => return None,
    })
}

fn d2(ax: f32, ay: f32, az: f32, bx: f32, by: f32, bz: f32) -> f32 {
    let (dx, dy, dz) = (ax - bx, ay - by, az - bz);
    (dx * dx + dy * dy) + dz * dz
}

/// The largest f32 not above 1e-3: the CUDA test is `(double)mag <= 1e-3`.
#[allow(clippy::excessive_precision)]
const MAG_SKIP: f32 = 0.000_999_999_93;

/// Both FPS entry points (the GPU's register-cached variant only changes where the
/// distances live): one sequential pass per sample over the cloud, clouds in parallel.
/// Ties go to the CUDA block reduction's winner: smallest bit-reversed thread id, then
/// the smallest index — a total order, so the scan order does not matter.
fn fps(a: &Args<'_>) {
    let p: point::Fps = a.params();
    let [clouds, n, m, frames_out, clip_frames] =
        [p.clouds, p.n, p.m, p.frames_out, p.clip_frames].map(|v| v as usize);
    let (xyz, frame_of) = (a.f32(0), a.u32(1));
    let idx = &mut a.u32_mut(2)[..clouds * m];
    let rows = &mut a.u32_mut(3)[..clouds * m];
    let log2 = p.log2_bs;
    let tie_rank = |k: u32| -> u32 {
        if log2 == 0 {
            0
        } else {
            (k & ((1u32 << log2) - 1)).reverse_bits() >> (32 - log2)
        }
    };
    idx.par_chunks_mut(m.max(1))
        .zip(rows.par_chunks_mut(m.max(1)))
        .enumerate()
        .for_each_init(Vec::new, |temp: &mut Vec<f32>, (cloud, (idx, rows))| {
            let b = cloud / frames_out;
            let f = frame_of[cloud % frames_out] as usize;
            let base = (b * clip_frames + f) * n;
            let pts = &xyz[base * 3..(base + n) * 3];
            // Skipped points hold -2: min keeps them there and they never win.
            temp.clear();
            temp.extend(pts.chunks_exact(3).map(|q| {
                let mag = (q[0] * q[0] + q[1] * q[1]) + q[2] * q[2];
                if mag <= MAG_SKIP {
                    -2.0
                } else {
                    1e10
                }
            }));
            if m == 0 {
                return;
            }
            idx[0] = 0;
            rows[0] = base as u32;
            let mut old = 0usize;
            for j in 1..m {
                let (ox, oy, oz) = (pts[old * 3], pts[old * 3 + 1], pts[old * 3 + 2]);
                let mut bd = -1.0f32;
                let mut bk = 0u32;
                for (k, (t, q)) in temp.iter_mut().zip(pts.chunks_exact(3)).enumerate() {
                    let v = d2(q[0], q[1], q[2], ox, oy, oz).min(*t);
                    *t = v;
                    if v > bd
                        || (v == bd && {
                            let (r1, r2) = (tie_rank(k as u32), tie_rank(bk));
                            r1 < r2 || (r1 == r2 && (k as u32) < bk)
                        })
                    {
                        bd = v;
                        bk = k as u32;
                    }
                }
                old = bk as usize;
                idx[j] = bk;
                rows[j] = (base + old) as u32;
            }
        });
}

fn ball_query(a: &Args<'_>) {
    let p: point::BallQuery = a.params();
    let [queries, n, points, ns, offsets, frames_out, clip_frames] = [
        p.queries,
        p.n,
        p.points,
        p.nsample,
        p.offsets,
        p.frames_out,
        p.clip_frames,
    ]
    .map(|v| v as usize);
    let (xyz, anchors, frame_of) = (a.f32(0), a.f32(1), a.u32(2));
    let idx = &mut a.u32_mut(3)[..queries * ns];
    let rows = SendPtr(a.u32_mut(4)[..queries * ns].as_mut_ptr());
    let count = &mut a.u32_mut(5)[..queries];
    par_rows2(idx, ns, count, 1, |g0, idx, count| {
        for (r, (out, cnt_out)) in idx.chunks_mut(ns).zip(count.iter_mut()).enumerate() {
            let g = g0 + r;
            let a_ = g % n;
            let c = g / n;
            let o = c % offsets;
            let bt = c / offsets;
            let t = bt % frames_out;
            let b = bt / frames_out;
            let base = (b * clip_frames + frame_of[t * offsets + o] as usize) * points;
            let q = (bt * n + a_) * 3;
            let (qx, qy, qz) = (anchors[q], anchors[q + 1], anchors[q + 2]);
            let mut cnt = 0usize;
            for (k, pt) in xyz[base * 3..(base + points) * 3]
                .chunks_exact(3)
                .enumerate()
            {
                if cnt >= ns {
                    break;
                }
                if d2(qx, qy, qz, pt[0], pt[1], pt[2]) < p.radius2 {
                    if cnt == 0 {
                        out.fill(k as u32);
                    }
                    out[cnt] = k as u32;
                    cnt += 1;
                }
            }
            if cnt == 0 {
                out.fill(0);
            }
            // rows is laid out as idx: this task owns the same range.
            let rows = unsafe { rows.slice(g * ns, ns) };
            for (rv, &iv) in rows.iter_mut().zip(out.iter()) {
                *rv = (base + iv as usize) as u32;
            }
            *cnt_out = cnt as u32;
        }
    });
}

fn knn(a: &Args<'_>) {
    let p: point::Knn = a.params();
    let [queries, m, points, k] = [p.queries, p.m, p.points, p.k].map(|v| v as usize);
    assert!((1..=64).contains(&k), "knn: k = {k} outside 1..=64");
    let (refs, query) = (a.f32(0), a.f32(1));
    let idx = &mut a.u32_mut(2)[..queries * k];
    let rows = SendPtr(a.u32_mut(3)[..queries * k].as_mut_ptr());
    let dist = SendPtr(a.f32_mut(4)[..queries * k].as_mut_ptr());
    par_rows(idx, k, |g0, idx| {
        let mut bd = [0.0f32; 64];
        let mut bi = [0u32; 64];
        for (r, out) in idx.chunks_mut(k).enumerate() {
            let g = g0 + r;
            let base = (g / m) * points;
            let (qx, qy, qz) = (query[g * 3], query[g * 3 + 1], query[g * 3 + 2]);
            let mut cnt = 0usize;
            for (ri, pt) in refs[base * 3..(base + points) * 3]
                .chunks_exact(3)
                .enumerate()
            {
                // Reference minus query, as KNN_CUDA.
                let (d0, d1, d2_) = (pt[0] - qx, pt[1] - qy, pt[2] - qz);
                let d = (d0 * d0 + d1 * d1) + d2_ * d2_;
                // As the kernel: a NaN distance never enters a full list.
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let skip = cnt == k && !(d < bd[k - 1]);
                if skip {
                    continue;
                }
                let mut j = cnt.min(k - 1);
                while j > 0 && d < bd[j - 1] {
                    bd[j] = bd[j - 1];
                    bi[j] = bi[j - 1];
                    j -= 1;
                }
                bd[j] = d;
                bi[j] = ri as u32;
                cnt = (cnt + 1).min(k);
            }
            let (rows, dist) = unsafe { (rows.slice(g * k, k), dist.slice(g * k, k)) };
            for s in 0..k {
                out[s] = bi[s];
                rows[s] = (base as u32).wrapping_add(bi[s]);
                dist[s] = bd[s].sqrt();
            }
        }
    });
}

fn three_nn(a: &Args<'_>) {
    let p: point::ThreeNn = a.params();
    let [queries, n, m] = [p.queries, p.n, p.m].map(|v| v as usize);
    let (unknown, known) = (a.f32(0), a.f32(1));
    let idx = &mut a.u32_mut(2)[..queries * 3];
    let rows = SendPtr(a.u32_mut(3)[..queries * 3].as_mut_ptr());
    let dist = SendPtr(a.f32_mut(4)[..queries * 3].as_mut_ptr());
    let weight = SendPtr(a.f32_mut(5)[..queries * 3].as_mut_ptr());
    par_rows(idx, 3, |g0, idx| {
        for (r, out) in idx.chunks_mut(3).enumerate() {
            let g = g0 + r;
            let base = (g / n) * m;
            let (ux, uy, uz) = (unknown[g * 3], unknown[g * 3 + 1], unknown[g * 3 + 2]);
            let (mut b1, mut b2, mut b3) = (f32::INFINITY, f32::INFINITY, f32::INFINITY);
            let (mut i1, mut i2, mut i3) = (0u32, 0u32, 0u32);
            for (k, q) in known[base * 3..(base + m) * 3].chunks_exact(3).enumerate() {
                let d = d2(ux, uy, uz, q[0], q[1], q[2]);
                let k = k as u32;
                if d < b1 {
                    (b3, i3, b2, i2, b1, i1) = (b2, i2, b1, i1, d, k);
                } else if d < b2 {
                    (b3, i3, b2, i2) = (b2, i2, d, k);
                } else if d < b3 {
                    (b3, i3) = (d, k);
                }
            }
            let d = [b1.sqrt(), b2.sqrt(), b3.sqrt()];
            let rcp = d.map(|v| 1.0 / (v + 1e-8));
            let norm = (rcp[0] + rcp[1]) + rcp[2];
            out.copy_from_slice(&[i1, i2, i3]);
            let (rows, dist, weight) = unsafe {
                (
                    rows.slice(g * 3, 3),
                    dist.slice(g * 3, 3),
                    weight.slice(g * 3, 3),
                )
            };
            for s in 0..3 {
                rows[s] = base as u32 + out[s];
                dist[s] = d[s];
                weight[s] = rcp[s] / norm;
            }
        }
    });
}

fn gather(a: &Args<'_>) {
    let p: point::Gather = a.params();
    let [out_rows, ch, group, stride] =
        [p.out_rows, p.channels, p.group, p.x_stride].map(|v| v as usize);
    let (x, rows, w) = (a.f32(0), a.u32(1), a.f32(2));
    let weighted = p.weighted == 1;
    let out = &mut a.f32_mut(5)[..out_rows * ch];
    par_rows(out, ch, |j0, out| {
        for (r, o) in out.chunks_mut(ch).enumerate() {
            let j = j0 + r;
            if group == 1 && !weighted {
                let src = rows[j] as usize * stride;
                o.copy_from_slice(&x[src..src + ch]);
                continue;
            }
            o.fill(0.0);
            for s in 0..group {
                let e = j * group + s;
                let src = &x[rows[e] as usize * stride..][..ch];
                if weighted {
                    let we = w[e];
                    for (v, &xv) in o.iter_mut().zip(src) {
                        *v += we * xv;
                    }
                } else {
                    for (v, &xv) in o.iter_mut().zip(src) {
                        *v += xv;
                    }
                }
            }
        }
    });
}

fn scatter(a: &Args<'_>) {
    let p: point::Gather = a.params();
    let [out_rows, ch, group, stride] =
        [p.out_rows, p.channels, p.group, p.x_stride].map(|v| v as usize);
    let (g, w, offsets, entries) = (a.f32(0), a.f32(2), a.u32(3), a.u32(4));
    let weighted = p.weighted == 1;
    let out = &mut a.f32_mut(5)[..out_rows * ch];
    par_rows(out, ch, |r0, out| {
        for (r, o) in out.chunks_mut(ch).enumerate() {
            let row = r0 + r;
            o.fill(0.0);
            for &e in &entries[offsets[row] as usize..offsets[row + 1] as usize] {
                let e = e as usize;
                let we = if weighted { w[e] } else { 1.0 };
                let src = &g[(e / group) * stride..][..ch];
                for (v, &gv) in o.iter_mut().zip(src) {
                    *v += we * gv;
                }
            }
        }
    });
}

fn displacement(a: &Args<'_>) {
    let p: point::Displacement = a.params();
    let [entries, n, k, offsets] = [p.entries, p.n, p.k, p.offsets].map(|v| v as usize);
    let (xyz, anchors, rows) = (a.f32(0), a.f32(1), a.u32(2));
    let out = &mut a.f32_mut(4)[..entries * 4];
    par_rows(out, 4, |e0, out| {
        for (r, o) in out.chunks_mut(4).enumerate() {
            let e = e0 + r;
            let an = (e / k) % n;
            let off = (e / (k * n)) % offsets;
            let bt = e / (k * n * offsets);
            let src = rows[e] as usize * 3;
            let q = (bt * n + an) * 3;
            o[0] = xyz[src] - anchors[q];
            o[1] = xyz[src + 1] - anchors[q + 1];
            o[2] = xyz[src + 2] - anchors[q + 2];
            o[3] = off as f32 - (offsets / 2) as f32 + p.dt_shift;
        }
    });
}

fn anchor_grad(a: &Args<'_>) {
    let p: point::Displacement = a.params();
    let [entries, n, k, offsets] = [p.entries, p.n, p.k, p.offsets].map(|v| v as usize);
    let gd = a.f32(3);
    let total = entries / (offsets * k).max(1);
    let out = &mut a.f32_mut(4)[..total * 3];
    par_rows(out, 3, |r0, out| {
        for (r, o) in out.chunks_mut(3).enumerate() {
            let i = r0 + r;
            let (an, bt) = (i % n, i / n);
            let mut acc = [0.0f32; 3];
            for off in 0..offsets {
                let base = ((bt * offsets + off) * n + an) * k;
                for s in 0..k {
                    for (c, av) in acc.iter_mut().enumerate() {
                        *av += gd[(base + s) * 4 + c];
                    }
                }
            }
            for c in 0..3 {
                o[c] = -acc[c];
            }
        }
    });
}

fn inverse_clear(a: &Args<'_>) {
    let p: point::InverseIndex = a.params();
    a.u32_mut(1)[..p.targets as usize].fill(0);
}

fn inverse_count(a: &Args<'_>) {
    let p: point::InverseIndex = a.params();
    let rows = &a.u32(0)[..p.entries as usize];
    let counts = &mut a.u32_mut(1)[..p.targets as usize];
    for &r in rows {
        counts[r as usize] += 1;
    }
}

fn inverse_scan(a: &Args<'_>) {
    let p: point::InverseIndex = a.params();
    let t = p.targets as usize;
    let counts = &a.u32_mut(1)[..t];
    let offsets = &mut a.u32_mut(2)[..t + 1];
    let mut run = 0u32;
    for (o, &c) in offsets.iter_mut().zip(counts.iter()) {
        *o = run;
        run += c;
    }
    offsets[t] = run;
}

/// Entries in ascending order, so each row comes out already sorted.
fn inverse_fill(a: &Args<'_>) {
    let p: point::InverseIndex = a.params();
    let rows = &a.u32(0)[..p.entries as usize];
    let counts = a.u32_mut(1);
    let offsets = a.u32_mut(2);
    let entries = a.u32_mut(3);
    for (e, &r) in rows.iter().enumerate() {
        let r = r as usize;
        entries[(offsets[r] + counts[r]) as usize] = e as u32;
        counts[r] += 1;
    }
}

fn inverse_sort(a: &Args<'_>) {
    let p: point::InverseIndex = a.params();
    let t = p.targets as usize;
    let offsets = &a.u32_mut(2)[..t + 1];
    let entries = a.u32_mut(3);
    for w in offsets.windows(2) {
        let row = &mut entries[w[0] as usize..w[1] as usize];
        if !row.is_sorted() {
            row.sort_unstable();
        }
    }
}
