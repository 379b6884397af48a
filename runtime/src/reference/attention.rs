//! Scaled dot-product attention over heads folded into the batch, the plain way: the
//! whole score matrix per head. q is (bh, tq, dh), k and v are (bh, tk, dh).

/// Attention probabilities softmax(q kᵀ · dh^-½), (bh, tq, tk).
pub fn probabilities(q: &[f64], k: &[f64], bh: usize, tq: usize, tk: usize, dh: usize) -> Vec<f64> {
    let scale = (dh as f64).powf(-0.5);
    let mut p = vec![0.0; bh * tq * tk];
    for h in 0..bh {
        for i in 0..tq {
            let qi = &q[(h * tq + i) * dh..][..dh];
            let row = &mut p[(h * tq + i) * tk..][..tk];
            for (j, s) in row.iter_mut().enumerate() {
                let kj = &k[(h * tk + j) * dh..][..dh];
                *s = scale * qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>();
            }
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|s| (s - m).exp()).sum();
            row.iter_mut().for_each(|s| *s = (*s - m).exp() / sum);
        }
    }
    p
}

/// (o (bh, tq, dh), log-sum-exp of each query row's scaled scores (bh, tq)).
pub fn forward(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    bh: usize,
    tq: usize,
    tk: usize,
    dh: usize,
) -> (Vec<f64>, Vec<f64>) {
    let scale = (dh as f64).powf(-0.5);
    let p = probabilities(q, k, bh, tq, tk, dh);
    let mut o = vec![0.0; bh * tq * dh];
    let mut lse = vec![0.0; bh * tq];
    for h in 0..bh {
        for i in 0..tq {
            let row = h * tq + i;
            for j in 0..tk {
                let pij = p[row * tk + j];
                for d in 0..dh {
                    o[row * dh + d] += pij * v[(h * tk + j) * dh + d];
                }
            }
            // lse = s_ij − log p_ij for any j; the largest p is the most accurate.
            let (j, pij) = (0..tk)
                .map(|j| (j, p[row * tk + j]))
                .fold((0, -1.0), |best, c| if c.1 > best.1 { c } else { best });
            let qi = &q[row * dh..][..dh];
            let kj = &k[(h * tk + j) * dh..][..dh];
            let s = scale * qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>();
            lse[row] = s - pij.ln();
        }
    }
    (o, lse)
}

/// (dq, dk, dv) given the output gradient `g` (bh, tq, dh).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    g: &[f64],
    bh: usize,
    tq: usize,
    tk: usize,
    dh: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let scale = (dh as f64).powf(-0.5);
    let p = probabilities(q, k, bh, tq, tk, dh);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    for h in 0..bh {
        for i in 0..tq {
            let row = h * tq + i;
            let gi = &g[row * dh..][..dh];
            // dP_ij = g_i · v_j; dS = P ∘ (dP − Σ_j P_ij dP_ij).
            let dp: Vec<f64> = (0..tk)
                .map(|j| {
                    gi.iter()
                        .zip(&v[(h * tk + j) * dh..][..dh])
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect();
            let dot: f64 = (0..tk).map(|j| p[row * tk + j] * dp[j]).sum();
            for j in 0..tk {
                let pij = p[row * tk + j];
                let ds = pij * (dp[j] - dot) * scale;
                let key = (h * tk + j) * dh;
                for d in 0..dh {
                    dv[key + d] += pij * gi[d];
                    dq[row * dh + d] += ds * k[key + d];
                    dk[key + d] += ds * q[row * dh + d];
                }
            }
        }
    }
    (dq, dk, dv)
}
