//! Point ops as the pointnet2 / KNN_CUDA kernels compute them (reference-spec §2).
//! Selection arithmetic is f32, exactly as the CUDA kernels, because which point is
//! chosen depends on the last bit; gathers and their backward are f64.
//! Clouds are `(N, 3)` slices of xyz triples.

/// The CUDA launch's block size for `n` points: `opt_n_threads` (reference-spec §2.1).
pub fn opt_n_threads(n: usize) -> usize {
    let bits = ((n as f64).ln() / 2f64.ln()) as i32;
    (1usize << bits.clamp(0, 30)).clamp(1, 512)
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    (dx * dx + dy * dy) + dz * dz
}

/// Farthest point sampling of `m` indices from one cloud, CUDA-exact including the
/// near-origin skip and the block-reduction tie rule.
pub fn fps(xyz: &[f32], m: usize) -> Vec<u32> {
    let n = xyz.len() / 3;
    let bs = opt_n_threads(n);
    let point = |k: usize| &xyz[3 * k..3 * k + 3];
    let mut temp = vec![1e10f32; n];
    let mut idx = vec![0u32; m];
    let mut old = 0usize;
    for slot in idx.iter_mut().skip(1) {
        // Each CUDA thread tid walks k = tid, tid + bs, ... keeping its first maximum.
        let mut thread_best = vec![(-1.0f32, 0usize); bs];
        for k in 0..n {
            let p = point(k);
            let mag = (p[0] * p[0] + p[1] * p[1]) + p[2] * p[2];
            if (mag as f64) <= 1e-3 {
                continue;
            }
            temp[k] = temp[k].min(dist2(p, point(old)));
            let best = &mut thread_best[k % bs];
            if temp[k] > best.0 {
                *best = (temp[k], k);
            }
        }
        // Block tree reduction: slot t takes t + stride only when strictly greater.
        let mut stride = bs / 2;
        while stride > 0 {
            for t in 0..stride {
                if thread_best[t + stride].0 > thread_best[t].0 {
                    thread_best[t] = thread_best[t + stride];
                }
            }
            stride /= 2;
        }
        old = thread_best[0].1;
        *slot = old as u32;
    }
    idx
}

/// Ball query of one query point: the first `nsample` indices with d^2 < r^2 in index
/// order, padded with the first hit; all zeros when the ball is empty. Returns
/// (indices, genuine hits).
pub fn ball_query(xyz: &[f32], query: &[f32], radius: f32, nsample: usize) -> (Vec<u32>, usize) {
    let r2 = radius * radius;
    let mut idx = vec![0u32; nsample];
    let mut cnt = 0;
    for k in 0..xyz.len() / 3 {
        if cnt == nsample {
            break;
        }
        if dist2(query, &xyz[3 * k..3 * k + 3]) < r2 {
            if cnt == 0 {
                idx.iter_mut().for_each(|v| *v = k as u32);
            }
            idx[cnt] = k as u32;
            cnt += 1;
        }
    }
    (idx, cnt)
}

/// The `k` nearest reference points of `query`: a stable sort by f32 squared distance
/// (ties to the lower index). Returns (indices, sqrt distances).
pub fn knn(refs: &[f32], query: &[f32], k: usize) -> (Vec<u32>, Vec<f32>) {
    let mut d: Vec<(f32, usize)> = (0..refs.len() / 3)
        .map(|r| (dist2(&refs[3 * r..3 * r + 3], query), r))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.truncate(k);
    (
        d.iter().map(|&(_, r)| r as u32).collect(),
        d.iter().map(|&(v, _)| v.sqrt()).collect(),
    )
}

/// three_nn of one unknown point: (indices, sqrt distances, inverse-distance weights).
pub fn three_nn(known: &[f32], unknown: &[f32]) -> ([u32; 3], [f32; 3], [f32; 3]) {
    let mut best = [(f32::INFINITY, 0usize); 3];
    for k in 0..known.len() / 3 {
        let d = dist2(unknown, &known[3 * k..3 * k + 3]);
        if let Some(pos) = best.iter().position(|b| d < b.0) {
            best[pos..].rotate_right(1);
            best[pos] = (d, k);
        }
    }
    let dist = best.map(|b| b.0.sqrt());
    let recip = dist.map(|d| 1.0 / (d + 1e-8));
    let norm = (recip[0] + recip[1]) + recip[2];
    (best.map(|b| b.1 as u32), dist, recip.map(|r| r / norm))
}

/// out[j, c] = sum_{s < group} w[j*group + s] * x[rows[j*group + s], c] (w = 1 if absent).
pub fn gather(
    x: &[f64],
    channels: usize,
    rows: &[u32],
    group: usize,
    w: Option<&[f64]>,
) -> Vec<f64> {
    let mut out = vec![0.0; rows.len() / group * channels];
    for (e, &r) in rows.iter().enumerate() {
        let we = w.map_or(1.0, |w| w[e]);
        for c in 0..channels {
            out[e / group * channels + c] += we * x[r as usize * channels + c];
        }
    }
    out
}

/// Backward of `gather`: scatter-add of g into `targets` rows.
pub fn gather_backward(
    g: &[f64],
    channels: usize,
    rows: &[u32],
    group: usize,
    w: Option<&[f64]>,
    targets: usize,
) -> Vec<f64> {
    let mut gx = vec![0.0; targets * channels];
    for (e, &r) in rows.iter().enumerate() {
        let we = w.map_or(1.0, |w| w[e]);
        for c in 0..channels {
            gx[r as usize * channels + c] += we * g[e / group * channels + c];
        }
    }
    gx
}
