// Matmul rung 2: 16x16 output tile per workgroup, 16-wide K slabs of A and B staged in
// workgroup memory (2 KiB), one output per invocation.

// Params, bindings, load_a, load_b and store_c come from matmul_common.wgsl.

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
