// Prepended (after gelu_math.wgsl) to every rung of the matmul ladder.
// Shared by the matmul ladder: C[b] = op(A[b]) @ op(B[b]) (+ bias over columns), with
// op(A) (m x k) stored as (m, k), or (k, m) when trans_a; op(B) (k x n) stored as (k, n),
// or (n, k) when trans_b. A batch stride of 0 broadcasts that operand over the batch.
// The epilogue (bits of p.epilogue, ops::matmul::Epilogue) finishes each element on its
// way out, saving an elementwise pass and its dispatch:
//   EPI_GELU       act = gelu(c) as well (c stays the pre-activation the backward needs)
//   EPI_ADD_AUX    + aux: to act with EPI_GELU, else to c (a residual connection)
//   EPI_GELU_GRAD  c *= gelu'(aux) (aux: a GELU's input; the gradient through it)
struct Params {
    batch: u32,
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    has_bias: u32,
    epilogue: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read_write> act: array<f32>;
@group(0) @binding(6) var<storage, read> aux: array<f32>;

const EPI_GELU: u32 = 1u;
const EPI_ADD_AUX: u32 = 2u;
const EPI_GELU_GRAD: u32 = 4u;

// op(A)[row, kk] of batch bt; callers guarantee row < m and kk < k.
fn load_a(bt: u32, row: u32, kk: u32) -> f32 {
    let base = bt * p.a_batch_stride;
    if (p.trans_a != 0u) { return a[base + kk * p.m + row]; }
    return a[base + row * p.k + kk];
}

// op(B)[kk, col] of batch bt; callers guarantee kk < k and col < n.
fn load_b(bt: u32, kk: u32, col: u32) -> f32 {
    let base = bt * p.b_batch_stride;
    if (p.trans_b != 0u) { return b[base + col * p.k + kk]; }
    return b[base + kk * p.n + col];
}

fn store_c(bt: u32, row: u32, col: u32, acc: f32) {
    let i = (bt * p.m + row) * p.n + col;
    var v = acc;
    if (p.has_bias != 0u) { v += bias[col]; }
    if ((p.epilogue & EPI_GELU_GRAD) != 0u) { v *= gelu_grad(aux[i]); }
    if ((p.epilogue & EPI_GELU) != 0u) {
        var y = gelu(v);
        if ((p.epilogue & EPI_ADD_AUX) != 0u) { y += aux[i]; }
        act[i] = y;
    } else if ((p.epilogue & EPI_ADD_AUX) != 0u) {
        v += aux[i];
    }
    c[i] = v;
}
