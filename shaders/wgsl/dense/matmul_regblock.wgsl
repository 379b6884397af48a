// Matmul rung 3: register blocking. A workgroup of 16x16 invocations computes a 64x64
// output tile; each invocation keeps a 4x4 block of accumulators in four vec4
// registers (named, not an indexed array, which some compilers spill to memory) and
// reads 16-deep slabs of A and B from workgroup memory (8 KiB) as vec4s: per k, two
// vec4 loads feed sixteen multiply-adds.

// Params, bindings, load_a, load_b and store_c come from matmul_common.wgsl.

const BK: u32 = 16u;
var<workgroup> slab_a: array<array<vec4<f32>, 16>, 16>; // [k][row / 4]: 4 rows of op(A)
var<workgroup> slab_b: array<array<vec4<f32>, 16>, 16>; // [k][col / 4]: 4 cols of op(B)

fn a_or_zero(bt: u32, row: u32, kk: u32) -> f32 {
    return select(0.0, load_a(bt, min(row, p.m - 1u), min(kk, p.k - 1u)), row < p.m && kk < p.k);
}

fn b_or_zero(bt: u32, kk: u32, col: u32) -> f32 {
    return select(0.0, load_b(bt, min(kk, p.k - 1u), min(col, p.n - 1u)), kk < p.k && col < p.n);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wid.z;
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;
    let t = lid.y * 16u + lid.x;
    // Each invocation stages one vec4 of each slab per k-step.
    let load_k = t / 16u;
    let load_r = row0 + (t % 16u) * 4u;
    let load_c = col0 + (t % 16u) * 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        let kk = k0 + load_k;
        slab_a[load_k][t % 16u] = vec4<f32>(a_or_zero(bt, load_r, kk), a_or_zero(bt, load_r + 1u, kk),
                                            a_or_zero(bt, load_r + 2u, kk), a_or_zero(bt, load_r + 3u, kk));
        slab_b[load_k][t % 16u] = vec4<f32>(b_or_zero(bt, kk, load_c), b_or_zero(bt, kk, load_c + 1u),
                                            b_or_zero(bt, kk, load_c + 2u), b_or_zero(bt, kk, load_c + 3u));
        workgroupBarrier();
        for (var k = 0u; k < BK; k++) {
            let av = slab_a[k][lid.y];
            let bv = slab_b[k][lid.x];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }
    let r = row0 + lid.y * 4u;
    let c = col0 + lid.x * 4u;
    store_row(bt, r, c, acc0);
    store_row(bt, r + 1u, c, acc1);
    store_row(bt, r + 2u, c, acc2);
    store_row(bt, r + 3u, c, acc3);
}

fn store_row(bt: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) { return; }
    if (col < p.n) { store_c(bt, row, col, v.x); }
    if (col + 1u < p.n) { store_c(bt, row, col + 1u, v.y); }
    if (col + 2u < p.n) { store_c(bt, row, col + 2u, v.z); }
    if (col + 3u < p.n) { store_c(bt, row, col + 3u, v.w); }
}
