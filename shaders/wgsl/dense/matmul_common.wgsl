// Prepended to every rung of the matmul ladder (see shaders/src/lib.rs: prelude).
// Shared by the matmul ladder: C[b] = op(A[b]) @ op(B[b]) (+ bias over columns), with
// op(A) (m x k) stored as (m, k), or (k, m) when trans_a; op(B) (k x n) stored as (k, n),
// or (n, k) when trans_b. A batch stride of 0 broadcasts that operand over the batch.
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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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
    var v = acc;
    if (p.has_bias != 0u) { v += bias[col]; }
    c[(bt * p.m + row) * p.n + col] = v;
}
