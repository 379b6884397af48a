// Matmul rung 2: 16x16 output tile per workgroup, 16-wide K slabs of A and B staged in
// workgroup memory (2 KiB), one output per invocation.

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

const T: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>; // [row][k]
var<workgroup> tile_b: array<array<f32, 16>, 16>; // [k][col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wid.z;
    let row = wid.y * T + lid.y;
    let col = wid.x * T + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 += T) {
        let ka = k0 + lid.x;
        tile_a[lid.y][lid.x] = select(0.0, load_a(bt, min(row, p.m - 1u), min(ka, p.k - 1u)), row < p.m && ka < p.k);
        let kb = k0 + lid.y;
        tile_b[lid.y][lid.x] = select(0.0, load_b(bt, min(kb, p.k - 1u), min(col, p.n - 1u)), kb < p.k && col < p.n);
        workgroupBarrier();
        for (var kk = 0u; kk < T; kk++) { acc += tile_a[lid.y][kk] * tile_b[kk][lid.x]; }
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) { store_c(bt, row, col, acc); }
}
