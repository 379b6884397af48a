// Matmul rung 4: 8x8 register blocks. An 8x8 workgroup computes a 64x64 output tile;
// each invocation keeps an 8x8 block of accumulators (sixteen vec4) and per k reads two
// vec4 of op(A) and two of op(B) from workgroup memory: 64 multiply-adds per four vec4
// loads, twice the regblock rung's ratio. On CPU adapters (llvmpipe/lavapipe), where a
// load that differs per invocation costs far more than a multiply-add, that ratio is
// what sets the speed.

// Params, bindings, load_a, load_b and store_c come from matmul_common.wgsl.

const BK: u32 = 16u;
var<workgroup> slab_a: array<array<vec4<f32>, 16>, 16>; // [k][row / 4]
var<workgroup> slab_b: array<array<vec4<f32>, 16>, 16>; // [k][col / 4]

fn a_or_zero(bt: u32, row: u32, kk: u32) -> f32 {
    return select(0.0, load_a(bt, min(row, p.m - 1u), min(kk, p.k - 1u)), row < p.m && kk < p.k);
}

fn b_or_zero(bt: u32, kk: u32, col: u32) -> f32 {
    return select(0.0, load_b(bt, min(kk, p.k - 1u), min(col, p.n - 1u)), kk < p.k && col < p.n);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bt = wid.z;
    let row0 = wid.y * 64u;
    let col0 = wid.x * 64u;
    let t = lid.y * 8u + lid.x;
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // 256 vec4 per slab, four per invocation: slot q covers k = q / 16, group q % 16.
        for (var j = 0u; j < 4u; j++) {
            let q = t + j * 64u;
            let lk = q / 16u;
            let g = q % 16u;
            let kk = k0 + lk;
            let r = row0 + g * 4u;
            let c = col0 + g * 4u;
            slab_a[lk][g] = vec4<f32>(a_or_zero(bt, r, kk), a_or_zero(bt, r + 1u, kk),
                                      a_or_zero(bt, r + 2u, kk), a_or_zero(bt, r + 3u, kk));
            slab_b[lk][g] = vec4<f32>(b_or_zero(bt, kk, c), b_or_zero(bt, kk, c + 1u),
                                      b_or_zero(bt, kk, c + 2u), b_or_zero(bt, kk, c + 3u));
        }
        workgroupBarrier();
        for (var k = 0u; k < BK; k++) {
            let a_lo = slab_a[k][lid.y * 2u];
            let a_hi = slab_a[k][lid.y * 2u + 1u];
            let b_lo = slab_b[k][lid.x * 2u];
            let b_hi = slab_b[k][lid.x * 2u + 1u];
            acc[0] += a_lo.x * b_lo;
            acc[1] += a_lo.x * b_hi;
            acc[2] += a_lo.y * b_lo;
            acc[3] += a_lo.y * b_hi;
            acc[4] += a_lo.z * b_lo;
            acc[5] += a_lo.z * b_hi;
            acc[6] += a_lo.w * b_lo;
            acc[7] += a_lo.w * b_hi;
            acc[8] += a_hi.x * b_lo;
            acc[9] += a_hi.x * b_hi;
            acc[10] += a_hi.y * b_lo;
            acc[11] += a_hi.y * b_hi;
            acc[12] += a_hi.z * b_lo;
            acc[13] += a_hi.z * b_hi;
            acc[14] += a_hi.w * b_lo;
            acc[15] += a_hi.w * b_hi;
        }
        workgroupBarrier();
    }
    let r = row0 + lid.y * 8u;
    let c = col0 + lid.x * 8u;
    store_row8(bt, r + 0u, c, acc[0], acc[1]);
    store_row8(bt, r + 1u, c, acc[2], acc[3]);
    store_row8(bt, r + 2u, c, acc[4], acc[5]);
    store_row8(bt, r + 3u, c, acc[6], acc[7]);
    store_row8(bt, r + 4u, c, acc[8], acc[9]);
    store_row8(bt, r + 5u, c, acc[10], acc[11]);
    store_row8(bt, r + 6u, c, acc[12], acc[13]);
    store_row8(bt, r + 7u, c, acc[14], acc[15]);
}

fn store_row8(bt: u32, row: u32, col: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.m) { return; }
    let v = array<f32, 8>(lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    for (var j = 0u; j < 8u; j++) {
        if (col + j < p.n) { store_c(bt, row, col + j, v[j]); }
    }
}
