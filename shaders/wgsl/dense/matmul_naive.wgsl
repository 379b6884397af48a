// Matmul rung 1: one invocation per output element, straight from global memory.
// The obvious kernel: a baseline for the ladder and the fallback for tiny shapes.

// Params, bindings, load_a, load_b and store_c come from matmul_common.wgsl.

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    let bt = gid.z;
    if (row >= p.m || col >= p.n) { return; }
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) { acc += load_a(bt, row, kk) * load_b(bt, kk, col); }
    store_c(bt, row, col, acc);
}
