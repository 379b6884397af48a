// Matmul rung 3: register blocking. A workgroup of 16x16 invocations computes a 64x64
// output tile; each invocation keeps a 4x4 block of accumulators in registers, reading
// 16-deep slabs of A and B from workgroup memory (8 KiB). Four times the arithmetic per
// workgroup-memory read of rung 2.

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

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> slab_a: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> slab_b: array<array<f32, 64>, 16>; // [k][col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wid.z;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let t = lid.y * 16u + lid.x;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // 1024 elements of each slab, 4 per invocation.
        for (var e = 0u; e < 4u; e++) {
            let idx = t + e * 256u;
            let kk = idx / 64u;
            let rc = idx % 64u;
            let gk = k0 + kk;
            let gr = row0 + rc;
            let gc = col0 + rc;
            slab_a[kk][rc] = select(0.0, load_a(bt, min(gr, p.m - 1u), min(gk, p.k - 1u)), gr < p.m && gk < p.k);
            slab_b[kk][rc] = select(0.0, load_b(bt, min(gk, p.k - 1u), min(gc, p.n - 1u)), gk < p.k && gc < p.n);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let bv = vec4<f32>(slab_b[kk][lid.x * 4u], slab_b[kk][lid.x * 4u + 1u],
                               slab_b[kk][lid.x * 4u + 2u], slab_b[kk][lid.x * 4u + 3u]);
            for (var i = 0u; i < 4u; i++) {
                acc[i] += slab_a[kk][lid.y * 4u + i] * bv;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        if (row >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (col < p.n) { store_c(bt, row, col, acc[i][j]); }
        }
    }
}
