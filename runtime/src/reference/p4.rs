//! P4Transformer building blocks in plain f64 (reference-spec §3, §4.1): the tube
//! embedding (MSR-style P4DConv: conv_d, max over neighbours, max over the temporal
//! kernel) for given FPS / ball-query indices, and one transformer layer. Parameters
//! are looked up by their PyTorch names. Tests compare the GPU forward to these and the
//! GPU backward to their finite differences.

use std::collections::BTreeMap;

use super::activation::gelu;
use super::layernorm;

/// Parameters by PyTorch name.
pub type Params = BTreeMap<String, Vec<f64>>;

fn get<'a>(p: &'a Params, name: &str) -> &'a [f64] {
    p.get(name)
        .unwrap_or_else(|| panic!("reference: no parameter {name}"))
}

/// y = x Wᵀ + b over rows of length `inp`; W (out, inp).
pub fn linear(x: &[f64], w: &[f64], b: Option<&[f64]>, inp: usize) -> Vec<f64> {
    let out = w.len() / inp;
    let mut y = Vec::with_capacity(x.len() / inp * out);
    for row in x.chunks(inp) {
        for o in 0..out {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for i in 0..inp {
                acc += row[i] * w[o * inp + i];
            }
            y.push(acc);
        }
    }
    y
}

/// Tube embedding of clip (B, L, N, 3) for output frames whose anchors come from frame
/// `anchor_frames[t']` at indices `anchor_idx` (B, L', n), and whose neighbours for
/// offset o come from frame `neighbour_frames[t'·kt + o]` at `ball_idx` (B, L', kt, n, k).
/// `w` is conv_d (C, 4). Returns (anchors (B, L', n, 3), features (B, L', n, C)).
#[allow(clippy::too_many_arguments)]
pub fn tube_embedding(
    clip: &[f64],
    (b, l, npts): (usize, usize, usize),
    w: &[f64],
    anchor_frames: &[u32],
    anchor_idx: &[u32],
    neighbour_frames: &[u32],
    ball_idx: &[u32],
    (n, kt, k): (usize, usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let c = w.len() / 4;
    let l_out = anchor_frames.len();
    let point =
        |bb: usize, f: u32, i: u32| &clip[((bb * l + f as usize) * npts + i as usize) * 3..][..3];
    let mut anchors = Vec::new();
    let mut features = Vec::new();
    for bb in 0..b {
        for t in 0..l_out {
            for a in 0..n {
                let anchor =
                    point(bb, anchor_frames[t], anchor_idx[(bb * l_out + t) * n + a]).to_vec();
                anchors.extend_from_slice(&anchor);
                let mut temporal = vec![f64::NEG_INFINITY; c];
                for o in 0..kt {
                    let mut spatial = vec![f64::NEG_INFINITY; c];
                    for s in 0..k {
                        let i = ball_idx[(((bb * l_out + t) * kt + o) * n + a) * k + s];
                        let q = point(bb, neighbour_frames[t * kt + o], i);
                        let disp = [
                            q[0] - anchor[0],
                            q[1] - anchor[1],
                            q[2] - anchor[2],
                            o as f64 - (kt / 2) as f64,
                        ];
                        for ch in 0..c {
                            let h: f64 = (0..4).map(|j| w[ch * 4 + j] * disp[j]).sum();
                            spatial[ch] = spatial[ch].max(h);
                        }
                    }
                    for ch in 0..c {
                        temporal[ch] = temporal[ch].max(spatial[ch]);
                    }
                }
                features.extend_from_slice(&temporal);
            }
        }
    }
    (anchors, features)
}

/// One transformer layer (PreNorm attention with GELU after `to_out`, PreNorm
/// feed-forward, both residual) on x (B, T, D); parameters under `prefix` (e.g.
/// "transformer.layers.0").
pub fn transformer_layer(
    x: &[f64],
    (t, d): (usize, usize),
    heads: usize,
    dim_head: usize,
    p: &Params,
    prefix: &str,
) -> Vec<f64> {
    let n = |r: &str| format!("{prefix}.{r}");
    let inner = heads * dim_head;
    let mut out = Vec::with_capacity(x.len());
    for xb in x.chunks(t * d) {
        let h = layernorm::forward(
            xb,
            get(p, &n("0.fn.norm.weight")),
            get(p, &n("0.fn.norm.bias")),
            1e-5,
        );
        let qkv = linear(&h, get(p, &n("0.fn.fn.to_qkv.weight")), None, d);
        let at = |tok: usize, part: usize, hd: usize, j: usize| {
            qkv[tok * 3 * inner + part * inner + hd * dim_head + j]
        };
        let mut merged = vec![0.0; t * inner];
        for hd in 0..heads {
            for i in 0..t {
                let scores: Vec<f64> = (0..t)
                    .map(|j| {
                        (0..dim_head)
                            .map(|c| at(i, 0, hd, c) * at(j, 1, hd, c))
                            .sum::<f64>()
                            * (dim_head as f64).powf(-0.5)
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..dim_head {
                    merged[i * inner + hd * dim_head + c] =
                        (0..t).map(|j| e[j] / z * at(j, 2, hd, c)).sum();
                }
            }
        }
        let att = match p.get(&n("0.fn.fn.to_out.0.weight")) {
            Some(w) => gelu(&linear(
                &merged,
                w,
                Some(get(p, &n("0.fn.fn.to_out.0.bias"))),
                inner,
            )),
            None => merged,
        };
        let x1: Vec<f64> = xb.iter().zip(&att).map(|(a, b)| a + b).collect();
        let h2 = layernorm::forward(
            &x1,
            get(p, &n("1.fn.norm.weight")),
            get(p, &n("1.fn.norm.bias")),
            1e-5,
        );
        let f1 = gelu(&linear(
            &h2,
            get(p, &n("1.fn.fn.net.0.weight")),
            Some(get(p, &n("1.fn.fn.net.0.bias"))),
            d,
        ));
        let mlp = f1.len() / t;
        let f2 = linear(
            &f1,
            get(p, &n("1.fn.fn.net.3.weight")),
            Some(get(p, &n("1.fn.fn.net.3.bias"))),
            mlp,
        );
        out.extend(x1.iter().zip(&f2).map(|(a, b)| a + b));
    }
    out
}
