//! Twin of `shaders/wgsl/attention/flash.wgsl`. Where the GPU walks 8 query rows over
//! key tiles with a running max, the CPU takes a block of at most `BLOCK` query (or key)
//! rows of one head at a time and does its products with `gemm` on the thread that owns
//! the block: the block's scores are `BLOCK` × Tk floats of per-thread scratch, never the
//! whole Tq × Tk matrix. Blocks are fixed by the sizes and each output row is written by one
//! block, so results are bitwise identical run to run and for any thread count.

use std::cell::RefCell;

use gemm::Parallelism;

use crate::params::attention::Flash;

use super::{par_chunks, par_row_blocks2, par_rows, tree_sum, Args, KernelFn};

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    match (name, entry) {
        ("flash", "forward") => Some(forward),
        ("flash", "delta_rows") => Some(delta_rows),
        ("flash", "grad_q") => Some(grad_q),
        ("flash", "grad_kv") => Some(grad_kv),
        _ => None,
    }
}

/// Rows per block: a block's two score panels (128 × T each) stay in cache.
const BLOCK: usize = 128;

thread_local! {
    /// Per-thread score and gradient scratch (up to three `BLOCK` × T panels).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `PANELS` panels of `len` floats each from this thread's scratch.
fn with_scratch<const PANELS: usize, R>(
    len: usize,
    f: impl FnOnce([&mut [f32]; PANELS]) -> R,
) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < PANELS * len {
            s.resize(PANELS * len, 0.0);
        }
        let mut rest = &mut s[..PANELS * len];
        f(std::array::from_fn(|_| {
            let (panel, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            panel
        }))
    })
}

/// e^x to about 2 ulp for x in [−87, 88] (flushed to ~1e-38 below): Cephes' expf
/// polynomial after the reduction x = n ln 2 + r. Branch-free, so a loop of it
/// vectorises; the score passes are bound by exp, which libm does one lane at a time.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12582912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut poly = 1.987_569_1e-4_f32;
    poly = poly * r + 1.398_199_9e-3;
    poly = poly * r + 8.333_452e-3;
    poly = poly * r + 4.166_579_6e-2;
    poly = poly * r + 0.166_666_65;
    poly = poly * r + 0.5;
    let e = poly * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// A row-major operand: element (r, c) at `ptr[r · rs + c · cs]`.
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: usize,
    cs: usize,
}

fn rows_of(x: &[f32], first: usize, width: usize) -> Mat {
    Mat {
        ptr: x[first * width..].as_ptr(),
        rs: width,
        cs: 1,
    }
}

/// The transpose of `width`-wide rows starting at `first`.
fn cols_of(x: &[f32], first: usize, width: usize) -> Mat {
    Mat {
        ptr: x[first * width..].as_ptr(),
        rs: 1,
        cs: width,
    }
}

/// dst (m × n, row-major, rows `n` apart) = beta · a (m × k) b (k × n), on this thread.
fn product(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat, b: Mat, beta: f32) {
    assert!(
        dst.len() >= m * n,
        "attention scratch shorter than its panel"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    // The callers build `a` and `b` from slices covering every element they name.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.ptr,
            a.cs as isize,
            a.rs as isize,
            b.ptr,
            b.cs as isize,
            b.rs as isize,
            0.0f32,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Splits rows `first .. first + count` of a (heads, t, ·) tensor into blocks of at most
/// `BLOCK` rows that stay within one head: `f(head, row_in_head, rows, offset)`.
fn blocks(first: usize, count: usize, t: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let mut r = first;
    while r < first + count {
        let (head, i) = (r / t, r % t);
        let n = BLOCK.min(t - i).min(first + count - r);
        f(head, i, n, r - first);
        r += n;
    }
}

/// Checks that every binding covers the geometry in the uniform.
fn check(a: &Args<'_>, p: &Flash, slots: &[(u32, usize)]) {
    for &(slot, len) in slots {
        assert!(
            a.f32(slot).len() >= len,
            "flash attention binding {slot} shorter than bh {} × tq {} × tk {} × dh {}",
            p.bh,
            p.tq,
            p.tk,
            p.dh
        );
    }
}

/// q, k, v, dO, lse and delta, as `grad_q` and `grad_kv` read them.
fn check_backward_inputs(a: &Args<'_>, p: &Flash) {
    let (bh, tq, tk, dh) = geometry(p);
    let (q_len, kv_len) = (bh * tq * dh, bh * tk * dh);
    let slots = [
        (0, q_len),
        (1, kv_len),
        (2, kv_len),
        (4, q_len),
        (5, bh * tq),
        (6, bh * tq),
    ];
    check(a, p, &slots);
}

fn geometry(p: &Flash) -> (usize, usize, usize, usize) {
    (p.bh as usize, p.tq as usize, p.tk as usize, p.dh as usize)
}

fn forward(a: &Args<'_>) {
    let p: Flash = a.params();
    let (bh, tq, tk, dh) = geometry(&p);
    check(
        a,
        &p,
        &[(0, bh * tq * dh), (1, bh * tk * dh), (2, bh * tk * dh)],
    );
    let (q, k, v) = (a.f32(0), a.f32(1), a.f32(2));
    let o = &mut a.f32_mut(7)[..bh * tq * dh];
    let lse = &mut a.f32_mut(8)[..bh * tq];
    par_row_blocks2(o, dh, lse, 1, BLOCK, |r0, o, lse| {
        blocks(r0, lse.len(), tq, |head, i, n, at| {
            with_scratch(n * tk, |[s]| {
                let kv = head * tk;
                product(
                    n,
                    tk,
                    dh,
                    s,
                    rows_of(q, head * tq + i, dh),
                    cols_of(k, kv, dh),
                    p.scale,
                );
                for (row, l) in s.chunks_mut(tk).zip(&mut lse[at..at + n]) {
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    row.iter_mut().for_each(|x| *x = exp(*x - m));
                    let sum = tree_sum(row, |x| x);
                    let inv = 1.0 / sum;
                    row.iter_mut().for_each(|x| *x *= inv);
                    *l = m + sum.ln();
                }
                let s = rows_of(s, 0, tk);
                product(
                    n,
                    dh,
                    tk,
                    &mut o[at * dh..(at + n) * dh],
                    s,
                    rows_of(v, kv, dh),
                    1.0,
                );
            });
        });
    });
}

fn delta_rows(a: &Args<'_>) {
    let p: Flash = a.params();
    let (bh, tq, _, dh) = geometry(&p);
    check(a, &p, &[(3, bh * tq * dh), (4, bh * tq * dh)]);
    let (o, g) = (a.f32(3), a.f32(4));
    let delta = &mut a.f32_mut(7)[..bh * tq];
    par_rows(delta, dh, |r0, out| {
        for (r, d) in out.iter_mut().enumerate() {
            let row = (r0 + r) * dh;
            *d = o[row..row + dh]
                .iter()
                .zip(&g[row..row + dh])
                .map(|(x, y)| x * y)
                .sum();
        }
    });
}

fn grad_q(a: &Args<'_>) {
    let p: Flash = a.params();
    let (bh, tq, tk, dh) = geometry(&p);
    check_backward_inputs(a, &p);
    let (q, k, v, g, lse, delta) = (a.f32(0), a.f32(1), a.f32(2), a.f32(4), a.f32(5), a.f32(6));
    let dq = &mut a.f32_mut(7)[..bh * tq * dh];
    par_chunks(dq, BLOCK * dh, |start, dq| {
        blocks(start / dh, dq.len() / dh, tq, |head, i, n, at| {
            with_scratch(n * tk, |[s, dp]| {
                let (kv, first) = (head * tk, head * tq + i);
                product(
                    n,
                    tk,
                    dh,
                    s,
                    rows_of(q, first, dh),
                    cols_of(k, kv, dh),
                    p.scale,
                );
                product(
                    n,
                    tk,
                    dh,
                    dp,
                    rows_of(g, first, dh),
                    cols_of(v, kv, dh),
                    1.0,
                );
                // dS = P ∘ (dP − delta) · scale, in place of the scores.
                let rows = s.chunks_mut(tk).zip(dp.chunks(tk)).take(n).enumerate();
                for (r, (s_row, dp_row)) in rows {
                    let (l, d) = (lse[first + r], delta[first + r]);
                    for (x, dpv) in s_row.iter_mut().zip(dp_row) {
                        *x = exp(*x - l) * (dpv - d) * p.scale;
                    }
                }
                let s = rows_of(s, 0, tk);
                product(
                    n,
                    dh,
                    tk,
                    &mut dq[at * dh..(at + n) * dh],
                    s,
                    rows_of(k, kv, dh),
                    1.0,
                );
            });
        });
    });
}

fn grad_kv(a: &Args<'_>) {
    let p: Flash = a.params();
    let (bh, tq, tk, dh) = geometry(&p);
    check_backward_inputs(a, &p);
    let (q, k, v, g, lse, delta) = (a.f32(0), a.f32(1), a.f32(2), a.f32(4), a.f32(5), a.f32(6));
    let dk = &mut a.f32_mut(7)[..bh * tk * dh];
    let dv = &mut a.f32_mut(8)[..bh * tk * dh];
    par_row_blocks2(dk, dh, dv, dh, BLOCK, |r0, dk, dv| {
        blocks(r0, dk.len() / dh.max(1), tk, |head, j, n, at| {
            // Transposed panels: row r is key j + r, column c is query c.
            with_scratch(n * tq, |[s, dp, probs]| {
                let (first_q, key) = (head * tq, head * tk + j);
                product(
                    n,
                    tq,
                    dh,
                    s,
                    rows_of(k, key, dh),
                    cols_of(q, first_q, dh),
                    p.scale,
                );
                product(
                    n,
                    tq,
                    dh,
                    dp,
                    rows_of(v, key, dh),
                    cols_of(g, first_q, dh),
                    1.0,
                );
                // Pᵀ, and dSᵀ = Pᵀ ∘ (dPᵀ − delta) · scale in place of the scores.
                let (lse, delta) = (&lse[first_q..first_q + tq], &delta[first_q..first_q + tq]);
                let rows = s
                    .chunks_mut(tq)
                    .zip(dp.chunks(tq))
                    .zip(probs.chunks_mut(tq));
                for ((s_row, dp_row), p_row) in rows.take(n) {
                    for c in 0..tq {
                        let pv = exp(s_row[c] - lse[c]);
                        p_row[c] = pv;
                        s_row[c] = pv * (dp_row[c] - delta[c]) * p.scale;
                    }
                }
                let ds = rows_of(s, 0, tq);
                let probs = rows_of(probs, 0, tq);
                product(
                    n,
                    dh,
                    tq,
                    &mut dv[at * dh..(at + n) * dh],
                    probs,
                    rows_of(g, first_q, dh),
                    1.0,
                );
                product(
                    n,
                    dh,
                    tq,
                    &mut dk[at * dh..(at + n) * dh],
                    ds,
                    rows_of(q, first_q, dh),
                    1.0,
                );
            });
        });
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn polynomial_exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (got, want) = (super::exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.5e-7, "relative error {worst:e}");
    }
}
