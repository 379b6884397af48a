// Elementwise binary ops with trailing broadcast of `b`:
// b has `nb` elements and a.len % nb == 0, so b[i % nb] pairs with a[i]
// (a per-channel bias or scale over the last axis, or a same-shape operand).
// Backward of the broadcast operand reduces with reduce/colsum.wgsl.

struct Params {
    n: u32,
    nb: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = a[i] + b[i % p.nb];
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = a[i] * b[i % p.nb];
}
